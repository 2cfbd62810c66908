#!/bin/sh
# From a finished training run to the shipped model: choose the GGO reporting threshold and the box
# NMS threshold on the TRAINING images (tune.py; rule: the highest score threshold within 0.01 of
# the best training GGO Dice, with training sensitivity >= 0.95; only the NMS is used, the GGO score
# threshold stays 0.5, see below), write them into the checkpoint, export to the engine's format, evaluate on
# the validation split with `cxrseg eval` (the product's figures) and draw the card's plots.
#   models/train/release.sh RUN_DIR BUILD_DIR [OUT_MODEL]
# e.g. models/train/release.sh models/train/runs/r18 build models/cxrseg.cxm
set -eu
run=$1
build=$2
out=${3:-models/cxrseg.cxm}
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
data=${CX_DATA:-$here/../../../shared/data/cxr-covid-seg}
stem=${out%.cxm}
# (tuning takes minutes: skipped when tune.json is newer than final.pt, e.g. on a rerun)
if [ ! "$run/tune.json" -nt "$run/final.pt" ]; then
    $py "$here/tune.py" "$run/final.pt" --data "$data" --threads 2 --json "$run/tune.json"
fi
$py - "$run" <<'PY'
import json, sys, torch
run = sys.argv[1]
rows = json.load(open(f"{run}/tune.json"))
ok = [r for r in rows if r["sens"] >= 0.95] or rows
# the training Dice curve is flat near its top: among settings within 0.01 of the best, take the
# highest score threshold (fewest false-positive pixels, smallest over-estimate of the lung share)
top = max(r["ggo_dice"] for r in ok)
best = max((r for r in ok if r["ggo_dice"] >= top - 0.01), key=lambda r: (r["score"], r["ggo_dice"]))
ck = torch.load(f"{run}/final.pt", map_location="cpu")
# The GGO score threshold stays at the trainer's a-priori 0.5: thresholds tuned on the training
# images are biased upwards for a model that overfits them (the first release run's rule chose 0.7,
# which was worse on validation; see the model card). The tuned value is kept as provenance only.
ck["thresholds"] = {"score": 0.5, "mask": 0.5, "ggo": {"score": 0.5, "mask": 0.5}}
ck["arch"]["box_nms_thresh"] = best["nms"]
ck["provenance"]["threshold_rule"] = ("highest ggo score threshold (and its NMS) within 0.01 of the best "
                                      "training-image GGO Dice, training sensitivity >= 0.95 (tune.py)")
ck["provenance"]["ggo_score_thresh"] = 0.5
ck["provenance"]["ggo_score_thresh_tuned_on_training_images"] = best["score"]
ck["provenance"]["box_nms_thresh"] = best["nms"]
torch.save(ck, f"{run}/ship.pt")
print("chosen:", best)
PY
$py "$here/../tools/export.py" "$run/ship.pt" -o "$out" --name cxrseg-ggo-lungs-r18 --version 1
"$build/cxrseg" eval --model "$out" --data "$data" --split "$here/split.json" --subset val \
    --json "$run/val.json" | tee "$run/val.txt"
$py "$here/plots.py" --log "$run/log.jsonl" --out "$stem-training.png"
$py "$here/plots.py" --eval "$run/val.json" --out "$stem-pr.png"
sha256sum "$out"
