#!/bin/sh
# `cxrseg segment` end to end: the real chest CR through render -> engine -> writers with the
# random-weight parity model (tests/data), outputs validated with dciodvfy, the image-level
# present/absent answer of the default rule and of a model's decision rule, deterministic UIDs,
# a folder run with its summary table, and the usage/model error exit codes.
# Skips (77) when ../shared data or dciodvfy is missing.
set -u
B=${CX_BUILDDIR:-.}
S=${CX_SRCDIR:-.}
SRC="${CX_SHARED:-$S/../shared}/data/dicom/RG1_J2KI.dcm"
MODEL="$S/tests/data/parity_model.cxm"
[ -f "$SRC" ] || { echo "SKIP: $SRC absent"; exit 77; }
command -v dciodvfy >/dev/null 2>&1 || { echo "SKIP: dciodvfy (dicom3tools) not installed"; exit 77; }
T=$(mktemp -d /tmp/cx_results_segment.XXXXXX)
fail() { echo "FAIL: $*"; echo "(outputs kept in $T)"; exit 1; }

valid() { # no errors; only the warnings docs/dciodvfy-warnings.md lists (99CXR: the placeholder
          # class codes of the random-weight test model)
    out=$(dciodvfy -new "$1" 2>&1)
    echo "$out" | grep -q "Error" && { echo "$out"; fail "dciodvfy errors in $1"; }
    bad=$(echo "$out" | grep "Warning" | grep -v "<99CXRSEG>" | grep -v "<99CXR>" | grep -v "Retired Person Name form")
    [ -z "$bad" ] || { echo "$bad"; fail "unlisted dciodvfy warnings in $1"; }
}

# One file, all outputs. --score 0 keeps every detection of the random network, so that there
# are segments to write.
"$B/cxrseg" segment "$SRC" -o "$T/one" --model "$MODEL" --score 0 --outputs seg,sr,gsps,sc \
    --uid-root 1.2.826.0.1.3680043.10.543 >"$T/one.out" 2>&1 || { cat "$T/one.out"; fail "segment exit $?"; }
cat "$T/one.out"
for f in sr.dcm gsps.dcm sc.dcm overlay.png; do [ -s "$T/one/$f" ] || fail "$f not written"; done
grep -q "area not measured (no usable pixel spacing)" "$T/one.out" || fail "RG1 has PixelSpacing 0\\0: no area expected"
# The test model has no decision.* keys: the rule is its first class (placeholder "class 1") at that
# class's threshold 0.5, which none of the random network's class-1 detections reaches; the
# present/absent item is named with that class's code, never GGO.
grep -q "^  class 1: absent (image score 0\.[0-4][0-9]; rule: a detection >= 0.5)$" "$T/one.out" || \
    fail "image-level answer of the default rule"
dsrdump +Pc "$T/one/sr.dcm" | grep -q '(C1,99CXR,"class 1")=(2667000,SCT,"Absent")' || fail "SR: class 1 Absent"
dsrdump +Pc "$T/one/sr.dcm" | grep -q "Ground glass" && fail "SR names GGO for a model without that class"
dsrdump +Pc +Pl "$T/one/sr.dcm" | grep -q 'Comment")="Image score 0\.[0-9]*; present when the model finds a detection >= 0.5"' || \
    fail "SR: Comment explaining the rule"
for f in "$T"/one/*.dcm; do valid "$f"; done
head -c 8 "$T/one/overlay.png" | od -An -c | grep -q "P   N   G" || fail "overlay.png is not a PNG"
uid1=$(dcmdump +P 0008,0018 "$T/one/sr.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
case "$uid1" in 1.2.826.0.1.3680043.10.543.*) ;; *) fail "SR UID $uid1 not under the root";; esac
dsrdump "$T/one/sr.dcm" | grep -q '"Imaging Measurement Report"' || fail "SR root"

# A model with the new classes and a decision rule (tests/data/decision_model.cxm, random weights:
# opacity >= 0.62 covering >= 0.5% of the image): "Radiologic infiltrate of lung: Absent", no
# opacity finding reported although --score 0 keeps every other detection.
"$B/cxrseg" segment "$SRC" -o "$T/rule" --model "$S/tests/data/decision_model.cxm" --score 0 --no-overlay \
    >"$T/rule.out" 2>&1 || { cat "$T/rule.out"; fail "segment with the decision model"; }
cat "$T/rule.out"
grep -q "^  Lung opacity (ground-glass opacity or consolidation): absent (image score 0\.[0-5][0-9]; rule: a detection >= 0.62 covering >= 0.5% of the image)$" \
    "$T/rule.out" || fail "image-level answer of the decision rule"
dsrdump +Pc "$T/rule/sr.dcm" | grep -q '(409609008,SCT,"Radiologic infiltrate of lung")=(2667000,SCT,"Absent")' || \
    fail "SR: Radiologic infiltrate of lung Absent"
dsrdump +Pc "$T/rule/sr.dcm" | grep -q '(121071,DCM,"Finding")=(409609008' && fail "SR: an opacity finding while absent"
for f in "$T"/rule/*.dcm; do valid "$f"; done

# Deterministic: the same image and model give the same UIDs.
"$B/cxrseg" segment "$SRC" -o "$T/two" --model "$MODEL" --score 0 --no-overlay \
    --uid-root 1.2.826.0.1.3680043.10.543 >/dev/null 2>&1 || fail "second run"
uid2=$(dcmdump +P 0008,0018 "$T/two/sr.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
[ "$uid1" = "$uid2" ] || fail "SR UIDs differ between runs: $uid1 / $uid2"
[ ! -e "$T/two/overlay.png" ] || fail "--no-overlay wrote an overlay"

# A folder: the CR, a PNG (skipped: results need a DICOM source) and a broken file (failed).
mkdir -p "$T/in"
ln -s "$SRC" "$T/in/a_chest.dcm"
cp "$S/tests/data/parity_cxr.png" "$T/in/b_picture.png"
head -c 3000 "$SRC" >"$T/in/c_broken.dcm"   # truncated inside the pixel data
"$B/cxrseg" segment "$T/in" -o "$T/out" --model "$MODEL" -q >"$T/dir.out" 2>&1
rc=$?
cat "$T/dir.out"
[ $rc -eq 2 ] || fail "folder with a broken file: exit $rc, expected 2"
grep -q "^a_chest.dcm *ok" "$T/dir.out" || fail "summary row of a_chest.dcm"
grep -q "^b_picture.png *skip" "$T/dir.out" || fail "summary row of b_picture.png"
grep -q "^c_broken.dcm *FAIL" "$T/dir.out" || fail "summary row of c_broken.dcm"
grep -q "3 files: 1 processed, 1 skipped, 1 failed" "$T/dir.out" || fail "summary line"
[ -s "$T/out/a_chest/sr.dcm" ] || fail "folder output a_chest/sr.dcm"
[ ! -e "$T/out/c_broken" ] || fail "empty result folder left for the broken file"

# The configuration file: model, per-output series, GSPS switched on, and its filters (the
# extremity CR RG3 is skipped with exit 3).
export CXRSEG_XSD="$S/conf/cxrseg.xsd"
sed "s|<model>|<model><file>$MODEL</file>|; /<presentation-state>/,/<\/presentation-state>/s|<enabled>false</enabled>|<enabled>true</enabled>|" \
    "$S/conf/cxrseg.xml" >"$T/c.xml"
"$B/cxrseg" segment "$SRC" -o "$T/conf" --conf "$T/c.xml" --score 0 >"$T/conf.out" 2>&1 || { cat "$T/conf.out"; fail "segment --conf"; }
[ -s "$T/conf/gsps.dcm" ] || fail "--conf: GSPS switched on but not written"
[ ! -e "$T/conf/sc.dcm" ] || fail "--conf: SC is off but was written"
dcmdump +P 0020,0011 "$T/conf/gsps.dcm" | grep -q "\[9903\]" || fail "--conf: GSPS series number 9903"
dcmdump +P 0008,103e "$T/conf/sr.dcm" | grep -q "\[CXRSEG Report\]" || fail "--conf: SR series description"
RG3="$(dirname "$SRC")/RG3_J2KR.dcm"
if [ -f "$RG3" ]; then
    "$B/cxrseg" segment "$RG3" -o "$T/rg3" --conf "$T/c.xml" >"$T/rg3.out" 2>&1; rc=$?
    [ $rc -eq 3 ] || { cat "$T/rg3.out"; fail "extremity with the conf filters: exit $rc, expected 3"; }
    grep -q "skipped: body part 'EXTREMITY'" "$T/rg3.out" || fail "filter message"
fi

# Usage and model errors.
"$B/cxrseg" segment "$SRC" --model "$MODEL" >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing -o: exit 1 expected"
"$B/cxrseg" segment "$SRC" -o "$T/x" --outputs seg,foo --model "$MODEL" >/dev/null 2>&1; [ $? -eq 1 ] || fail "bad --outputs"
"$B/cxrseg" segment "$SRC" -o "$T/x" --model "$T/nope.cxm" >"$T/err.out" 2>&1; rc=$?
[ $rc -eq 2 ] || [ $rc -eq 5 ] || fail "missing model: exit $rc"
grep -q "nope.cxm" "$T/err.out" || fail "missing model: message does not name the file"

rm -rf "$T"
echo "PASS"
