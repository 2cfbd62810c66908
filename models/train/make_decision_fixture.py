"""Writes tests/data/decision_model.cxm: a tiny random-weight model with the classes of train.py
(opacity, right_lung, left_lung) and an image-level decision rule, exported the way a release is,
from a training checkpoint through export.py's command line, so that the C tests read what the
exporter writes: the checkpoint's 'decision' dict ({'class': 'opacity', 'score': 0.5, 'min_area':
0.01}) overridden by --decision-score 0.62 --decision-min-area 0.005, and the opacity class's
reporting threshold set to 0.4 with --score-thresh; and tests/data/decision_head_model.cxm, the
same with the image-level head (arch image_head 1). Not trained models. Run once; the outputs are
committed.
  /usr/bin/python3 models/train/make_decision_fixture.py
"""
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "models", "tools"))
sys.path.insert(0, HERE)
import cxr_arch  # noqa: E402
import export  # noqa: E402
from train import CLASSES  # noqa: E402

OUT = os.path.join(TOP, "tests", "data", "decision_model.cxm")
OUT_HEAD = os.path.join(TOP, "tests", "data", "decision_head_model.cxm")
ARCH = {"backbone": "resnet18", "backbone_width": 4, "in_channels": 1, "fpn_channels": 8,
        "num_classes": 4, "min_size": 64, "max_size": 64, "representation_size": 16,
        "mask_layers": [8], "mask_dim_reduced": 8, "box_detections_per_img": 10}


def write(out, arch):
    torch.manual_seed(0)
    model = cxr_arch.build_model(arch)
    ck = {"model": model.state_dict(), "arch": arch, "classes": CLASSES,
          "thresholds": {"score": 0.5, "mask": 0.5},
          "decision": {"class": "opacity", "score": 0.5, "min_area": 0.01},
          "provenance": {"purpose": "random weights for the decision-rule tests"}}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ck.pt")
        torch.save(ck, path)
        export.main([path, "-o", out, "--name", "decision-test", "--version", "0",
                     "--decision-score", "0.62", "--decision-min-area", "0.005",
                     "--score-thresh", "opacity=0.4"])


def main(out=OUT, out_head=OUT_HEAD):
    write(out, ARCH)
    write(out_head, dict(ARCH, image_head=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
