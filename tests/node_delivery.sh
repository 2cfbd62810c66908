#!/bin/sh
# Node integration test 2: delivery guarantees of the sender with two destinations. One is down
# while results are produced: the other still gets everything at once (no blocking); when the
# missing one comes up, it gets every result exactly once (counted by SOP Instance UID and by
# receptions). Results are transport-test copies (the relay test build, tests/cxrseg-node-relay) so the test does not
# depend on the model; the SEG/SR path is covered by node_basic.sh once the pipeline is linked.
. "$(dirname "$0")/node_lib.sh"
use_relay_node
N=4
P=$(free_port); UP=$(free_port); DOWN=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml up "$UP" UPAE) $(dest_xml down "$DOWN" DOWNAE)"
start_dest "$UP" "$T/up" UPAE
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"
make_copies $N "$T/in"
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T"/in/*.dcm > "$T/s.log" 2>&1 || fail "storescu: $(cat "$T/s.log")"

wait_until 120 '[ "$(count_files "$T/up")" -ge $N ]' || fail "destination 'up' got $(count_files "$T/up") of $N while 'down' was down"
grep -q "destination down .* unreachable" "$T/node.log" || fail "the down destination was not reported"
ok "destination 'up' received all $N results while 'down' was unreachable (not blocked)"
"$NODE" status -c "$T/cxrseg.xml" | grep -q "down *$N " || fail "status does not show $N waiting for 'down'"

# Down long enough to have been retried (not only tried once) before it comes up.
wait_until 30 'grep -q "destination down .* unreachable.*retry [2-9]" "$T/node.log"' ||
    fail "the down destination was not retried: $(grep "destination down" "$T/node.log" | tail -n 1)"
start_dest "$DOWN" "$T/down" DOWNAE
wait_until 60 '[ "$(count_files "$T/down")" -ge $N ]' || fail "destination 'down' got $(count_files "$T/down") of $N after coming up"
outbox_empty down; outbox_empty up # nothing left that could arrive twice
for d in up down; do
    files=$(count_files "$T/$d"); rec=$(count_receptions "$T/$d.log")
    [ "$files" -eq $N ] || fail "$d holds $files distinct SOP Instance UIDs, expected $N"
    [ "$rec" -eq $N ] || fail "$d received $rec C-STOREs for $N results (duplicates)"
done
ok "after coming up, 'down' received each of the $N results exactly once ($(count_receptions "$T/down.log") C-STOREs); 'up' too"

# A restart must not resend what was delivered (sent/ is the record).
kill -TERM "$NODE_PID"; wait "$NODE_PID"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not restart"
outbox_empty up
[ "$(count_receptions "$T/up.log")" -eq $N ] || fail "restart resent results to 'up'"
# Reprocessing the same source yields the same result UIDs, which are not sent again.
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T/in/cr1.dcm" >/dev/null 2>&1 || fail "resend of cr1"
u=$(sop_uid "$T/in/cr1.dcm")
wait_until 60 'grep -c "processed $u" "$T/node.log" | grep -q 2' || fail "second copy of cr1 not processed"
wait_until 30 'grep -q "already delivered to up" "$T/node.log"' || fail "no 'already delivered' log line"
outbox_empty up
[ "$(count_receptions "$T/up.log")" -eq $N ] || fail "a re-received source was delivered twice"
ok "restart and a re-sent source do not deliver anything twice"
exit 0
