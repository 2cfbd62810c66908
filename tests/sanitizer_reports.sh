#!/bin/sh
# --enable-sanitizers only (Makefile.am runs it after every other test of make check): fails when
# any instrumented program of the suite (unit tests, cxrseg, cxrseg-node and its relay build in
# the background of the node tests, ...) wrote an AddressSanitizer, LeakSanitizer or
# UndefinedBehaviorSanitizer report into $CX_SAN_REPORTS, and prints each report with the
# program's name. The reports are removed afterwards, so that the next run starts clean (after an
# interrupted or partial run, e.g. make check TESTS=..., the reports left are shown next time).
set -u
[ "${CX_SANITIZERS:-no}" = yes ] || { echo "SKIP: not built with --enable-sanitizers"; exit 77; }
dir=${CX_SAN_REPORTS:?CX_SAN_REPORTS not set (run through make check)}
n=0
for f in "$dir"/report.*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    echo "==== $(basename "$f") ($(date -r "$f" '+%F %T'))"
    cat "$f"
done
rm -f "$dir"/report.*
if [ $n -gt 0 ]; then
    echo "FAIL: $n sanitizer report(s) (file names: report.PROGRAM.PID)"
    exit 1
fi
echo "PASS: no sanitizer report from any program of the suite"
