#!/bin/sh
# Node integration test: DICOM TLS (issue 14.5) with DCMTK's own TLS peers on 127.0.0.1 and
# certificates made here by openssl: a test CA signs the node's, the destination's and a good
# client's certificates; a second CA signs a stranger's. The listener requires a client certificate
# from the test CA (mutual authentication); the node delivers its results to a storescp +tls that
# requires the node's certificate in turn. Checked: a good certificate is accepted and the CR is
# processed and delivered over TLS; a certificate from an unknown CA, a client without a
# certificate, a plain association and a TLS 1.1 handshake are refused, each named in the log;
# a key that does not belong to its certificate stops the node at start with file:line.
. "$(dirname "$0")/node_lib.sh"
command -v openssl >/dev/null 2>&1 || skip "openssl not installed (Debian package openssl)"
storescu --help 2>&1 | grep -q -- "--enable-tls" || skip "this DCMTK has no TLS (dcmtls without OpenSSL)"

# ---- certificates ----
C="$T/pki"; mkdir -p "$C"
ossl() { openssl "$@" >> "$C/openssl.log" 2>&1 || fail "openssl $1 failed: $(tail -n 3 "$C/openssl.log")"; }
make_ca() { # NAME
    ossl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/O=cxrseg test/CN=$1" \
        -keyout "$C/$1.key" -out "$C/$1.pem"
}
make_cert() { # NAME CA
    ossl req -newkey rsa:2048 -nodes -sha256 -subj "/O=cxrseg test/CN=$1" -keyout "$C/$1.key" -out "$C/$1.csr"
    ossl x509 -req -sha256 -days 2 -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -CAcreateserial -out "$C/$1.pem"
}
make_ca testca; make_ca strangerca
make_cert node testca; make_cert dest testca; make_cert client testca; make_cert stranger strangerca

tls_xml() { # CERT KEY CA
    echo "<tls><enabled>true</enabled><certificate-file>$1</certificate-file><private-key-file>$2</private-key-file><ca-file>$3</ca-file></tls>"
}

# ---- a key that is not the certificate's: refused at start, with the conf's line ----
P=$(free_port)
write_conf "$T/bad.xml" "$P" "" "$(tls_xml "$C/node.pem" "$C/client.key" "$C/testca.pem")"
if "$NODE" -c "$T/bad.xml" > "$T/bad.log" 2>&1; then fail "the node started with a mismatched key"; fi
grep -q "bad.xml:[0-9]*: listener/tls: private key .*client.key does not belong to certificate .*node.pem" "$T/bad.log" ||
    fail "no file:line error for the mismatched key: $(cat "$T/bad.log")"
ok "a key that does not belong to its certificate: the node refuses to start ($(grep -o 'bad.xml:[0-9]*' "$T/bad.log" | head -n 1))"

# ---- the node: TLS listener, TLS destination ----
D=$(free_port)
mkdir -p "$T/dest"
storescp -v -aet DEST -od "$T/dest" +xa -uf +tls "$C/dest.key" "$C/dest.pem" +cf "$C/testca.pem" "$D" >> "$T/dest.log" 2>&1 &
DEST_PID=$!; PIDS="$PIDS $DEST_PID"
DEST_XML="<destination name=\"pacs\"><ae-title>DEST</ae-title><host>127.0.0.1</host><port>$D</port>$(tls_xml "$C/node.pem" "$C/node.key" "$C/testca.pem")</destination>"
write_conf "$T/cxrseg.xml" "$P" "$DEST_XML" "$(tls_xml "$C/node.pem" "$C/node.key" "$C/testca.pem")
    <acse-timeout-seconds>4</acse-timeout-seconds>"
start_node "$T/cxrseg.xml"
CLIENT="+tls $C/client.key $C/client.pem +cf $C/testca.pem"
# shellcheck disable=SC2086 # CLIENT is a list of options
wait_until 20 "echoscu -to 2 -aet PROBE -aec CXRSEG $CLIENT 127.0.0.1 $P >/dev/null 2>&1" ||
    fail "the node does not answer a C-ECHO over TLS"
ok "C-ECHO over TLS with a certificate from the trusted CA"

# ---- refused: plain TCP, no client certificate, a stranger's certificate, TLS 1.1 ----
echoscu -to 5 -aet PLAIN -aec CXRSEG 127.0.0.1 "$P" > "$T/plain.log" 2>&1 && fail "a plain association to the TLS port succeeded"
echoscu -to 5 -aet ANON -aec CXRSEG +tla +cf "$C/testca.pem" 127.0.0.1 "$P" > "$T/anon.log" 2>&1 &&
    fail "a TLS client without a certificate was accepted (verify-peer require)"
echoscu -to 5 -aet STRANGER -aec CXRSEG +tls "$C/stranger.key" "$C/stranger.pem" +cf "$C/testca.pem" 127.0.0.1 "$P" \
    > "$T/stranger.log" 2>&1 && fail "a certificate from an unknown CA was accepted"
if openssl s_client -help 2>&1 | grep -q -- "-tls1_1"; then
    echo | timeout 10 openssl s_client -connect "127.0.0.1:$P" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
        -cert "$C/client.pem" -key "$C/client.key" > "$T/tls11.log" 2>&1
    grep -q "Protocol *: TLSv1.1" "$T/tls11.log" && grep -q "Cipher is [A-Z]" "$T/tls11.log" &&
        ! grep -q "Cipher is (NONE)" "$T/tls11.log" && fail "a TLS 1.1 handshake succeeded"
    ok "TLS 1.1 handshake refused"
fi
wait_until 10 '[ "$(grep -c "refused: TLS handshake failed" "$T/node.log")" -ge 3 ]' ||
    fail "the refused handshakes are not all in the log"
for why in "wrong version number" "peer did not return a certificate" "certificate verify failed"; do
    grep -q "refused: TLS handshake failed (.*$why" "$T/node.log" || fail "no refusal \"$why\" in the log"
done
ok "refused and logged: plain association, TLS without a client certificate, certificate from an unknown CA"

# ---- a client that opens TCP and never starts the handshake: cut at the ACSE timeout (4 s) ----
/usr/bin/python3 "$CX_SRCDIR/tests/node/attack.py" silent 127.0.0.1 "$P" 15 4 --ready "$T/ready" > "$T/silent.out" 2>&1 &
APID=$!; PIDS="$PIDS $APID"
wait_until 10 '[ -f "$T/ready" ]' || fail "silent client did not connect: $(cat "$T/silent.out")"
# shellcheck disable=SC2086
echoscu -to 5 -aet REAL -aec CXRSEG $CLIENT 127.0.0.1 "$P" > "$T/real.log" 2>&1 || fail "a TLS C-ECHO failed while silent clients wait"
wait $APID
n=$(awk '$1=="closed-by-node" && $2<=6.5' "$T/silent.out" | wc -l)
[ "$n" -eq 4 ] || fail "silent TLS clients: $n of 4 closed within 6.5 s: $(sort "$T/silent.out" | uniq -c | tr '\n' ';')"
ok "4 silent connections to the TLS port closed after $(awk '{print $2}' "$T/silent.out" | sort -n | tail -n 1) s (ACSE timeout 4 s) while a TLS C-ECHO got through"

# ---- a good client stores the CR; the results go out over TLS ----
# shellcheck disable=SC2086
storescu -xw -to 20 -aet MODALITY -aec CXRSEG $CLIENT 127.0.0.1 "$P" "$CR" > "$T/store.log" 2>&1 ||
    fail "storescu +tls failed: $(tail -n 5 "$T/store.log")"
grep -q "TLS: peer certificate CN=client,O=cxrseg test" "$T/node.log" || fail "the client's certificate subject is not in the log"
wait_until 180 '[ "$(count_receptions "$T/dest.log")" -ge 2 ]' ||
    fail "the results did not reach the TLS destination: $(tail -n 5 "$T/dest.log")"
wait_until 30 '[ "$(grep -c "sent .* to pacs" "$T/node.log")" -ge 2 ]' || fail "the node did not log both deliveries"
ok "CR stored over TLS, $(count_receptions "$T/dest.log") results delivered to storescp +tls (mutual authentication)"

# ---- a destination whose certificate comes from an unknown CA is not sent to ----
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
kill "$DEST_PID"; wait "$DEST_PID" 2>/dev/null
D2=$(free_port)
storescp -aet ROGUE -od "$T/dest" +xa -uf +tls "$C/stranger.key" "$C/stranger.pem" +cf "$C/testca.pem" -ic "$D2" >> "$T/rogue.log" 2>&1 &
PIDS="$PIDS $!"
ROGUE_XML="<destination name=\"rogue\"><ae-title>ROGUE</ae-title><host>127.0.0.1</host><port>$D2</port>$(tls_xml "$C/node.pem" "$C/node.key" "$C/testca.pem")</destination>"
P2=$(free_port)
write_conf "$T/rogue.xml" "$P2" "$ROGUE_XML" "$(tls_xml "$C/node.pem" "$C/node.key" "$C/testca.pem")"
start_node "$T/rogue.xml"
# shellcheck disable=SC2086
wait_until 20 "echoscu -to 2 -aet PROBE -aec CXRSEG $CLIENT 127.0.0.1 $P2 >/dev/null 2>&1" || fail "second node not up"
make_copies 1 "$T/second"
# shellcheck disable=SC2086
storescu -xw -to 20 -aet MODALITY -aec CXRSEG $CLIENT 127.0.0.1 "$P2" "$T/second/cr1.dcm" > "$T/store2.log" 2>&1 ||
    fail "storescu +tls to the second node failed: $(tail -n 5 "$T/store2.log")"
wait_until 180 'grep -q "ROGUE@127.0.0.1:'"$D2"'.*TLS" "$T/node.log"' ||
    fail "no TLS failure towards the destination with an unknown certificate"
[ "$(count_receptions "$T/rogue.log")" -eq 0 ] || fail "results were sent to a destination with an unknown certificate"
ok "destination with a certificate from an unknown CA: nothing sent, the failure logged"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
ok "node stopped cleanly"
