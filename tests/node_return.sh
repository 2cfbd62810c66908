#!/bin/sh
# Node integration test 8: return to sender. Images from calling AE "MODALITY1" go back to that AE
# at its configured address; images from another AE do not; the configured destination gets both.
. "$(dirname "$0")/node_lib.sh"
use_relay_node
P=$(free_port); D=$(free_port); R=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml pacs "$D")
    <return-to-sender><sender><calling-ae-title>MODALITY1</calling-ae-title><host>127.0.0.1</host><port>$R</port></sender></return-to-sender>"
"$NODE" -t -c "$T/cxrseg.xml" >/dev/null 2>&1 || fail "conf with return-to-sender rejected: $("$NODE" -t -c "$T/cxrseg.xml" 2>&1)"
start_dest "$D" "$T/pacs"
start_dest "$R" "$T/mod" MODALITY1
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"
make_copies 2 "$T/in"
storescu -xw -aet MODALITY1 -aec CXRSEG 127.0.0.1 "$P" "$T/in/cr1.dcm" >/dev/null 2>&1 || fail "send as MODALITY1"
storescu -xw -aet OTHER -aec CXRSEG 127.0.0.1 "$P" "$T/in/cr2.dcm" >/dev/null 2>&1 || fail "send as OTHER"
wait_until 120 '[ "$(count_files "$T/pacs")" -ge 2 ] && [ "$(count_files "$T/mod")" -ge 1 ]' ||
    fail "pacs has $(count_files "$T/pacs"), MODALITY1 has $(count_files "$T/mod") results"
outbox_empty pacs; outbox_empty return-MODALITY1 # nothing left that could still arrive
[ "$(count_files "$T/mod")" -eq 1 ] || fail "MODALITY1 received results of another AE's image"
grep -q "sent .* to return-MODALITY1" "$T/node.log" || fail "no log line for the return-to-sender delivery"
ok "results went back to MODALITY1 only for its own image; the pacs destination got both"
exit 0
