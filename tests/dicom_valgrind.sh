#!/bin/sh
# Runs the DICOM reading tests under valgrind (skipped when valgrind is absent, or with
# CX_SKIP_VALGRIND=1). Pass 1: everything whose memory is ours (corpus replay, memory input,
# 320 mutated inputs, threads, cxd allocator failures) with any leak or memory error as a failure. Pass 2: operator-new
# failure injection, memory errors only: DCMTK leaks the half-built object when new throws
# inside its parser, which is DCMTK's exception safety, not a leak of this layer.
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed: skipped"; exit 77; }
[ "${CX_SKIP_VALGRIND:-0}" = 1 ] && { echo "CX_SKIP_VALGRIND=1: skipped"; exit 77; }
# An ASan binary cannot run under valgrind (both replace malloc and ASan reserves terabytes of
# shadow memory); with --enable-sanitizers ASan/LSan check the same test_dicom run (its own test).
[ "${CX_SANITIZERS:-no}" = yes ] && { echo "built with --enable-sanitizers: valgrind cannot run ASan binaries (test_dicom itself runs under ASan/LSan): skipped"; exit 77; }
prog="${CX_BUILDDIR:-.}/tests/unit/test_dicom"
[ -x "$prog" ] || { echo "missing $prog"; exit 1; }
log="${TMPDIR:-/tmp}/cxd-valgrind.$$"
# somalloc=nouserintercepts: keep the test's own counting operator new instead of valgrind's.
vg="valgrind -q --soname-synonyms=somalloc=nouserintercepts --leak-check=full --error-exitcode=3"
rc=0
# test_dicom exits 77 when the shared real files are absent: its memory checks on everything
# else ran, and test_dicom itself reports the skip.
CXD_TEST_SELECT=strict CXD_MUTATIONS=40 $vg --errors-for-leak-kinds=definite,indirect --log-file="$log.1" "$prog"
r=$?; [ $r = 0 ] || [ $r = 77 ] || rc=1
echo "== pass 1 (strict, leaks are errors):"; cat "$log.1"
CXD_TEST_SELECT=new $vg --errors-for-leak-kinds=none --log-file="$log.2" "$prog"
r=$?; [ $r = 0 ] || [ $r = 77 ] || rc=1
echo "== pass 2 (operator new injection, memory errors only):"
errs=$(grep -cE "Invalid (read|write|free)|uninitialised|Mismatched|Jump to the invalid" "$log.2")
leaked=$(grep -E "are definitely lost in" "$log.2" | sed 's/==[0-9]*== //; s/ .*//; s/,//g' | awk '{ s += $1 } END { print s + 0 }')
echo "memory errors: $errs; bytes DCMTK left behind after injected bad_alloc: $leaked"
[ "$errs" = 0 ] || { cat "$log.2"; rc=1; }
rm -f "$log.1" "$log.2"
exit $rc
