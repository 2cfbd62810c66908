#!/bin/sh
# --enable-sanitizers only (Makefile.am runs it after every other test of make check): fails when
# any instrumented program of the suite (unit tests, cxrseg, cxrseg-node and its relay build in
# the background of the node tests, ...) reported a memory error, a leak or undefined behaviour,
# and prints each report:
#   - the ASan/LSan report files in $CX_SAN_REPORTS (report.PROGRAM.PID; the node tests also put
#     there the sanitizer lines of the node's own log, stderr.TEST.PID: tests/node_lib.sh);
#   - UBSan reports and any ASan/LSan report on stderr, in the other tests' logs (GCC's libubsan
#     writes to stderr whatever log_path says).
# The report files are removed afterwards, so that the next run starts clean (after an
# interrupted or partial run, e.g. make check TESTS=..., the reports left are shown next time).
set -u
[ "${CX_SANITIZERS:-no}" = yes ] || { echo "SKIP: not built with --enable-sanitizers"; exit 77; }
dir=${CX_SAN_REPORTS:?CX_SAN_REPORTS not set (run through make check)}
B=${CX_BUILDDIR:?CX_BUILDDIR not set (run through make check)}
pat='runtime error:|==ERROR: (Address|Leak)Sanitizer|^SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'
n=0
for f in "$dir"/report.* "$dir"/stderr.*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    echo "==== $(basename "$f") ($(date -r "$f" '+%F %T'))"
    cat "$f"
done
# The logs of this run's tests: each has its .trs next to it.
for trs in $(find "$B/tests" -name '*.trs' ! -name 'sanitizer_reports.trs'); do
    log=${trs%.trs}.log
    [ -f "$log" ] && grep -Eq "$pat" "$log" || continue
    n=$((n + 1))
    echo "==== ${log#"$B/"}: sanitizer report(s) on stderr"
    grep -E -A 12 "$pat" "$log" | head -n 120
done
rm -f "$dir"/report.* "$dir"/stderr.*
if [ $n -gt 0 ]; then
    echo "FAIL: sanitizer reports in $n file(s) (above)"
    exit 1
fi
echo "PASS: no sanitizer report from any program of the suite"
