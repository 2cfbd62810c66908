"""Writer (and a small reader, for tests) of the cxrseg model container described in models/FORMAT.md.

The exporter (export.py) and the parity-reference generator (make_parity_refs.py) both write this
container; the C loader (src/mrcnn/cx_mfile.c) is its only reader at run time.
"""
import hashlib
import struct

import numpy as np

MAGIC = b"CXSEGMDL"
VERSION = 1
ALIGN = 64
T_I64, T_F64, T_STR, T_I64A, T_F64A, T_STRA = 1, 2, 3, 4, 5, 6
DT_F32, DT_U8, DT_I32 = 0, 1, 2
_DTYPES = {np.dtype(np.float32): DT_F32, np.dtype(np.uint8): DT_U8, np.dtype(np.int32): DT_I32}


def _str(b, s):
    e = s.encode("utf-8")
    b += struct.pack("<I", len(e)) + e


def _meta_entry(key, value):
    b = bytearray()
    _str(b, key)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, (int, np.integer)):
        b += struct.pack("<Iq", T_I64, int(value))
    elif isinstance(value, (float, np.floating)):
        b += struct.pack("<Id", T_F64, float(value))
    elif isinstance(value, str):
        b += struct.pack("<I", T_STR)
        _str(b, value)
    elif isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value) and value:
            b += struct.pack("<II", T_STRA, len(value))
            for v in value:
                _str(b, v)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            b += struct.pack("<II", T_I64A, len(value)) + struct.pack("<%dq" % len(value), *value)
        else:
            b += struct.pack("<II", T_F64A, len(value)) + struct.pack("<%dd" % len(value), *map(float, value))
    else:
        raise TypeError(f"metadata {key!r}: unsupported value {value!r}")
    return bytes(b)


def write(path, meta, tensors, integrity=True):
    """meta: list of (key, value); tensors: list of (name, numpy array float32/uint8/int32).
    integrity: append integrity.meta_sha256 (the other metadata entries and the tensor table, as
    stored, in file order) and integrity.data_sha256 (the tensor data region), which the loader
    checks (models/FORMAT.md "Integrity")."""
    meta = [(k, v) for k, v in meta if not k.startswith("integrity.")]
    keys = [k for k, _ in meta]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate metadata key")
    names = [n for n, _ in tensors]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor name")
    entries = bytearray()
    for k, v in meta:
        entries += _meta_entry(k, v)
    table = bytearray()
    offset = 0
    arrays = []
    data_sha = hashlib.sha256()
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in _DTYPES:
            raise TypeError(f"tensor {name}: dtype {arr.dtype} not supported")
        _str(table, name)
        table += struct.pack("<II", _DTYPES[arr.dtype], arr.ndim)
        table += struct.pack("<%dQ" % arr.ndim, *arr.shape)
        table += struct.pack("<QQ", offset, arr.nbytes)
        arrays.append((offset, arr))
        data_sha.update(arr.tobytes())
        data_sha.update(b"\0" * ((-arr.nbytes) % ALIGN))
        offset += (arr.nbytes + ALIGN - 1) // ALIGN * ALIGN
    n_meta = len(meta)
    if integrity:
        meta_sha = hashlib.sha256(bytes(entries) + bytes(table)).hexdigest()
        entries += _meta_entry("integrity.meta_sha256", meta_sha)
        entries += _meta_entry("integrity.data_sha256", data_sha.hexdigest())
        n_meta += 2
    body = entries + table
    data_offset = (64 + len(body) + ALIGN - 1) // ALIGN * ALIGN
    header = MAGIC + struct.pack("<IIIIQQ", VERSION, n_meta, len(tensors), 0, data_offset, offset)
    header += b"\0" * (64 - len(header))
    with open(path, "wb") as f:
        f.write(header)
        f.write(body)
        f.write(b"\0" * (data_offset - 64 - len(body)))
        for off, arr in arrays:
            assert f.tell() == data_offset + off
            f.write(arr.tobytes())
            f.write(b"\0" * ((-arr.nbytes) % ALIGN))


def read(path):
    """Returns (meta dict, tensors dict) — for tests and inspection only."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise ValueError("not a cxrseg model file")
    version, n_meta, n_tensors, _, data_offset, _ = struct.unpack_from("<IIIIQQ", data, 8)
    pos = 64

    def rstr():
        nonlocal pos
        (n,) = struct.unpack_from("<I", data, pos)
        s = data[pos + 4:pos + 4 + n].decode("utf-8")
        pos += 4 + n
        return s

    meta = {}
    for _ in range(n_meta):
        k = rstr()
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if t in (T_I64, T_F64):
            meta[k] = struct.unpack_from("<q" if t == T_I64 else "<d", data, pos)[0]
            pos += 8
        elif t == T_STR:
            meta[k] = rstr()
        else:
            (n,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if t == T_STRA:
                meta[k] = [rstr() for _ in range(n)]
            else:
                meta[k] = list(struct.unpack_from(("<%dq" if t == T_I64A else "<%dd") % n, data, pos))
                pos += 8 * n
    tensors = {}
    inv = {v: k for k, v in _DTYPES.items()}
    for _ in range(n_tensors):
        name = rstr()
        dt, nd = struct.unpack_from("<II", data, pos)
        pos += 8
        shape = struct.unpack_from("<%dQ" % nd, data, pos)
        pos += 8 * nd
        off, nb = struct.unpack_from("<QQ", data, pos)
        pos += 16
        tensors[name] = np.frombuffer(data, inv[dt], nb // inv[dt].itemsize, data_offset + off).reshape(shape)
    return meta, tensors
