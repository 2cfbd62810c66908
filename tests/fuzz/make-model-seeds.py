#!/usr/bin/python3
"""Writes the model harness's seed corpus (tests/fuzz/corpus/model) from tests/data: the decision
fixture as exported (integrity digests checked), the same without its digests (so that mutations
get past the container and into the model loader), and small hand-made containers that reach each
metadata type, each dtype and the integrity check. Pure Python (no numpy). Run from the source tree:
    /usr/bin/python3 tests/fuzz/make-model-seeds.py
GPL-3.0-or-later."""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "model")
SRC = os.path.join(HERE, "..", "data", "decision_model.cxm")


def s(text):
    b = text.encode()
    return struct.pack("<I", len(b)) + b


def entries_of(data, n_meta):
    """The stored metadata entries as (key, bytes), and where the tensor table starts."""
    pos, out = 64, []
    for _ in range(n_meta):
        at = pos
        (n,) = struct.unpack_from("<I", data, pos)
        key = data[pos + 4:pos + 4 + n].decode()
        pos += 4 + n
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if t in (1, 2):
            pos += 8
        elif t == 3:
            (n,) = struct.unpack_from("<I", data, pos)
            pos += 4 + n
        else:
            (c,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if t == 6:
                for _ in range(c):
                    (n,) = struct.unpack_from("<I", data, pos)
                    pos += 4 + n
            else:
                pos += 8 * c
        out.append((key, data[at:pos]))
    return out, pos


def table_end(data, pos, n_tensors):
    for _ in range(n_tensors):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4 + n
        _, nd = struct.unpack_from("<II", data, pos)
        pos += 8 + 8 * nd + 16
    return pos


def container(entries, table, n_tensors, blob):
    body = b"".join(entries) + table
    data_off = (64 + len(body) + 63) // 64 * 64
    head = b"CXSEGMDL" + struct.pack("<IIIIQQ", 1, len(entries), n_tensors, 0, data_off, len(blob))
    head += b"\0" * (64 - len(head))
    return head + body + b"\0" * (data_off - 64 - len(body)) + blob


def with_integrity(entries, table, n_tensors, blob):
    meta = hashlib.sha256(b"".join(entries) + table).hexdigest()
    dsha = hashlib.sha256(blob).hexdigest()
    extra = [s("integrity.meta_sha256") + struct.pack("<I", 3) + s(meta),
             s("integrity.data_sha256") + struct.pack("<I", 3) + s(dsha)]
    return container(entries + extra, table, n_tensors, blob)


def tensor(name, dtype, dims, offset, nbytes):
    return s(name) + struct.pack("<II", dtype, len(dims)) + struct.pack("<%dQ" % len(dims), *dims) + \
        struct.pack("<QQ", offset, nbytes)


def main():
    os.makedirs(OUT, exist_ok=True)
    data = open(SRC, "rb").read()
    _, n_meta, n_tensors, _, data_off, _ = struct.unpack_from("<IIIIQQ", data, 8)
    ents, tpos = entries_of(data, n_meta)
    table = data[tpos:table_end(data, tpos, n_tensors)]
    blob = data[data_off:]
    seeds = {
        "decision_model.cxm": data,
        "decision_model_no_integrity.cxm":
            container([b for k, b in ents if not k.startswith("integrity.")], table, n_tensors, blob),
        "empty_container.cxm": container([], b"", 0, b""),
    }
    small = [s("a.int") + struct.pack("<Iq", 1, -7),
             s("a.float") + struct.pack("<Id", 2, 0.5),
             s("a.str") + struct.pack("<I", 3) + s("text"),
             s("a.ints") + struct.pack("<II", 4, 2) + struct.pack("<2q", 1, 2),
             s("a.floats") + struct.pack("<II", 5, 2) + struct.pack("<2d", 1.5, -2.5),
             s("a.strs") + struct.pack("<II", 6, 2) + s("x") + s("yz")]
    tab = tensor("t.f32", 0, [2, 3], 0, 24) + tensor("t.u8", 1, [5], 64, 5) + tensor("t.i32", 2, [], 128, 4)
    tblob = bytes(range(24)) + b"\0" * 40 + b"\1\2\3\4\5" + b"\0" * 59 + b"\7\0\0\0"
    seeds["small_types.cxm"] = container(small, tab, 3, tblob)
    seeds["small_integrity.cxm"] = with_integrity(small, tab, 3, tblob)
    for name, b in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b)


if __name__ == "__main__":
    main()
