// tests/node_dcmjs_send.js: an independent (non-DCMTK) DICOM sender for the node tests, written
// on dcmjs-dimse: C-ECHO, then C-STORE of each file given, one association. Prints one line per
// response ("echo 0x0000", "store <file> 0x0000") and exits 0 only when every status was Success.
// Usage: node node_dcmjs_send.js HOST PORT CALLING_AE CALLED_AE FILE...
'use strict';
const dimse = require('dcmjs-dimse');
const { Client } = dimse;
const { CEchoRequest, CStoreRequest } = dimse.requests;

const [host, port, calling, called, ...files] = process.argv.slice(2);
let failures = 0;
let responses = 0;
const client = new Client();
const hex = (s) => '0x' + s.toString(16).padStart(4, '0').toUpperCase();

const echo = new CEchoRequest();
echo.on('response', (r) => {
    responses++;
    console.log('echo ' + hex(r.getStatus()));
    if (r.getStatus() !== 0) failures++;
});
client.addRequest(echo);
for (const f of files) {
    const req = new CStoreRequest(f);
    req.on('response', (r) => {
        responses++;
        console.log('store ' + f + ' ' + hex(r.getStatus()));
        if (r.getStatus() !== 0) failures++;
    });
    client.addRequest(req);
}
client.on('networkError', (e) => {
    console.log('network error: ' + e.message);
    failures++;
});
client.on('associationRejected', (r) => {
    console.log('association rejected: result ' + r.result + ' source ' + r.source + ' reason ' + r.reason);
    failures++;
});
client.on('closed', () => {
    if (responses !== files.length + 1) failures++;
    process.exit(failures ? 1 : 0);
});
client.send(host, Number(port), calling, called);
