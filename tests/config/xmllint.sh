#!/bin/sh
# The shipped conf and every example validate with the reference tool (xmllint, libxml2-utils)
# against conf/cxrseg.xsd, and a broken conf does not: the schema alone is usable by IT staff.
src=${CX_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v xmllint >/dev/null 2>&1 || { echo "SKIP: xmllint not installed (libxml2-utils)"; exit 77; }
status=0
for f in "$src"/conf/cxrseg.xml "$src"/conf/examples/*.xml; do
    [ -f "$f" ] || continue
    xmllint --noout --nonet --schema "$src/conf/cxrseg.xsd" "$f" || status=1
done
if xmllint --noout --nonet --schema "$src/conf/cxrseg.xsd" "$src/tests/config/out-of-range.xml" 2>/dev/null; then
    echo "FAIL: xmllint accepted tests/config/out-of-range.xml"; status=1
fi
exit $status
