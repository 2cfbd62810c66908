#!/bin/sh
# Node integration test 7: a real small file system as the spool (a 4 MB tmpfs, needs root to
# mount; skips otherwise). With <min-free-disk-mb>1</min-free-disk-mb> the node answers Out of
# Resources once the disk is nearly full, instead of failing a write, and every acknowledged image
# is processed; after space is freed (processing deletes the sources) it accepts again.
. "$(dirname "$0")/node_lib.sh"
use_relay_node
[ "$(id -u)" -eq 0 ] || skip "mounting a tmpfs needs root"
mkdir -p "$T/spool"
mount -t tmpfs -o size=4m cxrseg-test "$T/spool" 2>/dev/null || skip "cannot mount a tmpfs here"
trap 'umount "$T/spool" 2>/dev/null; cleanup' EXIT INT TERM
P=$(free_port); D=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml pacs "$D")" "" "<quota-mb>100</quota-mb>" 1
sed -i 's|<min-free-disk-mb>0</min-free-disk-mb>|<min-free-disk-mb>1</min-free-disk-mb>|' "$T/cxrseg.xml"
# No destination yet: results pile up in the outbox and fill the disk.
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start: $(tail -n 3 "$T/node.log")"
make_copies 8 "$T/in"
storescu -v -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T"/in/*.dcm > "$T/s.log" 2>&1
grep -qi "OutOfResources\|Out of Resources" "$T/s.log" || fail "no Out of Resources with a full disk: $(grep -i response "$T/s.log")"
grep -q "disk nearly full" "$T/node.log" || fail "the log does not say the disk is nearly full"
acked=$(grep -c "Received Store Response (Success)" "$T/s.log")
for f in "$T"/in/*.dcm; do
    u=$(sop_uid "$f")
    grep -q "received $u" "$T/node.log" || continue
    wait_until 120 'grep -q "processed $u" "$T/node.log"' || fail "acknowledged $u lost"
done
ok "4 MB spool: $acked acknowledged, the rest refused with Out of Resources ($(grep -o 'disk nearly full[^)]*' "$T/node.log" | head -n 1)); all acknowledged processed"
start_dest "$D" "$T/recv"
wait_until 60 '[ "$(count_files "$T/recv")" -ge "$acked" ]' || fail "results not delivered after the destination came up"
ok "results delivered once the destination came up"
exit 0
