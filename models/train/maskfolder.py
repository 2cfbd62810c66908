"""Reader of the mask-folder dataset layout (COVID-QU-Ex and the like) into the training cache form.

Layout: `images/<id>.png`, one PNG mask folder per structure with the same file name
(`lung/<id>.png` holds both lung fields, `infection/<id>.png` the finding), and `manifest.csv` with
at least `id` and `category` (optionally `source_split`). Masks are 0 / non-zero, 8-bit.

The one lung mask is split into the patient's right and left lung by `split_lungs()` (connected
regions, side of the image: the patient's right lung is on the image's left). Images where that is
ambiguous keep their lungs as "side unknown" (bit 3 of the label planes) and are counted; training
leaves them out rather than guess. The C reader (src/eval/cx_eval_data.c) applies the same rule.
"""
import csv
import hashlib
import json
import os

import numpy as np
from PIL import Image

import cxrdata

# Bits of the label planes (cxrdata uses 0 finding, 1 right lung, 2 left lung, 4 consolidation).
BIT_FINDING, BIT_RIGHT, BIT_LEFT, BIT_LUNG_UNKNOWN = 0, 1, 2, 3
# A lung region must hold at least this share of the image to count as a lung field; smaller
# regions are fragments that join the field on their side.
MIN_LUNG_FRACTION = 0.01


def read_manifest(root):
    path = os.path.join(root, "manifest.csv")
    if not os.path.exists(path):
        raise cxrdata.DatasetError(f"dataset {root}: no manifest.csv")
    rows = []
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f), start=2):
            if not (row.get("id") or "").strip():
                raise cxrdata.DatasetError(f"{path}:{lineno}: empty id")
            rows.append({"id": row["id"].strip(), "category": (row.get("category") or "").strip(),
                         "source_split": (row.get("source_split") or "").strip(), "line": lineno})
    return rows


def _mask(path, shape):
    try:
        im = Image.open(path)
        im.load()
    except Exception as e:
        raise cxrdata.DatasetError(f"mask {path}: cannot read ({e})")
    m = np.asarray(im.convert("L")) > 0
    if m.shape != shape:
        raise cxrdata.DatasetError(f"mask {path}: {m.shape[1]}x{m.shape[0]} but the image is "
                                   f"{shape[1]}x{shape[0]}")
    return m


def split_lungs(lung):
    """(right, left, ambiguous) from a mask holding both lung fields.

    The two largest 8-connected regions of at least MIN_LUNG_FRACTION of the image are the fields;
    the one whose centre is further left in the image is the patient's right lung. Smaller regions
    join the field whose centre column is nearer. Ambiguous (both returned None) when fewer than two
    such regions exist (fields merged, or one missing) or when the two overlap in columns by more
    than half of the narrower one (one above the other, not side by side)."""
    from scipy import ndimage
    h, w = lung.shape
    lab, n = ndimage.label(lung, structure=np.ones((3, 3), dtype=int))
    if n == 0:
        return None, None, True
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=idx)
    big = [i for i in idx[np.argsort(-sizes)] if sizes[i - 1] >= MIN_LUNG_FRACTION * h * w][:2]
    if len(big) < 2:
        return None, None, True
    cols = {i: np.nonzero(lab == i)[1] for i in idx}
    a, b = sorted(big, key=lambda i: cols[i].mean())
    overlap = min(cols[a].max(), cols[b].max()) - max(cols[a].min(), cols[b].min()) + 1
    narrower = min(np.ptp(cols[a]), np.ptp(cols[b])) + 1
    if overlap > 0.5 * narrower:
        return None, None, True
    right, left = lab == a, lab == b
    ca, cb = cols[a].mean(), cols[b].mean()
    for i in idx:
        if i in (a, b):
            continue
        c = cols[i].mean()
        if abs(c - ca) <= abs(c - cb):
            right |= lab == i
        else:
            left |= lab == i
    return right, left, False


def prepare_image(root, item, long_side):
    fn = item["id"] + ".png"
    grey = cxrdata.load_grey(os.path.join(root, "images", fn))
    h, w = grey.shape
    lung = _mask(os.path.join(root, "lung", fn), (h, w))
    finding = _mask(os.path.join(root, "infection", fn), (h, w))
    right, left, ambiguous = split_lungs(lung)
    size = cxrdata.target_size(w, h, long_side)
    img = np.clip(cxrdata.area_resize(grey, size) + 0.5, 0, 255).astype(np.uint8)
    planes = np.zeros((size[1], size[0]), dtype=np.uint8)
    layers = [(BIT_FINDING, finding)]
    if ambiguous:
        layers.append((BIT_LUNG_UNKNOWN, lung))
    else:
        layers += [(BIT_RIGHT, right), (BIT_LEFT, left)]
    info = {"file": fn, "id": item["id"], "category": item["category"],
            "source_split": item["source_split"], "orig_size": [w, h], "size": list(size),
            "lung_side_ambiguous": bool(ambiguous),
            "lung_px": int(lung.sum()), "finding_px": int((finding & lung).sum()),
            "finding_px_all": int(finding.sum())}
    for bit, m in layers:
        small = m if list(size) == [w, h] else cxrdata.area_resize(m.astype(np.float32), size) >= 0.5
        planes |= (small.astype(np.uint8) << bit)
    return img, planes, info


def build_cache(root, cache_dir, long_side, log=print):
    """Every image of the manifest into cache_dir/<sha1>.npz at long_side; returns the index."""
    os.makedirs(cache_dir, exist_ok=True)
    index = []
    for item in read_manifest(root):
        key = hashlib.sha1(f"{os.path.abspath(root)}:{item['id']}:{long_side}".encode()).hexdigest()[:16]
        path = os.path.join(cache_dir, "mf-" + key + ".npz")
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as z:
                info = json.loads(str(z["info"]))
        else:
            img, planes, info = prepare_image(root, item, long_side)
            np.savez_compressed(path, image=img, planes=planes, info=json.dumps(info))
        info["cache"] = path
        index.append(info)
    amb = sum(1 for it in index if it["lung_side_ambiguous"])
    log(f"cache: {len(index)} images of {root} in {cache_dir}; lung side ambiguous on {amb}")
    return index
