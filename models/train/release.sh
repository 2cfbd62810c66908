#!/bin/sh
# From a finished training run to the shipped model, every choice made by a rule fixed before the
# final evaluation (docs/training.md, "Release"):
#   1. reporting thresholds fixed a priori: score 0.5 (the opacity class: min(0.5, decision.score),
#      so that a "present" image always shows its finding) and mask 0.5 for every class, box NMS 0.3,
#      image-level rule on the opacity class with a minimum area of 0.5 % of the image;
#   2. the image-level score threshold (decision.score) chosen on the HOLDOUT images that training
#      left out of COVID-QU-Ex's train split (operating_point.py: holdout specificity >= 0.95);
#   3. export, then `cxrseg eval` on both validation splits (COVID-QU-Ex val, cxr-covid-seg val),
#      which nothing above has looked at; then the card's plots.
#   models/train/release.sh RUN_DIR BUILD_DIR [OUT_MODEL]
# e.g. models/train/release.sh models/train/runs/v2 build models/cxrseg.cxm
set -eu
run=$1
build=$2
out=${3:-models/cxrseg.cxm}
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
shared=${CX_SHARED:-$here/../../../shared/data}
quex=${CX_QUEX:-$shared/covid-qu-ex}
cxr=${CX_DATA:-$shared/cxr-covid-seg}
stem=${out%.cxm}
name=${CX_MODEL_NAME:-cxrseg-opacity-lungs-r18}
version=${CX_MODEL_VERSION:-2}

$py - "$run" <<'PY'
import json, sys, torch
run = sys.argv[1]
ck = torch.load(f"{run}/final.pt", map_location="cpu")
ck["thresholds"] = {"score": 0.5, "mask": 0.5}
ck["arch"]["box_nms_thresh"] = 0.3
ck["decision"] = {"class": 1, "score": 0.5, "min_area": 0.005}
ck["provenance"]["threshold_rule"] = ("a priori: class score 0.5, mask 0.5, box NMS 0.3, decision min area "
                                      "0.5% of the image; decision.score from operating_point.py on the holdout")
torch.save(ck, f"{run}/ship.pt")
PY
$py "$here/../tools/export.py" "$run/ship.pt" -o "$run/provisional.cxm" --name "$name" --version "$version"
"$build/cxrseg" eval --model "$run/provisional.cxm" --data "$quex" --holdout "$run/holdout.json" \
    --json "$run/holdout-eval.json" > "$run/holdout-eval.txt"
$py "$here/operating_point.py" "$run/holdout-eval.json" | tee "$run/operating_point.json"
t=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["score"])' "$run/operating_point.json")
# the opacity reporting threshold is min(0.5, t): a "present" image always shows its finding
to=$($py -c 'import sys; print(min(0.5, float(sys.argv[1])))' "$t")
$py "$here/../tools/export.py" "$run/ship.pt" -o "$out" --name "$name" --version "$version" \
    --decision-score "$t" --score-thresh "opacity=$to"
"$build/cxrseg" eval --model "$out" --data "$quex" --subset val --json "$run/val-quex.json" \
    | tee "$run/val-quex.txt"
"$build/cxrseg" eval --model "$out" --data "$cxr" --split "$here/split.json" --subset val \
    --json "$run/val-cxr.json" | tee "$run/val-cxr.txt"
$py "$here/plots.py" --log "$run/log.jsonl" --out "$stem-training.png"
$py "$here/plots.py" --eval "$run/val-cxr.json" --out "$stem-pr.png"
$py "$here/plots.py" --roc "$run/val-quex.json" "$run/val-cxr.json" --out "$stem-roc.png"
sha256sum "$out"
