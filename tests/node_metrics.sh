#!/bin/sh
# Node integration test: the HTTP endpoint (issue 16.2). /metrics is scraped with curl while a
# batch runs (6 copies of the chest CR and 1 extremity CR, which the body-part rule skips), then
# its counters are checked against what was sent and what the destination (a real storescp)
# received; `cxrseg-node status` must print the same counters; /healthz says ready, then, with the
# destination down for longer than http/destination-failing-seconds, not ready and why.
. "$(dirname "$0")/node_lib.sh"
command -v curl >/dev/null 2>&1 || skip "curl not installed (Debian package curl)"

P=$(free_port); D=$(free_port); H=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml pacs "$D")"
sed -i "s|</cxrseg>|  <http><enabled>true</enabled><port>$H</port><destination-failing-seconds>10</destination-failing-seconds></http>\n</cxrseg>|" "$T/cxrseg.xml"
start_dest "$D" "$T/recv"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node does not answer C-ECHO"
M="http://127.0.0.1:$H"
metric() { # NAME{LABELS} -> value (0 when absent)
    v=$(grep -F "$1 " "$T/metrics" | awk '{print $NF}' | head -n 1)
    echo "${v:-0}"
}
scrape() { curl -sf "$M/metrics" > "$T/metrics" || fail "GET /metrics failed"; }

code=$(curl -s -o "$T/health" -w '%{http_code}' "$M/healthz")
[ "$code" = 200 ] && grep -q "^ready" "$T/health" || fail "/healthz at start: $code $(cat "$T/health")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/nothing")
[ "$code" = 404 ] || fail "unknown path answered $code"
ok "/healthz ready at start, unknown paths 404"

make_copies 6 "$T/batch"
storescu -xv -to 30 -aet MODALITY -aec CXRSEG 127.0.0.1 "$P" "$EXTREMITY" > "$T/store0.log" 2>&1 ||
    fail "extremity CR not acknowledged: $(tail -n 3 "$T/store0.log")"
storescu -xw -to 30 -aet MODALITY -aec CXRSEG 127.0.0.1 "$P" "$T/batch"/*.dcm > "$T/store.log" 2>&1 &
SPID=$!
# scrape while the batch runs: keep a sample in which work is queued or running
i=0; busy=""
while [ $i -lt 600 ]; do
    curl -sf "$M/metrics" > "$T/sample" || fail "GET /metrics failed during the batch"
    q=$(awk '/^cxrseg_queue_objects\{state="(waiting|processing)"\}/ {s += $NF} END {print s + 0}' "$T/sample")
    if [ "$q" -gt 0 ] && [ -z "$busy" ]; then cp "$T/sample" "$T/during"; busy=$q; fi
    done_n=$(awk '/^cxrseg_processing_total\{outcome="done"\}/ {print $NF}' "$T/sample")
    [ "${done_n:-0}" -ge 6 ] && break
    sleep 0.2; i=$((i + 1))
done
wait $SPID || fail "storescu failed: $(tail -n 3 "$T/store.log")"
[ -n "$busy" ] || fail "no scrape saw work queued or running"
ok "scraped during the batch: $busy objects waiting or processing in one sample"
wait_until 60 '[ "$(count_receptions "$T/recv.log")" -ge 12 ]' || fail "only $(count_receptions "$T/recv.log") results delivered"
wait_until 10 'scrape; [ "$(metric "cxrseg_deliveries_total{destination=\"pacs\",outcome=\"sent\"}")" -ge 12 ]' ||
    fail "deliveries counter: $(grep deliveries "$T/metrics")"
scrape

acc=$(metric 'cxrseg_objects_total{outcome="accepted"}')
skp=$(metric 'cxrseg_objects_total{outcome="skipped",reason="body-part"}')
dn=$(metric 'cxrseg_processing_total{outcome="done"}')
sent=$(metric 'cxrseg_deliveries_total{destination="pacs",outcome="sent"}')
recv=$(count_receptions "$T/recv.log")
eng=$(metric 'cxrseg_stage_seconds_count{stage="engine"}')
jobs=$(metric 'cxrseg_processing_seconds_count')
[ "$acc" -eq 6 ] || fail "accepted $acc, sent 6 chest CRs"
[ "$skp" -eq 1 ] || fail "skipped (body-part) $skp, sent 1 extremity: $(grep objects_total "$T/metrics")"
[ "$dn" -eq 6 ] || fail "processed $dn of 6"
[ "$sent" -eq "$recv" ] || fail "deliveries counter $sent, storescp received $recv"
[ "$eng" -eq 6 ] && [ "$jobs" -eq 6 ] || fail "histogram counts: engine $eng, jobs $jobs"
# The stage times are real: each stage's sum is above zero and below the jobs' total.
total_s=$(metric 'cxrseg_processing_seconds_sum')
for stg in render engine write; do
    v=$(metric "cxrseg_stage_seconds_sum{stage=\"$stg\"}")
    awk -v v="$v" -v t="$total_s" 'BEGIN { exit !(v > 0 && v < t) }' ||
        fail "stage $stg: sum $v s, jobs' total $total_s s (a stage must take some time and less than the job)"
done
msha=$(sha256sum "$(model_file)" | cut -c1-64)
grep -q "^cxrseg_info{.*model_sha256=\"$msha\"} 1" "$T/metrics" || fail "model hash not in cxrseg_info"
grep -q '^cxrseg_spool_free_bytes [1-9]' "$T/metrics" || fail "no spool free bytes"
grep -q '^cxrseg_outbox_objects{destination="pacs",state="sent"} 12' "$T/metrics" || fail "outbox gauge: $(grep outbox "$T/metrics")"
ok "counters match: accepted $acc, skipped $skp (body-part), processed $dn, sent $sent = received $recv; engine p-count $eng"

"$NODE" status -c "$T/cxrseg.xml" > "$T/status.out" 2>&1 || fail "status failed: $(cat "$T/status.out")"
grep -q 'cxrseg_objects_total{outcome="accepted"} 6' "$T/status.out" &&
    grep -q 'cxrseg_deliveries_total{destination="pacs",outcome="sent"} '"$sent" "$T/status.out" ||
    fail "status does not show the same counters: $(cat "$T/status.out")"
ok "cxrseg-node status prints the same counters"

# The destination goes down: after 10 s of failures /healthz says not ready, naming it.
kill "$DEST_PID"; wait "$DEST_PID" 2>/dev/null
make_copies 1 "$T/late"
storescu -xw -to 30 -aet MODALITY -aec CXRSEG 127.0.0.1 "$P" "$T/late/cr1.dcm" > "$T/store2.log" 2>&1 || fail "storescu failed"
wait_until 60 '[ "$(curl -s -o "$T/health" -w "%{http_code}" "$M/healthz")" = 503 ]' || fail "/healthz stayed $(cat "$T/health")"
grep -q "not ready: destination pacs failing for" "$T/health" || fail "/healthz reason: $(cat "$T/health")"
ok "/healthz 503 with the destination down: $(cut -c1-120 "$T/health")"
start_dest "$D" "$T/recv"
wait_until 60 '[ "$(curl -s -o "$T/health" -w "%{http_code}" "$M/healthz")" = 200 ]' || fail "/healthz did not recover: $(cat "$T/health")"
ok "/healthz ready again once the destination takes results"
sed -n '/^# HELP cxrseg_objects_total/,/^cxrseg_processing_total/p' "$T/during" | head -n 12 > "$T/sample.txt"
echo "---- a /metrics sample during the batch"; cat "$T/sample.txt"; grep '^cxrseg_queue' "$T/during"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
