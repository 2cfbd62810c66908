#!/bin/sh
# `cxrseg eval` end to end on tests/data/eval (3 images in the shared dataset form, a tiny random
# model with cxrseg's classes): the ground-truth counts, the split selection, the JSON and the error
# paths. The figures of a random model are meaningless; the counts and the plumbing are not.
set -u
top=${CX_SRCDIR:-.}
bin=${CX_BUILDDIR:-.}/cxrseg
fx="$top/tests/data/eval"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" eval --model "$fx/tiny_model.cxm" --data "$fx" --json "$tmp/all.json" >"$tmp/out" 2>"$tmp/err" \
    || { cat "$tmp/out" "$tmp/err"; fail "eval on the fixture failed"; }
cat "$tmp/out"
grep -q '^3 images' "$tmp/out" || fail "expected 3 images"
# ggo: 2 regions in a.png + 1 in b.jpg; one lung of each side per image
grep -Eq '^ggo +3 ' "$tmp/out" || fail "expected 3 ggo instances"
grep -Eq '^right_lung +3 ' "$tmp/out" || fail "expected 3 right lungs"
grep -Eq '^left_lung +3 ' "$tmp/out" || fail "expected 3 left lungs"
grep -q 'sensitivity' "$tmp/out" || fail "no image-level line"
grep -q '"images": 3' "$tmp/all.json" || fail "JSON lacks the image count"
grep -q '"pr50_precision"' "$tmp/all.json" || fail "JSON lacks the PR curve"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["per_image"]) == 3; assert d["classes"][0]["n_gt"] == 3' \
        "$tmp/all.json" || fail "JSON does not parse or has wrong content"
fi

"$bin" eval --model "$fx/tiny_model.cxm" --data "$fx" --split "$fx/split.json" --subset val >"$tmp/out2" 2>&1 \
    || { cat "$tmp/out2"; fail "eval on the val subset failed"; }
grep -q '^2 images' "$tmp/out2" || fail "split: expected 2 images"
grep -Eq '^ggo +2 ' "$tmp/out2" || fail "split: expected 2 ggo instances (a.png only)"

# errors: exit codes and messages
"$bin" eval --data "$fx" >"$tmp/e1" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q -- '--model M missing' "$tmp/e1" || fail "missing --model: rc $rc"
"$bin" eval --model "$fx/tiny_model.cxm" --data "$fx" --split "$fx/split.json" --subset nope >"$tmp/e2" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q 'no key "nope"' "$tmp/e2" || fail "bad subset: rc $rc"
"$bin" eval --model "$fx/structure.csv" --data "$fx" >"$tmp/e3" 2>&1; rc=$?
[ $rc -eq 5 ] || [ $rc -eq 2 ] || fail "bad model: rc $rc"
"$bin" eval --model "$fx/tiny_model.cxm" --data "$tmp" >"$tmp/e4" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q 'structure.csv' "$tmp/e4" || fail "no dataset: rc $rc"
echo "PASS"
