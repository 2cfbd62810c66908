#!/bin/sh
# Node integration test: STOW-RS destinations (issue 16.3) against a real Orthanc 1.10 with its
# DICOMweb plugin (POST /dicom-web/studies) and HTTP basic authentication. The destination is down
# when the chest CR arrives (the results wait and are retried), then comes up: SEG and SR arrive
# once each. A destination whose URL the server does not know (404) and one with a wrong password
# (401) are refused at the first attempt: the results move to failed/ with the server's answer and
# are not retried. Skips (77) when Orthanc, its DICOMweb plugin or curl is missing.
. "$(dirname "$0")/node_lib.sh"
command -v Orthanc >/dev/null 2>&1 || skip "Orthanc not installed (Debian package orthanc)"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
[ -f "$PLUGIN" ] || skip "Orthanc's DICOMweb plugin not installed (Debian package orthanc-dicomweb)"

P=$(free_port); OD=$(free_port); OH=$(free_port)
mkdir -p "$T/orthanc/db"
cat > "$T/orthanc/orthanc.json" <<EOF
{
  "Name": "cxrseg-stow-test",
  "StorageDirectory": "$T/orthanc/db",
  "IndexDirectory": "$T/orthanc/db",
  "HttpPort": $OH,
  "DicomPort": $OD,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": true,
  "RegisteredUsers": { "cxrseg": "s3cret" },
  "SaveJobs": false,
  "Plugins": [ "$PLUGIN" ],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" }
}
EOF
printf 'cxrseg:s3cret\n' > "$T/auth"
printf 'cxrseg:wrong\n' > "$T/badauth"
chmod 600 "$T/auth" "$T/badauth"
API="http://127.0.0.1:$OH"
web() { # NAME PATH AUTHFILE
    echo "<dicomweb-destination name=\"$1\"><url>$API$2</url><basic-auth-file>$3</basic-auth-file></dicomweb-destination>"
}
write_conf "$T/cxrseg.xml" "$P" "$(web pacs /dicom-web/studies "$T/auth") $(web nowhere /dicom-web/no-such-path "$T/auth") $(web badpw /dicom-web/studies "$T/badauth")"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"

# Orthanc is not running yet: the results must wait and be retried.
storescu -xw -to 30 -aet MODALITY -aec CXRSEG 127.0.0.1 "$P" "$CR" > "$T/store.log" 2>&1 || fail "storescu: $(tail -n 3 "$T/store.log")"
wait_until 120 'grep -q "destination pacs (http://127.0.0.1:'"$OH"'/dicom-web/studies) unreachable" "$T/node.log"' ||
    fail "no retry while the STOW-RS server is down"
ok "server down: $(grep -o 'destination pacs .*unreachable, [0-9]* results waiting: [^;]*' "$T/node.log" | head -n 1 | cut -c1-160)"

Orthanc "$T/orthanc/orthanc.json" > "$T/orthanc.log" 2>&1 &
PIDS="$PIDS $!"
wait_until 30 'curl -sf -u cxrseg:s3cret "$API/system" >/dev/null' || fail "Orthanc did not come up ($(tail -n 5 "$T/orthanc.log"))"
n_inst() { curl -sf -u cxrseg:s3cret "$API/instances" | grep -c '"'; }
wait_until 120 '[ "$(grep -c "sent .* to pacs (http" "$T/node.log")" -ge 2 ]' || fail "results not delivered after the server came up"
[ "$(n_inst)" -eq 2 ] || fail "Orthanc holds $(n_inst) instances, expected SEG and SR"
mods=$(curl -sf -u cxrseg:s3cret "$API/series?expand" | grep -o '"Modality" *: *"[A-Z]*"' | sed 's/.*"\([A-Z]*\)"$/\1/' | sort | tr '\n' ' ')
[ "$mods" = "SEG SR " ] || fail "series modalities in Orthanc: '$mods'"
ok "server up: SEG and SR stored by STOW-RS (Orthanc series: $mods)"

# 404 and 401: moved to failed/ at the first attempt with the server's answer, never retried.
for d in nowhere:404 badpw:401; do
    name=${d%:*}; code=${d#*:}
    wait_until 30 '[ "$(grep -c "failed to send .* to '"$name"': refused, not retried: STOW-RS to .*: HTTP '"$code"'" "$T/node.log")" -ge 2 ]' ||
        fail "$name: no refusal with HTTP $code: $(grep "$name" "$T/node.log" | tail -n 2)"
    grep -q "not stored by $name\|to $name.*retry" "$T/node.log" && fail "$name: a refused request was retried"
    nf=$(find "$T/spool" -path "*$name*" -path "*failed*" -type f | wc -l)
    [ "$nf" -ge 2 ] || fail "$name: $nf files under the spool's failed folder"
    ok "$name: HTTP $code -> failed at once ($(grep -o "HTTP $code[^;]*" "$T/node.log" | head -n 1 | cut -c1-100))"
done

outbox_empty pacs # a retry would still be waiting here
[ "$(grep -c "sent .* to pacs (http" "$T/node.log")" -eq 2 ] || fail "pacs got more than one delivery per result"
ok "each result delivered once"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
