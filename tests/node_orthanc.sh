#!/bin/sh
# Node integration test 5: Orthanc 1.10 as the PACS. Orthanc sends the real chest CR to the node
# (REST /modalities/cxrseg/store), the node returns SEG and SR to Orthanc, and Orthanc holds them
# in the same study as the source. Skips (77) when Orthanc or curl is not installed.
. "$(dirname "$0")/node_lib.sh"
command -v Orthanc >/dev/null 2>&1 || skip "Orthanc not installed (Debian package orthanc)"
command -v curl >/dev/null 2>&1 || skip "curl not installed"

P=$(free_port); OD=$(free_port); OH=$(free_port)
mkdir -p "$T/orthanc/db"
cat > "$T/orthanc/orthanc.json" <<EOF
{
  "Name": "cxrseg-test",
  "StorageDirectory": "$T/orthanc/db",
  "IndexDirectory": "$T/orthanc/db",
  "HttpPort": $OH,
  "DicomPort": $OD,
  "DicomAet": "ORTHANC",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "SaveJobs": false,
  "Plugins": [],
  "DicomModalities": { "cxrseg": { "AET": "CXRSEG", "Host": "127.0.0.1", "Port": $P } }
}
EOF
Orthanc "$T/orthanc/orthanc.json" > "$T/orthanc.log" 2>&1 &
PIDS="$PIDS $!"
API="http://127.0.0.1:$OH"
wait_until 30 'curl -sf "$API/system" >/dev/null' || fail "Orthanc REST API did not come up ($(tail -n 5 "$T/orthanc.log"))"

write_conf "$T/cxrseg.xml" "$P" "$(dest_xml orthanc "$OD" ORTHANC)"
start_node "$T/cxrseg.xml"
wait_echo "$P" || fail "node did not start"

inst=$(curl -sf -X POST "$API/instances" --data-binary @"$CR" | sed -n 's/.*"ID" *: *"\([^"]*\)".*/\1/p' | head -n 1)
[ -n "$inst" ] || fail "upload to Orthanc failed"
study=$(curl -sf "$API/instances/$inst/study" | sed -n 's/.*"ID" *: *"\([^"]*\)".*/\1/p' | head -n 1)
curl -sf -X POST "$API/modalities/cxrseg/store" -d "$inst" > "$T/store.json" || fail "Orthanc C-STORE to the node failed: $(cat "$T/store.json")"
uid=$(sop_uid "$CR")
grep -q "received $uid .* from ORTHANC@127.0.0.1" "$T/node.log" || fail "the node did not log the reception from ORTHANC"
n_of() { curl -sf "$API/studies/$study/instances" | grep -c '"ID"'; }
wait_until 180 '[ "$(n_of)" -ge 3 ]' || fail "Orthanc's study holds $(n_of) instances, expected the source + SEG + SR"
curl -sf "$API/studies/$study/instances?expand" > "$T/instances.json"
mods=$(curl -sf "$API/studies/$study/series?expand" | grep -o '"Modality" *: *"[A-Z]*"' | sed 's/.*"\([A-Z]*\)"$/\1/' | sort | tr '\n' ' ')
echo "$mods" | grep -q "SEG" || fail "no SEG series in Orthanc's study: $mods"
echo "$mods" | grep -q "SR" || fail "no SR series in Orthanc's study: $mods"
ok "Orthanc sent the chest CR, the node returned SEG and SR into the same study (series modalities: $mods)"
exit 0
