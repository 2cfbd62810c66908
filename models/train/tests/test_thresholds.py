"""Unit tests of the holdout threshold rule (models/train/thresholds.py) on made-up eval figures."""
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import thresholds  # noqa: E402


def grid(opacity, lungs):
    """runs for every (score, mask) of 0.3..0.6: opacity(s, m) and lungs(m) give the Dice."""
    vals = (0.3, 0.4, 0.5, 0.6)
    return [(s, m, opacity(s, m), lungs(m)) for s in vals for m in vals]


class Choose(unittest.TestCase):
    def test_a_priori_stays_below_the_minimum_gain(self):
        r = thresholds.choose(grid(lambda s, m: 0.75 + (0.0015 if (s, m) == (0.4, 0.4) else 0),
                                   lambda m: 0.95 + (0.001 if m == 0.6 else 0)))
        self.assertEqual((r["opacity_score"], r["opacity_mask"], r["lung_mask"]), (0.5, 0.5, 0.5))

    def test_a_clear_gain_is_taken(self):
        r = thresholds.choose(grid(lambda s, m: 0.75 + (0.01 if (s, m) == (0.3, 0.6) else 0),
                                   lambda m: 0.95 - abs(m - 0.4) * 0.1))
        self.assertEqual((r["opacity_score"], r["opacity_mask"]), (0.3, 0.6))
        self.assertEqual(r["lung_mask"], 0.4)
        self.assertAlmostEqual(r["holdout"]["opacity_dice"], 0.76)
        self.assertAlmostEqual(r["holdout"]["a_priori_lungs_dice"], 0.94)

    def test_ties_go_to_the_value_nearer_half(self):
        r = thresholds.choose(grid(lambda s, m: 0.8 if m in (0.3, 0.6) else 0.7, lambda m: 0.9))
        self.assertEqual(r["opacity_mask"], 0.6)
        self.assertEqual(r["opacity_score"], 0.5)

    def test_needs_the_a_priori_pair(self):
        with self.assertRaises(SystemExit):
            thresholds.choose([(0.3, 0.3, 0.7, 0.9)])

    def test_reads_eval_json(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "e.json")
            with open(p, "w") as f:
                json.dump({"groups": [{"dice_finding_gt": {"mean": 0.7}, "dice_lungs": {"mean": 0.9}}]}, f)
            self.assertEqual(thresholds.figures(p), (0.7, 0.9))


if __name__ == "__main__":
    unittest.main()
