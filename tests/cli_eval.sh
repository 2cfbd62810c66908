#!/bin/sh
# `cxrseg eval` end to end on tests/data/eval (3 images in the shared dataset form, a tiny random
# model with cxrseg's classes) and tests/data/eval_mf (the same images in the mask-folder form): the
# ground-truth counts, the selections, the JSON and the error paths. The figures of a random model are meaningless; the counts and the plumbing are not.
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

# the mask-folder form (tests/data/eval_mf: the same images, one lung mask, categories)
mf="$top/tests/data/eval_mf"
"$bin" eval --model "$fx/tiny_model.cxm" --data "$mf" --json "$tmp/mf.json" >"$tmp/mf" 2>&1 \
    || { cat "$tmp/mf"; fail "eval on the mask-folder fixture failed"; }
grep -q 'mask-folder form' "$tmp/mf" || fail "mask folder: form not recognised"
grep -q '^3 images (covid 1, normal 1, noncovid 1); lung sides unknown on 0' "$tmp/mf" || fail "mask folder: counts"
grep -Eq '^ggo +2 ' "$tmp/mf" || fail "mask folder: expected 2 finding regions (covid_1)"
grep -Eq '^right_lung +3 ' "$tmp/mf" || fail "mask folder: expected 3 right lungs from the split"
grep -q 'ROC AUC .*1 positive, 1 negative: category normal' "$tmp/mf" || fail "mask folder: image-level roles"
grep -q 'noncovid (no GT for the finding): called present' "$tmp/mf" || fail "mask folder: noncovid line"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
p = {x["name"]: x for x in d["per_image"]}
assert set(p) == {"covid_1", "normal_1", "noncovid_1"}
assert p["covid_1"]["gt_finding"] is True and p["normal_1"]["gt_finding"] is False
assert p["noncovid_1"]["category"] == "noncovid"
assert all(isinstance(x["image_score"], (int, float)) and isinstance(x["present"], bool) for x in p.values())
assert [g["category"] for g in d["groups"]] == [None, "covid", "normal", "noncovid"]' "$tmp/mf.json" \
        || fail "mask folder: JSON does not parse or has wrong content"
fi
"$bin" eval --model "$fx/tiny_model.cxm" --data "$mf" --subset val >"$tmp/mf2" 2>&1 || fail "mask folder --subset val"
grep -q '^2 images (covid 1, normal 1)' "$tmp/mf2" || fail "mask folder: --subset val"
"$bin" eval --model "$fx/tiny_model.cxm" --data "$mf" --holdout "$mf/holdout.json" --category covid,normal \
    >"$tmp/mf3" 2>&1 || fail "mask folder --holdout --category"
grep -q '^1 images (covid 1)' "$tmp/mf3" || fail "mask folder: --holdout and --category"
"$bin" eval --model "$fx/tiny_model.cxm" --data "$mf" --split "$fx/split.json" >"$tmp/e5" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q -- '--split is for the structure form' "$tmp/e5" || fail "mask folder --split: rc $rc"
"$bin" eval --model "$fx/tiny_model.cxm" --data "$fx" --category covid >"$tmp/e6" 2>&1; rc=$?
[ $rc -eq 1 ] || fail "structure form --category: rc $rc"
"$bin" eval --model "$fx/tiny_model.cxm" --data "$mf" --subset test >"$tmp/e7" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q 'no image left' "$tmp/e7" || fail "mask folder --subset test: rc $rc"

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
