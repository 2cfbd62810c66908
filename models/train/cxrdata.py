"""Reader of cxrseg's dataset form (the shared cxr-covid-seg layout: images/, masks/, structure.csv)
and the pre-computed training cache (greyscale, area-averaged so the longer side is 512, exactly what
the C pipeline feeds the engine). The importers (supervisely.py, coco.py) write this same form.
"""
import csv
import hashlib
import json
import os

import numpy as np
from PIL import Image

# Label index -> (name, set of structure.csv Class values that map to it).  The classes shipped by
# the model; the card explains the choice.  "COVID-19 Left Lung" is the PATIENT's left lung, i.e. the
# image's right side on a PA film (checked on the data: see check_sides()).
CLASS_SOURCES = {
    1: ("ggo", {"COVID-19 Ground Glass Opacities", "Ground Glass Opacities", "ggo"}),
    2: ("right_lung", {"COVID-19 Right Lung", "Right Lung", "right_lung"}),
    3: ("left_lung", {"COVID-19 Left Lung", "Left Lung", "left_lung"}),
}
CONSOLIDATION = {"COVID-19 Consolidation", "Consolidation", "consolidation"}
LONG_SIDE = 512
# GGO regions smaller than this many pixels at the 512 scale (0.02% of a 512x512 image) are brush
# specks or resize remnants, not findings: they would become tiny instances the RPN cannot match.
MIN_REGION_PX = 48


class DatasetError(Exception):
    """A malformed dataset: the message names the file and the numbers."""


def target_size(w, h, long_side=LONG_SIDE):
    """Output (w, h) with the longer side long_side, same rule as the C resize (round half up)."""
    if w <= 0 or h <= 0:
        raise DatasetError(f"resize: bad image size {w}x{h}")
    s = long_side / max(w, h)
    return max(1, int(w * s + 0.5)), max(1, int(h * s + 0.5))


def area_resize(arr, size):
    """Area-average resize of a 2-D float32 array to size=(w, h) (PIL BOX = exact area weights)."""
    im = Image.fromarray(arr.astype(np.float32), mode="F")
    return np.asarray(im.resize(size, Image.BOX), dtype=np.float32)


def load_grey(path):
    """8-bit greyscale of a JPEG/PNG radiograph (alpha dropped, palette resolved, 16-bit scaled)."""
    try:
        im = Image.open(path)
        im.load()
    except Exception as e:  # PIL raises many types; all mean "not a readable image"
        raise DatasetError(f"image {path}: cannot read ({e})")
    if im.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        return np.clip((a - lo) * (255.0 / max(hi - lo, 1e-9)) + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(im.convert("L"), dtype=np.uint8)


def load_mask_png(path):
    """Object pixels of a cropped mask PNG: any of R, G, B > 0 (alpha is opaque over the box)."""
    try:
        im = Image.open(path)
        im.load()
    except Exception as e:
        raise DatasetError(f"mask {path}: cannot read ({e})")
    if im.mode in ("L", "1", "I", "I;16"):
        return np.asarray(im) > 0
    return np.asarray(im.convert("RGB")).max(axis=2) > 0


def read_structure(root):
    """Rows of structure.csv grouped by image Filename, masks with empty Mask skipped."""
    path = os.path.join(root, "structure.csv")
    if not os.path.exists(path):
        raise DatasetError(f"dataset {root}: no structure.csv")
    per_image = {}
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f), start=2):
            fn = (row.get("Filename") or "").strip()
            if not fn:
                raise DatasetError(f"{path}:{lineno}: empty Filename")
            per_image.setdefault(fn, [])
            if not (row.get("Mask") or "").strip():
                continue
            try:
                top, left = int(row["Top"]), int(row["Left"])
            except (KeyError, ValueError):
                raise DatasetError(f"{path}:{lineno}: Top/Left not integers "
                                   f"({row.get('Top')!r}, {row.get('Left')!r})")
            per_image[fn].append({"cls": row["Class"].strip(), "mask": row["Mask"].strip(),
                                  "top": top, "left": left, "line": lineno})
    return per_image


def class_masks_fullres(root, fn, rows, shape):
    """Union mask per class label (dict label -> bool HxW) plus consolidation, at full resolution."""
    h, w = shape
    out = {}
    for r in rows:
        lab = None
        for k, (_, names) in CLASS_SOURCES.items():
            if r["cls"] in names:
                lab = k
        if lab is None and r["cls"] in CONSOLIDATION:
            lab = "consolidation"
        if lab is None:
            continue
        m = load_mask_png(os.path.join(root, r["mask"]))
        t, l = r["top"], r["left"]
        mh, mw = m.shape
        if t >= h or l >= w or t + mh <= 0 or l + mw <= 0:
            raise DatasetError(f"structure.csv:{r['line']}: mask {mw}x{mh} at left={l},top={t} "
                               f"lies outside the {w}x{h} image {fn}")
        canvas = out.setdefault(lab, np.zeros((h, w), dtype=bool))
        y0, x0 = max(t, 0), max(l, 0)
        y1, x1 = min(t + mh, h), min(l + mw, w)
        canvas[y0:y1, x0:x1] |= m[y0 - t:y1 - t, x0 - l:x1 - l]
    return out


def prepare_image(root, fn, rows, long_side=LONG_SIDE):
    """(grey uint8 HxW at long_side, label bitplanes uint8 HxW, info dict) for one image."""
    grey = load_grey(os.path.join(root, "images", fn))
    h, w = grey.shape
    masks = class_masks_fullres(root, fn, rows, (h, w))
    size = target_size(w, h, long_side)
    img = np.clip(area_resize(grey, size) + 0.5, 0, 255).astype(np.uint8)
    planes = np.zeros((size[1], size[0]), dtype=np.uint8)
    info = {"file": fn, "orig_size": [w, h], "size": list(size)}
    for lab, m in masks.items():
        small = area_resize(m.astype(np.float32), size) >= 0.5
        bit = 4 if lab == "consolidation" else lab - 1  # bit 0 ggo, 1 right, 2 left, 4 consolidation
        planes |= (small.astype(np.uint8) << bit)
        info[f"area_{lab}"] = int(small.sum())
    return img, planes, info


def build_cache(root, cache_dir, log=print, long_side=LONG_SIDE):
    """Pre-compute every image of `root` into cache_dir/<sha1(name)>.npz; returns the index list."""
    os.makedirs(cache_dir, exist_ok=True)
    per_image = read_structure(root)
    index = []
    for fn in sorted(per_image):
        key = hashlib.sha1(fn.encode()).hexdigest()[:16]
        if long_side != LONG_SIDE:
            key += f"-{long_side}"
        path = os.path.join(cache_dir, key + ".npz")
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as z:
                info = json.loads(str(z["info"]))
        else:
            img, planes, info = prepare_image(root, fn, per_image[fn], long_side)
            np.savez_compressed(path, image=img, planes=planes, info=json.dumps(info))
        info["cache"] = path
        index.append(info)
    log(f"cache: {len(index)} images in {cache_dir}")
    return index


def load_cached(path):
    with np.load(path, allow_pickle=False) as z:
        return z["image"], z["planes"], json.loads(str(z["info"]))


def instances_from_planes(planes, min_px=MIN_REGION_PX):
    """Instances (label, bool mask) of one image: one per GGO connected region (8-connected, tiny
    specks dropped), one per lung (the lung's pixels even if split by the annotator)."""
    from scipy import ndimage
    out = []
    ggo = (planes & 1) > 0
    if ggo.any():
        lab, n = ndimage.label(ggo, structure=np.ones((3, 3), dtype=int))
        if n:
            sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1))
            for i, s in enumerate(sizes, start=1):
                if s >= min_px:
                    out.append((1, lab == i))
    for label, bit in ((2, 1), (3, 2)):
        m = ((planes >> bit) & 1) > 0
        if m.sum() >= min_px:
            out.append((label, m))
    return out


def check_sides(index):
    """Mean column of each lung class as a fraction of the width: tells which image side it is."""
    res = {2: [], 3: []}
    for it in index:
        _, planes, _ = load_cached(it["cache"])
        for label, bit in ((2, 1), (3, 2)):
            m = ((planes >> bit) & 1) > 0
            if m.any():
                res[label].append(float(np.nonzero(m)[1].mean()) / planes.shape[1])
    return {CLASS_SOURCES[k][0]: (float(np.mean(v)), float(np.min(v)), float(np.max(v)))
            for k, v in res.items() if v}
