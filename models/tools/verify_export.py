#!/usr/bin/python3
"""Checks an exported model against its checkpoint: runs torchvision (the checkpoint) and the C
engine (the .cxm, through bench/cx_bench_engine) on the same images and compares detections
(count, labels, boxes, scores, mask areas). Use after export.py on a trained model.
Usage: verify_export.py CHECKPOINT MODEL.cxm IMAGE... [--build BUILDDIR] [--threads 2]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cxr_arch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("model")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--build", default=os.environ.get("CX_BUILDDIR", "."))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ck = torch.load(a.checkpoint, map_location="cpu")
    sd, arch = (ck["model"], ck.get("arch", {})) if "model" in ck else (ck, {})
    model = cxr_arch.build_model(arch).eval()
    model.load_state_dict(sd)
    full = cxr_arch.full_arch(arch)
    exe = os.path.join(a.build, "bench", "cx_bench_engine")
    worst = {"box": 0.0, "score": 0.0, "area": 0.0}
    ok = True
    for path in a.images:
        im = Image.open(path).convert("L")
        s = full["max_size"] / max(im.size)
        im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.BILINEAR)
        x = np.asarray(im, np.float32) / 255.0
        h, w = x.shape
        with tempfile.NamedTemporaryFile(suffix=".f32") as f:
            x.tofile(f.name)
            out = subprocess.run([exe, a.model, f.name, str(h), str(w), str(a.threads)], input="run\ndets\nquit\n",
                                 capture_output=True, text=True, check=True).stdout.splitlines()
        c = [list(map(float, ln.split())) for ln in out[1:out.index("end")]]
        t = torch.from_numpy(x)[None].expand(full["in_channels"], h, w)
        with torch.no_grad():
            r = model([t])[0]
        n = len(r["boxes"])
        if len(c) != n:
            print(f"{path}: C {len(c)} detections, torchvision {n}")
            ok = False
        for i in range(min(n, len(c))):
            ta = float((r["masks"][i, 0] > 0.5).sum())
            if int(c[i][0]) != int(r["labels"][i]):
                ok = False
            worst["box"] = max(worst["box"], float((torch.tensor(c[i][2:6]) - r["boxes"][i]).abs().max()))
            worst["score"] = max(worst["score"], abs(c[i][1] - float(r["scores"][i])))
            worst["area"] = max(worst["area"], abs(c[i][6] - ta) / max(ta, 1.0))
        print(f"{path}: {w}x{h}, {n} detections; worst so far: box {worst['box']:.2g} px, score "
              f"{worst['score']:.2g}, mask area {100 * worst['area']:.2g}%")
    ok = ok and worst["box"] <= 1e-2 and worst["score"] <= 1e-4 and worst["area"] <= 0.01
    print("PARITY OK" if ok else "PARITY MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
