"""Importer of COCO instance segmentation (annotations JSON + image folder) into cxrseg's dataset
form. Segmentations: polygon lists (parts unioned, COCO's pixel grid), uncompressed RLE and
compressed RLE strings (both column-major, runs start with zeros).

  /usr/bin/python3 models/train/coco.py ANNOTATIONS.json IMAGE_DIR OUT_DIR [--map "GGO=..."]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dsform  # noqa: E402
import raster  # noqa: E402


class CocoError(Exception):
    """A malformed COCO file: the message names the annotation and the numbers."""


def rle_string_to_counts(s):
    """COCO's compressed counts string -> list of run lengths.

    5 bits per character (value + 48), bit 0x20 = more characters follow, bit 0x10 of the last
    character = negative; from the fourth count on (index > 2) the value is the difference to the
    count two places earlier (as pycocotools' rleToString writes it)."""
    if isinstance(s, bytes):
        s = s.decode("ascii")
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise CocoError(f"RLE string: truncated in count {len(counts)}")
            c = ord(s[p]) - 48
            if c < 0 or c > 63:
                raise CocoError(f"RLE string: character {s[p]!r} at {p} out of range")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def counts_to_rle_string(counts):
    """Inverse of rle_string_to_counts (used by the tests and by sites that export)."""
    out = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def rle_decode(counts, h, w):
    """Run lengths (zeros first) over column-major pixels -> bool HxW."""
    total = h * w
    flat = np.zeros(total, dtype=bool)
    pos, val = 0, False
    for i, c in enumerate(counts):
        if c < 0:
            raise CocoError(f"RLE: count {i} is negative ({c})")
        if pos + c > total:
            raise CocoError(f"RLE: runs cover {pos + c} pixels, mask has {h}x{w} = {total}")
        if val:
            flat[pos:pos + c] = True
        pos += c
        val = not val
    if pos != total:
        raise CocoError(f"RLE: runs cover {pos} pixels, mask has {h}x{w} = {total}")
    return flat.reshape(w, h).T


def rle_encode(mask):
    """bool HxW -> uncompressed counts (column-major, zeros first)."""
    flat = np.asarray(mask, dtype=bool).T.ravel()
    counts, val, run = [], False, 0
    for v in flat:
        if v == val:
            run += 1
        else:
            counts.append(run)
            val, run = v, 1
    counts.append(run)
    return counts


def segmentation_mask(seg, h, w, where):
    if isinstance(seg, list):
        try:
            return raster.fill_coco(seg, h, w)
        except (ValueError, TypeError) as e:
            raise CocoError(f"{where}: {e}")
    if isinstance(seg, dict):
        size = seg.get("size")
        if not (isinstance(size, list) and len(size) == 2):
            raise CocoError(f"{where}: RLE without size [h, w]")
        if (int(size[0]), int(size[1])) != (h, w):
            raise CocoError(f"{where}: RLE size {size[1]}x{size[0]}, image is {w}x{h}")
        counts = seg.get("counts")
        if isinstance(counts, (str, bytes)):
            counts = rle_string_to_counts(counts)
        if not isinstance(counts, list):
            raise CocoError(f"{where}: RLE counts neither list nor string")
        try:
            return rle_decode([int(c) for c in counts], h, w)
        except CocoError as e:
            raise CocoError(f"{where}: {e}")
    raise CocoError(f"{where}: segmentation is neither polygons nor RLE")


def import_coco(ann_path, image_dir, out, class_map=None, log=print):
    try:
        with open(ann_path) as f:
            coco = json.load(f)
    except (OSError, ValueError) as e:
        raise CocoError(f"{ann_path}: cannot read JSON ({e})")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise CocoError(f"{ann_path}: no '{key}' list")
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    per_image = {}
    for a in coco["annotations"]:
        per_image.setdefault(a.get("image_id"), []).append(a)
    wr = dsform.DatasetWriter(out, class_map)
    for im in coco["images"]:
        try:
            iid, fn, w, h = im["id"], im["file_name"], int(im["width"]), int(im["height"])
        except (KeyError, ValueError, TypeError):
            raise CocoError(f"{ann_path}: image entry {im!r} lacks id/file_name/width/height")
        objs = []
        for a in per_image.get(iid, []):
            where = f"{ann_path}: annotation {a.get('id')} of {fn}"
            if a.get("category_id") not in cats:
                raise CocoError(f"{where}: unknown category_id {a.get('category_id')}")
            objs.append((cats[a["category_id"]], segmentation_mask(a.get("segmentation"), h, w, where)))
        src = os.path.join(image_dir, fn)
        if not os.path.exists(src):
            raise CocoError(f"{ann_path}: image {src} missing")
        wr.add_image(src, objs, name=os.path.basename(fn))
    images, masks = wr.close()
    log(f"coco: {images} images, {masks} masks -> {out}")
    return images, masks


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("annotations")
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--map", action="append", default=[], help="TITLE=DATASET CLASS (repeatable)")
    a = ap.parse_args()
    try:
        import_coco(a.annotations, a.images, a.out, dsform.parse_class_map(a.map))
    except (CocoError, ValueError) as e:
        sys.exit(f"coco: {e}")
