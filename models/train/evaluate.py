"""PyTorch-side validation of a training checkpoint (for monitoring a run and as a cross-check of
`cxrseg eval`, which is the product's figure): same definitions (Dice of the union mask per image,
COCO mask AP, image-level GGO detection at the shipped threshold, "% of lung affected" error), but
computed at the 512 cache resolution with torchvision, not at full resolution with the C engine.

  /usr/bin/python3 models/train/evaluate.py CHECKPOINT [--subset val] [--json OUT]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import cxrdata  # noqa: E402
from cxr_arch import build_model  # noqa: E402

IOUS = [0.5 + 0.05 * i for i in range(10)]


def coco_ap(dets, n_gt):
    """dets: list of (score, [matched per IoU threshold]) over all images -> (AP per threshold,
    101-point precision at IoU 0.5)."""
    if n_gt == 0:
        return None, None
    dets = sorted(dets, key=lambda d: -d[0])
    aps, p50 = [], None
    for t in range(len(IOUS)):
        tp = np.cumsum([d[1][t] for d in dets]) if dets else np.zeros(0)
        fp = np.cumsum([1 - d[1][t] for d in dets]) if dets else np.zeros(0)
        rc = tp / n_gt
        pr = tp / np.maximum(tp + fp, 1e-12)
        for i in range(len(pr) - 1, 0, -1):
            pr[i - 1] = max(pr[i - 1], pr[i])
        pts = []
        for r in np.linspace(0, 1, 101):
            j = np.searchsorted(rc, r - 1e-12, side="left")
            pts.append(pr[j] if j < len(pr) else 0.0)
        aps.append(float(np.mean(pts)))
        if t == 0:
            p50 = pts
    return aps, p50


@torch.no_grad()
def evaluate(ckpt_path, data, split_path, subset, threads=2, score=None, log=print):
    torch.set_num_threads(threads)
    ck = torch.load(ckpt_path, map_location="cpu")
    model = build_model(ck["arch"])
    model.load_state_dict(ck["model"])
    model.eval()
    classes = ck["classes"]
    k = len(classes)
    thr = score if score is not None else ck["thresholds"]["score"]
    with open(split_path) as f:
        names = json.load(f)[subset]
    index = {it["file"]: it for it in cxrdata.build_cache(data, os.path.join(HERE, "runs", "cache"),
                                                          log=lambda m: None)}
    dets = {l: [] for l in range(1, k + 1)}
    n_gt = {l: 0 for l in range(1, k + 1)}
    dice = {l: [] for l in range(1, k + 1)}
    img_level = []
    share_err = {2: [], 3: []}
    for name in names:
        img, planes, _ = cxrdata.load_cached(index[name]["cache"])
        gts = cxrdata.instances_from_planes(planes)
        out = model([torch.from_numpy(img).float()[None] / 255.0])[0]
        masks = (out["masks"][:, 0] >= ck["thresholds"]["mask"]).numpy()
        labels, scores = out["labels"].numpy(), out["scores"].numpy()
        union_pred = {}
        for l in range(1, k + 1):
            g = [m for lab, m in gts if lab == l]
            n_gt[l] += len(g)
            sel = [i for i in np.argsort(-scores, kind="stable") if labels[i] == l]
            used = [[False] * len(g) for _ in IOUS]
            for i in sel:
                m = masks[i]
                ious = [(m & gm).sum() / max((m | gm).sum(), 1) for gm in g]
                matched = []
                for t, thr_iou in enumerate(IOUS):
                    best, bi = min(thr_iou, 1 - 1e-10), -1
                    for j, v in enumerate(ious):
                        if used[t][j] or v < best:
                            continue
                        best, bi = v, j
                    if bi >= 0:
                        used[t][bi] = True
                    matched.append(1 if bi >= 0 else 0)
                dets[l].append((float(scores[i]), matched))
            up = np.zeros(img.shape, dtype=bool)
            for i in sel:
                if scores[i] >= thr:
                    up |= masks[i]
            union_pred[l] = up
            ug = np.zeros(img.shape, dtype=bool)
            for gm in g:
                ug |= gm
            if up.any() or ug.any():
                dice[l].append(2 * (up & ug).sum() / (up.sum() + ug.sum()))
            if l == 1:
                gt_pos = len(g) > 0
                img_level.append((gt_pos, bool(up.any())))
                ggo_gt = ug
        for lung in (2, 3):
            lg = np.zeros(img.shape, dtype=bool)
            for lab, gm in gts:
                if lab == lung:
                    lg |= gm
            if lg.sum() == 0:
                continue
            s_gt = 100.0 * (ggo_gt & lg).sum() / lg.sum()
            lp = union_pred[lung]
            s_pr = 100.0 * (union_pred[1] & lp).sum() / lp.sum() if lp.sum() else 0.0
            share_err[lung].append(s_pr - s_gt)
    res = {"checkpoint": ckpt_path, "subset": subset, "images": len(names), "score_thresh": thr,
           "resolution": "512 cache (PyTorch)", "classes": []}
    for l in range(1, k + 1):
        aps, p50 = coco_ap(dets[l], n_gt[l])
        res["classes"].append({
            "name": classes[l - 1]["name"], "n_gt": n_gt[l], "n_det": len(dets[l]),
            "dice_mean": float(np.mean(dice[l])) if dice[l] else None,
            "dice_median": float(np.median(dice[l])) if dice[l] else None,
            "ap50": aps[0] if aps else None, "ap75": aps[5] if aps else None,
            "ap": float(np.mean(aps)) if aps else None, "pr50_precision": p50})
    tp = sum(1 for g, p in img_level if g and p)
    fn = sum(1 for g, p in img_level if g and not p)
    fp = sum(1 for g, p in img_level if not g and p)
    tn = sum(1 for g, p in img_level if not g and not p)
    res["finding"] = {"tp": tp, "fn": fn, "fp": fp, "tn": tn,
                      "sensitivity": tp / (tp + fn) if tp + fn else None,
                      "specificity": tn / (tn + fp) if tn + fp else None}
    res["lung_share"] = {side: {"n": len(share_err[l]),
                                "mae_points": float(np.mean(np.abs(share_err[l]))) if share_err[l] else None,
                                "bias_points": float(np.mean(share_err[l])) if share_err[l] else None}
                         for side, l in (("right", 2), ("left", 3))}
    for c in res["classes"]:
        log(f"{c['name']:<12} n_gt {c['n_gt']:3d} Dice {c['dice_mean'] or 0:.3f} "
            f"(median {c['dice_median'] or 0:.3f}) AP50 {c['ap50'] or 0:.3f} AP {c['ap'] or 0:.3f}")
    f = res["finding"]
    log(f"ggo image-level @ {thr}: sensitivity {f['sensitivity']} ({tp}/{tp + fn}), "
        f"specificity {f['specificity']} ({tn}/{tn + fp})")
    for side, v in res["lung_share"].items():
        log(f"% of {side} lung affected: MAE {v['mae_points']} points, bias {v['bias_points']}")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "cxr-covid-seg"))
    ap.add_argument("--split", default=os.path.join(HERE, "split.json"))
    ap.add_argument("--subset", default="val")
    ap.add_argument("--score", type=float, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    r = evaluate(a.checkpoint, a.data, a.split, a.subset, a.threads, a.score)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
