#!/bin/sh
# Node integration test: no client can stall the accept path (issue 14.1). Raw-socket clients
# (tests/node/attack.py) send part of an A-ASSOCIATE-RQ, an RQ whose item length runs past the PDU,
# nothing at all (64 connections), a request dribbled byte by byte, and a P-DATA PDU cut short on
# an open association; while each holds its connections, a real sender (DCMTK echoscu, storescu)
# must associate at once, and the node must close each hostile connection within its timeout
# (ACSE 4 s here, DIMSE 3 s) and name the reason in its log. 127.0.0.2 stands for another host.
. "$(dirname "$0")/node_lib.sh"
A="/usr/bin/python3 $CX_SRCDIR/tests/node/attack.py"
/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0))' 2>/dev/null ||
    skip "cannot bind 127.0.0.2 (loopback network 127.0.0.0/8 not routed here)"

P=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "" "<acse-timeout-seconds>4</acse-timeout-seconds>
    <max-connections-per-host>8</max-connections-per-host>"
sed -i 's|<dimse-timeout-seconds>20</dimse-timeout-seconds>|<dimse-timeout-seconds>3</dimse-timeout-seconds>|' "$T/cxrseg.xml"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node does not answer C-ECHO"

now() { date +%s.%N; }
# real_sender WHAT: a C-ECHO (and, with "store", the chest CR) from 127.0.0.1 must complete in < 2.5 s.
real_sender() {
    t0=$(now)
    if [ "${1:-}" = store ]; then
        storescu -xw -to 10 -aet REAL -aec CXRSEG 127.0.0.1 "$P" "$CR" > "$T/real.log" 2>&1 || fail "storescu failed during $2: $(tail -n 3 "$T/real.log")"
    else
        echoscu -to 10 -aet REAL -aec CXRSEG 127.0.0.1 "$P" > "$T/real.log" 2>&1 || fail "echoscu failed during $2: $(cat "$T/real.log")"
    fi
    dt=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    awk -v d="$dt" 'BEGIN { exit !(d < 2.5) }' || fail "a real sender needed $dt s during $2"
    echo "$dt"
}
# attack MODE HOLD [N]: starts attack.py from 127.0.0.2 and waits until its connections are open.
attack() {
    rm -f "$T/ready"
    $A "$1" 127.0.0.1 "$P" "$2" ${3:-} --source 127.0.0.2 --ready "$T/ready" > "$T/$1.out" 2>&1 &
    APID=$!; PIDS="$PIDS $APID"
    wait_until 10 '[ -f "$T/ready" ]' || fail "$1: attacker did not connect: $(cat "$T/$1.out")"
}
# closed_within FILE SECONDS: every connection reported closed by the node within SECONDS.
closed_within() {
    n=$(grep -c . "$1"); c=$(awk -v m="$2" '$1=="closed-by-node" && $2<=m' "$1" | wc -l)
    [ "$n" -gt 0 ] && [ "$c" -eq "$n" ] || fail "$(basename "$1"): $c of $n connections closed within $2 s: $(sort "$1" | uniq -c | tr '\n' ';')"
}

for mode in partial badlen slow; do
    attack $mode 15
    dt=$(real_sender echo "$mode")
    wait $APID
    closed_within "$T/$mode.out" 7
    ok "$mode request: real C-ECHO in $dt s meanwhile; the node closed it after $(awk '{print $2}' "$T/$mode.out") s"
done
grep -q "closed: no complete A-ASSOCIATE-RQ within 4 s" "$T/node.log" || fail "no ACSE-timeout reason in the log"

# 64 silent connections from one host: 8 held (max-connections-per-host), 56 closed on accept.
attack silent 15 64
dt=$(real_sender store "64 silent connections")
wait $APID
closed_within "$T/silent.out" 7
early=$(awk '$1=="closed-by-node" && $2<1.5' "$T/silent.out" | wc -l)
[ "$early" -ge 56 ] || fail "only $early of 64 silent connections closed at once (expected >= 56)"
grep -q "too many connections from this host" "$T/node.log" || fail "no per-host refusal in the log"
ok "64 silent connections: real C-STORE of the CR in $dt s meanwhile; $early closed on accept, all within 7 s"

# A PDU cut short on an open association (from 127.0.0.1 itself): aborted after the DIMSE timeout.
$A cutpdu 127.0.0.1 "$P" 15 > "$T/cutpdu.out" 2>&1 || fail "cutpdu: $(cat "$T/cutpdu.out")"
closed_within "$T/cutpdu.out" 6
ok "P-DATA cut short: closed after $(awk '{print $2}' "$T/cutpdu.out") s (DIMSE timeout 3 s)"

real_sender echo "the end" > /dev/null
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
ok "node still serving, stopped cleanly"
