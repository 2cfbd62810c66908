#!/bin/sh
# Stops the private Orthanc that orthanc-start.sh DIR started (by its PID, never by name).
# Usage: orthanc-stop.sh DIR    Exit status 0 also when it was not running any more.
set -eu
dir=${1:?usage: orthanc-stop.sh DIR}
[ -f "$dir/env" ] || exit 0
pid=$(sed -n 's/^ORTHANC_PID=//p' "$dir/env")
[ -n "$pid" ] || exit 0
kill "$pid" 2>/dev/null || exit 0
# Orthanc flushes its SQLite index on SIGTERM; give it 10 s before forcing.
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 "$pid" 2>/dev/null || true
exit 0
