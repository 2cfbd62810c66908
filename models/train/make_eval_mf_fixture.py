"""Writes tests/data/eval_mf: the 3 images of tests/data/eval in the mask-folder form (images/,
lung/ with both lungs in one mask, infection/, manifest.csv with category and source_split) and a
holdout.json, for the C tests of `cxrseg eval` on that form. Run once after make_eval_fixture.py;
the outputs are committed.
  /usr/bin/python3 models/train/make_eval_mf_fixture.py
"""
import csv
import json
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
SRC = os.path.join(TOP, "tests", "data", "eval")
OUT = os.path.join(TOP, "tests", "data", "eval_mf")
# source image -> (id, category, source_split); b.jpg becomes a non-COVID image without finding
IMAGES = {"a.png": ("covid_1", "covid", "val"), "c.png": ("normal_1", "normal", "val"),
          "b.jpg": ("noncovid_1", "noncovid", "train")}


def main():
    for d in ("images", "lung", "infection"):
        os.makedirs(os.path.join(OUT, d), exist_ok=True)
    with open(os.path.join(SRC, "structure.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    man = []
    for src, (iid, cat, split) in IMAGES.items():
        grey = Image.open(os.path.join(SRC, "images", src)).convert("L")
        w, h = grey.size
        grey.save(os.path.join(OUT, "images", iid + ".png"))
        lung = np.zeros((h, w), dtype=bool)
        inf = np.zeros((h, w), dtype=bool)
        for r in rows:
            if r["Filename"] != src or not r["Mask"]:
                continue
            m = np.asarray(Image.open(os.path.join(SRC, r["Mask"])).convert("RGBA"))[..., :3].max(axis=2) > 0
            t, l = int(r["Top"]), int(r["Left"])
            full = np.zeros((h, w), dtype=bool)
            full[t:t + m.shape[0], l:l + m.shape[1]] = m[:h - t, :w - l]
            if "Lung" in r["Class"]:
                lung |= full
            elif "Ground Glass" in r["Class"] and cat == "covid":
                inf |= full
        Image.fromarray((lung * 255).astype(np.uint8), "L").save(os.path.join(OUT, "lung", iid + ".png"))
        Image.fromarray((inf * 255).astype(np.uint8), "L").save(os.path.join(OUT, "infection", iid + ".png"))
        man.append({"id": iid, "category": cat, "source_split": split, "source_path": "eval/" + src})
    with open(os.path.join(OUT, "manifest.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(man[0].keys()))
        wr.writeheader()
        wr.writerows(man)
    with open(os.path.join(OUT, "holdout.json"), "w") as f:
        json.dump({"data": "tests/data/eval_mf", "holdout": ["covid_1", "noncovid_1"]}, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
