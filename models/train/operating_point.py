"""Fixes the image-level operating point of a model from `cxrseg eval --json` on the HOLDOUT images
(part of COVID-QU-Ex's train split that training left out, models/train/runs/<run>/holdout.json),
never on a validation split. The rule, written down before the final evaluation:

  decision.score = the lowest threshold at which at most 5 % of the holdout's normal images are
  called "present" (holdout specificity >= 0.95): the midpoint between the k-th and (k+1)-th highest
  normal image score, k = floor(0.05 * n_normal); clipped to [0.05, 0.99].

  decision.min_area = among the candidates release.sh evaluates (one eval JSON each, the model's
  decision.min_area in it), the one with the highest holdout ROC AUC (COVID vs normal); ties go to
  the smaller area.

The per-class reporting thresholds are fixed a priori in release.sh. Prints JSON: the minimum
area, the threshold and the holdout figures there.

  /usr/bin/python3 models/train/operating_point.py HOLDOUT_EVAL.json [MORE.json ...]
"""
import json
import math
import sys


def choose(images, max_fp_rate=0.05):
    neg = sorted((im["image_score"] for im in images if im.get("category") == "normal"), reverse=True)
    pos = [im["image_score"] for im in images if im.get("gt_finding")]
    if not neg or not pos:
        raise SystemExit("operating_point: the eval JSON needs normal images and images with a finding")
    k = int(math.floor(max_fp_rate * len(neg)))
    hi = neg[k - 1] if k >= 1 else 1.0
    lo = neg[k] if k < len(neg) else 0.0
    t = min(max((hi + lo) / 2, 0.05), 0.99)
    spec = sum(s < t for s in neg) / len(neg)
    sens = sum(s >= t for s in pos) / len(pos)
    return {"score": round(t, 4), "holdout_specificity": spec, "holdout_sensitivity": sens,
            "n_normal": len(neg), "n_positive": len(pos), "rule": __doc__.split("\n\n")[1].strip()}


def auc(pos, neg):
    n = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return n / (len(pos) * len(neg))


def main():
    cands = []
    for path in sys.argv[1:]:
        with open(path) as f:
            ev = json.load(f)
        ims = ev["per_image"]
        pos = [im["image_score"] for im in ims if im.get("gt_finding")]
        neg = [im["image_score"] for im in ims if im.get("category") == "normal"]
        cands.append((round(auc(pos, neg), 4), -ev["finding"]["decision_min_area"], path, ims))
    best = max(cands, key=lambda c: (c[0], c[1]))
    r = choose(best[3])
    r["min_area"] = -best[1]
    r["holdout_auc"] = best[0]
    r["candidates"] = [{"min_area": -c[1], "holdout_auc": c[0]} for c in cands]
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
