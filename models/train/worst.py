"""The card's picture of failure modes: the worst validation images of a model, each as a pair,
the annotation on the left (lungs blue/green split by side, infection orange) and the model's
overlay on the right (`cxrseg detect -o`, the product's renderer, reported detections only).

Chosen from `cxrseg eval --json` on a mask-folder validation split (COVID-QU-Ex val): the N COVID
images with the lowest opacity Dice, the M normal images with the highest image score (false
positives first), and the image with the lowest both-lungs Dice.

  /usr/bin/python3 models/train/worst.py EVAL.json --model M.cxm --data DIR --cxrseg build/cxrseg \
      --out models/cxrseg-worst.png [--covid 5] [--normal 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import maskfolder  # noqa: E402

SIDE = 256
COLOURS = {"right": (0, 160, 255), "left": (0, 220, 120), "opacity": (255, 160, 0)}


def pick(per_image, n_covid, n_normal):
    covid = sorted((p for p in per_image if p.get("category") == "covid"), key=lambda p: (p["dice"][0], p["name"]))
    normal = sorted((p for p in per_image if p.get("category") == "normal"), key=lambda p: -p["image_score"])
    lungs = min(per_image, key=lambda p: p.get("dice_lungs", 1.0))
    out = covid[:n_covid] + normal[:n_normal]
    if lungs["name"] not in {p["name"] for p in out}:
        out.append(lungs)
    return out


def annotation(data, name):
    img = Image.open(os.path.join(data, "images", name + ".png")).convert("RGB")
    rgb = np.asarray(img, np.float32)
    lung = np.asarray(Image.open(os.path.join(data, "lung", name + ".png")).convert("L")) > 127
    inf = np.asarray(Image.open(os.path.join(data, "infection", name + ".png")).convert("L")) > 127
    right, left, _ = maskfolder.split_lungs(lung)
    for m, c in ((right, COLOURS["right"]), (left, COLOURS["left"]), (inf, COLOURS["opacity"])):
        rgb[m] = 0.55 * rgb[m] + 0.45 * np.array(c, np.float32)
    return Image.fromarray(rgb.astype(np.uint8)).resize((SIDE, SIDE))


def caption(p):
    d = p["dice"]
    return (f"{p['name']}  p={p['image_score']:.2f}  opacity {d[0]:.2f}  "
            f"lungs {p.get('dice_lungs', float('nan')):.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_json")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--cxrseg", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--covid", type=int, default=5)
    ap.add_argument("--normal", type=int, default=2)
    a = ap.parse_args()
    with open(a.eval_json) as f:
        per_image = json.load(f)["per_image"]
    chosen = pick(per_image, a.covid, a.normal)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for p in chosen:
            png = os.path.join(d, p["name"] + ".png")
            subprocess.run([a.cxrseg, "detect", os.path.join(a.data, "images", p["name"] + ".png"),
                            "--model", a.model, "-o", png], check=True, stdout=subprocess.DEVNULL)
            pred = Image.open(png).convert("RGB").resize((SIDE, SIDE))
            rows.append((annotation(a.data, p["name"]), pred, caption(p)))
    cols = 2
    cell_h = SIDE + 16
    sheet = Image.new("RGB", (cols * (2 * SIDE + 8), ((len(rows) + cols - 1) // cols) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (gt, pred, text) in enumerate(rows):
        x, y = (i % cols) * (2 * SIDE + 8), (i // cols) * cell_h
        sheet.paste(gt, (x, y))
        sheet.paste(pred, (x + SIDE, y))
        draw.text((x + 2, y + SIDE + 2), text, fill="black")
    sheet.save(a.out)
    for p in chosen:
        print(caption(p))


if __name__ == "__main__":
    main()
