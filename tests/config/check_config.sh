#!/bin/sh
# Runs the real `cxrseg check-config` the way IT staff do: the shipped conf is OK (exit 0, with a
# summary), a broken one lists every error as file:line on stderr (exit 4), usage errors exit 1,
# a missing file exits 2.
set -u
src=${CX_SRCDIR:?}; build=${CX_BUILDDIR:?}
bin=
for b in "$build/cxrseg" "$build/src/cli/cxrseg"; do [ -x "$b" ] && bin=$b && break; done
[ -n "$bin" ] || { echo "SKIP: cxrseg is not built in $build"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; status=1; }
status=0

# The shipped conf next to a placeholder model (the real one may not be committed yet).
mkdir -p "$tmp/conf" "$tmp/models"
cp "$src/conf/cxrseg.xml" "$tmp/conf/"
echo placeholder > "$tmp/models/cxrseg.cxm"
"$bin" check-config --xsd "$src/conf/cxrseg.xsd" "$tmp/conf/cxrseg.xml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 0 ] || fail "shipped conf: exit $rc"
grep -q "^$tmp/conf/cxrseg.xml: OK\$" "$tmp/out" || fail "shipped conf: no OK line"
grep -q "CXRSEG on 127.0.0.1:11112" "$tmp/out" || fail "shipped conf: summary lacks the listener"
[ -s "$tmp/err" ] && fail "shipped conf: unexpected stderr: $(cat "$tmp/err")"

# The XSD is also found next to the conf file.
cp "$src/conf/cxrseg.xsd" "$tmp/conf/"
CXRSEG_XSD= "$bin" check-config "$tmp/conf/cxrseg.xml" >/dev/null 2>&1 || fail "XSD next to the conf not found"

# Every error, each as file:line: message.
f=$src/tests/config/several-rules.xml
"$bin" check-config --xsd "$src/conf/cxrseg.xsd" "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 4 ] || fail "several-rules: exit $rc, expected 4"
grep -q "^$f:9: spool/directory: 'relative/spool' is not an absolute path" "$tmp/err" || fail "several-rules: line 9"
grep -q "^$f:12: outputs/uid-root: '02.5' is not a valid UID root" "$tmp/err" || fail "several-rules: line 12"
grep -q "^$f:7: model/file: " "$tmp/err" || fail "several-rules: line 7"
grep -q "3 errors, not valid" "$tmp/err" || fail "several-rules: count"
[ -s "$tmp/out" ] && fail "several-rules: stdout not empty"

f=$src/tests/config/not-well-formed.xml
"$bin" check-config --xsd "$src/conf/cxrseg.xsd" "$f" 2>"$tmp/err"; rc=$?
[ $rc -eq 4 ] || fail "not-well-formed: exit $rc, expected 4"
grep -q "^$f:6: Opening and ending tag mismatch" "$tmp/err" || fail "not-well-formed: message"

"$bin" check-config >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] || fail "no argument: exit $rc, expected 1"
"$bin" check-config --bogus x.xml >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] || fail "unknown option: exit $rc, expected 1"
"$bin" check-config "$tmp/none.xml" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "missing file: exit $rc, expected 2"
grep -q "none.xml: cannot open: No such file or directory" "$tmp/err" || fail "missing file: message"
[ $status -eq 0 ] && echo "check-config: all cases passed"
exit $status
