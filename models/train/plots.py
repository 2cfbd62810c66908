"""Plots for the model card: training curves from a run's log.jsonl, and per-class precision-recall
curves at mask IoU 0.5 from the JSON of `cxrseg eval --json` (or evaluate.py --json).

  /usr/bin/python3 models/train/plots.py --log models/train/runs/r18/log.jsonl --out models/cxrseg-training.png
  /usr/bin/python3 models/train/plots.py --eval val.json --out models/cxrseg-pr.png
  /usr/bin/python3 models/train/plots.py --roc val-quex.json val-cxr.json --out models/cxrseg-roc.png
"""
import argparse
import json

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PARTS = ["loss", "loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"]


def smooth(v, n=25):
    v = np.asarray(v, dtype=float)
    if len(v) < n:
        return v
    k = np.ones(n) / n
    head = np.array([v[:i + 1].mean() for i in range(n - 1)])
    return np.concatenate([head, np.convolve(v, k, mode="valid")])


def plot_log(path, out):
    """Losses, and (when the run has one, curve.jsonl beside the log) the holdout learning curve."""
    import os
    recs = [json.loads(l) for l in open(path) if l.strip()]
    it = [r["iter"] for r in recs]
    cpath = os.path.join(os.path.dirname(path), "curve.jsonl")
    curve = [json.loads(l) for l in open(cpath) if l.strip()] if os.path.exists(cpath) else []
    fig, axes = plt.subplots(1, 3 if curve else 2, figsize=(17 if curve else 12, 4.5))
    ax, ax2 = axes[0], axes[-1]
    for p in PARTS:
        ax.plot(it, smooth([r[p] for r in recs]), label=p.replace("loss_", "") if p != "loss" else "total",
                lw=2 if p == "loss" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (moving average of 25)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("training losses")
    if curve:
        axc = axes[1]
        mins = [c["train_minutes"] for c in curve]
        for key, lab in (("opacity_dice_covid", "opacity Dice (holdout COVID)"),
                         ("lung_dice", "lung Dice (holdout, both lungs)"), ("auc", "ROC AUC (COVID vs normal)")):
            axc.plot(mins, [c[key] for c in curve], "o-", label=lab)
        axc.set_xlabel("training minutes")
        axc.set_ylim(0.5, 1.0)
        axc.grid(alpha=0.3)
        axc.legend(fontsize=8, loc="lower right")
        axc.set_title("learning curve on the 200 holdout images (PyTorch, 256 px)")
    ax2.plot(it, [r["lr"] for r in recs], color="k", label="learning rate")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("learning rate")
    ax3 = ax2.twinx()
    ax3.plot(it, smooth([r["s_iter"] for r in recs]), color="tab:red", alpha=0.6, label="s/iter")
    ax3.set_ylabel("seconds per iteration (shared 2-core machine)", color="tab:red")
    ax2.set_title(f"schedule: {len(recs)} iterations, {recs[-1]['elapsed'] / 60:.0f} min, "
                  f"{recs[-1]['epoch']} epochs")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def plot_roc(paths, out):
    """Image-level ROC of `cxrseg eval --json` outputs (positives: images with an annotated finding;
    negatives: normal images, or images without a finding when there are no categories)."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for path in paths:
        d = json.load(open(path))
        ims = d["per_image"]
        cats = any(im.get("category") for im in ims)
        pos = [im["image_score"] for im in ims if im.get("gt_finding")]
        neg = [im["image_score"] for im in ims if (im.get("category") == "normal" if cats
                                                   else not im.get("gt_finding"))]
        if not pos or not neg:
            continue
        ts = sorted(set(pos + neg + [0.0, 1.01]), reverse=True)
        tpr = [sum(p >= t for p in pos) / len(pos) for t in ts]
        fpr = [sum(n >= t for n in neg) / len(neg) for t in ts]
        f = d.get("finding", {})
        ax.plot(fpr, tpr, label=f"{d.get('data', path).rstrip('/').split('/')[-1]}: AUC "
                f"{f.get('roc_auc') or 0:.3f} ({len(pos)} pos, {len(neg)} neg)")
        if f.get("specificity") is not None and f.get("sensitivity") is not None:
            ax.plot(1 - f["specificity"], f["sensitivity"], "o", color=ax.lines[-1].get_color())
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("image level, validation (dots: the shipped operating point)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def plot_pr(path, out):
    d = json.load(open(path))
    fig, ax = plt.subplots(figsize=(6, 5))
    r = np.linspace(0, 1, 101)
    for c in d["classes"]:
        if not c.get("n_gt"):
            continue
        p = [x if x is not None else 0 for x in c["pr50_precision"]]
        ap = c.get("ap50")
        ax.plot(r, p, label=f"{c['name']} (AP50 {ap:.2f}, {c['n_gt']} instances)")
        pts = c.get("pr50_points")
        if pts:
            # the operating point at the shipped score threshold
            thr = c.get("score_thresh", 0.5)
            sel = [q for q in pts if q[0] >= thr]
            if sel:
                ax.plot(sel[-1][1], sel[-1][2], "o", color=ax.lines[-1].get_color())
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"mask precision-recall at IoU 0.5, {d.get('images')} validation images\n"
                 "(dots: shipped score threshold)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log")
    ap.add_argument("--eval")
    ap.add_argument("--roc", nargs="+", help="cxrseg eval JSON files: image-level ROC curves")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.log:
        plot_log(a.log, a.out)
    elif a.roc:
        plot_roc(a.roc, a.out)
    elif a.eval:
        plot_pr(a.eval, a.out)
    else:
        ap.error("--log or --eval required")
