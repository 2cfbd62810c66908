#!/bin/sh
# Node integration test 4: 8 senders at once with 50 chest CRs in total: every C-STORE succeeds,
# every image is processed, every result arrives once, and the log holds no error line.
# Results are transport-test copies (the relay test build, tests/cxrseg-node-relay).
. "$(dirname "$0")/node_lib.sh"
use_relay_node
N=${CX_LOAD_N:-50}
S=8
P=$(free_port); D=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml pacs "$D")"
start_dest "$D" "$T/recv"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"
make_copies "$N" "$T/all"
i=0
for f in "$T"/all/*.dcm; do
    s=$((i % S)); mkdir -p "$T/s$s"; mv "$f" "$T/s$s/"; i=$((i + 1))
done
t0=$(date +%s.%N)
pids=""
s=0
while [ $s -lt $S ]; do
    storescu -v -xw -aet "PACS$s" -aec CXRSEG 127.0.0.1 "$P" "$T/s$s"/*.dcm > "$T/s$s.log" 2>&1 &
    pids="$pids $!"
    s=$((s + 1))
done
bad=0
for p in $pids; do wait "$p" || bad=$((bad + 1)); done
t1=$(date +%s.%N)
[ $bad -eq 0 ] || fail "$bad of $S storescu runs failed: $(cat "$T"/s*.log | grep -E '^E:|^F:' | head -n 5)"
acked=$(cat "$T"/s*.log | grep -c "Received Store Response (Success)")
[ "$acked" -eq "$N" ] || fail "$acked of $N C-STOREs succeeded"
ok "$S senders at once: $N of $N C-STOREs succeeded in $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}") s"
wait_until 600 '[ "$(count_files "$T/recv")" -ge $N ]' || fail "destination holds $(count_files "$T/recv") of $N results"
outbox_empty pacs 60 # nothing left that could still arrive
[ "$(count_receptions "$T/recv.log")" -eq "$N" ] || fail "$(count_receptions "$T/recv.log") receptions for $N results"
grep -q " error \[" "$T/node.log" && fail "errors in the log: $(grep ' error \[' "$T/node.log" | head -n 3)"
[ "$(grep -c "processed .* in [0-9]* ms" "$T/node.log")" -eq "$N" ] || fail "not every image was processed once"
ok "all $N processed and delivered once, no error in the log"
exit 0
