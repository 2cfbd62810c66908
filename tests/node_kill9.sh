#!/bin/sh
# Node integration test 3: kill -9 of the node at random moments while a PACS sends a batch of 20
# chest CRs (each retried by the sender until acknowledged, as a PACS does), restart after each
# kill; in the end every acknowledged image has its result at the destination exactly once,
# counted by SOP Instance UID (each source has its own Study Instance UID, which its result keeps).
# Results are transport-test copies (the relay test build, tests/cxrseg-node-relay): the test is about the spool.
. "$(dirname "$0")/node_lib.sh"
use_relay_node
N=${CX_KILL9_N:-20}
KILLS=${CX_KILL9_KILLS:-5}
P=$(free_port); D=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml pacs "$D")"
start_dest "$D" "$T/recv"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"
make_copies "$N" "$T/in"

# The PACS: sends each image until it gets Success.
(
    for f in "$T"/in/*.dcm; do
        while :; do
            if storescu -v -to 5 -ta 5 -td 20 -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$f" > "$T/one.log" 2>&1 &&
                grep -q "Received Store Response (Success)" "$T/one.log"; then
                echo "$f" >> "$T/acked.txt"
                break
            fi
            echo "$f" >> "$T/retried.txt"
            sleep 0.3
        done
    done
) &
PACS_PID=$!
PIDS="$PIDS $PACS_PID"

rand_ms() { echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 2500 + 200 )); }
k=0
while [ $k -lt "$KILLS" ] && kill -0 "$PACS_PID" 2>/dev/null; do
    ms=$(rand_ms)
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill -9 "$NODE_PID" 2>/dev/null
    wait "$NODE_PID" 2>/dev/null
    k=$((k + 1))
    echo "kill -9 #$k after ${ms} ms ($(wc -l < "$T/acked.txt" 2>/dev/null || echo 0) acknowledged so far)"
    start_node "$T/cxrseg.xml"
    wait_echo "$P" || fail "node did not restart after kill #$k"
done
wait "$PACS_PID"
acked=$(sort -u "$T/acked.txt" | wc -l)
[ "$acked" -eq "$N" ] || fail "only $acked of $N images were acknowledged in the end"

wait_until 240 '[ "$(count_files "$T/recv")" -ge $N ]' || fail "destination holds $(count_files "$T/recv") of $N results"
outbox_empty pacs 60 # nothing left that could still arrive
missing=0
for f in "$T"/in/*.dcm; do
    study=$(dcmdump -s +P 0020,000d "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
    hits=$(for r in "$T"/recv/*; do dcmdump -s +P 0020,000d "$r"; done | grep -c "\[$study\]")
    [ "$hits" -eq 1 ] || { echo "source $f: $hits results at the destination"; missing=$((missing + 1)); }
done
[ $missing -eq 0 ] || fail "$missing sources without exactly one result"
files=$(count_files "$T/recv"); rec=$(count_receptions "$T/recv.log")
retries=$(wc -l < "$T/retried.txt" 2>/dev/null || echo 0)
requeued=$(grep -o "([0-9]* re-queued" "$T/node.log" | tr -dc '0-9\n' | awk '{s+=$1} END {print s+0}')
echo "kill9: $k kills, $N acknowledged, $retries sends retried by the PACS, $requeued jobs re-queued at restarts,"
echo "kill9: $files distinct result UIDs at the destination, $rec C-STOREs received ($((rec - files)) same-UID redeliveries)"
ok "every acknowledged image has exactly one result (by SOP Instance UID) after $k kill -9"
exit 0
