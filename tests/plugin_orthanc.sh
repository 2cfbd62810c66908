#!/bin/sh
# The Orthanc plugin inside a real Orthanc (tests/peers/orthanc-start.sh: free ports, private
# storage, Debian's DICOMweb plugin) with our plugin loaded by path:
#   configuration: missing "CxrSeg" section -> disabled, Orthanc runs; a bad cxrseg XML -> Orthanc
#   refuses to start and the log names file:line;
#   the chest CR stored with storescu -> SEG and SR in the same study, valid for dciodvfy;
#   the extremity CR is skipped with the rule in the log; a corrupt image is logged as failed and
#   the worker goes on; stop with work queued, start again -> results exactly once; a re-run
#   through REST replaces (same instance count); DICOMweb QIDO lists the SEG and SR series.
# CXRSEG_PLUGIN_BENCH=N additionally measures C-STORE -> results stored over N images (p50) and
# Orthanc's RSS with and without the plugin.
# Skips (77) when Orthanc, the DICOMweb plugin, DCMTK tools, dciodvfy, jq or ../shared are absent.
set -u
B=${CX_BUILDDIR:-.}
S=${CX_SRCDIR:-.}
DATA="${CX_SHARED:-$S/../shared}/data/dicom"
RG1="$DATA/RG1_J2KI.dcm"
RG3="$DATA/RG3_J2KR.dcm"
PLUGIN="$B/plugin/.libs/libOrthancCxrSeg.so"
START="$S/tests/peers/orthanc-start.sh"
STOP="$S/tests/peers/orthanc-stop.sh"

skip() { echo "SKIP: $*"; exit 77; }
[ -f "$PLUGIN" ] || skip "$PLUGIN not built (orthanc-dev missing?)"
for t in storescu dcmodify dcmdump dcmrecv dciodvfy curl jq od; do
    command -v $t >/dev/null 2>&1 || skip "$t not installed"
done
ORTHANC=$(command -v Orthanc 2>/dev/null || echo /usr/sbin/Orthanc)
[ -x "$ORTHANC" ] || skip "Orthanc not installed"
DICOMWEB=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
[ -f "$DICOMWEB" ] || skip "orthanc-dicomweb not installed"
# --enable-sanitizers: the instrumented plugin needs the ASan runtime first in the process, so an
# uninstrumented Orthanc would have to run with LD_PRELOAD=libasan.so.8; Debian's Orthanc 1.10.1
# then hangs at start-up before loading any plugin (even with "Plugins": []), in glibc's
# setlocale lock (std::locale("...") -> duplocale, the lock's reader count underflowed). So this
# test cannot run under sanitizers; the plugin's JSON code runs under them in test_plugin_json,
# the pipeline it calls in the unit and node tests.
[ "${CX_SANITIZERS:-no}" = yes ] &&
    skip "built with --enable-sanitizers: Orthanc 1.10.1 with libasan preloaded hangs at start-up in glibc's setlocale lock (before loading plugins), so the instrumented plugin cannot be loaded"

T=$(mktemp -d /tmp/cx_plugin.XXXXXX)
O="$T/orthanc"
PACS_PID=
cleanup() { "$STOP" "$O" 2>/dev/null; "$STOP" "$T/other" 2>/dev/null; [ -z "$PACS_PID" ] || kill "$PACS_PID" 2>/dev/null; }
trap cleanup EXIT
# Without ../shared: stand-in CRs of the real radiograph in tests/data (tests/make_synthetic_cr.py).
if [ ! -f "$RG1" ] || [ ! -f "$RG3" ]; then
    /usr/bin/python3 "$S/tests/make_synthetic_cr.py" "$T/synthetic" "$S" > "$T/synthetic.log" 2>&1 ||
        skip "$DATA (shared data) absent and no stand-in: $(tail -n 1 "$T/synthetic.log")"
    RG1="$T/synthetic/chest.dcm"
    RG3="$T/synthetic/extremity.dcm"
    echo "note: $DATA absent: using stand-in CRs made by tests/make_synthetic_cr.py"
fi
fail() {
    echo "FAIL: $*"
    for f in "$O"/*.log* "$T"/other/*.log*; do [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 40 "$f"; }; done
    echo "(files kept in $T)"
    exit 1
}
say() { echo "plugin: $*"; }

# Orthanc prints the plugin's info lines only with --verbose; the wrapper keeps the PID (exec).
cat >"$T/orthanc-verbose" <<EOF
#!/bin/sh
exec "$ORTHANC" --verbose "\$@"
EOF
chmod +x "$T/orthanc-verbose"
export ORTHANC_BIN="$T/orthanc-verbose"
export ORTHANC_PLUGINS="$DICOMWEB $PLUGIN"
export CXRSEG_XSD="$S/conf/cxrseg.xsd"

# The model the shipped configuration would use when it is there, else the random-weight test
# model with every reporting threshold at 0 (so that its placeholder classes give segments).
MODEL="$S/models/cxrseg.cxm"
THRESH=""
if [ ! -f "$MODEL" ]; then
    MODEL="$S/tests/data/parity_model.cxm"
    command -v strings >/dev/null 2>&1 || skip "strings (binutils) not installed"
    for c in $(strings -n 3 "$MODEL" | sed -n '/^class\.[0-9]*\.name$/{n;p}'); do
        THRESH="$THRESH<score-threshold class=\"$c\">0</score-threshold>"
    done
fi
UIDROOT=1.2.826.0.1.3680043.10.543
sed -e "s|<model>|<model><file>$MODEL</file>$THRESH|" \
    -e "s|<uid-root>[^<]*</uid-root>|<uid-root>$UIDROOT</uid-root>|" \
    "$S/conf/cxrseg.xml" >"$T/cxrseg.xml"
grep -q "<file>$MODEL</file>" "$T/cxrseg.xml" || fail "test configuration: model not set"
say "model $MODEL"

log() { cat "$1"/Orthanc.log 2>/dev/null; }
start() { # DIR [extra json]
    ORTHANC_EXTRA_JSON=${2:-"\"CxrSeg\": {\"ConfigurationFile\": \"$T/cxrseg.xml\"}"} \
        "$START" "$1" >"$T/start.out" 2>&1 || return $?
    . "$1/env"
}
api() { curl -fsS "$ORTHANC_URL$1"; }
post() { curl -fsS -X POST --data-binary "$2" "$ORTHANC_URL$1"; }
status() { api /cxrseg/status | jq -r ".$1"; }
lookup() { post /tools/lookup "$1" | jq -r '.[0].ID // empty'; }
uid_of() { dcmdump -Un +P "$2" "$1" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -n 1; }
# storescu proposes uncompressed syntaxes unless told; the files of one call share their syntax.
store() {
    case $(uid_of "$1" 0002,0010) in
    1.2.840.10008.1.2.4.90) ts=-xv ;;
    1.2.840.10008.1.2.4.91) ts=-xw ;;
    1.2.840.10008.1.2.5) ts="-xr -R" ;; # the RLE Lossless SEG the plugin writes
    *) ts=-R ;; # only the contexts the file needs (SEG is not in the default list)
    esac
    storescu $ts -aet CXTESTSCU -aec "$ORTHANC_AET" 127.0.0.1 "$ORTHANC_DICOM_PORT" "$@" >"$T/storescu.out" 2>&1
}
# Waits until the plugin is idle (queue empty, nobody busy, no scan pending) and `cond` holds.
wait_for() { # seconds jq-condition-on-status
    i=0
    while [ $i -lt $(($1 * 10)) ]; do
        s=$(api /cxrseg/status 2>/dev/null) || s='{}'
        if echo "$s" | jq -e "$2 and .QueueLength == 0 and .Busy == 0 and .ScanPending == false and .Scanning == false" \
            >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    echo "$s"
    return 1
}
study_modalities() { # Orthanc study id -> sorted list of series modalities
    api "/studies/$1/series" | jq -r '.[].MainDicomTags.Modality' | sort | tr '\n' ' '
}
vm() { awk -v k="$1:" '$1 == k {print $2 " kB"}' "/proc/$ORTHANC_PID/status"; }
count_instances() { api "/studies/$1/instances" | jq 'length'; }
# A copy of RG1 with new study/series/instance UIDs (a new source image).
copy_rg1() { # dest [study-uid]
    cp "$RG1" "$1"
    if [ -n "${2:-}" ]; then
        dcmodify -nb -m "(0020,000D)=$2" -gse -gin "$1" >/dev/null 2>&1
    else
        dcmodify -nb -gst -gse -gin "$1" >/dev/null 2>&1
    fi
}

# ---- 1. configuration: no section -> disabled, Orthanc runs ----
start "$T/other" '"Unrelated": 1' || fail "Orthanc with the plugin but no CxrSeg section did not start"
[ "$(status Enabled)" = false ] || fail "plugin without section should report Enabled false"
log "$T/other" | grep -q 'cxrseg.*disabled: no "CxrSeg" section' || fail "no warning about the missing section"
"$STOP" "$T/other"
say "missing section: plugin disabled, Orthanc running (ok)"

# ---- 2. a bad cxrseg XML -> Orthanc refuses to start, file:line in its log ----
sed 's|<workers>1</workers>|<workers>0</workers>|; s|<level>info</level>|<level>loud</level>|' "$T/cxrseg.xml" >"$T/bad.xml"
rm -rf "$T/bad"
if ORTHANC_TIMEOUT=10 start "$T/bad" "\"CxrSeg\": {\"ConfigurationFile\": \"$T/bad.xml\"}"; then
    "$STOP" "$T/bad"
    fail "Orthanc started with a bad cxrseg configuration"
fi
nerr=$(grep -c "$T/bad.xml:[0-9][0-9]*:" "$T/bad/Orthanc.log")
[ "$nerr" -ge 2 ] || { cat "$T"/bad/*.log* "$T/bad/orthanc.out" | tail -20; fail "expected 2 file:line errors, saw $nerr"; }
say "bad configuration: Orthanc refused to start, $nerr file:line errors logged (ok)"

# ---- 3. the chest CR -> SEG + SR in the same study ----
start "$O" || fail "Orthanc with the plugin did not start: $(cat "$T/start.out")"
[ "$(status Enabled)" = true ] || fail "plugin not enabled: $(api /cxrseg/status)"
api /cxrseg/status | jq -e '.Model.Sha256 | length == 64' >/dev/null || fail "status: model hash"
wait_for 30 '.Scans >= 1' || fail "start-up scan did not run"
rss_idle=$(vm VmRSS)
t0=$(date +%s.%N)
store "$RG1" || fail "storescu RG1: $(cat "$T/storescu.out")"
wait_for 120 '.Processed >= 1' || fail "RG1 not processed within 120 s"
t1=$(date +%s.%N)
say "RG1 processed in $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}") s (C-STORE to results stored)"
study1=$(lookup "$(uid_of "$RG1" 0020,000d)")
[ -n "$study1" ] || fail "RG1's study not in Orthanc"
mods=$(study_modalities "$study1")
echo "$mods" | grep -q "SEG" || fail "no SEG series in RG1's study (series: $mods)"
echo "$mods" | grep -q "SR" || fail "no SR series in RG1's study (series: $mods)"
for m in SEG SR; do
    sid=$(api "/studies/$study1/series" | jq -r ".[] | select(.MainDicomTags.Modality == \"$m\") | .Instances[0]")
    api "/instances/$sid/file" >"$T/$m.dcm" || fail "download $m"
    out=$(dciodvfy -new "$T/$m.dcm" 2>&1)
    if echo "$out" | grep -q "^Error"; then echo "$out" | grep "^Error"; fail "dciodvfy errors in the $m from Orthanc"; fi
done
src1=$(lookup "$(uid_of "$RG1" 0008,0018)")
log "$O" | grep -q "processed $(uid_of "$RG1" 0008,0018) in [0-9]* ms" || fail "no 'processed <SOP UID>' line in Orthanc's log"
pn=$(uid_of "$RG1" 0010,0010)
if [ -n "$pn" ] && log "$O" | grep -qF "$pn"; then fail "the patient name appears in Orthanc's log"; fi
say "RG1: SEG and SR in the same study, dciodvfy without errors (ok)"

# ---- 4. DICOMweb: QIDO lists the SEG and SR series ----
suid=$(uid_of "$RG1" 0020,000d)
qido=$(api "/dicom-web/studies/$suid/series" | jq -r '.[]["00080060"].Value[0]' | sort | tr '\n' ' ')
echo "$qido" | grep -q SEG && echo "$qido" | grep -q SR || fail "QIDO series of the study: $qido"
say "DICOMweb QIDO series: $qido(ok)"

# ---- 5. the extremity CR is skipped, with the rule in the log ----
store "$RG3" || fail "storescu RG3"
wait_for 60 '.Skipped >= 1' || fail "RG3 not skipped"
log "$O" | grep -q "skipped $(uid_of "$RG3" 0008,0018) (not processed): body part 'EXTREMITY'" || fail "no skip line naming the rule"
study3=$(lookup "$(uid_of "$RG3" 0020,000d)")
[ "$(study_modalities "$study3")" = "CR " ] || fail "results in the extremity's study: $(study_modalities "$study3")"
say "RG3 (extremity): skipped, rule logged, nothing added (ok)"

# ---- 5b. a SEG arriving from outside is not a source: ignored, no new results ----
n_before=$(count_instances "$study1")
store "$T/SEG.dcm" || fail "storescu SEG: $(cat "$T/storescu.out")"
wait_for 60 '.Ignored >= 1' || fail "a SEG sent by DICOM was not ignored"
[ "$(count_instances "$study1")" = "$n_before" ] || fail "results appeared for a SEG"
say "a SEG received by DICOM: ignored by SOP class (ok)"

# ---- 6. a corrupt image fails, the worker continues ----
copy_rg1 "$T/corrupt.dcm"
# Damage the JPEG 2000 codestream right after its SOC/SIZ markers (Orthanc stores it unchanged);
# the uncompressed stand-in gets an impossible BitsStored instead.
off=$(LC_ALL=C grep -obUaP '\xff\x4f\xff\x51' "$T/corrupt.dcm" | head -n 1 | cut -d: -f1)
if [ -n "$off" ]; then
    head -c 200 /dev/zero | dd of="$T/corrupt.dcm" bs=1 seek=$((off + 4)) conv=notrunc 2>/dev/null
else
    dcmodify -nb -m "(0028,0101)=20" "$T/corrupt.dcm" || fail "dcmodify of the corrupt copy"
fi
copy_rg1 "$T/after.dcm"
failed0=$(status Failed)
proc0=$(status Processed)
store "$T/corrupt.dcm" "$T/after.dcm" || fail "storescu corrupt + after: $(cat "$T/storescu.out")"
wait_for 120 ".Failed >= $((failed0 + 1)) and .Processed >= $((proc0 + 1))" || fail "corrupt/after not handled"
log "$O" | grep -q "failed $(uid_of "$T/corrupt.dcm" 0008,0018) after" || fail "no 'failed' line for the corrupt image"
sa=$(lookup "$(uid_of "$T/after.dcm" 0020,000d)")
study_modalities "$sa" | grep -q SR || fail "the image after the corrupt one has no results"
say "corrupt image: logged as failed; the next image was processed (ok)"

# ---- 7. re-run through REST replaces, not duplicates ----
# Re-runs RG1 through REST and checks that its SR was replaced (new reception date) while the
# study keeps its instance count and the SR its identity.
sr_of() { api "/studies/$study1/series" | jq -r '.[] | select(.MainDicomTags.Modality == "SR") | .Instances[0]'; }
rerun_check() { # label
    n_before=$(count_instances "$study1")
    sr_before=$(sr_of)
    rd_before=$(api "/instances/$sr_before/metadata/ReceptionDate")
    proc0=$(status Processed)
    sleep 1.1 # the reception date has one-second resolution
    post "/cxrseg/instances/$src1/process" "" | jq -e '.Queued == true' >/dev/null || fail "$1: POST process"
    wait_for 120 ".Processed >= $((proc0 + 1))" || fail "$1: re-run not processed"
    n_after=$(count_instances "$study1")
    sr_after=$(sr_of)
    rd_after=$(api "/instances/$sr_after/metadata/ReceptionDate")
    [ "$n_before" = "$n_after" ] || fail "$1: re-run changed the study's instance count: $n_before -> $n_after"
    [ "$sr_before" = "$sr_after" ] || fail "$1: re-run SR has another identity: $sr_before -> $sr_after"
    [ "$rd_before" != "$rd_after" ] || fail "$1: the SR was not replaced (reception date still $rd_before)"
    say "re-run through REST ($1): $n_before instances before and after, SR replaced ($rd_before -> $rd_after) (ok)"
}
rerun_check "OverwriteInstances true"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$ORTHANC_URL/cxrseg/instances/00000000-00000000-00000000-00000000-00000000/process")
[ "$code" = 404 ] || fail "re-run of an unknown instance: HTTP $code, expected 404"
seg1=$(api "/studies/$study1/series" | jq -r '.[] | select(.MainDicomTags.Modality == "SEG") | .Instances[0]')
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$ORTHANC_URL/cxrseg/instances/$seg1/process")
[ "$code" = 400 ] || fail "re-run of a SEG: HTTP $code, expected 400"

# ---- 8. stop with work queued, start again: results exactly once ----
N=6
kill_study=1.2.826.0.1.3680043.10.543.77.$(date +%s)
for i in $(seq 1 $N); do copy_rg1 "$T/q$i.dcm" "$kill_study"; done
store "$T"/q*.dcm || fail "storescu $N copies"
queued_at_stop=$(api /cxrseg/status | jq '.QueueLength + .Busy')
"$STOP" "$O"
say "stopped Orthanc with $queued_at_stop of $N instances queued or in progress"
start "$O" || fail "restart"
wait_for 240 '.Scans >= 1' || fail "after restart: queue did not drain"
kid=$(lookup "$kill_study")
nsr=$(api "/studies/$kid/series" | jq '[.[] | select(.MainDicomTags.Modality == "SR") | .Instances | length] | add')
nseg=$(api "/studies/$kid/series" | jq '[.[] | select(.MainDicomTags.Modality == "SEG") | .Instances | length] | add')
ncr=$(api "/studies/$kid/series" | jq '[.[] | select(.MainDicomTags.Modality == "CR") | .Instances | length] | add')
[ "$ncr" = $N ] && [ "$nsr" = $N ] && [ "$nseg" = $N ] || fail "after restart: CR $ncr, SR $nsr, SEG $nseg (want $N each)"
sq=$(status QueuedByScan)
if [ "$queued_at_stop" -gt 0 ] && [ "$sq" -lt 1 ]; then fail "the start-up scan queued nothing"; fi
# A second restart finds nothing to do (stateless, loop-free).
"$STOP" "$O"
start "$O" || fail "second restart"
wait_for 120 '.Scans >= 1' || fail "second restart: scan"
q2=$(status QueuedByScan)
# Only the corrupt image (no results by design) and the extremity (skipped) may be queued again.
[ "$q2" -le 2 ] || fail "second restart queued $q2 instances again"
say "restart: $N sources, $nseg SEG and $nsr SR (exactly once; the scan queued $sq, then $q2) (ok)"

# ---- 9. without OverwriteInstances the plugin deletes and stores: still replaced; and the
# results (only they) are forwarded to a configured modality (a DCMTK dcmrecv) ----
"$STOP" "$O"
PACS_PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
mkdir -p "$T/pacs"
dcmrecv -aet PACS --config-file /etc/dcmtk/storescp.cfg Default -od "$T/pacs" "$PACS_PORT" >"$T/dcmrecv.out" 2>&1 &
PACS_PID=$!
sed 's|<workers>1</workers>|<workers>1</workers><forward-to-modality>pacs</forward-to-modality>|' "$T/cxrseg.xml" >"$T/fwd.xml"
start "$O" "\"CxrSeg\": {\"ConfigurationFile\": \"$T/fwd.xml\"}, \"OverwriteInstances\": false,
  \"DicomModalities\": {\"pacs\": {\"AET\": \"PACS\", \"Host\": \"127.0.0.1\", \"Port\": $PACS_PORT}}" ||
    fail "restart with OverwriteInstances false"
wait_for 120 '.Scans >= 1' || fail "OverwriteInstances false: start-up scan"
rerun_check "OverwriteInstances false"
log "$O" | grep -q "OverwriteInstances is false): deleting it and storing the new one" ||
    fail "OverwriteInstances false: no delete-then-store in the log"
sleep 1
got=$(for f in "$T"/pacs/*; do [ -f "$f" ] && dcmdump -Un +P 0008,0060 "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p'; done | sort | tr '\n' ' ')
kill "$PACS_PID" 2>/dev/null
[ "$got" = "SEG SR " ] || { cat "$T/dcmrecv.out"; fail "forwarded to the modality: '$got', expected the SEG and the SR only"; }
[ "$(status ForwardFailed)" = 0 ] || fail "forwarding failures reported"
say "forwarding: the modality received exactly the results ($got) (ok)"

# ---- optional: latency and memory figures ----
if [ -n "${CXRSEG_PLUGIN_BENCH:-}" ]; then
    n=$CXRSEG_PLUGIN_BENCH
    : >"$T/lat"
    for i in $(seq 1 "$n"); do
        copy_rg1 "$T/b.dcm"
        p0=$(status Processed)
        a=$(date +%s%N)
        store "$T/b.dcm" || fail "bench store"
        wait_for 120 ".Processed >= $((p0 + 1))" >/dev/null || fail "bench image $i"
        z=$(date +%s%N)
        echo $(((z - a) / 1000000)) >>"$T/lat"
    done
    p50=$(sort -n "$T/lat" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
    rss=$(vm VmRSS)
    hwm=$(vm VmHWM)
    say "BENCH C-STORE -> results stored over $n images: p50 $p50 ms, min $(sort -n "$T/lat" | head -1), max $(sort -n "$T/lat" | tail -1) ms"
    say "BENCH Orthanc with the plugin: RSS $rss_idle at start, $rss after $n images (peak $hwm)"
    say "BENCH last image: $(log "$O" | grep "processed .* ms)$" | tail -n 1 | sed 's/.*(fetch/(fetch/')"
    say "BENCH load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
    "$STOP" "$O"
    ORTHANC_PLUGINS="$DICOMWEB" start "$T/noplugin" '"Unrelated": 1' || fail "Orthanc without the plugin"
    store "$T/b.dcm"
    sleep 1
    say "BENCH Orthanc without the plugin: RSS $(vm VmRSS), peak $(vm VmHWM) (DICOMweb only, 1 image stored)"
    "$STOP" "$T/noplugin"
fi

"$STOP" "$O"
rm -rf "$T"
trap - EXIT
echo "PASS: Orthanc plugin"
exit 0
