"""Unit tests of the mask-folder reader (models/train/maskfolder.py): the lung split into the
patient's sides, the ambiguous cases, and the cached label planes, on hand-made masks."""
import csv
import os
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import cxrdata  # noqa: E402
import maskfolder  # noqa: E402


def two_fields(h=64, w=64):
    m = np.zeros((h, w), dtype=bool)
    m[10:50, 6:26] = True     # image left = patient's right
    m[12:52, 38:58] = True    # image right = patient's left
    return m


class SplitLungs(unittest.TestCase):
    def test_sides(self):
        r, l, amb = maskfolder.split_lungs(two_fields())
        self.assertFalse(amb)
        self.assertTrue(r[20, 10] and not r[20, 45])
        self.assertTrue(l[20, 45] and not l[20, 10])

    def test_fragment_joins_nearer_field(self):
        m = two_fields()
        m[56:58, 50:52] = True   # 4 px, below the 1 % minimum: joins the left lung (image right)
        r, l, amb = maskfolder.split_lungs(m)
        self.assertFalse(amb)
        self.assertTrue(l[56, 50])
        self.assertFalse(r[56, 50])

    def test_merged_fields_are_ambiguous(self):
        m = two_fields()
        m[30:33, 26:38] = True   # a bridge: one region
        self.assertTrue(maskfolder.split_lungs(m)[2])

    def test_one_above_the_other_is_ambiguous(self):
        m = np.zeros((64, 64), dtype=bool)
        m[4:24, 10:40] = True
        m[34:60, 14:44] = True
        self.assertTrue(maskfolder.split_lungs(m)[2])

    def test_single_field_is_ambiguous(self):
        m = np.zeros((64, 64), dtype=bool)
        m[10:50, 6:26] = True
        self.assertTrue(maskfolder.split_lungs(m)[2])


class Reader(unittest.TestCase):
    def make(self, root, lung, infection, name="covid_1", cat="covid"):
        for sub in ("images", "lung", "infection"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        img = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
        Image.fromarray(img, "L").save(os.path.join(root, "images", name + ".png"))
        Image.fromarray(lung.astype(np.uint8) * 255, "L").save(os.path.join(root, "lung", name + ".png"))
        Image.fromarray(infection.astype(np.uint8) * 255, "L").save(
            os.path.join(root, "infection", name + ".png"))
        with open(os.path.join(root, "manifest.csv"), "a", newline="") as f:
            w = csv.writer(f)
            if f.tell() == 0:
                w.writerow(["id", "category", "source_split", "source_path"])
            w.writerow([name, cat, "train", "x"])

    def test_planes(self):
        with tempfile.TemporaryDirectory() as d:
            lung = two_fields()
            inf = np.zeros_like(lung)
            inf[20:30, 8:20] = True
            self.make(d, lung, inf)
            idx = maskfolder.build_cache(d, os.path.join(d, "cache"), 64, log=lambda m: None)
            self.assertEqual(len(idx), 1)
            img, planes, info = cxrdata.load_cached(idx[0]["cache"])
            self.assertEqual(info["category"], "covid")
            self.assertFalse(info["lung_side_ambiguous"])
            self.assertEqual(int(((planes & 1) > 0).sum()), 120)
            self.assertTrue(planes[20, 10] & 2 and planes[20, 45] & 4)
            inst = cxrdata.instances_from_planes(planes, 4)
            self.assertEqual(sorted(l for l, _ in inst), [1, 2, 3])

    def test_ambiguous_kept_as_side_unknown(self):
        with tempfile.TemporaryDirectory() as d:
            m = np.zeros((64, 64), dtype=bool)
            m[10:50, 6:58] = True
            self.make(d, m, np.zeros_like(m), "normal_1", "normal")
            idx = maskfolder.build_cache(d, os.path.join(d, "cache"), 64, log=lambda m: None)
            _, planes, info = cxrdata.load_cached(idx[0]["cache"])
            self.assertTrue(info["lung_side_ambiguous"])
            self.assertEqual(int((planes & 6).sum()), 0)
            self.assertEqual(int(((planes & 8) > 0).sum()), int(m.sum()))

    def test_wrong_mask_size_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            self.make(d, two_fields(), np.zeros((64, 64), bool))
            Image.fromarray(np.zeros((32, 32), np.uint8), "L").save(os.path.join(d, "lung", "covid_1.png"))
            with self.assertRaisesRegex(cxrdata.DatasetError, "lung/covid_1.png: 32x32"):
                maskfolder.build_cache(d, os.path.join(d, "cache"), 64, log=lambda m: None)


if __name__ == "__main__":
    unittest.main()
