#!/bin/sh
# The reporting thresholds of a model file chosen on the holdout (models/train/thresholds.py; the
# rule: models/train/ship-rules.md, "Reporting thresholds from the holdout"): `cxrseg eval` on the
# holdout for each opacity score threshold (0.3-0.6, `--score`) and each mask threshold (0.3-0.6,
# all classes), then OUT gets the chosen ones (export.py on the .cxm: same tensors, only the
# thresholds rewritten). Never touches a validation split.
#   models/train/thresholds.sh MODEL.cxm HOLDOUT.json WORK_DIR BUILD_DIR OUT.cxm
set -eu
model=$1
holdout=$2
work=$3
build=$4
out=$5
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
quex=${CX_QUEX:-${CX_SHARED:-$here/../../../shared/data}/covid-qu-ex}
mkdir -p "$work"
grid=""
for m in 0.3 0.4 0.5 0.6; do
    $py "$here/../tools/export.py" "$model" -o "$work/mask-$m.cxm" \
        --mask-thresh "opacity=$m" --mask-thresh "right_lung=$m" --mask-thresh "left_lung=$m" > /dev/null
    for s in 0.3 0.4 0.5 0.6; do
        "$build/cxrseg" eval --model "$work/mask-$m.cxm" --data "$quex" --holdout "$holdout" --score "$s" \
            --json "$work/eval-$s-$m.json" > "$work/eval-$s-$m.txt" 2> /dev/null
        grid="$grid $s $m $work/eval-$s-$m.json"
    done
    rm -f "$work/mask-$m.cxm"
done
$py "$here/thresholds.py" $grid | tee "$work/thresholds.json"
get() { $py -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/thresholds.json" "$1"; }
s=$(get opacity_score)
m=$(get opacity_mask)
ml=$(get lung_mask)
$py "$here/../tools/export.py" "$model" -o "$out" --score-thresh "opacity=$s" --mask-thresh "opacity=$m" \
    --mask-thresh "right_lung=$ml" --mask-thresh "left_lung=$ml"
