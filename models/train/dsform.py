"""Writer of cxrseg's dataset form (the layout of ../shared/data/cxr-covid-seg): images/<file>,
masks/<file-stem>_<n>.png (RGBA cropped to the object's box, object = white RGB, alpha opaque) and
structure.csv with the columns the reader uses. Importers (supervisely.py, coco.py) end here, so a
site's annotations train and evaluate exactly like the shared set.
"""
import csv
import os
import shutil

import numpy as np
from PIL import Image

# Annotation-tool class titles -> dataset class names the trainer knows (case-insensitive match).
DEFAULT_CLASS_MAP = {
    "ggo": "COVID-19 Ground Glass Opacities",
    "ground glass opacity": "COVID-19 Ground Glass Opacities",
    "ground glass opacities": "COVID-19 Ground Glass Opacities",
    "ground-glass opacity": "COVID-19 Ground Glass Opacities",
    "right lung": "COVID-19 Right Lung", "right_lung": "COVID-19 Right Lung",
    "left lung": "COVID-19 Left Lung", "left_lung": "COVID-19 Left Lung",
    "consolidation": "COVID-19 Consolidation",
}

FIELDS = ["#", "Class", "Filename", "Mask", "Resolution", "Top", "Left", "Width", "Height"]


def parse_class_map(items):
    """["Title=Dataset class", ...] -> dict (lower-cased keys) merged over DEFAULT_CLASS_MAP."""
    out = dict(DEFAULT_CLASS_MAP)
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"class map entry {it!r}: expected TITLE=CLASS")
        k, v = it.split("=", 1)
        out[k.strip().lower()] = v.strip()
    return out


class DatasetWriter:
    def __init__(self, root, class_map=None):
        self.root = root
        self.class_map = class_map if class_map is not None else dict(DEFAULT_CLASS_MAP)
        os.makedirs(os.path.join(root, "images"), exist_ok=True)
        os.makedirs(os.path.join(root, "masks"), exist_ok=True)
        self.rows = []
        self.names = set()

    def map_class(self, title):
        return self.class_map.get(title.strip().lower(), title.strip())

    def add_image(self, src_path, objects, name=None):
        """Copy the image and write one cropped mask per (class title, bool HxW mask) object."""
        name = name or os.path.basename(src_path)
        if name in self.names:
            raise ValueError(f"dataset: image name {name!r} appears twice")
        self.names.add(name)
        with Image.open(src_path) as im:
            w, h = im.size
        shutil.copyfile(src_path, os.path.join(self.root, "images", name))
        stem = os.path.splitext(name)[0]
        for n, (title, mask) in enumerate(objects):
            if mask.shape != (h, w):
                raise ValueError(f"{name}: mask of {title!r} is {mask.shape[1]}x{mask.shape[0]}, "
                                 f"image is {w}x{h}")
            ys, xs = np.nonzero(mask)
            if len(ys) == 0:
                continue  # an empty object carries no pixels to learn from
            t, l, b, r = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
            crop = mask[t:b, l:r]
            rgba = np.zeros(crop.shape + (4,), dtype=np.uint8)
            rgba[crop, :3] = 255
            rgba[..., 3] = 255
            mname = f"masks/{stem}_{n}.png"
            Image.fromarray(rgba, "RGBA").save(os.path.join(self.root, mname))
            self.rows.append({"#": len(self.rows) + 1, "Class": self.map_class(title),
                              "Filename": name, "Mask": mname, "Resolution": f"{w}x{h}",
                              "Top": int(t), "Left": int(l), "Width": int(r - l),
                              "Height": int(b - t)})
        if not objects:
            # keep the image listed: an image without findings is a negative example
            self.rows.append({"#": len(self.rows) + 1, "Class": "", "Filename": name, "Mask": "",
                              "Resolution": f"{w}x{h}", "Top": "", "Left": "", "Width": "",
                              "Height": ""})

    def close(self):
        with open(os.path.join(self.root, "structure.csv"), "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=FIELDS)
            wr.writeheader()
            for r in self.rows:
                wr.writerow(r)
        return len(self.names), sum(1 for r in self.rows if r["Mask"])
