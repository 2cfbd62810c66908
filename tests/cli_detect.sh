#!/bin/sh
# `cxrseg detect` end to end with the parity model: findings printed, overlay PNG written, and the
# documented exit codes for a bad model file and a bad command line.
set -u
bin="${CX_BUILDDIR:-.}/cxrseg"
data="${CX_SRCDIR:-.}/tests/data"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" detect "$data/parity_cxr.png" --model "$data/parity_model.cxm" --all -o "$tmp/ov.png" --threads 2 \
    >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; fail "detect exit $?"; }
cat "$tmp/out"
grep -q "returned by the network" "$tmp/out" || fail "no summary line"
grep -q "overlay written" "$tmp/out" || fail "no overlay line"
n=$(grep -cE '^[0-9]+ +[^ ]+ +[0-9]\.[0-9]{3} ' "$tmp/out")
[ "$n" -ge 1 ] || fail "no detection rows"
head -c 8 "$tmp/ov.png" | od -An -c | grep -q 'P   N   G' || fail "overlay is not a PNG"

"$bin" detect "$data/parity_cxr.png" --model "$data/parity_model.cxm" --all --json >"$tmp/json" || fail "json"
[ "$(grep -c '"score"' "$tmp/json")" -eq "$n" ] || fail "json rows differ from table rows"

head -c 1000 "$data/parity_model.cxm" >"$tmp/trunc.cxm"
"$bin" detect "$data/parity_cxr.png" --model "$tmp/trunc.cxm" >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 5 ] || fail "truncated model: exit $rc, wanted 5"
grep -q "truncated" "$tmp/err" || fail "truncated model: message '$(cat "$tmp/err")'"

"$bin" detect "$data/parity_cxr.png" >/dev/null 2>&1
[ $? -eq 1 ] || fail "missing --model must exit 1"
"$bin" detect "$tmp/none.png" --model "$data/parity_model.cxm" >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing image must exit 2"
echo ok
