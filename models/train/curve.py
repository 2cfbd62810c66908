"""Learning curve of a running (or finished) training run on its HOLDOUT images (never on a
validation split): for each checkpoint OUT/last.pt as it is rewritten, the opacity Dice on the
holdout's COVID images, the lung Dice (both lungs), and the ROC AUC of the image-level score
(highest opacity detection score whose mask covers >= 0.5 % of the image) against the holdout's
normal images, computed in PyTorch at the training resolution. One JSON line per checkpoint in
OUT/curve.jsonl; runs beside training at low priority (1 thread).

  nice -n 19 /usr/bin/python3 models/train/curve.py RUN_DIR [--once CHECKPOINT]
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import cxrdata  # noqa: E402
import maskfolder  # noqa: E402
from cxr_arch import build_model  # noqa: E402


def auc(pos, neg):
    """ROC AUC (Mann-Whitney), ties count half."""
    if not pos or not neg:
        return None
    n = 0.0
    for p in pos:
        for q in neg:
            n += 1.0 if p > q else 0.5 if p == q else 0.0
    return n / (len(pos) * len(neg))


@torch.no_grad()
def measure(ckpt, items, min_area=0.005):
    ck = torch.load(ckpt, map_location="cpu")
    model = build_model(ck["arch"]).eval()
    model.load_state_dict(ck["model"])
    op_dice, lung_dice, pos, neg = [], [], [], []
    for img, planes, info in items:
        out = model([torch.from_numpy(img).float()[None] / 255.0])[0]
        masks = (out["masks"][:, 0] >= 0.5).numpy()
        labels, scores = out["labels"].numpy(), out["scores"].numpy()
        area = img.shape[0] * img.shape[1]
        s_img = max([float(s) for m, l, s in zip(masks, labels, scores)
                     if l == 1 and m.sum() >= min_area * area] or [0.0])
        rep = {l: np.zeros(img.shape, bool) for l in (1, 2, 3)}
        for m, l, s in zip(masks, labels, scores):
            if s >= 0.5:
                rep[int(l)] |= m
        gt_op = (planes & 1) > 0
        gt_lung = (planes & 0b1110) > 0
        pl = rep[2] | rep[3]
        lung_dice.append(2 * (pl & gt_lung).sum() / max(pl.sum() + gt_lung.sum(), 1))
        if info["category"] == "covid":
            pos.append(s_img)
            op = rep[1] if s_img >= 0.5 else np.zeros_like(rep[1])
            op_dice.append(2 * (op & gt_op).sum() / max(op.sum() + gt_op.sum(), 1))
        elif info["category"] == "normal":
            neg.append(s_img)
    return {"opacity_dice_covid": float(np.mean(op_dice)), "lung_dice": float(np.mean(lung_dice)),
            "auc": auc(pos, neg), "n_covid": len(pos), "n_normal": len(neg),
            "iterations": ck.get("state", {}).get("iter", ck["provenance"].get("iterations")),
            "train_minutes": ck["provenance"].get("train_minutes")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--once", help="measure this checkpoint only")
    ap.add_argument("--cache", default=os.path.join(HERE, "runs", "cache"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(a.run, "holdout.json")) as f:
        hd = json.load(f)
    ck0 = a.once or os.path.join(a.run, "last.pt")
    while not os.path.exists(ck0):
        time.sleep(30)
    size = torch.load(ck0, map_location="cpu")["arch"]["min_size"]
    index = {it["id"]: it for it in maskfolder.build_cache(hd["data"], a.cache, size, log=lambda m: None)}
    items = [cxrdata.load_cached(index[i]["cache"]) for i in hd["holdout"]]
    out = os.path.join(a.run, "curve.jsonl")
    if a.once:
        r = measure(a.once, items)
        print(json.dumps(r))
        with open(out, "a") as f:
            f.write(json.dumps(dict(r, checkpoint=a.once)) + "\n")
        return
    seen = 0.0
    while True:
        last = os.path.join(a.run, "last.pt")
        if os.path.exists(last) and os.path.getmtime(last) > seen:
            seen = os.path.getmtime(last)
            snap = os.path.join(a.run, "curve-snap.pt")
            shutil.copy(last, snap)
            r = measure(snap, items)
            print(time.strftime("%H:%M:%S"), json.dumps(r), flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(r) + "\n")
        if os.path.exists(os.path.join(a.run, "final.pt")) and os.path.getmtime(last) <= seen:
            break
        time.sleep(30)


if __name__ == "__main__":
    main()
