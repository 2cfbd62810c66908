#!/bin/sh
# Starts a private Orthanc for one test: free ports, storage in DIR, Debian's DICOMweb plugin.
# Shared by the viewer test and the Orthanc-plugin tests; stop it with orthanc-stop.sh DIR.
#
# Usage: orthanc-start.sh DIR
#   DIR            a fresh directory owned by the test (created if missing); it receives
#                  orthanc.json, storage/, orthanc.log and env (a shell fragment to source).
# Environment (all optional):
#   ORTHANC_BIN      Orthanc executable (default: Orthanc on PATH, then /usr/sbin/Orthanc)
#   ORTHANC_AET      the AE title of this Orthanc (default CXORTHANC)
#   ORTHANC_PLUGINS  space-separated plugin .so files or folders
#                    (default: Debian's DICOMweb plugin; set to "none" for no plugin)
#   ORTHANC_EXTRA_JSON  extra top-level JSON members, e.g. '"DicomModalities": {...}, "Foo": 1'
#   ORTHANC_TIMEOUT  seconds to wait for the REST API (default 30)
# Exit status: 0 started (env written, its lines also printed on stdout); 77 Orthanc or the
# plugin is not installed (a test should skip); 1 it did not start (see DIR/orthanc.log).
# The env file sets ORTHANC_PID, ORTHANC_HTTP_PORT, ORTHANC_DICOM_PORT, ORTHANC_AET, ORTHANC_URL.
#
# Orthanc 1.10.1 has no loopback-only switch: it listens on all interfaces. RemoteAccessAllowed
# is false (REST only from localhost) and the test only talks to 127.0.0.1.
set -eu

dir=${1:?usage: orthanc-start.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

bin=${ORTHANC_BIN:-}
if [ -z "$bin" ]; then
    bin=$(command -v Orthanc 2>/dev/null || true)
    [ -n "$bin" ] || { [ -x /usr/sbin/Orthanc ] && bin=/usr/sbin/Orthanc; } || true
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "orthanc-start: Orthanc is not installed (Debian package orthanc)" >&2
    exit 77
fi
if ! command -v curl >/dev/null 2>&1; then
    echo "orthanc-start: curl is not installed (Debian package curl)" >&2
    exit 77
fi

plugins=${ORTHANC_PLUGINS:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}
plugins_json=""
if [ "$plugins" != none ]; then
    for p in $plugins; do
        if [ ! -e "$p" ]; then
            echo "orthanc-start: plugin $p is not there (Debian package orthanc-dicomweb?)" >&2
            exit 77
        fi
        plugins_json="$plugins_json${plugins_json:+, }\"$p\""
    done
fi
aet=${ORTHANC_AET:-CXORTHANC}
extra=${ORTHANC_EXTRA_JSON:-}
timeout=${ORTHANC_TIMEOUT:-30}

# A port is taken as free when nothing listens on it now; Orthanc may still lose a race with
# another process, which the retry loop below covers by picking new ports.
port_free() {
    ! ss -Htln 2>/dev/null | awk '{print $4}' | grep -q "[:.]$1\$"
}
pick_port() {
    while :; do
        # 20000-59999: above the well-known ports, below Linux's ephemeral range.
        p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        if port_free "$p"; then echo "$p"; return; fi
    done
}

mkdir -p "$dir/storage"
attempt=0
while [ $attempt -lt 5 ]; do
    attempt=$((attempt + 1))
    http=$(pick_port)
    dicom=$(pick_port)
    [ "$http" != "$dicom" ] || continue
    cat >"$dir/orthanc.json" <<JSON
{
  "Name": "cxrseg-test-$aet",
  "HttpPort": $http,
  "DicomPort": $dicom,
  "DicomAet": "$aet",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "StorageDirectory": "$dir/storage",
  "IndexDirectory": "$dir/storage",
  "Plugins": [ $plugins_json ],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": true, "Ssl": false },
  "DicomCheckCalledAet": false,
  "DicomAlwaysAllowStore": true,
  "StableAge": 2,
  "SaveJobs": false,
  "OverwriteInstances": true,
  "HttpTimeout": 60${extra:+,
  $extra}
}
JSON
    "$bin" --logdir="$dir" "$dir/orthanc.json" >"$dir/orthanc.out" 2>&1 &
    pid=$!
    waited=0
    up=0
    # The REST API answers within ~0.2 s here; poll every 0.1 s up to the timeout.
    while [ $waited -lt $((timeout * 10)) ]; do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        if curl -fsS -o /dev/null "http://127.0.0.1:$http/system" 2>/dev/null; then up=1; break; fi
        sleep 0.1
        waited=$((waited + 1))
    done
    if [ $up -eq 1 ]; then
        cat >"$dir/env" <<ENV
ORTHANC_PID=$pid
ORTHANC_HTTP_PORT=$http
ORTHANC_DICOM_PORT=$dicom
ORTHANC_AET=$aet
ORTHANC_URL=http://127.0.0.1:$http
ENV
        cat "$dir/env"
        exit 0
    fi
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "orthanc-start: Orthanc did not answer on port $http within ${timeout}s" >&2
        exit 1
    fi
    wait "$pid" 2>/dev/null || true
    # Exited early: a port lost to someone else is worth another try; anything else is not.
    if ! grep -qi "address already in use\|cannot bind\|port.*in use" "$dir"/orthanc.out "$dir"/Orthanc.log* 2>/dev/null; then
        echo "orthanc-start: Orthanc exited at start-up; its output and log:" >&2
        tail -n 20 "$dir/orthanc.out" >&2
        # With --logdir, Orthanc writes its messages (a JSON syntax error, say) to the log.
        log=$(ls -t "$dir"/Orthanc.log.* 2>/dev/null | head -n 1)
        [ -n "$log" ] && tail -n 5 "$log" >&2
        exit 1
    fi
done
echo "orthanc-start: no free port pair found after $attempt attempts" >&2
exit 1
