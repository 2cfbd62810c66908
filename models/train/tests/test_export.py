"""Unit tests of the exporter's metadata: reporting thresholds and the image-level decision rule
(decision.* keys, models/FORMAT.md) from the checkpoint and from the command line, and a round trip
through export.main and the container reader. The C loader's side is tests/unit/test_decision.c on
tests/data/decision_model.cxm (made by models/train/make_decision_fixture.py through export.main)."""
import contextlib
import io
import os
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(TOP, "models", "tools"))
sys.path.insert(0, os.path.dirname(HERE))
import cxm  # noqa: E402
import cxr_arch  # noqa: E402
import export  # noqa: E402
import make_decision_fixture  # noqa: E402
from train import CLASSES  # noqa: E402

ARCH = make_decision_fixture.ARCH


def meta_of(decision=None, thresholds=None, classes=CLASSES):
    return dict(export.build_meta(ARCH, classes, thresholds or {"score": 0.5, "mask": 0.5}, {}, "t", "0",
                                  decision))


class TestDecisionMeta(unittest.TestCase):
    def test_absent_writes_no_keys(self):
        m = meta_of()
        self.assertFalse([k for k in m if k.startswith("decision.")])

    def test_full_rule(self):
        m = meta_of({"class": 1, "score": 0.62, "min_area": 0.005})
        self.assertEqual(m["decision.class"], 1)
        self.assertIsInstance(m["decision.class"], int)
        self.assertAlmostEqual(m["decision.score"], 0.62)
        self.assertAlmostEqual(m["decision.min_area"], 0.005)

    def test_class_by_name_and_defaults(self):
        classes = [CLASSES[1], CLASSES[0], CLASSES[2]]  # the finding is label 2 here
        m = meta_of({"min_area": 0.01}, {"score": 0.5, "mask": 0.5, "opacity": 0.7}, classes)
        self.assertEqual(m["decision.class"], 2)            # first class that is not a lung
        self.assertAlmostEqual(m["decision.score"], 0.7)    # its reporting threshold
        m = meta_of({"class": "left_lung", "score": 0.9}, classes=classes)
        self.assertEqual(m["decision.class"], 3)
        self.assertEqual(m["decision.min_area"], 0.0)

    def test_errors(self):
        for bad, msg in (({"class": 4}, "outside 1..3"), ({"class": "ggo"}, "not one of"),
                         ({"score": 1.5}, "outside 0..1"), ({"min_area": -0.1}, "outside 0..1"),
                         ({"score": "x"}, "not a number"), ({"scor": 0.5}, "unknown key")):
            with self.assertRaisesRegex(ValueError, msg):
                meta_of(bad)
        lungs = [CLASSES[1], CLASSES[2], CLASSES[1]]
        with self.assertRaisesRegex(ValueError, "every class is a lung"):
            meta_of({"score": 0.5}, classes=lungs)

    def test_rule_looser_than_threshold_warns(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            meta_of({"score": 0.3})
        self.assertIn("below the reporting threshold 0.5", err.getvalue())


class TestScoreOverrides(unittest.TestCase):
    def test_overrides(self):
        thr = export.apply_overrides({"score": 0.5, "mask": 0.4, "right_lung": {"score": 0.6, "mask": 0.3}},
                                           ["0.45", "opacity=0.3", "right_lung=0.7"], CLASSES)
        m = meta_of(thresholds=thr)
        self.assertAlmostEqual(m["thresholds.score"], 0.45)
        self.assertAlmostEqual(m["class.1.score_thresh"], 0.3)
        self.assertAlmostEqual(m["class.2.score_thresh"], 0.7)
        self.assertAlmostEqual(m["class.2.mask_thresh"], 0.3)  # the class's own mask threshold stays
        self.assertAlmostEqual(m["class.3.score_thresh"], 0.45)

    def test_mask_overrides(self):
        thr = export.apply_overrides({"score": 0.5, "mask": 0.5, "opacity": 0.3},
                                     ["opacity=0.4", "left_lung=0.45"], CLASSES, "mask")
        thr = export.apply_overrides(thr, ["0.6"], CLASSES, "mask")
        m = meta_of(thresholds=thr)
        self.assertAlmostEqual(m["class.1.score_thresh"], 0.3)  # the bare number stays its score
        self.assertAlmostEqual(m["class.1.mask_thresh"], 0.4)
        self.assertAlmostEqual(m["class.3.mask_thresh"], 0.45)
        self.assertAlmostEqual(m["class.3.score_thresh"], 0.5)
        self.assertAlmostEqual(m["class.2.mask_thresh"], 0.6)   # the new default
        with self.assertRaisesRegex(ValueError, "--mask-thresh 'x=0.3'"):
            export.apply_overrides({}, ["x=0.3"], CLASSES, "mask")

    def test_override_errors(self):
        for bad, msg in (("ggo=0.3", "not one of"), ("opacity=2", "outside 0..1"), ("=0.3", "expected X")):
            with self.assertRaisesRegex(ValueError, msg):
                export.apply_overrides({}, [bad], CLASSES)


class TestExportRoundTrip(unittest.TestCase):
    def test_checkpoint_rule_and_command_line(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "m.cxm")
            with contextlib.redirect_stdout(io.StringIO()):
                make_decision_fixture.main(out, os.path.join(d, "head.cxm"))  # never the tracked fixtures
            meta, tensors = cxm.read(out)
            self.assertEqual(meta["decision.class"], 1)         # 'opacity' from the checkpoint
            self.assertAlmostEqual(meta["decision.score"], 0.62)  # --decision-score
            self.assertAlmostEqual(meta["decision.min_area"], 0.005)
            self.assertAlmostEqual(meta["class.1.score_thresh"], 0.4)
            self.assertAlmostEqual(meta["class.2.score_thresh"], 0.5)
            self.assertEqual(meta["class.1.code"], ["409609008", "SCT", "Radiologic infiltrate of lung"])
            self.assertIn("backbone.body.conv1.bias", tensors)  # batchnorm folded

    def test_bad_override_exits(self):
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            ck = os.path.join(d, "ck.pt")
            torch.save({"model": cxr_arch.build_model(ARCH).state_dict(), "arch": ARCH, "classes": CLASSES,
                        "thresholds": {"score": 0.5, "mask": 0.5}}, ck)
            with self.assertRaisesRegex(SystemExit, "decision class 9 outside 1..3"):
                export.main([ck, "-o", os.path.join(d, "m.cxm"), "--decision-class", "9"])
            self.assertFalse(os.path.exists(os.path.join(d, "m.cxm")))

    def test_single_classes(self):
        classes = [dict(c, single=False) for c in CLASSES]
        m = meta_of(classes=classes)
        self.assertFalse([k for k in m if k.endswith(".single")])
        m = meta_of()  # train.py's classes: both lungs single
        self.assertEqual([k for k in m if k.endswith(".single")], ["class.2.single", "class.3.single"])
        self.assertEqual(m["class.2.single"], 1)
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            ck = os.path.join(d, "ck.pt")
            torch.save({"model": cxr_arch.build_model(ARCH).state_dict(), "arch": ARCH, "classes": classes,
                        "thresholds": {"score": 0.5, "mask": 0.5}}, ck)
            out = os.path.join(d, "m.cxm")
            with contextlib.redirect_stdout(io.StringIO()):
                export.main([ck, "-o", out, "--single", "left_lung"])
            meta, _ = cxm.read(out)
            self.assertEqual(meta.get("class.3.single"), 1)
            self.assertNotIn("class.2.single", meta)
            with self.assertRaisesRegex(SystemExit, "--single lung: no such class"):
                export.main([ck, "-o", out, "--single", "lung"])



class TestImportCxm(unittest.TestCase):
    """A model file back into a trainable checkpoint (models/tools/import_cxm.py): the folded body
    BatchNorms are rebuilt so that the eval-mode network computes what the file holds, before and
    after calibration, and a batch in train mode is normalised close to the eval output."""

    def test_round_trip(self):
        import import_cxm
        torch.manual_seed(3)
        arch = dict(ARCH, image_head=1, anchor_sizes=[[16], [32], [64], [128], [256]])
        model = cxr_arch.build_model(arch)
        for m in model.backbone.body.modules():  # non-trivial statistics to fold
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        model.eval()
        x = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            want = model.backbone(x)
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "m.cxm")
            export.export(model.state_dict(), arch, CLASSES, {"score": 0.5, "mask": 0.5}, {"seed": 7},
                          "t", "0", out)
            ck = import_cxm.checkpoint(out)
        self.assertEqual(ck["arch"], cxr_arch.full_arch(arch))
        self.assertEqual(str(ck["provenance"]["seed"]), "7")
        back = cxr_arch.build_model(ck["arch"])
        back.load_state_dict(ck["model"], strict=True)
        back.eval()

        def close(got):
            for k in want:
                self.assertLess(float((got[k] - want[k]).abs().max()), 1e-4, k)
        with torch.no_grad():
            close(back.backbone(x))
            import_cxm.calibrate_bn(back, ck["folded_bias"], [torch.randn(4, 1, 64, 64) for _ in range(4)])
            self.assertFalse(back.training)
            close(back.backbone(x))
            for k in ("image_head.weight", "roi_heads.mask_predictor.mask_fcn_logits.weight"):
                self.assertTrue(torch.equal(back.state_dict()[k], model.state_dict()[k]), k)
            # train mode on the calibration batch itself: batch statistics = the calibrated ones
            xb = torch.randn(8, 1, 64, 64)
            import_cxm.calibrate_bn(back, ck["folded_bias"], [xb])
            ev = back.backbone(xb)
            back.train()
            tr = back.backbone(xb)
            for k in ev:
                self.assertLess(float((tr[k] - ev[k]).abs().max()) / float(ev[k].abs().max()), 0.05, k)

    def test_not_a_model(self):
        import import_cxm
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.cxm")
            with open(p, "wb") as f:
                f.write(b"nonsense" * 16)
            with self.assertRaisesRegex(ValueError, "not a cxrseg model file"):
                import_cxm.checkpoint(p)


if __name__ == "__main__":
    unittest.main()
