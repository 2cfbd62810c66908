#!/usr/bin/python3
"""Hostile DICOM upper-layer clients for tests/node_attack.sh (standard library only).

Each mode opens raw TCP connections to the node and misbehaves the way an attacker (or a broken
sender) would, then reports on stdout when the node closed each connection:
  partial  HOST PORT HOLD        the first 40 bytes of a valid A-ASSOCIATE-RQ, then silence
  badlen   HOST PORT HOLD        a complete RQ PDU whose first item's length runs past the PDU
  silent   HOST PORT HOLD N      N connections that send nothing
  slow     HOST PORT HOLD        a valid RQ dribbled one byte every 0.5 s
  cutpdu   HOST PORT HOLD        associate properly, then a P-DATA-TF PDU cut short, then silence
Options: --source ADDR binds the client side (a second loopback address such as 127.0.0.2 acts as
another host). --ready FILE is created once every connection is open (and, for cutpdu, once the
association is accepted and the cut PDU sent), so the caller waits for the event, not a time.
Each connection prints "closed-by-node SECONDS" when the node closes it within HOLD seconds, or
"still-open HOLD" when HOLD ran out first.
"""
import argparse
import select
import socket
import struct
import sys
import time

VERIFICATION = b"1.2.840.10008.1.1"
IMPLICIT_LE = b"1.2.840.10008.1.2"
APP_CONTEXT = b"1.2.840.10008.3.1.1.1"


def item(t, body):
    return struct.pack(">BBH", t, 0, len(body)) + body


def associate_rq(called=b"CXRSEG", calling=b"ATTACKER"):
    pc = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, VERIFICATION) + item(0x40, IMPLICIT_LE))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)))
    body = (struct.pack(">HH", 1, 0) + called.ljust(16) + calling.ljust(16) + bytes(32) +
            item(0x10, APP_CONTEXT) + pc + user)
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


def connect(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.source:
        s.bind((a.source, 0))
    s.connect((a.host, a.port))
    return s


def watch(socks, hold, t0):
    """Reports for each socket when the node closed it (EOF or reset) within `hold` seconds."""
    open_ = {s.fileno(): s for s in socks}
    closed = {}
    while open_ and time.monotonic() - t0 < hold:
        r, _, _ = select.select(list(open_.values()), [], [], 0.2)
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                closed[s.fileno()] = time.monotonic() - t0
                del open_[s.fileno()]
    for s in socks:
        fd = s.fileno()
        print(f"closed-by-node {closed[fd]:.1f}" if fd in closed else f"still-open {hold}")
        s.close()


def ready(a):
    if a.ready:
        open(a.ready, "w").close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["partial", "badlen", "silent", "slow", "cutpdu"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("hold", type=float)
    ap.add_argument("n", type=int, nargs="?", default=1)
    ap.add_argument("--source", default="")
    ap.add_argument("--ready", default="")
    a = ap.parse_args()
    rq = associate_rq()
    t0 = time.monotonic()
    if a.mode == "silent":
        socks = []
        for _ in range(a.n):
            try:
                socks.append(connect(a))
            except OSError as e:
                print(f"connect-failed {e}")
        ready(a)
        watch(socks, a.hold, t0)
        return
    s = connect(a)
    if a.mode == "partial":
        s.sendall(rq[:40])
    elif a.mode == "badlen":
        bad = bytearray(rq)
        struct.pack_into(">H", bad, 6 + 68 + 2, 0xFFF0)  # the application context item's length
        s.sendall(bytes(bad))
    elif a.mode == "slow":
        ready(a)
        for i, b in enumerate(rq):
            try:
                s.sendall(bytes([b]))
            except OSError:
                print(f"closed-by-node {time.monotonic() - t0:.1f} after {i} bytes")
                return
            r, _, _ = select.select([s], [], [], 0.5)
            if r and not s.recv(1):
                print(f"closed-by-node {time.monotonic() - t0:.1f} after {i + 1} bytes")
                return
            if time.monotonic() - t0 > a.hold:
                print(f"still-open {a.hold}")
                return
        print("sent-whole-request")
        return
    elif a.mode == "cutpdu":
        s.sendall(rq)
        hdr = s.recv(6)
        if len(hdr) < 6 or hdr[0] != 0x02:
            sys.exit(f"cutpdu: the node did not accept the association (PDU type {hdr[:1].hex()})")
        (n,) = struct.unpack(">I", hdr[2:6])
        while n:
            n -= len(s.recv(n))
        # P-DATA-TF announcing 200 bytes, of which 20 arrive.
        s.sendall(struct.pack(">BBI", 0x04, 0, 200) + bytes(20))
        t0 = time.monotonic()
    if a.mode != "slow":
        ready(a)
    watch([s], a.hold, t0)


if __name__ == "__main__":
    main()
