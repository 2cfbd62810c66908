#!/usr/bin/python3
"""Prints, as JSON, what a SEG file's masks are as pydicom decodes it (an independent reader):
for segment 1, 2, ... [pixel count, centroid x, centroid y, x0, y0, x1, y1] (pixel indices,
bounding box inclusive). tests/viewer/drive.js checks OHIF's decoded labelmap against it.

Usage: segstats.py SEG.dcm
"""
import json
import sys

import numpy as np
import pydicom


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ds = pydicom.dcmread(sys.argv[1])
    frames = ds.pixel_array.reshape(int(getattr(ds, "NumberOfFrames", 1)), ds.Rows, ds.Columns)
    stats = {}
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        seg = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ys, xs = np.nonzero(frames[i])
        if len(xs):
            stats[seg] = [int(len(xs)), float(xs.mean()), float(ys.mean()),
                          int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
        else:
            stats[seg] = [0, 0.0, 0.0, 0, 0, 0, 0]
    print(json.dumps([stats.get(k) for k in range(1, len(ds.SegmentSequence) + 1)]))


if __name__ == "__main__":
    main()
