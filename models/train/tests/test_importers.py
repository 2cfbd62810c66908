"""Unit tests of the Supervisely and COCO importers and of the dataset form they write (hand-made
examples with hand-computed answers, plus the bitmap test vector from Supervisely's documentation)."""
import base64
import io
import json
import os
import sys
import tempfile
import unittest
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import coco  # noqa: E402
import cxrdata  # noqa: E402
import raster  # noqa: E402
import supervisely  # noqa: E402

SDK_VECTOR = ("eJzrDPBz5+WS4mJgYOD19HAJAtLMIMwIInOeqf8BUmwBPiGuQPr///9Lb86/C2QxlgT5BTM4PLuRBuTwebo4hlTMSa44"
              "sKHhISMDuxpTYrr03F6gDIOnq5/LOqeEJgDM5ht6")


def png_bytes(arr, mode):
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def write_image(path, w, h, value=100):
    Image.fromarray(np.full((h, w), value, dtype=np.uint8), "L").save(path)


class TestRaster(unittest.TestCase):
    def test_opencv_rule_includes_boundary(self):
        m = raster.fill_opencv([(1, 1), (4, 1), (4, 3), (1, 3)], 5, 6)
        self.assertEqual(int(m.sum()), 12)
        self.assertTrue(m[1:4, 1:5].all())

    def test_coco_rule_pixel_centres(self):
        m = raster.fill_coco([[1, 1, 4, 1, 4, 3, 1, 3]], 5, 6)
        self.assertEqual(int(m.sum()), 6)
        self.assertTrue(m[1:3, 1:4].all())

    def test_triangle_opencv(self):
        # right triangle (0,0),(4,0),(0,4): rows have 5,4,3,2,1 pixels (diagonal included)
        m = raster.fill_opencv([(0, 0), (4, 0), (0, 4)], 6, 6)
        self.assertEqual([int(r.sum()) for r in m[:5]], [5, 4, 3, 2, 1])

    def test_bad_polygon(self):
        with self.assertRaises(ValueError):
            raster.fill_coco([[1, 1, 2, 2]], 4, 4)


class TestSuperviselyDecode(unittest.TestCase):
    def test_sdk_vector(self):
        m = supervisely.decode_bitmap(SDK_VECTOR)
        np.testing.assert_array_equal(m.astype(int), [[1, 1, 1], [1, 0, 1], [1, 1, 1]])

    def test_plain_base64_png_fallback(self):
        arr = np.array([[0, 255], [255, 255]], dtype=np.uint8)
        data = base64.b64encode(png_bytes(arr, "L")).decode()
        np.testing.assert_array_equal(supervisely.decode_bitmap(data), arr > 0)

    def test_rgba_alpha(self):
        arr = np.zeros((2, 3, 4), dtype=np.uint8)
        arr[0, 1, 3] = 255
        data = base64.b64encode(zlib.compress(png_bytes(arr, "RGBA"))).decode()
        m = supervisely.decode_bitmap(data)
        self.assertEqual(m.shape, (2, 3))
        self.assertEqual(int(m.sum()), 1)
        self.assertTrue(m[0, 1])

    def test_garbage(self):
        with self.assertRaises(supervisely.ImportError_):
            supervisely.decode_bitmap(base64.b64encode(b"not a png").decode())


class TestSuperviselyProject(unittest.TestCase):
    def test_project(self):
        with tempfile.TemporaryDirectory() as d:
            proj = os.path.join(d, "proj")
            os.makedirs(os.path.join(proj, "ds1", "img"))
            os.makedirs(os.path.join(proj, "ds1", "ann"))
            with open(os.path.join(proj, "meta.json"), "w") as f:
                json.dump({"classes": [{"title": "GGO", "shape": "bitmap", "color": "#FF0000"},
                                       {"title": "Right Lung", "shape": "polygon", "color": "#00FF00"},
                                       {"title": "Left Lung", "shape": "rectangle", "color": "#0000FF"}],
                           "tags": []}, f)
            write_image(os.path.join(proj, "ds1", "img", "a.png"), 12, 10)
            ann = {"size": {"height": 10, "width": 12}, "tags": [], "objects": [
                {"classTitle": "GGO", "geometryType": "bitmap",
                 "bitmap": {"origin": [5, 6], "data": SDK_VECTOR}},
                {"classTitle": "Right Lung", "shape": "polygon",  # old key accepted
                 "points": {"exterior": [[0, 0], [6, 0], [6, 6], [0, 6]],
                            "interior": [[[2, 2], [4, 2], [4, 4], [2, 4]]]}},
                {"classTitle": "Left Lung", "geometryType": "rectangle",
                 "points": {"exterior": [[8, 1], [10, 3]], "interior": []}},
                {"classTitle": "Note", "geometryType": "point",
                 "points": {"exterior": [[1, 1]], "interior": []}}]}
            with open(os.path.join(proj, "ds1", "ann", "a.png.json"), "w") as f:
                json.dump(ann, f)
            out = os.path.join(d, "out")
            images, masks = supervisely.import_project(proj, out, log=lambda m: None)
            self.assertEqual((images, masks), (1, 3))
            rows = cxrdata.read_structure(out)["a.png"]
            full = cxrdata.class_masks_fullres(out, "a.png", rows, (10, 12))
            ggo, right, left = full[1], full[2], full[3]
            # bitmap: the 3x3 ring at origin x=5, y=6
            self.assertEqual(int(ggo.sum()), 8)
            self.assertTrue(ggo[6, 5] and not ggo[7, 6] and ggo[8, 7])
            # polygon 7x7 with boundary, minus the 3x3 hole (boundary removed too) = 49 - 9
            self.assertEqual(int(right.sum()), 40)
            self.assertFalse(right[3, 3] or right[2, 2])
            # rectangle inclusive: 3 x 3
            self.assertEqual(int(left.sum()), 9)
            self.assertTrue(left[1:4, 8:11].all())

    def test_bitmap_outside_image(self):
        with self.assertRaises(supervisely.ImportError_) as cm:
            supervisely.object_mask({"geometryType": "bitmap", "bitmap": {"origin": [50, 0],
                                     "data": SDK_VECTOR}}, 10, 10, "obj")
        self.assertIn("outside", str(cm.exception))

    def test_unknown_geometry(self):
        with self.assertRaises(supervisely.ImportError_):
            supervisely.object_mask({"geometryType": "blob"}, 4, 4, "obj")


class TestCocoRle(unittest.TestCase):
    def test_uncompressed_example(self):
        # the documented example: [0 0 1 1 1 0 1] -> [2 3 1 1] (one column of height 7)
        m = coco.rle_decode([2, 3, 1, 1], 7, 1)
        np.testing.assert_array_equal(m[:, 0].astype(int), [0, 0, 1, 1, 1, 0, 1])
        self.assertEqual(coco.rle_encode(m), [2, 3, 1, 1])

    def test_column_major(self):
        # 2x3 mask, column-major order: pixel (row 1, col 0) is flat index 1
        m = coco.rle_decode([1, 1, 4], 2, 3)
        self.assertTrue(m[1, 0])
        self.assertEqual(int(m.sum()), 1)

    def test_leading_ones(self):
        m = coco.rle_decode([0, 6, 1], 7, 1)
        np.testing.assert_array_equal(m[:, 0].astype(int), [1, 1, 1, 1, 1, 1, 0])

    def test_compressed_hand_computed(self):
        # counts [2,3,1,1]: 2->'2', 3->'3', 1->'1', 4th is 1-3=-2: 5 bits 11110 (=30, sign bit 0x10
        # set, no continuation) -> chr(30+48) = 'N'
        self.assertEqual(coco.counts_to_rle_string([2, 3, 1, 1]), "231N")
        self.assertEqual(coco.rle_string_to_counts("231N"), [2, 3, 1, 1])

    def test_compressed_multichar(self):
        # 100 = 0b11_00100: low 5 bits 4 with continuation (0x20) -> chr(36+48)='T', then 3 -> '3'
        self.assertEqual(coco.counts_to_rle_string([100]), "T3")
        rng = np.random.RandomState(0)
        for _ in range(50):
            m = rng.rand(13, 7) < rng.rand()
            c = coco.rle_encode(m)
            s = coco.counts_to_rle_string(c)
            self.assertEqual(coco.rle_string_to_counts(s), c)
            np.testing.assert_array_equal(coco.rle_decode(coco.rle_string_to_counts(s), 13, 7), m)

    def test_bad_rle(self):
        with self.assertRaises(coco.CocoError):
            coco.rle_decode([2, 3], 7, 1)  # covers 5 of 7 pixels
        with self.assertRaises(coco.CocoError):
            coco.rle_string_to_counts("2\x7f")


class TestCocoImport(unittest.TestCase):
    def test_import(self):
        with tempfile.TemporaryDirectory() as d:
            imgs = os.path.join(d, "imgs")
            os.makedirs(imgs)
            write_image(os.path.join(imgs, "x.png"), 8, 6)
            write_image(os.path.join(imgs, "neg.png"), 8, 6)
            poly_mask = np.zeros((6, 8), dtype=bool)
            poly_mask[1:3, 1:4] = True
            rle_mask = np.zeros((6, 8), dtype=bool)
            rle_mask[4:6, 5:8] = True
            crle = np.zeros((6, 8), dtype=bool)
            crle[0, 7] = True
            crle[3, 0] = True
            doc = {"images": [{"id": 1, "file_name": "x.png", "width": 8, "height": 6},
                              {"id": 2, "file_name": "neg.png", "width": 8, "height": 6}],
                   "categories": [{"id": 7, "name": "Right lung"}, {"id": 9, "name": "ggo"}],
                   "annotations": [
                       {"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 0,
                        "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
                       {"id": 2, "image_id": 1, "category_id": 9, "iscrowd": 1,
                        "segmentation": {"size": [6, 8], "counts": coco.rle_encode(rle_mask)}},
                       {"id": 3, "image_id": 1, "category_id": 9, "iscrowd": 1,
                        "segmentation": {"size": [6, 8], "counts":
                                         coco.counts_to_rle_string(coco.rle_encode(crle))}}]}
            ap = os.path.join(d, "ann.json")
            with open(ap, "w") as f:
                json.dump(doc, f)
            out = os.path.join(d, "out")
            images, masks = coco.import_coco(ap, imgs, out, log=lambda m: None)
            self.assertEqual((images, masks), (2, 3))
            per = cxrdata.read_structure(out)
            self.assertEqual(per["neg.png"], [])
            full = cxrdata.class_masks_fullres(out, "x.png", per["x.png"], (6, 8))
            np.testing.assert_array_equal(full[2], poly_mask)
            np.testing.assert_array_equal(full[1], rle_mask | crle)

    def test_size_mismatch(self):
        with self.assertRaises(coco.CocoError) as cm:
            coco.segmentation_mask({"size": [5, 8], "counts": [40]}, 6, 8, "ann 1")
        self.assertIn("RLE size 8x5", str(cm.exception))


class TestDatasetForm(unittest.TestCase):
    def test_resize_rule(self):
        self.assertEqual(cxrdata.target_size(1024, 768), (512, 384))
        self.assertEqual(cxrdata.target_size(751, 943), (408, 512))

    def test_area_resize_exact(self):
        a = np.array([[0, 4], [8, 12]], dtype=np.float32).repeat(2, 0).repeat(2, 1)
        np.testing.assert_allclose(cxrdata.area_resize(a, (2, 2)), [[0, 4], [8, 12]])

    def test_instances(self):
        planes = np.zeros((64, 64), dtype=np.uint8)
        planes[2:12, 2:12] |= 1      # GGO region 1 (100 px)
        planes[30:40, 30:40] |= 1    # GGO region 2 (100 px)
        planes[50, 50] |= 1          # a speck: dropped
        planes[:, :32] |= 2
        planes[:, 32:] |= 4
        inst = cxrdata.instances_from_planes(planes)
        self.assertEqual(sorted(l for l, _ in inst), [1, 1, 2, 3])


if __name__ == "__main__":
    unittest.main()
