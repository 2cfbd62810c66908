"""Chooses the shipped GGO score threshold and the box NMS threshold (test-time settings, no
retraining) on the TRAINING images only (the validation split stays untouched): for each pair, the
mean GGO Dice of the union mask and the image-level sensitivity/specificity, computed in PyTorch at
the 512 cache resolution. The network runs once per image with NMS off; NMS, the 20-detection cap
and the thresholds are re-applied offline exactly as torchvision's postprocess does.

  /usr/bin/python3 models/train/tune.py CHECKPOINT [--subset train]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torchvision.ops import batched_nms

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import cxrdata  # noqa: E402
from cxr_arch import build_model  # noqa: E402


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "cxr-covid-seg"))
    ap.add_argument("--split", default=os.path.join(HERE, "split.json"))
    ap.add_argument("--subset", default="train")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ck = torch.load(a.checkpoint, map_location="cpu")
    arch = ck["arch"]
    model = build_model(arch).eval()
    model.load_state_dict(ck["model"])
    model.roi_heads.nms_thresh = 1.01          # keep everything; NMS is redone below
    model.roi_heads.detections_per_img = 100
    cap = arch.get("box_detections_per_img", 100)
    names = json.load(open(a.split))[a.subset]
    index = {it["file"]: it for it in cxrdata.build_cache(a.data, os.path.join(HERE, "runs", "cache"),
                                                          log=lambda m: None)}
    scores_t = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    nms_t = [0.3, 0.4, 0.5]
    # accumulate per (nms, score) while going: keeping every image's raw masks would take GBs
    acc = {(nt, st): {"dice": [], "tp": 0, "fn": 0, "fp": 0, "tn": 0} for nt in nms_t for st in scores_t}
    for n in names:
        img, planes, _ = cxrdata.load_cached(index[n]["cache"])
        out = model([torch.from_numpy(img).float()[None] / 255.0])[0]
        gt = np.zeros(img.shape, dtype=bool)
        for lab, m in cxrdata.instances_from_planes(planes):
            if lab == 1:
                gt |= m
        for nt in nms_t:
            keep = batched_nms(out["boxes"], out["scores"], out["labels"], nt)[:cap]
            sc, lab = out["scores"][keep].numpy(), out["labels"][keep].numpy()
            ms = (out["masks"][keep, 0] >= 0.5).numpy()
            for st in scores_t:
                up = np.zeros(gt.shape, dtype=bool)
                for s_, l_, m_ in zip(sc, lab, ms):
                    if l_ == 1 and s_ >= st:
                        up |= m_
                r = acc[(nt, st)]
                if up.any() or gt.any():
                    r["dice"].append(2 * (up & gt).sum() / (up.sum() + gt.sum()))
                g, p_ = bool(gt.any()), bool(up.any())
                r["tp"] += g and p_
                r["fn"] += g and not p_
                r["fp"] += p_ and not g
                r["tn"] += (not g) and not p_
        del out
    rows = []
    for (nt, st), r in acc.items():
        rows.append({"nms": nt, "score": st, "ggo_dice": float(np.mean(r["dice"])),
                     "sens": r["tp"] / max(r["tp"] + r["fn"], 1),
                     "spec": r["tn"] / (r["tn"] + r["fp"]) if r["tn"] + r["fp"] else None})
        print(f"nms {nt:.1f} score {st:.1f}: GGO Dice {rows[-1]['ggo_dice']:.3f} "
              f"sens {rows[-1]['sens']:.3f} spec {rows[-1]['spec']}", flush=True)
    if a.json:
        json.dump(rows, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
