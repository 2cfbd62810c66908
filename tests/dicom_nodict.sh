#!/bin/sh
# Without a loadable DICOM data dictionary cxd_init must fail with a message that says how to
# fix it (the test program prints cxd_init's message and exits 1 before running any case).
prog="${CX_BUILDDIR:-.}/tests/unit/test_dicom"
[ -x "$prog" ] || { echo "missing $prog"; exit 1; }
out=$(DCMDICTPATH=/nonexistent/dicom.dic "$prog" 2>&1)
rc=$?
echo "exit $rc: $out"
[ "$rc" = 1 ] || exit 1
echo "$out" | grep -q "init: the DICOM data dictionary is not loaded (DCMDICTPATH=/nonexistent/dicom.dic)" || exit 1
echo "$out" | grep -q "DcmDataDictionary" && { echo "DCMTK printed on its own"; exit 1; }
exit 0
