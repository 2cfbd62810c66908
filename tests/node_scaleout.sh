#!/bin/sh
# Scale-out test (issue 16.4): three nodes, each with its own spool, behind Debian's HAProxy in TCP
# mode (health check: each node's /healthz). 200 copies of the chest CR go in over 20
# associations (one storescu each, as a PACS would send); one node is killed with -9 mid-batch and
# restarted on its own spool. A group whose association failed is sent again, as a PACS resends
# what was not acknowledged. Checked: every image gets its SEG and SR at the destination (the
# results' UIDs are derived from the source, so a redo overwrites instead of adding), and the
# per-node counts. SCALE_N overrides the batch size.
. "$(dirname "$0")/node_lib.sh"
command -v haproxy >/dev/null 2>&1 || skip "haproxy not installed (Debian package haproxy)"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
N=${SCALE_N:-200}; G=20

D=$(free_port); F=$(free_port)
start_dest "$D" "$T/recv"
for k in 1 2 3; do
    eval "P$k=\$(free_port); H$k=\$(free_port)"
    eval "p=\$P$k; h=\$H$k"
    mkdir -p "$T/n$k"
    write_conf "$T/n$k.xml" "$p" "$(dest_xml pacs "$D")" "" "" 1
    sed -i "s|$T/spool|$T/n$k/spool|; s|</cxrseg>|  <http><enabled>true</enabled><port>$h</port></http>\n</cxrseg>|" "$T/n$k.xml"
done
start_k() { # K
    eval "conf=$T/n$1.xml"
    "$NODE" -c "$conf" >> "$T/n$1.log" 2>&1 &
    eval "PID$1=\$!"; PIDS="$PIDS $!"
}
for k in 1 2 3; do start_k $k; done
for k in 1 2 3; do eval "wait_echo \$P$k" || fail "node $k did not start"; done

cat > "$T/haproxy.cfg" <<EOF
global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend dicom
    bind 127.0.0.1:$F
    default_backend nodes
backend nodes
    balance leastconn
    option httpchk GET /healthz
    server n1 127.0.0.1:$P1 check port $H1 inter 1s fall 2 rise 1
    server n2 127.0.0.1:$P2 check port $H2 inter 1s fall 2 rise 1
    server n3 127.0.0.1:$P3 check port $H3 inter 1s fall 2 rise 1
EOF
haproxy -f "$T/haproxy.cfg" -db > "$T/haproxy.log" 2>&1 &
PIDS="$PIDS $!"
wait_echo "$F" CXRSEG 15 || fail "no C-ECHO through HAProxy: $(tail -n 5 "$T/haproxy.log")"
ok "3 nodes behind HAProxy (TCP, /healthz checks) on 127.0.0.1:$F"

make_copies "$N" "$T/src"
i=0
for f in "$T/src"/*.dcm; do g=$((i % G)); mkdir -p "$T/g$g"; ln -s "$f" "$T/g$g/"; i=$((i + 1)); done
send_group() { storescu -xw -to 30 -aet PACS -aec CXRSEG 127.0.0.1 "$F" "$T/g$1"/*.dcm > "$T/g$1.log" 2>&1; }
t0=$(date +%s)
g=0
while [ $g -lt $G ]; do
    send_group $g &
    eval "S$g=\$!"
    g=$((g + 1))
    if [ $g -eq 8 ]; then kill -9 "$PID2"; wait "$PID2" 2>/dev/null; KILLED_AT=$(date +%s); fi
    [ $g -eq 12 ] && start_k 2
    [ $((g % 4)) -eq 0 ] && sleep 1
done
resent=0
g=0
while [ $g -lt $G ]; do
    eval "wait \$S$g" || { resent=$((resent + 1)); send_group $g || send_group $g || fail "group $g failed twice: $(tail -n 3 "$T/g$g.log")"; }
    g=$((g + 1))
done
ok "$N images sent over $G associations; node 2 killed -9 mid-batch and restarted; $resent groups resent"

want=$((2 * N))
# storescp -uf names each file by its SOP Instance UID: a redone result overwrites its file.
uniq_results() { count_files "$T/recv"; }
wait_until 900 '[ "$(uniq_results)" -ge '"$want"' ]' ||
    fail "$(uniq_results) distinct results of $want at the destination"
t1=$(date +%s)
recv=$(count_receptions "$T/recv.log")
counts=""
for k in 1 2 3; do
    c=$(grep -c " processed " "$T/n$k.log")
    counts="$counts n$k=$c"
done
ok "every image has its SEG and SR: $(uniq_results) distinct results for $N images ($recv receptions, $((recv - want)) redone after the kill); processed per node:$counts; $((t1 - t0)) s"
for k in 1 3; do eval "kill \$PID$k"; done
