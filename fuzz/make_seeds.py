#!/usr/bin/env python3
"""make_seeds.py: (re)writes the seed files of fuzz/corpus/<harness>/ from the test fixtures and from
hand-made pickles and zips. Plain Python 3 (no torch). Seeds are named seed-*; regression inputs found
by fuzzing are named crash-*/leak-*/timeout-*/oom-* (or after the bug) and are never touched here.

    python3 fuzz/make_seeds.py
"""
import collections
import hashlib
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "data")
ATTACKS = os.path.join(HERE, "..", "tests", "attacks", "data")
CORPUS = os.path.join(HERE, "corpus")
SEP = b"\xff\xfeSTOR"  # fuzz_common.h FZ_SEP


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def fixtures():
    for fn in sorted(os.listdir(FIXTURES)):
        if fn.endswith(".pt"):
            with open(os.path.join(FIXTURES, fn), "rb") as f:
                blob = f.read()
            if blob[:2] == b"PK":  # the legacy and tar fixtures are make_format_seeds.py's
                yield fn[:-3], blob


def members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def structured(blob):
    """data.pkl + SEP + data/0 + SEP + data/1 ... when the storage keys are exactly 0..n-1."""
    ms = dict((n.split("/", 1)[1], d) for n, d in members(blob))
    keys = sorted(k[5:] for k in ms if k.startswith("data/"))
    if keys and sorted(int(k) for k in keys if k.isdigit()) != list(range(len(keys))):
        return None
    out = ms["data.pkl"]
    for i in range(len(keys)):
        out += SEP + ms["data/%d" % i]
    return out


class Thing:  # pickled by reference as __main__.Thing: exercises objects, BUILD and globals
    def __init__(self):
        self.a = [1, 2.5, "x", b"y", None, True]
        self.b = {"k": (1, 2), 3: frozenset({4})}


def hand_pickles():
    shared = [1, 2]
    values = {
        "scalars": [0, 1, -1, 255, 256, 65535, -2**31, 2**31, 2**63, -2**100, 10**400, 1.5, float("inf"), 1 + 2j,
                    True, False, None, "", "é\u20ac\U0001f600", b"", b"\x00\xff", bytearray(b"ab")],
        "containers": {"list": [1, [2, [3]]], "tuple": (1, (2,), ()), "set": {1, 2}, "fset": frozenset({3}),
                       "dict": {1: "a", "b": 2, (1, 2): 3}, "od": collections.OrderedDict(a=1)},
        "shared": {"x": shared, "y": shared, "z": (shared, shared)},
        "object": Thing(),
        "nested": [[[[[[[[[[]]]]]]]]]],
    }
    for name, v in values.items():
        for proto in range(0, 6):
            yield "%s-p%d" % (name, proto), pickle.dumps(v, protocol=proto)
    # hand-written: a tensor rebuild reached by GLOBAL/REDUCE with a persistent id, protocol 2
    yield "rebuild-p2", (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00((X\x07\x00\x00\x00storageq\x01"
                         b"ctorch\nFloatStorage\nq\x02X\x01\x00\x00\x000q\x03X\x03\x00\x00\x00cpuq\x04K\x04tq\x05"
                         b"QK\x00K\x02K\x02\x86q\x06K\x02K\x01\x86q\x07\x89ccollections\nOrderedDict\nq\x08)Rq\t"
                         b"tq\nRq\x0b.")
    yield "stack-global-p4", (b"\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0b"
                              b"OrderedDict\x94\x93\x94)R\x94.")
    yield "blocked-os-system", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R."


def deflated_zip(ms, zip64=False, descriptor=False):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, d in ms:
            zi = zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            if descriptor:
                with z.open(zi, "w", force_zip64=zip64) as w:
                    w.write(d)
            else:
                z.writestr(zi, d)
    return buf.getvalue()


OWN = ("fuzz_zip", "fuzz_zip_libzip", "fuzz_scan", "fuzz_load", "fuzz_json", "fuzz_unpickle")


def main():
    # only this script's seeds: the other seed scripts own the other harnesses (and seed-format-* in fuzz_scan)
    for h in OWN:
        d = os.path.join(CORPUS, h)
        for fn in os.listdir(d) if os.path.isdir(d) else []:
            if fn.startswith("seed-") and not fn.startswith("seed-format-"):
                os.remove(os.path.join(d, fn))
    for name, blob in fixtures():
        for h in ("fuzz_zip", "fuzz_zip_libzip", "fuzz_scan", "fuzz_load", "fuzz_json"):
            write(h, name + ".pt", blob)
        ms = members(blob)
        pkl = dict(ms)[[n for n, _ in ms if n.endswith("/data.pkl")][0]]
        write("fuzz_unpickle", name + ".pkl", pkl)
        s = structured(blob)
        if s is not None:
            write("fuzz_load", name + ".struct", s)
            write("fuzz_json", name + ".struct", s)
        if name in ("mlp", "tied", "nested"):
            small = [(n, d) for n, d in ms]
            for h in ("fuzz_zip", "fuzz_zip_libzip", "fuzz_load"):
                write(h, name + "-deflate.zip", deflated_zip(small))
                write(h, name + "-descriptor-zip64.zip", deflated_zip(small, zip64=True, descriptor=True))
    for name, p in hand_pickles():
        write("fuzz_unpickle", name + ".pkl", p)
        write("fuzz_scan", name + ".pkl", p)
        write("fuzz_load", name + ".struct", p)
    # a legacy-format stream: magic, protocol, sys_info, then a pickle (no torch needed for the shape)
    legacy = (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2) +
              pickle.dumps({"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2) +
              pickle.dumps({"w": 1}, protocol=2) + pickle.dumps(["0"], protocol=2))
    write("fuzz_scan", "legacy-stream.bin", legacy)
    # the attack corpus (tests/attacks/gen_attacks.py), files up to libFuzzer's -max_len
    for fn in sorted(os.listdir(ATTACKS)):
        path = os.path.join(ATTACKS, fn)
        if fn == "MANIFEST" or os.path.getsize(path) > 65536:
            continue
        with open(path, "rb") as f:
            blob = f.read()
        for h in ("fuzz_zip", "fuzz_zip_libzip", "fuzz_scan", "fuzz_load", "fuzz_json"):
            write(h, "attack-" + fn, blob)
        try:
            pkl = [d for n, d in members(blob) if n.endswith("/data.pkl")]
        except Exception:  # not a zip python can read: fine, the zip harnesses have it
            pkl = []
        if pkl:
            write("fuzz_unpickle", "attack-" + fn[:-3] + ".pkl", pkl[0])


if __name__ == "__main__":
    sys.exit(main())
