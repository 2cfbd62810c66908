#!/bin/sh
# Node integration test 6: an independent, non-DCMTK sender (npm dcmjs-dimse 0.3.3, Node.js) sends
# the real chest CR, so interoperability is not DCMTK talking to itself; the results (SEG + SR)
# reach a storescp destination. dcmjs-dimse is installed from npm into the build tree on first
# use; the test skips (77) when node/npm are missing or npm cannot install it.
. "$(dirname "$0")/node_lib.sh"
command -v node >/dev/null 2>&1 || skip "node (Node.js) not installed"
NPM_DIR="${CX_NPM_DIR:-$CX_BUILDDIR/npm}"
if [ ! -d "$NPM_DIR/node_modules/dcmjs-dimse" ]; then
    command -v npm >/dev/null 2>&1 || skip "npm not installed"
    mkdir -p "$NPM_DIR"
    npm install --no-audit --no-fund --prefix "$NPM_DIR" dcmjs-dimse@0.3.3 > "$T/npm.log" 2>&1 ||
        skip "npm could not install dcmjs-dimse@0.3.3 ($(tail -n 1 "$T/npm.log"))"
fi
P=$(free_port); D=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml pacs "$D")"
start_dest "$D" "$T/recv"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"
NODE_PATH="$NPM_DIR/node_modules" node "$CX_SRCDIR/tests/node_dcmjs_send.js" 127.0.0.1 "$P" JSPACS CXRSEG "$CR" \
    > "$T/js.log" 2>&1 || fail "dcmjs-dimse send failed: $(grep -v INFO "$T/js.log" | tail -n 5)"
grep -q "^echo 0x0000" "$T/js.log" || fail "no C-ECHO success from dcmjs-dimse"
grep -q "^store .* 0x0000" "$T/js.log" || fail "no C-STORE success from dcmjs-dimse"
uid=$(sop_uid "$CR")
grep -q "received $uid .* from JSPACS@127.0.0.1" "$T/node.log" || fail "reception from JSPACS not logged"
ok "dcmjs-dimse: C-ECHO and C-STORE (JPEG 2000) accepted"
wait_until 180 '[ "$(count_files "$T/recv")" -ge 2 ]' || fail "results did not arrive ($(grep "$uid" "$T/node.log" | tail -n 1))"
ls "$T/recv" | grep -q "^SG\." || fail "no SEG at the destination: $(ls "$T/recv")"
ls "$T/recv" | grep -q "^SR" || fail "no SR at the destination: $(ls "$T/recv")"
ok "results of the dcmjs-dimse-sent image delivered: $(ls "$T/recv" | tr '\n' ' ')"
exit 0
