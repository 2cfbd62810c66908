#!/bin/sh
# From a finished training run to the shipped model, every choice made by a rule fixed before the
# final evaluation (docs/training.md, "Release"):
#   1. reporting thresholds a priori: score 0.5 (the opacity class: min(0.5, decision.score),
#      so that a "present" image always shows its finding; 0.5 with an image head, whose "present"
#      keeps the detection it rests on) and mask 0.5 for every class, box NMS 0.3, image-level rule
#      on the opacity class;
#   2. the image-level rule chosen on the HOLDOUT images that training left out of COVID-QU-Ex's
#      train split (operating_point.py): its minimum area among 0.25/0.5/1/2/4 % of the image by
#      holdout ROC AUC, its score threshold for holdout specificity >= 0.95;
#   3. the opacity class's score and mask thresholds and the lungs' mask threshold chosen on the
#      holdout (thresholds.sh / thresholds.py; 0.5 stays unless another value gains 0.002 Dice);
#   4. export, then `cxrseg eval` on both validation splits (COVID-QU-Ex val, cxr-covid-seg val),
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
version=${CX_MODEL_VERSION:-3}

$py - "$run" <<'PY'
import json, sys, torch
run = sys.argv[1]
ck = torch.load(f"{run}/final.pt", map_location="cpu")
ck["thresholds"] = {"score": 0.5, "mask": 0.5}
ck["arch"]["box_nms_thresh"] = 0.3
ck["decision"] = {"class": 1, "score": 0.5, "min_area": 0.005}
for c in ck["classes"]:  # one right and one left lung per film (runs before "single" was in train.py)
    c.setdefault("single", c["code"][0] == "39607008")
ck["provenance"]["threshold_rule"] = ("a priori: class score 0.5 (opacity min(0.5, decision.score)), mask 0.5, "
                                      "box NMS 0.3; decision.min_area and decision.score from "
                                      "operating_point.py on the holdout")
torch.save(ck, f"{run}/ship.pt")
PY
evals=""
for a in 0.0025 0.005 0.01 0.02 0.04; do
    $py "$here/../tools/export.py" "$run/ship.pt" -o "$run/provisional-$a.cxm" --name "$name" \
        --version "$version" --decision-min-area "$a"
    "$build/cxrseg" eval --model "$run/provisional-$a.cxm" --data "$quex" --holdout "$run/holdout.json" \
        --json "$run/holdout-eval-$a.json" > "$run/holdout-eval-$a.txt" 2>/dev/null
    evals="$evals $run/holdout-eval-$a.json"
done
$py "$here/operating_point.py" $evals | tee "$run/operating_point.json"
t=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["score"])' "$run/operating_point.json")
ma=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["min_area"])' "$run/operating_point.json")
# the opacity reporting threshold is min(0.5, t): a "present" image always shows its finding
head=$($py -c 'import sys, torch; print(int(torch.load(sys.argv[1], map_location="cpu")["arch"].get("image_head", 0)))' "$run/ship.pt")
if [ "$head" = 1 ]; then to=0.5; else
    to=$($py -c 'import sys; print(min(0.5, float(sys.argv[1])))' "$t"); fi
$py "$here/../tools/export.py" "$run/ship.pt" -o "$run/a-priori.cxm" --name "$name" --version "$version" \
    --decision-score "$t" --decision-min-area "$ma" --score-thresh "opacity=$to"
# the opacity score/mask and lung mask thresholds from the holdout (0.5 unless it gains 0.002)
"$here/thresholds.sh" "$run/a-priori.cxm" "$run/holdout.json" "$run/thresholds" "$build" "$out"
"$build/cxrseg" eval --model "$out" --data "$quex" --subset val --json "$run/val-quex.json" \
    | tee "$run/val-quex.txt"
"$build/cxrseg" eval --model "$out" --data "$cxr" --split "$here/split.json" --subset val \
    --json "$run/val-cxr.json" | tee "$run/val-cxr.txt"
$py "$here/plots.py" --log "$run/log.jsonl" --out "$stem-training.png"
$py "$here/plots.py" --eval "$run/val-cxr.json" --out "$stem-pr.png"
$py "$here/plots.py" --roc "$run/val-quex.json" "$run/val-cxr.json" --out "$stem-roc.png"
sha256sum "$out"
