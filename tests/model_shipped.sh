#!/bin/sh
# The shipped model (models/cxrseg.cxm) through `cxrseg eval` on the first 4 validation images of
# the shared set: guards the whole chain the node runs (JPEG/PNG loading, luma, area resize, engine,
# mask pasting) against regressions that would silently degrade the product's figures. Floors are
# well below the model card's figures (4 images are noisy); skips when the model or data is absent.
set -u
top=${CX_SRCDIR:-.}
bin=${CX_BUILDDIR:-.}/cxrseg
model="$top/models/cxrseg.cxm"
data="${CX_SHARED:-$top/../shared}/data/cxr-covid-seg"
[ -f "$model" ] || { echo "SKIP: $model absent"; exit 77; }
[ -f "$data/structure.csv" ] || { echo "SKIP: $data absent"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" eval --model "$model" --data "$data" --split "$top/models/train/split.json" --subset val \
    --limit 4 --json "$tmp/v.json" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/out" "$tmp/err"; echo FAIL; exit 1; }
cat "$tmp/out"
# lung Dice (mean over the 4 images, first column of the Dice table) must stay above 0.75 for both lungs
awk '/^Dice of reported masks/ { d = 1 } /^% of lung affected/ { d = 0 }
     d && ($1 == "right_lung" || $1 == "left_lung") { n++; if ($2 + 0 < 0.75) bad = bad " " $1 "=" $2 }
     END { if (n != 2 || bad != "") { print "FAIL: lung Dice below 0.75:" bad; exit 1 } }' "$tmp/out" || exit 1
echo PASS
