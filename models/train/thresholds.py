"""Chooses the opacity class's score and mask thresholds and the lungs' mask threshold from
`cxrseg eval --json` runs on the HOLDOUT images (models/train/runs/<run>/holdout.json), one run per
(score, mask) pair of a grid, never on a validation split. The rule (models/train/ship-rules.md,
"Reporting thresholds from the holdout"), written down before the first sweep:

  opacity: the (score, mask) pair with the highest holdout opacity Dice on the images with an
  annotated finding (COVID); lungs: the mask threshold with the highest holdout both-lungs Dice
  (the lungs are single-instance classes, so their score threshold plays no part). A candidate
  replaces the a-priori 0.5 only when it gains at least MIN_GAIN; ties go to the value nearer 0.5.

Prints JSON: the chosen thresholds, the a-priori figures and the grid.

  /usr/bin/python3 models/train/thresholds.py SCORE MASK EVAL.json [SCORE MASK EVAL.json ...]
"""
import json
import sys

A_PRIORI = 0.5
MIN_GAIN = 0.002


def figures(path):
    """(opacity Dice on the images with a finding, both-lungs Dice) of the whole holdout."""
    with open(path) as f:
        g = json.load(f)["groups"][0]
    return g["dice_finding_gt"]["mean"], g["dice_lungs"]["mean"]


def best(candidates, base):
    """candidates: {key: dice}; base: the a-priori key. The best key when it beats base by
    MIN_GAIN, else base; among equal Dice the key nearest the a-priori values."""
    def nearness(k):
        return sum(abs(x - A_PRIORI) for x in (k if isinstance(k, tuple) else (k,)))
    top = max(candidates, key=lambda k: (round(candidates[k], 6), -nearness(k)))
    return top if candidates[top] >= candidates[base] + MIN_GAIN else base


def choose(runs):
    """runs: [(score, mask, opacity_dice, lungs_dice)]. The lung Dice of one mask threshold does not
    depend on the opacity score threshold: the runs at the a-priori score are used for it."""
    opacity = {(s, m): o for s, m, o, _ in runs}
    lungs = {m: l for s, m, _, l in runs if s == A_PRIORI}
    if (A_PRIORI, A_PRIORI) not in opacity:
        raise SystemExit("thresholds: the grid needs the a-priori pair (0.5, 0.5)")
    s, m = best(opacity, (A_PRIORI, A_PRIORI))
    ml = best(lungs, A_PRIORI)
    return {
        "opacity_score": s, "opacity_mask": m, "lung_mask": ml,
        "holdout": {"opacity_dice": opacity[(s, m)], "lungs_dice": lungs[ml],
                    "a_priori_opacity_dice": opacity[(A_PRIORI, A_PRIORI)],
                    "a_priori_lungs_dice": lungs[A_PRIORI]},
        "grid": [{"score": s_, "mask": m_, "opacity_dice": o, "lungs_dice": l} for s_, m_, o, l in runs],
    }


def main(argv):
    if not argv or len(argv) % 3:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    runs = []
    for i in range(0, len(argv), 3):
        o, l = figures(argv[i + 2])
        runs.append((float(argv[i]), float(argv[i + 1]), o, l))
    print(json.dumps(choose(runs), indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
