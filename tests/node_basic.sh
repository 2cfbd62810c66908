#!/bin/sh
# Node integration test 1: configuration check, port in use, C-ECHO, allow-lists (calling AE, host)
# with their A-ASSOCIATE-RJ reasons, SIGHUP reload (bad file keeps the old configuration), the
# real chest CR end to end, the extremity CR skipped by rule, a corrupt object failed with its
# reason while the node carries on, a full spool answered with Out of Resources, SIGTERM drain.
. "$(dirname "$0")/node_lib.sh"

P=$(free_port); D=$(free_port); U=$(free_port)
AUDIT_TO="$T/audit.jsonl"
# Two destinations: "pacs" accepts every transfer syntax, "plain" only the uncompressed ones (so the
# node must convert its RLE Lossless SEG for it).
DESTS="$(dest_xml pacs "$D")$(dest_xml plain "$U" PLAIN)"
write_conf "$T/cxrseg.xml" "$P" "$DESTS"

# -t: valid, then invalid with file:line and exit code 4.
out=$("$NODE" -t -c "$T/cxrseg.xml" 2>&1) || fail "-t on a valid conf: $out"
echo "$out" | grep -q "OK" || fail "-t did not say OK: $out"
sed 's|<port>'"$P"'</port>|<port>99999</port>|' "$T/cxrseg.xml" > "$T/bad.xml"
out=$("$NODE" -t -c "$T/bad.xml" 2>&1); rc=$?
[ $rc -eq 4 ] || fail "-t on a bad conf exited $rc, expected 4"
echo "$out" | grep -q "bad.xml:[0-9]*:" || fail "no file:line in: $out"
ok "-t checks the configuration (exit 0 / 4 with file:line)"

# Usage errors: exit 1 with the message and the usage; "-t" after the file is fine.
out=$("$NODE" -c 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^cxrseg-node: option -c needs a value" || fail "-c without a file: $rc $out"
out=$("$NODE" -c "$T/cxrseg.xml" --bogus 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^cxrseg-node: unknown option '--bogus'" || fail "unknown option: $rc $out"
"$NODE" -c "$T/cxrseg.xml" -t >/dev/null 2>&1 || fail "-c FILE -t refused"
ok "usage errors -> exit 1 with the message"

# Port in use: a start-up error with exit code 5.
storescp -aet BUSY "$P" >/dev/null 2>&1 &
BUSY=$!; PIDS="$PIDS $BUSY"
wait_echo "$P" BUSY 10 || fail "could not occupy port $P"
"$NODE" -c "$T/cxrseg.xml" > "$T/busy.log" 2>&1; rc=$?
[ $rc -eq 5 ] || fail "port in use: exit $rc, expected 5 ($(cat "$T/busy.log"))"
grep -q "cannot listen on" "$T/busy.log" || fail "port in use: no clear message"
kill $BUSY; wait $BUSY 2>/dev/null
ok "port in use -> exit 5: $(grep -o 'cannot listen.*' "$T/busy.log" | head -n 1)"

start_dest "$D" "$T/recv"
mkdir -p "$T/plain"
storescp -v -aet PLAIN -od "$T/plain" -uf "$U" >> "$T/plain.log" 2>&1 &
PIDS="$PIDS $!"
wait_echo "$U" PLAIN 10 || fail "the uncompressed-only storescp did not start"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node does not answer C-ECHO"
ok "C-ECHO"
# the model's full SHA-256 and whether its integrity digests were checked are in the start log
msha=$(sha256sum "$(model_file)" | cut -c1-64)
grep -q "model.*(sha256 $msha, integrity digests \(verified\|none\))" "$T/node.log" ||
    fail "model SHA-256 $msha not in the start log: $(grep -m1 'model' "$T/node.log")"
ok "model in the log: $(grep -o 'sha256 [0-9a-f]*, integrity digests [a-z]*' "$T/node.log" | head -n 1)"

# Calling-AE allow-list, applied by SIGHUP; a broken file on SIGHUP keeps the old configuration.
write_conf "$T/cxrseg.xml" "$P" "$DESTS" \
    "<allowed-calling-ae-titles><ae-title>PACS</ae-title><ae-title>PROBE</ae-title></allowed-calling-ae-titles>"
kill -HUP "$NODE_PID"
wait_until 5 'grep -q "configuration reloaded" "$T/node.log"' || fail "no reload"
out=$(echoscu -aet EVIL -aec CXRSEG 127.0.0.1 "$P" 2>&1) && fail "unknown calling AE was accepted"
echo "$out" | grep -q "Calling AE Title Not Recognized" || fail "wrong reject reason: $out"
grep -q "EVIL@127.0.0.1.*calling AE title not recognized" "$T/node.log" || fail "reject not logged"
echoscu -aet PACS -aec CXRSEG 127.0.0.1 "$P" >/dev/null 2>&1 || fail "allowed AE rejected"
out=$(echoscu -aet PACS -aec OTHER 127.0.0.1 "$P" 2>&1) && fail "wrong called AE accepted"
echo "$out" | grep -q "Called AE Title Not Recognized" || fail "wrong reason for called AE: $out"
ok "unknown calling AE / called AE rejected with their A-ASSOCIATE-RJ reasons"

cp "$T/cxrseg.xml" "$T/good.xml"
echo "<broken" >> "$T/cxrseg.xml"
kill -HUP "$NODE_PID"
wait_until 5 'grep -q "reload failed: keeping the running configuration" "$T/node.log"' || fail "bad reload not reported"
echoscu -aet PACS -aec CXRSEG 127.0.0.1 "$P" >/dev/null 2>&1 || fail "node stopped answering after a bad reload"
ok "SIGHUP with a broken file keeps the old configuration and says why"

# Host allow-list: 127.0.0.1 is not in 10.0.0.0/8.
write_conf "$T/cxrseg.xml" "$P" "$DESTS" "<allowed-hosts><host>10.0.0.0/8</host></allowed-hosts>"
reload_node
out=$(echoscu -aet PACS -aec CXRSEG 127.0.0.1 "$P" 2>&1) && fail "host outside the allow-list accepted"
grep -q "calling host not allowed" "$T/node.log" || fail "host reject not logged"
cp "$T/good.xml" "$T/cxrseg.xml"; reload_node
echoscu -aet PACS -aec CXRSEG 127.0.0.1 "$P" >/dev/null 2>&1 || fail "allowed again after reload"
ok "unknown host rejected ($(echo "$out" | grep -o 'Reason: .*' | head -n 1))"

# The real chest CR, end to end.
uid=$(sop_uid "$CR")
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$CR" > "$T/s1.log" 2>&1 || fail "storescu of the chest CR: $(cat "$T/s1.log")"
grep -q "received $uid" "$T/node.log" || fail "reception of $uid not logged"
wait_until 120 'grep -q "processed $uid\|failed $uid" "$T/node.log"' || fail "$uid not processed"
grep -q "failed $uid" "$T/node.log" && fail "the real chest CR failed: $(grep "failed $uid" "$T/node.log")"
wait_until 60 '[ "$(count_files "$T/recv")" -ge 2 ]' || fail "results did not arrive at the destination"
seg=$(ls "$T/recv" | grep "^SG\." | head -n 1); sr=$(ls "$T/recv" | grep "^SR" | head -n 1)
[ -n "$seg" ] || fail "no SEG received: $(ls "$T/recv")"
[ -n "$sr" ] || fail "no SR received: $(ls "$T/recv")"
dcmdump "$T/recv/$seg" | grep -q "\[$uid\].*ReferencedSOPInstanceUID" || fail "the SEG does not reference the source $uid"
if command -v dciodvfy >/dev/null 2>&1; then
    for f in "$seg" "$sr"; do
        dciodvfy -new "$T/recv/$f" > "$T/vfy.txt" 2>&1
        grep -q "^Error" "$T/vfy.txt" && fail "dciodvfy errors in $f: $(grep '^Error' "$T/vfy.txt" | head -n 3)"
    done
    ok "dciodvfy: no errors in the received SEG and SR"
fi
ok "SEG ($seg) and SR ($sr) of the chest CR received by the destination"

# The SEG as written (RLE Lossless) to the destination that accepts it, converted to Explicit VR
# Little Endian for the one that does not; the same masks pixel for pixel.
dcmdump +P 0002,0010 "$T/recv/$seg" | grep -q "=RLELossless" || fail "the SEG was not sent RLE Lossless: $(dcmdump +P 0002,0010 "$T/recv/$seg")"
wait_until 60 '[ -f "$T/plain/$seg" ]' || fail "the uncompressed-only destination got no SEG: $(ls "$T/plain")"
dcmdump +P 0002,0010 "$T/plain/$seg" | grep -q "=LittleEndianExplicit\|=LittleEndianImplicit" ||
    fail "the SEG reached the uncompressed-only destination as $(dcmdump +P 0002,0010 "$T/plain/$seg")"
if /usr/bin/python3 -c 'import pydicom, numpy' 2>/dev/null; then
    same=$(/usr/bin/python3 -c 'import sys, numpy, pydicom
a, b = (pydicom.dcmread(f).pixel_array for f in sys.argv[1:3])
print(a.shape == b.shape and bool(numpy.array_equal(a, b)), a.shape, int(numpy.count_nonzero(a)))' "$T/recv/$seg" "$T/plain/$seg")
    case "$same" in True*) ;; *) fail "the RLE and the converted SEG differ: $same" ;; esac
    ok "SEG sent RLE Lossless ($(wc -c < "$T/recv/$seg") bytes), converted for the uncompressed-only destination ($(wc -c < "$T/plain/$seg") bytes), same masks: $same"
else
    ok "SEG sent RLE Lossless, converted for the uncompressed-only destination (pixel comparison skipped: no python3-pydicom)"
fi
ok "chest CR $uid received, queued and processed: $(grep -o "processed $uid in [0-9]* ms" "$T/node.log")"

# The extremity CR: acknowledged (storescu succeeds) and skipped with the rule in the log.
euid=$(sop_uid "$EXTREMITY")
storescu -xv -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$EXTREMITY" > "$T/s2.log" 2>&1 || fail "extremity CR not acknowledged"
grep "skipped $euid" "$T/node.log" | grep -q "body part 'EXTREMITY'" || fail "skip rule not logged"
ok "extremity CR acknowledged and skipped: $(grep -o "skipped $euid.*" "$T/node.log" | cut -c1-160)"

# A lateral view: acknowledged and skipped by the view-position rule.
cp "$CR" "$T/lateral.dcm"
dcmodify -nb -gin -i "(0018,5101)=LL" "$T/lateral.dcm" >/dev/null 2>&1
luid=$(sop_uid "$T/lateral.dcm")
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T/lateral.dcm" > "$T/s5.log" 2>&1 || fail "lateral CR not acknowledged"
grep "skipped $luid" "$T/node.log" | grep -q "view position 'LL'" || fail "lateral skip rule not logged: $(grep "$luid" "$T/node.log")"
ok "lateral view acknowledged and skipped: $(grep -o "skipped $luid.*" "$T/node.log" | sed 's/.*: //')"

# A corrupt object (Bits Stored 20 > Bits Allocated 16): acknowledged, then failed with the
# reason; the node keeps serving.
cp "$CR" "$T/corrupt.dcm"
dcmodify -nb -gin -m "(0028,0101)=20" "$T/corrupt.dcm" >/dev/null 2>&1
cuid=$(sop_uid "$T/corrupt.dcm")
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T/corrupt.dcm" > "$T/s3.log" 2>&1 || fail "corrupt object not acknowledged"
wait_until 60 'grep -q "failed $cuid" "$T/node.log"' || fail "corrupt object did not fail"
reason=$(cat "$T"/spool/failed/j*/reason.txt 2>/dev/null | head -n 1)
[ -n "$reason" ] || fail "no reason.txt in failed/"
ok "corrupt object failed with reason: $reason"
make_copies 1 "$T/after"
auid=$(sop_uid "$T/after/cr1.dcm")
storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T/after/cr1.dcm" >/dev/null 2>&1 || fail "node stopped accepting after a failure"
wait_until 120 'grep -q "processed $auid" "$T/node.log"' || fail "node stopped processing after a failure"
ok "node carries on after a failed object"

# An object larger than listener/max-object-mb (1 MB here; the CR decompressed is 7 MB) is refused
# with Out of Resources and not kept; a small one still passes.
write_conf "$T/cxrseg.xml" "$P" "$DESTS" "<max-object-mb>1</max-object-mb>"
n0=$(grep -c "configuration reloaded" "$T/node.log")
kill -HUP "$NODE_PID"
wait_until 5 '[ "$(grep -c "configuration reloaded" "$T/node.log")" -gt "$n0" ]' || fail "no reload (max-object-mb)"
gdcmconv --raw "$CR" "$T/big.dcm" >/dev/null 2>&1 || fail "gdcmconv --raw failed (libgdcm-tools)"
# The stand-in CR (no ../shared) is 0.8 MB even uncompressed: 2 MB more in an OB element make it
# larger than the limit, as the real CR is.
if [ "$(stat -c %s "$T/big.dcm")" -le 1048576 ]; then
    head -c 2000000 /dev/zero > "$T/pad.bin"
    dcmodify -nb -if "(0042,0011)=$T/pad.bin" "$T/big.dcm" >/dev/null 2>&1 || fail "dcmodify could not enlarge the stand-in"
fi
buid=$(sop_uid "$T/big.dcm")
storescu -v -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T/big.dcm" > "$T/s6.log" 2>&1
grep -qi "Out of Resources\|OutOfResources\|a700" "$T/s6.log" || fail "oversized object not refused: $(grep -i status "$T/s6.log" | head -n 3)"
grep "refused $buid" "$T/node.log" | grep -q "more than listener/max-object-mb 1 MB" || fail "oversize refusal not logged"
grep -rqs "$buid" "$T"/spool/queue "$T"/spool/processing 2>/dev/null && fail "oversized object kept in the spool"
ok "oversized object refused: $(grep -o "refused $buid.*" "$T/node.log" | sed 's/.*(0xA700): //')"

"$NODE" status -c "$T/cxrseg.xml" > "$T/status.txt" 2>&1 || fail "status failed: $(cat "$T/status.txt")"
grep -q "failed *1" "$T/status.txt" || fail "status does not count the failed job: $(cat "$T/status.txt")"
ok "status: $(tr '\n' ' ' < "$T/status.txt" | tr -s ' ')"

# The audit trail: every line a JSON object; the events above are there with their reasons and
# UIDs; no patient name or ID from the received objects appears in it.
pn=$(dcmdump -s +P 0010,0010 "$CR" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -n 1)
pid=$(dcmdump -s +P 0010,0020 "$CR" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -n 1)
out=$(/usr/bin/python3 - "$T/audit.jsonl" "$uid" "$euid" "$buid" "$pn" "$pid" <<'PY'
import json, sys
path, cr, ext, big, pn, pid = sys.argv[1:7]
text = open(path, encoding="utf-8").read()
recs = [json.loads(line) for line in text.splitlines()]  # raises on a line that is not JSON
def has(**kv):
    return any(all(r.get(k) == v for k, v in kv.items()) for r in recs)
need = [dict(event="association", outcome="rejected", reason="calling AE title not recognized (A-ASSOCIATE-RJ permanent)"),
        dict(event="association", outcome="accepted", calling_ae="PACS", host="127.0.0.1"),
        dict(event="object", outcome="accepted", sop_instance_uid=cr, calling_ae="PACS", status="0x0000"),
        dict(event="processing", outcome="done", sop_instance_uid=cr),
        dict(event="delivery", outcome="sent", destination="pacs", status="0x0000"),
        dict(event="object", outcome="skipped", sop_instance_uid=ext),
        dict(event="object", outcome="refused", sop_instance_uid=big, status="0xA700"),
        dict(event="processing", outcome="failed")]
missing = [n for n in need if not has(**n)]
if missing:
    sys.exit(f"audit trail lacks {missing}")
for secret in (pn, pid):
    if secret and len(secret) > 2 and secret in text:
        sys.exit(f"audit trail contains patient data {secret!r}")
print(f"{len(recs)} lines, events {sorted({(r['event'], r['outcome']) for r in recs})}")
PY
) || fail "audit: $out"
ok "audit trail: $out"

# Full spool: a 1 MB quota holds one chest CR (0.65 MB) while it is processed; the others in the
# same association get Out of Resources, and every acknowledged one is processed.
kill -TERM "$NODE_PID"; wait "$NODE_PID"; rc=$?
[ $rc -eq 0 ] || fail "SIGTERM drain exited $rc"
grep -q "stopped" "$T/node.log" || fail "no drain message"
ok "SIGTERM drains and exits 0"
write_conf "$T/full.xml" "$P" "$DESTS" "" "<quota-mb>1</quota-mb>"
rm -rf "$T/spool"
start_node "$T/full.xml"
wait_echo "$P" || fail "node (full spool conf) did not start"
make_copies 4 "$T/full"
storescu -v -xw -aet PACS -aec CXRSEG 127.0.0.1 "$P" "$T"/full/*.dcm > "$T/s4.log" 2>&1
grep -qi "Out of Resources\|OutOfResources" "$T/s4.log" || fail "storescu never saw Out of Resources: $(grep -i response "$T/s4.log")"
acked=$(grep -c "Received Store Response (Success)" "$T/s4.log")
refused=$(grep -ci "Out of Resources\|OutOfResources" "$T/s4.log")
[ "$acked" -ge 1 ] || fail "nothing acknowledged"
for f in "$T"/full/*.dcm; do
    u=$(sop_uid "$f")
    if grep -q "received $u" "$T/node.log"; then
        wait_until 120 'grep -q "processed $u" "$T/node.log"' || fail "acknowledged $u was lost"
    fi
done
ok "full spool: $acked acknowledged, $refused refused with Out of Resources (0xA700), every acknowledged one processed"
exit 0
