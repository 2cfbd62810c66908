"""Importer of a Supervisely project (meta.json + <dataset>/img + <dataset>/ann/*.json) into cxrseg's
dataset form, so a site's Supervisely annotations train (train.py) and evaluate (cxrseg eval).

  /usr/bin/python3 models/train/supervisely.py PROJECT_DIR OUT_DIR [--map "GGO=COVID-19 Ground Glass Opacities"]
Objects: bitmap (base64 of zlib(PNG) at an origin; plain base64 PNG accepted), polygon (exterior +
interior holes, rasterised like the SDK's cv2.fillPoly: boundary pixels included), rectangle.
"""
import argparse
import base64
import binascii
import io
import json
import os
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dsform  # noqa: E402
import raster  # noqa: E402


class ImportError_(Exception):
    """A malformed annotation: the message names the file, the object and the numbers."""


def decode_bitmap(data):
    """Supervisely bitmap `data` -> bool mask of the object's box.

    The SDK writes base64(zlib(PNG)), the PNG a 1-bit palette image whose index 0 is transparent;
    old exports hold base64(PNG). The object is the opaque / non-zero pixels."""
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as e:
        raise ImportError_(f"bitmap: not base64 ({e})")
    try:
        png = zlib.decompress(raw)
    except zlib.error:
        png = raw  # plain base64 PNG of older exports
    try:
        im = Image.open(io.BytesIO(png))
        im.load()
    except Exception as e:
        raise ImportError_(f"bitmap: neither zlib-compressed nor plain PNG ({e})")
    if im.mode == "P":
        idx = np.asarray(im)
        t = im.info.get("transparency")
        if isinstance(t, int):
            return idx != t
        if isinstance(t, (bytes, bytearray)):  # per-index alpha table
            alpha = np.frombuffer(bytes(t) + b"\xff" * (256 - len(t)), dtype=np.uint8)
            return alpha[idx] > 0
        return idx != 0
    if im.mode in ("RGBA", "LA", "PA"):
        return np.asarray(im)[..., -1] > 0
    if im.mode in ("1", "L", "I", "I;16"):
        return np.asarray(im) > 0
    return np.asarray(im.convert("RGB")).max(axis=2) > 0


def _points(obj, key, where):
    pts = obj.get("points", {}).get(key)
    if pts is None:
        raise ImportError_(f"{where}: no points.{key}")
    try:
        return [(float(p[0]), float(p[1])) for p in pts]
    except (TypeError, ValueError, IndexError):
        raise ImportError_(f"{where}: points.{key} is not a list of [x, y]")


def object_mask(obj, h, w, where):
    """One annotation object -> bool HxW mask (None for geometry types that carry no area)."""
    gt = obj.get("geometryType") or obj.get("shape")
    if gt == "bitmap":
        bm = obj.get("bitmap") or {}
        if "data" not in bm or "origin" not in bm:
            raise ImportError_(f"{where}: bitmap without data/origin")
        m = decode_bitmap(bm["data"])
        x0, y0 = int(bm["origin"][0]), int(bm["origin"][1])
        out = np.zeros((h, w), dtype=bool)
        mh, mw = m.shape
        if x0 >= w or y0 >= h or x0 + mw <= 0 or y0 + mh <= 0:
            raise ImportError_(f"{where}: bitmap {mw}x{mh} at origin ({x0},{y0}) lies outside "
                               f"the {w}x{h} image")
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + mh, h), min(x0 + mw, w)
        out[ya:yb, xa:xb] = m[ya - y0:yb - y0, xa - x0:xb - x0]
        return out
    if gt == "polygon":
        ext = _points(obj, "exterior", where)
        try:
            out = raster.fill_opencv(ext, h, w)
            for hole in obj.get("points", {}).get("interior") or []:
                # the SDK fills holes with 0 the same way, so hole boundary pixels are removed
                out &= ~raster.fill_opencv([(float(p[0]), float(p[1])) for p in hole], h, w)
        except (ValueError, TypeError, IndexError) as e:
            raise ImportError_(f"{where}: {e}")
        return out
    if gt == "rectangle":
        ext = _points(obj, "exterior", where)
        if len(ext) != 2:
            raise ImportError_(f"{where}: rectangle needs 2 points, has {len(ext)}")
        (l, t), (r, b) = ext
        l, r = sorted((int(round(l)), int(round(r))))
        t, b = sorted((int(round(t)), int(round(b))))
        out = np.zeros((h, w), dtype=bool)
        out[max(t, 0):min(b + 1, h), max(l, 0):min(r + 1, w)] = True  # inclusive corners
        return out
    if gt in ("point", "line", "polyline", "graph", "cuboid", "point_cloud"):
        return None
    raise ImportError_(f"{where}: unknown geometry type {gt!r}")


def read_annotation(path):
    """(h, w, [(class title, mask)]) of one ann/*.json."""
    try:
        with open(path) as f:
            ann = json.load(f)
    except (OSError, ValueError) as e:
        raise ImportError_(f"{path}: cannot read JSON ({e})")
    try:
        h, w = int(ann["size"]["height"]), int(ann["size"]["width"])
    except (KeyError, TypeError, ValueError):
        raise ImportError_(f"{path}: no size.height/size.width")
    if h <= 0 or w <= 0:
        raise ImportError_(f"{path}: image size {w}x{h}")
    objs = []
    for k, obj in enumerate(ann.get("objects", [])):
        where = f"{path}: object {k} ({obj.get('classTitle', '?')})"
        m = object_mask(obj, h, w, where)
        if m is not None:
            objs.append((obj.get("classTitle", ""), m))
    return h, w, objs


def import_project(project, out, class_map=None, log=print):
    meta_path = os.path.join(project, "meta.json")
    if not os.path.exists(meta_path):
        raise ImportError_(f"{project}: no meta.json (not a Supervisely project)")
    wr = dsform.DatasetWriter(out, class_map)
    n = 0
    for ds in sorted(os.listdir(project)):
        ann_dir = os.path.join(project, ds, "ann")
        img_dir = os.path.join(project, ds, "img")
        if not os.path.isdir(ann_dir):
            continue
        for fn in sorted(os.listdir(ann_dir)):
            if not fn.endswith(".json"):
                continue
            img_name = fn[:-5]
            img_path = os.path.join(img_dir, img_name)
            if not os.path.exists(img_path):
                raise ImportError_(f"{os.path.join(ann_dir, fn)}: image {img_path} missing")
            h, w, objs = read_annotation(os.path.join(ann_dir, fn))
            with Image.open(img_path) as im:
                if im.size != (w, h):
                    raise ImportError_(f"{fn}: annotation size {w}x{h}, image is "
                                       f"{im.size[0]}x{im.size[1]}")
            name = img_name if len(os.listdir(project)) <= 2 else f"{ds}__{img_name}"
            wr.add_image(img_path, objs, name=name)
            n += 1
    images, masks = wr.close()
    log(f"supervisely: {images} images, {masks} masks -> {out}")
    return images, masks


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project")
    ap.add_argument("out")
    ap.add_argument("--map", action="append", default=[], help="TITLE=DATASET CLASS (repeatable)")
    a = ap.parse_args()
    try:
        import_project(a.project, a.out, dsform.parse_class_map(a.map))
    except (ImportError_, ValueError) as e:
        sys.exit(f"supervisely: {e}")
