# tests/node_lib.sh: shared helpers of the node integration tests (sourced, not run).
# Real peers only: the cxrseg-node binary, DCMTK storescu/storescp/echoscu/dcmodify on 127.0.0.1,
# free ports picked at run time. Exit 77 (skip) only when a tool or the shared data is missing.

set -u
: "${CX_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${CX_BUILDDIR:=$CX_SRCDIR/build}"
: "${CX_SHARED:=$CX_SRCDIR/../shared}"
export DCMDICTPATH="${DCMDICTPATH:-/usr/share/libdcmtk17/dicom.dic}"
export CXRSEG_XSD="$CX_SRCDIR/conf/cxrseg.xsd"
NODE="$CX_BUILDDIR/cxrseg-node"
# The delivery tests call use_relay_node: the relay test build (make check builds it), where
# transport-test copies stand in for results (src/node/node_process.c, CX_NODE_RELAY).
use_relay_node() {
    NODE="$CX_BUILDDIR/tests/cxrseg-node-relay"
    [ -x "$NODE" ] || fail "$NODE not built (make check builds it)"
}
CR="$CX_SHARED/data/dicom/RG1_J2KI.dcm"
EXTREMITY="$CX_SHARED/data/dicom/RG3_J2KR.dcm"

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -n "${T:-}" ] && [ -f "$T/node.log" ] && { echo "---- node log (tail)"; tail -n 40 "$T/node.log"; }; exit 1; }
ok() { echo "ok: $*"; }

for tool in storescu storescp echoscu dcmodify dcmdump /usr/bin/python3; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not installed (Debian package dcmtk / python3)"
done
[ -x "$NODE" ] || fail "$NODE not built"

T=$(mktemp -d /tmp/cx-node-test.XXXXXX)
PIDS=""
# --enable-sanitizers: wait (up to 20 s each) for what was told to stop, so that the node ends
# normally and LeakSanitizer checks it at exit; then put the sanitizer reports the node's stderr
# holds (UBSan's go to stderr: see Makefile.am) where tests/sanitizer_reports.sh finds them.
running() { [ -d "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    sleep 0.2
    if [ "${CX_SANITIZERS:-no}" = yes ]; then
        for p in $PIDS; do
            i=0; while running "$p" && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
        done
    fi
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    if [ -n "${CX_SAN_REPORTS:-}" ] && [ -d "$CX_SAN_REPORTS" ]; then
        for f in $(grep -rIlE 'runtime error:|==ERROR: (Address|Leak)Sanitizer' "$T" 2>/dev/null); do
            { echo "(from ${f#"$T/"} of $(basename "$0"))"
              grep -IE -A 30 'runtime error:|==ERROR: (Address|Leak)Sanitizer' "$f"; } \
                >"$CX_SAN_REPORTS/stderr.$(basename "$0" .sh).$$.$(basename "$f")"
        done
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

# Without ../shared the tests run on stand-ins: a CR of the real radiograph in tests/data and an
# extremity copy of it (tests/make_synthetic_cr.py).
if [ ! -f "$CR" ] || [ ! -f "$EXTREMITY" ]; then
    /usr/bin/python3 "$CX_SRCDIR/tests/make_synthetic_cr.py" "$T/synthetic" "$CX_SRCDIR" > "$T/synthetic.log" 2>&1 ||
        skip "$CR not found (set CX_SHARED) and no stand-in: $(tail -n 1 "$T/synthetic.log") (python3-pydicom, python3-pil)"
    CR="$T/synthetic/chest.dcm"
    EXTREMITY="$T/synthetic/extremity.dcm"
    echo "note: $CX_SHARED/data/dicom absent: using stand-in CRs made by tests/make_synthetic_cr.py"
fi

# A free TCP port below the kernel's ephemeral range: a port the kernel picked for bind(0) is also
# in the range it hands to outgoing connections, so a client of a parallel test could take it
# before the server under test binds it ("Address already in use", seen in CI).
free_port() {
    /usr/bin/python3 -c '
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    p = random.randrange(10000, max(lo, 10001))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("free_port: no free port below the ephemeral range")'
}

# A model file must exist for the configuration to validate. The shipped one when present; else
# the engine's test model; else a placeholder (the decode-only processing step does not read it).
model_file() {
    for m in "$CX_SRCDIR/models/cxrseg.cxm" "$CX_SRCDIR/tests/data/parity_model.cxm"; do
        [ -f "$m" ] && { echo "$m"; return; }
    done
    : > "$T/placeholder.cxm"
    echo "$T/placeholder.cxm"
}

# write_conf FILE PORT ... (with AUDIT_TO set: logging/audit-to, the audit trail)
# write_conf FILE PORT 'DESTINATIONS-XML' ['LISTENER-EXTRA-XML'] ['SPOOL-EXTRA-XML'] ['WORKERS']
write_conf() {
    cat > "$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<cxrseg version="1">
  <listener>
    <ae-title>CXRSEG</ae-title>
    <bind-address>127.0.0.1</bind-address>
    <port>$2</port>
    <dimse-timeout-seconds>20</dimse-timeout-seconds>
    ${4:-}
  </listener>
  <destinations>
    $3
    <retry>
      <initial-delay-seconds>1</initial-delay-seconds>
      <factor>2.0</factor>
      <max-delay-seconds>2</max-delay-seconds>
      <max-attempts>200</max-attempts>
    </retry>
  </destinations>
  <spool>
    <directory>$T/spool</directory>
    <min-free-disk-mb>0</min-free-disk-mb>
    ${5:-}
  </spool>
  <workers><count>${6:-2}</count><job-timeout-seconds>120</job-timeout-seconds></workers>
  <model><file>$(model_file)</file></model>
  <logging><level>info</level>${AUDIT_TO:+<audit-to>$AUDIT_TO</audit-to>}</logging>
</cxrseg>
EOF
}

dest_xml() { # NAME PORT [AE]
    echo "<destination name=\"$1\"><ae-title>${3:-DEST}</ae-title><host>127.0.0.1</host><port>$2</port></destination>"
}

wait_echo() { # PORT [AE] [seconds]
    i=0
    while [ $i -lt $(( ${3:-15} * 5 )) ]; do
        echoscu -to 2 -aet PROBE -aec "${2:-CXRSEG}" 127.0.0.1 "$1" >/dev/null 2>&1 && return 0
        sleep 0.2; i=$((i + 1))
    done
    return 1
}

# reload_node: SIGHUP, then wait for the node to log the outcome (reloaded, or refused and kept).
reload_node() {
    n0=$(grep -c -e 'configuration reloaded' -e 'reload failed' "$T/node.log")
    kill -HUP "$NODE_PID"
    wait_until 10 '[ "$(grep -c -e "configuration reloaded" -e "reload failed" "$T/node.log")" -gt '"$n0"' ]' ||
        fail "no reload outcome in the node's log 10 s after SIGHUP"
}

# outbox_empty DEST [seconds]: wait until `cxrseg-node status` shows nothing left to send to DEST
# (after that, a duplicate delivery could only come from a result queued twice).
outbox_empty() {
    ob_dest=$1
    wait_until "${2:-30}" '"$NODE" status -c "$T/cxrseg.xml" 2>/dev/null | awk -v d="$ob_dest" '"'"'$1 == d && $2 == 0 {f = 1} END {exit !f}'"'"'' ||
        fail "destination $1 still has results waiting: $("$NODE" status -c "$T/cxrseg.xml" 2>&1 | grep -A 9 '^destination')"
}

NODE_PID=""
start_node() { # CONF
    "$NODE" -c "$1" >> "$T/node.log" 2>&1 &
    NODE_PID=$!
    PIDS="$PIDS $NODE_PID"
}

start_dest() { # PORT DIR [AE] -> DEST_PID; every reception is logged in DIR.log
    mkdir -p "$2"
    storescp -v -aet "${3:-DEST}" -od "$2" +xa -uf "$1" >> "$2.log" 2>&1 &
    DEST_PID=$!
    PIDS="$PIDS $DEST_PID"
    wait_echo "$1" "${3:-DEST}" 10 || fail "storescp on port $1 did not start"
}

# make_copies N DIR: copies of the real chest CR with new study/series/instance UIDs.
make_copies() {
    mkdir -p "$2"
    i=1
    while [ "$i" -le "$1" ]; do
        cp "$CR" "$2/cr$i.dcm"
        dcmodify -nb -gst -gse -gin "$2/cr$i.dcm" >/dev/null 2>&1 || fail "dcmodify failed"
        i=$((i + 1))
    done
}

sop_uid() { dcmdump -s +P 0008,0018 "$1" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -n 1; }

# wait_until SECONDS 'shell condition'
wait_until() {
    i=0
    while [ $i -lt $(( $1 * 5 )) ]; do
        eval "$2" && return 0
        sleep 0.2; i=$((i + 1))
    done
    return 1
}

count_files() { find "$1" -type f 2>/dev/null | wc -l; }
count_receptions() { grep -c "Received Store Request" "$1" 2>/dev/null || true; }
