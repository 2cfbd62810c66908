"""Plots for the model card: training curves from a run's log.jsonl, and per-class precision-recall
curves at mask IoU 0.5 from the JSON of `cxrseg eval --json` (or evaluate.py --json).

  /usr/bin/python3 models/train/plots.py --log models/train/runs/r18/log.jsonl --out models/cxrseg-training.png
  /usr/bin/python3 models/train/plots.py --eval val.json --out models/cxrseg-pr.png
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
    recs = [json.loads(l) for l in open(path) if l.strip()]
    it = [r["iter"] for r in recs]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for p in PARTS:
        ax.plot(it, smooth([r[p] for r in recs]), label=p.replace("loss_", "") if p != "loss" else "total",
                lw=2 if p == "loss" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("iteration (batch 2)")
    ax.set_ylabel("loss (moving average of 25)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("training losses")
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
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.log:
        plot_log(a.log, a.out)
    elif a.eval:
        plot_pr(a.eval, a.out)
    else:
        ap.error("--log or --eval required")
