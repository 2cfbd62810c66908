"""Fixes the image-level operating point of a model from `cxrseg eval --json` on the HOLDOUT images
(part of COVID-QU-Ex's train split that training left out, models/train/runs/<run>/holdout.json),
never on a validation split. The rule, written down before the final evaluation:

  decision.score = the lowest threshold at which at most 5 % of the holdout's normal images are
  called "present" (holdout specificity >= 0.95): the midpoint between the k-th and (k+1)-th highest
  normal image score, k = floor(0.05 * n_normal); clipped to [0.05, 0.99].

The minimum area (decision.min_area, 0.5 % of the image) and the per-class reporting thresholds
(0.5) are fixed a priori in release.sh. Prints JSON: the threshold and the holdout figures there.

  /usr/bin/python3 models/train/operating_point.py HOLDOUT_EVAL.json
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


def main():
    with open(sys.argv[1]) as f:
        ev = json.load(f)
    print(json.dumps(choose(ev["per_image"]), indent=1))


if __name__ == "__main__":
    main()
