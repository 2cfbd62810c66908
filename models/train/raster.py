"""Polygon rasterisers for the importers: the two conventions annotation tools use.

fill_opencv: what Supervisely's SDK gets from cv2.fillPoly on integer vertices: pixel (c, r) is the
  point (c, r); boundary pixels are included (a square (1,1)-(4,3) covers 4x3 = 12 pixels).
fill_coco: COCO's grid: pixel (i, j) covers [i, i+1) x [j, j+1); a pixel is in when its centre is
  inside (the same square covers 3x2 = 6 pixels). Both use the even-odd rule for several rings.
"""
import math

import numpy as np


def _even_odd(rings, h, w, offset):
    """Pixels whose sample point (c + offset, r + offset) is strictly inside (even-odd rule)."""
    out = np.zeros((h, w), dtype=bool)
    edges = []
    for ring in rings:
        n = len(ring)
        for k in range(n):
            x0, y0 = ring[k]
            x1, y1 = ring[(k + 1) % n]
            if y0 != y1:
                edges.append((float(x0), float(y0), float(x1), float(y1)))
    for r in range(h):
        y = r + offset
        xs = []
        for x0, y0, x1, y1 in edges:
            # half-open in y so a vertex on the scan line is counted once
            if (y0 <= y < y1) or (y1 <= y < y0):
                xs.append(x0 + (y - y0) * (x1 - x0) / (y1 - y0))
        xs.sort()
        for a, b in zip(xs[0::2], xs[1::2]):
            # columns c with a < c + offset < b
            c0 = max(int(math.floor(a - offset)) + 1, 0)
            c1 = min(int(math.ceil(b - offset)) - 1, w - 1)
            if c1 >= c0:
                out[r, c0:c1 + 1] ^= True
    return out


def _line(out, x0, y0, x1, y1):
    """8-connected Bresenham line, clipped to the image (the boundary cv2.fillPoly also paints)."""
    h, w = out.shape
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        if 0 <= x0 < w and 0 <= y0 < h:
            out[y0, x0] = True
        if x0 == x1 and y0 == y1:
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def fill_opencv(ring, h, w):
    """One ring (list of [x, y]) filled with its boundary, like cv2.fillPoly on int vertices."""
    pts = [(int(round(x)), int(round(y))) for x, y in ring]
    if len(pts) < 3:
        raise ValueError(f"polygon: {len(pts)} vertices, need at least 3")
    out = _even_odd([pts], h, w, 0.0)
    for k in range(len(pts)):
        _line(out, *pts[k], *pts[(k + 1) % len(pts)])
    return out


def fill_coco(polys, h, w):
    """COCO polygon list (each flattened [x1, y1, x2, y2, ...]) -> union mask on COCO's grid."""
    out = np.zeros((h, w), dtype=bool)
    for k, p in enumerate(polys):
        if len(p) < 6 or len(p) % 2:
            raise ValueError(f"polygon {k}: {len(p)} coordinates, need an even count >= 6")
        ring = list(zip(p[0::2], p[1::2]))
        out |= _even_odd([ring], h, w, 0.5)
    return out
