"""Writes tests/data/eval: a 3-image dataset in the shared form (with the shared set's quirks: RGBA
masks cropped to their box, opaque alpha over the whole box, black = background; an ignored class;
a row with an empty Mask; a JPEG image), a split.json, and a tiny random-weight model with cxrseg's
classes, for the C tests of `cxrseg eval`. Run once; the outputs are committed.
  /usr/bin/python3 models/train/make_eval_fixture.py
"""
import csv
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "models", "tools"))
sys.path.insert(0, HERE)
import export  # noqa: E402
from train import CLASSES  # noqa: E402

OUT = os.path.join(TOP, "tests", "data", "eval")
W, H = 96, 80


def rect(t, l, b, r):
    m = np.zeros((H, W), dtype=bool)
    m[t:b, l:r] = True
    return m


def main():
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "masks"), exist_ok=True)
    rng = np.random.default_rng(7)
    # image right side (x > 48) = patient's left on a PA film
    right, left = rect(10, 6, 70, 42), rect(10, 54, 70, 90)
    ggo_a = rect(20, 10, 40, 30) | rect(50, 60, 62, 80)       # two regions
    ggo_b = rect(30, 60, 50, 85)                              # one region
    images = {
        "a.png": [("COVID-19 Right Lung", right), ("COVID-19 Left Lung", left),
                  ("COVID-19 Ground Glass Opacities", ggo_a), ("COVID-19 Airways", rect(0, 44, 30, 52))],
        "b.jpg": [("COVID-19 Right Lung", right), ("COVID-19 Left Lung", left),
                  ("COVID-19 Ground Glass Opacities", ggo_b)],
        "c.png": [("COVID-19 Right Lung", right), ("COVID-19 Left Lung", left)],
    }
    rows = []
    for name, objs in images.items():
        img = (60 + 40 * rng.random((H, W))).astype(np.uint8)
        for _, m in objs[:2]:
            img[m] = np.clip(img[m].astype(int) + 80, 0, 255).astype(np.uint8)
        if name.endswith(".jpg"):
            Image.fromarray(img, "L").convert("RGB").save(os.path.join(OUT, "images", name), quality=95)
        else:
            Image.fromarray(img, "L").save(os.path.join(OUT, "images", name))
        for n, (cls, m) in enumerate(objs):
            ys, xs = np.nonzero(m)
            t, l, b, r = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
            # box one pixel larger than the object, so the black margin must not count
            t, l = max(t - 1, 0), max(l - 1, 0)
            b, r = min(b + 1, H), min(r + 1, W)
            crop = m[t:b, l:r]
            rgba = np.zeros(crop.shape + (4,), dtype=np.uint8)
            rgba[crop, 0] = 255
            rgba[crop, 2] = 40
            rgba[..., 3] = 255
            mname = f"masks/{os.path.splitext(name)[0]}_{n}.png"
            Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, mname))
            rows.append({"#": len(rows) + 1, "Class": cls, "Filename": name, "Mask": mname,
                         "Resolution": f"{W}x{H}", "Top": t, "Left": l, "Width": r - l, "Height": b - t})
    rows.append({"#": len(rows) + 1, "Class": "COVID-19 Monitoring Probes", "Filename": "c.png",
                 "Mask": "", "Resolution": f"{W}x{H}", "Top": 0, "Left": 0, "Width": 0, "Height": 0})
    with open(os.path.join(OUT, "structure.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)
    with open(os.path.join(OUT, "split.json"), "w") as f:
        json.dump({"seed": 0, "val": ["a.png", "c.png"], "train": ["b.jpg"]}, f, indent=1)
    torch.manual_seed(0)
    arch = {"backbone": "resnet18", "backbone_width": 8, "in_channels": 1, "fpn_channels": 16,
            "num_classes": 4, "min_size": 96, "max_size": 96, "representation_size": 32,
            "mask_layers": [16, 16], "mask_dim_reduced": 16, "box_score_thresh": 0.05,
            "box_detections_per_img": 10, "image_mean": [0.5], "image_std": [0.25]}
    import cxr_arch
    model = cxr_arch.build_model(arch)
    export.export(model.state_dict(), arch, CLASSES, {"score": 0.5, "mask": 0.5},
                  {"purpose": "random weights for the cxrseg eval tests"}, "eval-test", "0",
                  os.path.join(OUT, "tiny_model.cxm"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
