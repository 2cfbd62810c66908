#!/bin/sh
# bench/node.sh: end-to-end benchmark of cxrseg-node on this machine.
#   N images (copies of the real chest CR with new UIDs, default 100) are sent with storescu in one
#   association; a DCMTK storescp is the destination. Measured:
#   - per-image latency from the end of the C-STORE (node log "received ... queued") to the result
#     confirmed by the destination (node log "sent <result uid>"), p50 and p95;
#   - throughput in images per hour (first reception to last delivery);
#   - ingest rate (images/s during the storescu run) against a plain storescp receiving the same
#     files, and their ratio (the node's workers are busy while it ingests);
#   - the node's peak RSS (VmHWM);
#   - the stages of each image (the node's log at debug level): receive, commit (fsync + rename),
#     open and parse, decode, window and resize, engine, SEG/SR encode, send; p50 over the
#     isolated images and over the batch.
# Usage: bench/node.sh [N]     Environment: CX_BUILDDIR (default ./build), CX_SHARED, WORKERS (2),
#        THREADS (threads per worker, 1), MODEL (default: models/cxrseg.cxm, else the test model),
#        SOURCE: cr (the real JPEG 2000 CR RG1, 1841 x 1955, default) or dx (an uncompressed
#        2048 x 2560 DX for presentation made by tests/make_synthetic_cr.py --dx).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100}
CX_SRCDIR=$top
CX_BUILDDIR=${CX_BUILDDIR:-$top/build}
CX_SHARED=${CX_SHARED:-$top/../shared}
export CX_SRCDIR CX_BUILDDIR CX_SHARED
. "$top/tests/node_lib.sh"
trap - EXIT
trap cleanup EXIT INT TERM

model=${MODEL:-$(model_file)}
case "${SOURCE:-cr}" in
cr) ;;
dx) /usr/bin/python3 "$top/tests/make_synthetic_cr.py" --dx 2048x2560 "$T/dx" "$top" > "$T/dx.log" 2>&1 ||
        fail "could not make the DX: $(tail -n 1 "$T/dx.log")"
    CR="$T/dx/dx-2048x2560.dcm" ;;
*) fail "SOURCE=${SOURCE}: expected cr or dx" ;;
esac
P=$(free_port); D=$(free_port); PLAIN=$(free_port)
write_conf "$T/cxrseg.xml" "$P" "$(dest_xml pacs "$D")" "" "" "${WORKERS:-2}"
sed -i "s|<model><file>.*</file></model>|<model><file>$model</file></model>|; s|<workers><count>|<workers><threads-per-worker>${THREADS:-1}</threads-per-worker><count>|" "$T/cxrseg.xml"
sed -i 's|<job-timeout-seconds>120</job-timeout-seconds>|<job-timeout-seconds>600</job-timeout-seconds>|; s|<level>info</level>|<level>debug</level>|' "$T/cxrseg.xml"
echo "bench: $N copies of $(basename "$CR"), model $model, ${WORKERS:-2} workers x ${THREADS:-1} threads"
make_copies "$N" "$T/in"
bytes=$(du -sb "$T/in" | cut -f1)

# Plain storescp on the same files (bit-preserving to disk, like the node).
mkdir -p "$T/plain"
storescp -aet PLAIN -od "$T/plain" +xa -uf "$PLAIN" > /dev/null 2>&1 &
PLAIN_PID=$!; PIDS="$PIDS $PLAIN_PID"
wait_echo "$PLAIN" PLAIN 10 || fail "plain storescp did not start"
t0=$(date +%s.%N)
storescu -xw -aet PACS -aec PLAIN 127.0.0.1 "$PLAIN" "$T"/in/*.dcm > "$T/plain.log" 2>&1 || fail "storescu to plain storescp"
t1=$(date +%s.%N)
kill "$PLAIN_PID"

start_dest "$D" "$T/recv"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"
# Warm-up image so the first measured one does not pay for page faults of the model.
make_copies 1 "$T/warm"
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T/warm/cr1.dcm" >/dev/null 2>&1
wu=$(sop_uid "$T/warm/cr1.dcm")
wait_until 300 'grep -q "processed $wu" "$T/node.log"' || fail "warm-up image not processed"
# Phase 1, isolated latency: K images one at a time, each after the previous one's results arrived
# (the latency a radiologist sees when the node is not behind).
K=${K:-10}
make_copies "$K" "$T/iso"
for f in "$T"/iso/*.dcm; do
    before=$(grep -c "sent .* to pacs" "$T/node.log")
    storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$f" >/dev/null 2>&1 || fail "storescu (isolated)"
    wait_until 300 '[ "$(grep -c "sent .* to pacs" "$T/node.log")" -ge $((before + 2)) ]' || fail "isolated image not delivered"
done
iso_uids=$(for f in "$T"/iso/*.dcm; do sop_uid "$f"; done | tr '\n' ' ')
sleep 1
# Phase 2, batch: all N at once (throughput, ingest rate while the workers are busy).
t2=$(date +%s.%N)
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T"/in/*.dcm > "$T/node-send.log" 2>&1 || fail "storescu to the node"
t3=$(date +%s.%N)
wait_until $((N * 30 + 60)) '[ "$(grep -c "sent .* to pacs" "$T/node.log")" -ge $((2 * N + 2 * K + 2)) ]' ||
    fail "only $(grep -c "sent .* to pacs" "$T/node.log") results delivered"
rss=$(grep VmHWM "/proc/$NODE_PID/status" | awk '{print $2}')

/usr/bin/python3 - "$T/node.log" "$wu" "$N" "$t0" "$t1" "$t2" "$t3" "$bytes" "$rss" "$iso_uids" <<'EOF'
import re, sys, datetime
log, warm, n, t0, t1, t2, t3, nbytes, rss, iso = sys.argv[1:]
iso = set(iso.split())
n = int(n)
def ts(line):
    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
recv, res_of, sent, engine = {}, {}, {}, []
ING, WRK = {}, {}  # per source UID: the ingest stages, the worker stages (ms)
send_ms = {}       # per result UID: the C-STORE of its association (ms for all objects of it)
for line in open(log):
    m = re.search(r"\[ingest\] .*stages of (\S+): receive ([\d.]+) ms .* commit \(fsync \+ rename\) ([\d.]+) ms", line)
    if m: ING[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    m = re.search(r"\[worker\] .*stages of (\S+): open and parse ([\d.]+) ms, decode ([\d.]+) ms, window and resize "
                  r"([\d.]+) ms \(\S+\), engine ([\d.]+) ms, SEG/SR encode ([\d.]+) ms", line)
    if m: WRK[m.group(1)] = tuple(float(m.group(k)) for k in range(2, 7))
    m = re.search(r"sent (\S+) to pacs .* ([\d.]+) ms for", line)
    if m: send_ms[m.group(1)] = float(m.group(2))
    m = re.search(r"received (\S+) \(", line)
    if m: recv[m.group(1)] = ts(line)
    m = re.search(r"processed (\S+) in (\d+) ms: .*engine (\d+) ms.*results \(([^)]*)\)", line)
    if m:
        res_of[m.group(1)] = [u.strip() for u in m.group(4).split(",")]
        engine.append(int(m.group(3)))
    m = re.search(r"sent (\S+) to pacs", line)
    if m: sent[m.group(1)] = ts(line)
lat, ilat = [], []
for src, t in recv.items():
    if src == warm or src not in res_of: continue
    ends = [sent[u] for u in res_of[src] if u in sent]
    if len(ends) == len(res_of[src]):
        (ilat if src in iso else lat).append(max(ends) - t)
lat.sort(); ilat.sort()
def pct(v, p): return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]
batch = [s for s in recv if s != warm and s not in iso]
first = min(recv[s] for s in batch)
last = max(sent[u] for s in batch if s in res_of for u in res_of[s] if u in sent)
plain = n / (float(t1) - float(t0)); node = n / (float(t3) - float(t2))
engine.sort()
print("bench: isolated latency (%d images one at a time), end of C-STORE -> SEG+SR confirmed by the destination: p50 %.2f s, p95 %.2f s" % (len(ilat), pct(ilat, 50), pct(ilat, 95)))
print("bench: batch of %d at once: latency incl. queueing p50 %.1f s, p95 %.1f s (%d measured)" % (n, pct(lat, 50), pct(lat, 95), len(lat)))
print("bench: engine time per image p50 %d ms" % engine[len(engine) // 2])
print("bench: throughput            %.0f images/hour (%.1f s for %d images)" % (n / (last - first) * 3600, last - first, n))
print("bench: ingest                node %.1f images/s (%.1f MB/s), plain storescp %.1f images/s, ratio %.2f" % (node, int(nbytes) / (float(t3) - float(t2)) / 1e6, plain, node / plain))
print("bench: node peak RSS         %.0f MB" % (int(rss) / 1024.0))
names = ["receive", "commit (fsync+rename)", "open+parse", "decode", "window+resize", "engine", "SEG/SR encode", "send"]
def stages(uids):
    rows = []
    for u in uids:
        if u in ING and u in WRK and u in res_of:
            sends = [send_ms[r] for r in res_of[u] if r in send_ms]
            rows.append(list(ING[u]) + list(WRK[u]) + [max(sends) if sends else float("nan")])
    return rows
for title, uids in (("isolated", [u for u in recv if u in iso]), ("batch", batch)):
    rows = stages(uids)
    if not rows:
        print("bench: stages (%s): none logged (the node's log level must be debug)" % title)
        continue
    med = [sorted(r[k] for r in rows)[len(rows) // 2] for k in range(len(names))]
    print("bench: stages p50 (%s, %d images, ms): %s" % (title, len(rows), ", ".join(
        "%s %.0f" % (nm, v) for nm, v in zip(names, med))))
EOF
