#!/bin/sh
# `cxrseg detect` reports what `cxrseg segment` and the node report (cx_segment_decide): the lungs
# are single-instance classes, so on films where the network returns two detections of one lung
# (--all shows them), one is reported. Runs over COVID-QU-Ex validation films until it has seen
# such a case (covid_2302 is one with the shipped v4). Needs ../shared.
set -u
bin="${CX_BUILDDIR:-.}/cxrseg"
dir=${CX_SHARED:-${CX_SRCDIR:-.}/../shared}/data/covid-qu-ex/images
model="${CX_SRCDIR:-.}/models/cxrseg.cxm"
[ -d "$dir" ] || { echo "SKIP: $dir not found (../shared/data/covid-qu-ex)"; exit 77; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
seen=0
for id in covid_2302 covid_2059 covid_2130 covid_2576 covid_1913 covid_1943 covid_1990 covid_2187 \
          normal_649 normal_737 normal_10266; do
    [ -f "$dir/$id.png" ] || continue
    "$bin" detect "$dir/$id.png" --model "$model" >"$tmp/rep" || fail "$id: detect exit $?"
    "$bin" detect "$dir/$id.png" --model "$model" --all >"$tmp/all" || fail "$id: detect --all exit $?"
    for side in right_lung left_lung; do
        r=$(grep -cE "^[0-9]+ +$side " "$tmp/rep")
        a=$(grep -cE "^[0-9]+ +$side " "$tmp/all")
        [ "$r" -le 1 ] || { cat "$tmp/rep"; fail "$id: $side reported $r times"; }
        [ "$a" -ge 2 ] && { seen=$((seen + 1)); echo "$id: $side $a detections, $r reported"; }
    done
done
[ "$seen" -gt 0 ] || { echo "SKIP: no listed film has two detections of one lung with this model"; exit 77; }
echo ok
