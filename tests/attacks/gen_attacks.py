#!/usr/bin/env python3
"""gen_attacks.py: writes the attack corpus (tests/attacks/data/*) and its manifest.

Plain Python 3, no torch: every file is built byte by byte, so each one is exactly the attack it names
and nothing else. tests/test_attacks.c loads each file and asserts the manifest's exact status and a
substring of the message; files whose status is OK are resource attacks whose *result* is checked by
dedicated tests (linear walks, bounded memory).

    python3 tests/attacks/gen_attacks.py        # rewrites data/ and data/MANIFEST
"""
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")
# what the payloads would do if anything ever ran them; test_attacks.c asserts these never appear
MARKER = "/tmp/libckpt-attack-pwned"
CMD = ("touch " + MARKER).encode()

# ---------------------------------------------------------------- pickle pieces

def u8(x): return struct.pack("<B", x)
def u16(x): return struct.pack("<H", x)
def u32(x): return struct.pack("<I", x)
def u64(x): return struct.pack("<Q", x)

PROTO2 = b"\x80\x02"
STOP = b"."
MARK = b"("
TUPLE = b"t"
REDUCE = b"R"
POP = b"0"
NONE = b"N"
EMPTY_DICT = b"}"
EMPTY_TUPLE = b")"
NEWFALSE = b"\x89"


def glob(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def ustr(s):
    b = s.encode() if isinstance(s, str) else s
    return b"X" + u32(len(b)) + b


def sustr(s):  # SHORT_BINUNICODE (protocol 4)
    b = s.encode()
    return b"\x8c" + u8(len(b)) + b


def bint(x):
    if 0 <= x < 256:
        return b"K" + u8(x)
    if 0 <= x < 65536:
        return b"M" + u16(x)
    if -2**31 <= x < 2**31:
        return b"J" + struct.pack("<i", x)
    n = (x.bit_length() + 8) // 8
    return b"\x8a" + u8(n) + x.to_bytes(n, "little", signed=True)


def tup(*items):
    return MARK + b"".join(items) + TUPLE


def os_system():
    return glob("os", "system") + tup(ustr(CMD)) + REDUCE


def storage_pid(cls, key, numel, location="cpu"):
    return tup(ustr("storage"), glob("torch", cls), ustr(key), ustr(location), bint(numel)) + b"Q"


def rebuild_v2(pid, offset, size, stride, requires_grad=False):
    return (glob("torch._utils", "_rebuild_tensor_v2") +
            tup(pid, bint(offset), tup(*map(bint, size)), tup(*map(bint, stride)),
                b"\x88" if requires_grad else NEWFALSE, glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE) +
            REDUCE)


def state_dict(**items):
    body = b"".join(ustr(k) + v for k, v in items.items())
    return glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + MARK + body + b"u"


# ---------------------------------------------------------------- zip pieces

class Member:
    def __init__(self, name, data, deflate=False, flags=0, local_name=None, crc=None, size=None, comp=None):
        self.name = name.encode() if isinstance(name, str) else name
        self.data = data
        self.deflate = deflate
        self.flags = flags
        self.local_name = local_name.encode() if isinstance(local_name, str) else local_name
        self.crc = crc
        self.size = size
        self.comp = comp


def deflate_raw(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def make_zip(members):
    """torch's layout (stored members padded to 64 bytes) with knobs for every header field attacked."""
    out = bytearray()
    central = bytearray()
    for m in members:
        payload = m.comp if m.comp is not None else (deflate_raw(m.data) if m.deflate else m.data)
        crc = m.crc if m.crc is not None else zlib.crc32(m.data) & 0xffffffff
        size = m.size if m.size is not None else len(m.data)
        method = 8 if m.deflate else 0
        lname = m.local_name if m.local_name is not None else m.name
        off = len(out)
        pad = (64 - (off + 30 + len(lname) + 4) % 64) % 64
        extra = b"FB" + u16(pad) + b"Z" * pad
        out += (u32(0x04034b50) + u16(20) + u16(m.flags) + u16(method) + u16(0) + u16(0x21) + u32(crc) +
                u32(len(payload)) + u32(size) + u16(len(lname)) + u16(len(extra)) + lname + extra + payload)
        central += (u32(0x02014b50) + u16(20) + u16(20) + u16(m.flags) + u16(method) + u16(0) + u16(0x21) +
                    u32(crc) + u32(len(payload)) + u32(size) + u16(len(m.name)) + u16(0) + u16(0) + u16(0) +
                    u16(0) + u32(0) + u32(off) + m.name)
    cd = len(out)
    out += central
    out += u32(0x06054b50) + u16(0) + u16(0) + u16(len(members)) + u16(len(members)) + u32(len(central)) + \
        u32(cd) + u16(0)
    return bytes(out)


def checkpoint(pickle, records=(), prefix="archive", **pkl_knobs):
    ms = [Member(prefix + "/data.pkl", pickle, **pkl_knobs)]
    ms += [Member(prefix + "/" + n, d) if not isinstance(d, Member) else d for n, d in records]
    ms.append(Member(prefix + "/version", b"3\n"))
    return make_zip(ms)


# ---------------------------------------------------------------- the corpus

ATTACKS = []  # (file name, bytes, status, message substring, attack class)


def attack(name, data, status, needle, what):
    ATTACKS.append((name, data, status, needle, what))


def benign_pickle():
    return PROTO2 + state_dict(w=rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [2], [1])) + STOP


def payload_pickle():
    return PROTO2 + os_system() + STOP


FLOATS2 = struct.pack("<2f", 1.0, 2.0)


def build():
    # ---- container
    attack("zip_name_mismatch.pt", make_zip([Member("archive/data.pkl", payload_pickle(), local_name="archive/data.pkX"),
                                             Member("archive/version", b"3\n")]),
           "CKPT_ERR_ZIP", "local and central names differ", "local/central filename mismatch")
    for bit, label, needle in ((0x1, "encrypted", "is encrypted (flag bit 0x1)"),
                               (0x20, "patched", "patched data (flag bit 0x20)"),
                               (0x40, "strong_encryption", "strong encryption (flag bit 0x40)"),
                               (0x2000, "masked_headers", "masked (encrypted) headers")):
        attack("zip_flag_%s.pt" % label, checkpoint(benign_pickle(), [("data/0", FLOATS2)], flags=bit),
               "CKPT_ERR_ZIP", needle, "flag bit 0x%x" % bit)
    attack("zip_crc_mismatch.pt", checkpoint(benign_pickle(), [("data/0", FLOATS2)], crc=0x12345678),
           "CKPT_ERR_ZIP", "CRC-32 mismatch", "CRC mismatch on data.pkl")
    good = make_zip([Member("archive/data.pkl", benign_pickle()), Member("archive/data/0", FLOATS2, crc=0xdeadbeef),
                     Member("archive/version", b"3\n")])
    attack("zip_crc_mismatch_storage.pt", good, "CKPT_ERR_ZIP", "CRC-32 mismatch", "CRC mismatch on a storage record")
    attack("zip_pickle_as_txt.pt", make_zip([Member("archive/data.txt", payload_pickle()), Member("archive/version", b"3\n")]),
           "CKPT_ERR_FORMAT", "no 'archive/data.pkl' record", "pickle under a non-.pkl name")
    # next to a benign data.pkl, a payload pickle under another name is data the loader never runs
    attack("zip_payload_beside_data_pkl.pt",
           make_zip([Member("archive/data.pkl", benign_pickle()), Member("archive/data/0", FLOATS2),
                     Member("archive/extra.bin", payload_pickle()), Member("archive/data.pkl.txt", payload_pickle()),
                     Member("archive/version", b"3\n")]),
           "CKPT_OK", "", "payload pickles beside a benign data.pkl (never unpickled)")
    attack("zip_duplicate_data_pkl.pt", make_zip([Member("archive/data.pkl", benign_pickle()),
                                                  Member("archive/data.pkl", payload_pickle()),
                                                  Member("archive/data/0", FLOATS2), Member("archive/version", b"3\n")]),
           "CKPT_ERR_ZIP", "duplicate member name 'archive/data.pkl'", "duplicate data.pkl")
    attack("zip_duplicate_data_pkl_case.pt", make_zip([Member("archive/data.pkl", benign_pickle()),
                                                       Member("archive/DATA.pkl", payload_pickle()),
                                                       Member("archive/data/0", FLOATS2), Member("archive/version", b"3\n")]),
           "CKPT_ERR_ZIP", "differs only in case", "duplicate data.pkl differing in case")
    attack("zip_torchscript.pt", make_zip([Member("archive/data.pkl", benign_pickle()),
                                           Member("archive/constants.pkl", payload_pickle()),
                                           Member("archive/code/__torch__.py", b"import os\nos.system('touch x')\n"),
                                           Member("archive/data/0", FLOATS2), Member("archive/version", b"3\n")]),
           "CKPT_ERR_UNSUPPORTED", "TorchScript archive", "TorchScript archive passed off as a checkpoint")
    # the legacy format starts with the magic number as a LONG1 literal; built by eval it is not legacy
    # (libckpt recognises the exact bytes only and never evaluates anything to find a format)
    # a real legacy stream (the exact magic bytes) whose main pickle carries the payload
    import pickle as _pickle
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    attack("legacy_payload.pt",
           _pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + _pickle.dumps(1001, protocol=2) +
           _pickle.dumps(sys_info, protocol=2) + payload_pickle() + _pickle.dumps([], protocol=2),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "legacy stream with a payload in its main pickle")
    attack("legacy_magic_by_eval.pt",
           PROTO2 + glob("__builtin__", "eval") + tup(ustr("0x1950a86a20f9469cfc6c")) + REDUCE + STOP +
           PROTO2 + bint(1001) + STOP,
           "CKPT_ERR_FORMAT", "bare pickle", "legacy magic number built by eval")
    # deflate bombs: a real ~1 MiB bomb that inflates to 1 GiB, declared honestly (stopped by the budget),
    # one declaring far more than deflate can expand, and one lying small (stopped at the declared size)
    gib = 1 << 30
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(c.compress(chunk) for _ in range(gib // len(chunk))) + c.flush()
    attack("deflate_bomb_1gib.pt",
           checkpoint(b"", [], deflate=True, comp=bomb, size=gib, crc=zlib.crc32(b"\0" * 0)),
           "CKPT_ERR_LIMIT", "beyond the allocation limit", "deflate bomb (~1 MB inflating to 1 GiB)")
    attack("deflate_bomb_ratio.pt", checkpoint(benign_pickle(), [("data/0", FLOATS2)], deflate=True, size=0x7fffffff),
           "CKPT_ERR_ZIP", "more than deflate can expand", "deflate member declaring an impossible size")
    small = b"\0" * 100000
    attack("deflate_lying_small.pt",
           checkpoint(small, [], deflate=True, size=100, crc=zlib.crc32(small[:100])),
           "CKPT_ERR_ZIP", "inflates to more than its declared 100 bytes", "deflate member lying small")

    # ---- ways to reach a global
    attack("global_os_system.pt", checkpoint(payload_pickle()), "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed",
           "GLOBAL + REDUCE")
    attack("stack_global_from_strings.pt",
           checkpoint(PROTO2 + b"S'os'\nS'system'\n\x93" + tup(ustr(CMD)) + REDUCE + STOP),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "STACK_GLOBAL fed by protocol-0 STRINGs")
    attack("stack_global_from_memo.pt",
           checkpoint(b"\x80\x04" + sustr("os") + b"\x94" + sustr("system") + b"\x94" + POP + POP +
                      b"h\x00h\x01\x93" + tup(ustr(CMD)) + REDUCE + STOP),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "STACK_GLOBAL fed by memo entries")
    attack("stack_global_memo_non_str.pt",
           checkpoint(b"\x80\x04" + bint(7) + b"\x94" + glob("os", "system")[:0] + EMPTY_TUPLE + b"\x94" + POP + POP +
                      b"h\x00h\x01\x93" + STOP),
           "CKPT_ERR_PICKLE", "STACK_GLOBAL operands must be str, got int and tuple", "STACK_GLOBAL on non-str memo entries")
    attack("stack_global_dotted.pt",
           checkpoint(b"\x80\x04" + sustr("pathlib") + sustr("os.system") + b"\x93" + tup(ustr(CMD)) + REDUCE + STOP),
           "CKPT_ERR_BLOCKED", "global 'pathlib.os.system' is not allowed", "STACK_GLOBAL with a dotted name")
    attack("stack_global_dotted_allowed_module.pt",
           checkpoint(b"\x80\x04" + sustr("collections") + sustr("OrderedDict.__init__.__globals__") + b"\x93" + STOP),
           "CKPT_ERR_BLOCKED", "global 'collections.OrderedDict.__init__.__globals__' is not allowed",
           "dotted name under an allowed class")
    attack("payload_dropped_by_pop.pt",
           checkpoint(PROTO2 + os_system() + POP + state_dict() + STOP),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "payload call whose result is dropped by POP")
    attack("obj_payload.pt", checkpoint(PROTO2 + MARK + glob("os", "system") + ustr(CMD) + b"o" + STOP),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "OBJ call")
    attack("inst_payload.pt", checkpoint(PROTO2 + MARK + ustr(CMD) + b"ios\nsystem\n" + STOP),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "INST call")
    attack("newobj_ex_payload.pt",
           checkpoint(b"\x80\x04" + glob("subprocess", "Popen") + tup(tup(ustr("touch"), ustr(MARKER))) + EMPTY_DICT +
                      b"\x92" + STOP),
           "CKPT_ERR_BLOCKED", "global 'subprocess.Popen' is not allowed", "NEWOBJ_EX call")
    attack("obj_on_allowed_function.pt",
           checkpoint(PROTO2 + MARK + glob("torch._utils", "_rebuild_tensor_v2") + b"o" + STOP),
           "CKPT_ERR_PICKLE", "_rebuild_tensor_v2 takes", "OBJ with an allowed rebuild function and no arguments")
    attack("newobj_ex_on_function.pt",
           checkpoint(b"\x80\x04" + glob("torch._utils", "_rebuild_tensor_v2") + EMPTY_TUPLE + EMPTY_DICT + b"\x92" + STOP),
           "CKPT_ERR_PICKLE", "cannot be used with NEWOBJ_EX", "NEWOBJ_EX on an allowed function")
    for op, arg, code in ((b"\x82", u8(1), 1), (b"\x83", u16(0x1234), 0x1234), (b"\x84", u32(0x7fffffff), 0x7fffffff)):
        attack("ext%d.pt" % len(arg), checkpoint(PROTO2 + op + arg + tup(ustr(CMD)) + REDUCE + STOP),
               "CKPT_ERR_BLOCKED", "extension code %d" % code, "EXT%d" % len(arg))
    attack("reduce_on_build_result.pt",
           checkpoint(PROTO2 + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + EMPTY_DICT + b"b" +
                      tup(ustr(CMD)) + REDUCE + STOP),
           "CKPT_ERR_PICKLE", "REDUCE target is a collections.OrderedDict, not a global", "REDUCE on a BUILD result")
    attack("persistent_id_payload.pt",
           checkpoint(PROTO2 + os_system() + b"Q" + STOP),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "payload inside a persistent id")
    attack("nested_torch_load.pt",
           checkpoint(PROTO2 + glob("torch", "load") + tup(ustr("/tmp/x.pt")) + REDUCE + STOP),
           "CKPT_ERR_BLOCKED", "global 'torch.load' is not allowed", "nested torch.load")
    attack("builtins_getattr.pt",
           checkpoint(PROTO2 + glob("__builtin__", "getattr") + tup(glob("collections", "OrderedDict"), ustr("__init__")) +
                      REDUCE + STOP),
           "CKPT_ERR_BLOCKED", "global 'builtins.getattr' is not allowed", "getattr (protocol-2 name normalised)")

    # ---- framing and truncation
    hidden = b"B" + u32(30) + glob("os", "system") + b"(S'x'\ntR."  # 30 bytes of "data" that look like opcodes
    hidden = hidden[:5] + hidden[5:35].ljust(30, b"N")
    frame_len = 5 + 10  # the frame ends inside the BINBYTES payload
    attack("frame_hides_opcodes.pt",
           checkpoint(b"\x80\x04\x95" + u64(frame_len) + hidden + NONE + STOP),
           "CKPT_ERR_PICKLE", "only 10 bytes remain in the current frame", "FRAME length hiding opcodes inside BINBYTES")
    attack("frame_straddle.pt",
           checkpoint(b"\x80\x04\x95" + u64(3) + b"\x8c\x05ab" + b"cde" + STOP),
           "CKPT_ERR_PICKLE", "remain in the current frame", "argument straddling a frame end")
    attack("frame_in_frame.pt",
           checkpoint(b"\x80\x04\x95" + u64(20) + b"\x95" + u64(2) + b"N." + b"N" * 9 + STOP),
           "CKPT_ERR_PICKLE", "FRAME inside an unfinished frame", "frame inside a frame")
    attack("truncated_after_payload.pt", checkpoint(PROTO2 + glob("os", "system") + ustr(CMD)[:7]),
           "CKPT_ERR_BLOCKED", "global 'os.system' is not allowed", "stream truncated after the payload")
    attack("truncated_benign.pt", checkpoint(PROTO2 + EMPTY_DICT + ustr("key")[:5]),
           "CKPT_ERR_PICKLE", "declared length 3 but only 0 bytes remain", "stream truncated mid-argument")
    attack("data_after_stop.pt", checkpoint(PROTO2 + NONE + STOP + payload_pickle()),
           "CKPT_ERR_PICKLE", "after the pickle's STOP opcode", "second pickle hidden after STOP")

    # ---- tensors
    attack("numel_overflow.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 0x4000000000000001), 0, [1], [1]) + STOP,
                      [("data/0", FLOATS2)]),
           "CKPT_ERR_TENSOR", "overflows", "numel * itemsize overflow (numel 0x4000000000000001)")
    attack("tensor_size_outside.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [3], [1]) + STOP, [("data/0", FLOATS2)]),
           "CKPT_ERR_TENSOR", "extends past storage '0'", "size reaching outside the storage")
    attack("tensor_stride_outside.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [2, 2], [1, 1000]) + STOP,
                      [("data/0", FLOATS2)]),
           "CKPT_ERR_TENSOR", "extends past storage '0'", "stride reaching outside the storage")
    attack("tensor_offset_outside.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 2), 1, [2], [1]) + STOP, [("data/0", FLOATS2)]),
           "CKPT_ERR_TENSOR", "extends past storage '0'", "offset pushing the tensor outside the storage")
    attack("tensor_zero_dim_offset.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 2), 1 << 40, [0, 7], [7, 1]) + STOP,
                      [("data/0", FLOATS2)]),
           "CKPT_ERR_TENSOR", "storage offset 1099511627776 is outside storage '0'",
           "zero-size dimension shortcut with an offset outside the storage")
    attack("tensor_stride_overflow.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [2, 5], [1, 2**62]) + STOP,
                      [("data/0", FLOATS2)]),
           "CKPT_ERR_TENSOR", "size/stride arithmetic overflows", "size x stride overflow")
    attack("storage_record_short.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 4), 0, [4], [1]) + STOP, [("data/0", FLOATS2)]),
           "CKPT_ERR_TENSOR", "has 8 bytes, but the pickle declares 4 elements", "storage record shorter than declared")
    attack("rebuild_missing_args.pt",
           checkpoint(PROTO2 + glob("torch._utils", "_rebuild_tensor_v2") +
                      tup(storage_pid("FloatStorage", "0", 2), bint(0)) + REDUCE + STOP, [("data/0", FLOATS2)]),
           "CKPT_ERR_PICKLE", "_rebuild_tensor_v2 takes", "rebuild function with missing arguments")
    attack("rebuild_wrong_type.pt",
           checkpoint(PROTO2 + glob("torch._utils", "_rebuild_tensor_v2") +
                      tup(storage_pid("FloatStorage", "0", 2), bint(0), ustr("2"), tup(bint(1)), NEWFALSE,
                          glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE) + REDUCE + STOP,
                      [("data/0", FLOATS2)]),
           "CKPT_ERR_PICKLE", "must be a tuple of ints, got str", "rebuild function with a wrongly-typed argument")
    attack("rebuild_storage_not_storage.pt",
           checkpoint(PROTO2 + glob("torch._utils", "_rebuild_tensor_v2") +
                      tup(ustr("not a storage"), bint(0), tup(bint(2)), tup(bint(1)), NEWFALSE,
                          glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE) + REDUCE + STOP),
           "CKPT_ERR_PICKLE", "got str", "rebuild function given a str for its storage")
    attack("setitem_on_tensor.pt",
           checkpoint(PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [2], [1]) + ustr("k") + NONE + b"s" + STOP,
                      [("data/0", FLOATS2)]),
           "CKPT_ERR_PICKLE", "SETITEM on a torch.Tensor", "SETITEM on a non-dict (CVE-2026-24747 class)")

    # ---- pickle structure and resources
    attack("dict_odd_items.pt", checkpoint(PROTO2 + MARK + bint(1) + b"d" + STOP),
           "CKPT_ERR_PICKLE", "odd number of items (1) for DICT", "odd item count for DICT")
    attack("setitems_odd_items.pt", checkpoint(PROTO2 + EMPTY_DICT + MARK + bint(1) + bint(2) + bint(3) + b"u" + STOP),
           "CKPT_ERR_PICKLE", "odd number of items (3) for SETITEMS", "odd item count for SETITEMS")
    attack("binunicode8_huge.pt", checkpoint(b"\x80\x04\x8d" + u64(1 << 60) + b"abc" + STOP),
           "CKPT_ERR_LIMIT", "exceeds CKPT_LIMIT_MAX_STRING", "BINUNICODE8 declaring 2^60 bytes")
    attack("binbytes8_short.pt", checkpoint(b"\x80\x04\x8e" + u64(1000) + b"abcde" + STOP),
           "CKPT_ERR_PICKLE", "declared length 1000 but only 6 bytes remain", "BINBYTES8 with few bytes behind it")
    attack("long4_huge.pt", checkpoint(PROTO2 + b"\x8b" + u32(0x7fffffff) + b"\x01" * 16 + STOP),
           "CKPT_ERR_LIMIT", "exceeds CKPT_LIMIT_MAX_INT_BYTES", "LONG4 declaring 2 GiB")
    attack("int_text_huge.pt", checkpoint(PROTO2 + b"I" + b"9" * 100000 + b"\n" + STOP),
           "CKPT_ERR_LIMIT", "exceeds CKPT_LIMIT_MAX_INT_BYTES", "text INT of 100,000 digits")
    attack("long_text_huge.pt", checkpoint(PROTO2 + b"L" + b"9" * 100000 + b"L\n" + STOP),
           "CKPT_ERR_LIMIT", "exceeds CKPT_LIMIT_MAX_INT_BYTES", "text LONG of 100,000 digits")
    attack("deep_marks.pt", checkpoint(PROTO2 + MARK * 100000 + STOP),
           "CKPT_ERR_LIMIT", "CKPT_LIMIT_MAX_DEPTH", "100,000 nested MARKs")
    # 100,000 nested lists built without MARK: EMPTY_LIST x n, then APPEND x (n-1)
    n = 100000
    attack("deep_lists.pt", checkpoint(PROTO2 + b"]" * n + b"a" * (n - 1) + STOP),
           "CKPT_ERR_LIMIT", "value nesting deeper than 1000", "100,000-deep nested lists")
    attack("deep_tuples.pt", checkpoint(PROTO2 + NONE + b"\x85" * n + STOP),
           "CKPT_ERR_LIMIT", "value nesting deeper than 1000", "100,000-deep nested tuples (TUPLE1)")
    # a deep key is hashed iteratively and never walked: it loads, in linear time and memory
    attack("deep_tuple_dict_key.pt", checkpoint(PROTO2 + EMPTY_DICT + NONE + b"\x85" * n + NONE + b"s" + STOP),
           "CKPT_OK", "", "100,000-deep tuple used as a dict key (iterative hashing)")
    deep_fs = b"\x80\x04" + NONE + b"q\x00" + POP + (MARK + b"h\x00\x91q\x00" + POP) * 2000
    attack("deep_frozenset.pt", checkpoint(deep_fs + b"h\x00" + STOP),
           "CKPT_ERR_LIMIT", "value nesting deeper than 1000", "2,000-deep frozensets")
    # two equal (distinct) 2,000-deep frozensets as keys of one dict: comparing them is bounded
    fs2 = deep_fs.replace(b"\x00", b"\x01")[2:]
    attack("deep_frozenset_keys.pt", checkpoint(deep_fs + fs2 + EMPTY_DICT + b"h\x00" + NONE + b"s" + b"h\x01" + NONE +
                                                b"s" + STOP),
           "CKPT_ERR_LIMIT", "nests frozensets more than 64 deep", "equal 2,000-deep frozenset keys (comparison)")

    # ---- memo "billion laughs": level k+1 = (level k, level k); 2^64 paths, 64 nodes + 1 tensor. OK to load:
    # the tests check every walker stays linear (load, JSON, digest, find, free)
    p = PROTO2 + rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [2], [1]) + b"q\x00" + POP
    for k in range(64):
        p += b"h" + u8(k) + b"h" + u8(k) + b"\x86" + b"q" + u8(k + 1) + POP
    p += b"h" + u8(64) + STOP
    attack("laughs_tuples.pt", checkpoint(p, [("data/0", FLOATS2)]), "CKPT_OK", "", "memo/DUP DAG of tuples (2^64 paths)")
    # lists (identity nodes), via DUP and APPENDS: level k+1 = [level k, level k]
    p = PROTO2 + b"]" + b"q\x00" + POP
    for k in range(64):
        p += b"]" + MARK + b"h" + u8(k) + b"2" + b"e" + b"q" + u8(k + 1) + POP
    p += b"h" + u8(64) + STOP
    attack("laughs_lists.pt", checkpoint(p), "CKPT_OK", "", "memo/DUP DAG of lists (2^64 paths)")
    # dicts whose every value is the previous level, with many keys: wide and deep
    p = PROTO2 + EMPTY_DICT + b"q\x00" + POP
    for k in range(40):
        p += EMPTY_DICT + MARK + b"".join(ustr("k%d" % j) + b"h" + u8(k) for j in range(8)) + b"u" + b"q" + u8(k + 1) + POP
    p += b"h" + u8(40) + STOP
    attack("laughs_dicts.pt", checkpoint(p), "CKPT_OK", "", "memo DAG of dicts (8^40 paths)")


def build_logical():
    # stride-0 views: 2 stored floats seen as 2^40 elements (a 4 TiB digest), and 100 views of 16 MiB
    # each (every one small, together 1.6 GiB of elements to hash or copy)
    attack("tensor_stride0_huge.pt",
           checkpoint(PROTO2 + state_dict(w=rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [1 << 40], [0])) + STOP,
                      [("data/0", FLOATS2)]),
           "CKPT_ERR_LIMIT", "the tensors describe more than", "stride-0 view of 2^40 elements over 2 stored")
    views = {"v%d" % i: rebuild_v2(storage_pid("FloatStorage", "0", 2), 0, [1 << 22], [0]) for i in range(100)}
    attack("tensor_stride0_many.pt", checkpoint(PROTO2 + state_dict(**views) + STOP, [("data/0", FLOATS2)]),
           "CKPT_ERR_LIMIT", "passed at tensor 'v4'", "100 stride-0 views of 16 MiB each")


def build_amplifiers():
    # atoms (str, bytes) are listed at every path: a 1 MiB string referenced 2,000 times loads in linear
    # memory, but a JSON document listing it at each path would be 2 GiB (test_attacks checks the JSON)
    big = ustr("A" * (1 << 20))
    p = PROTO2 + big + b"q\x00" + POP + b"]" + MARK + b"h\x00" * 2000 + b"e" + STOP
    attack("shared_string_2000_paths.pt", checkpoint(p), "CKPT_OK", "", "one 1 MiB string at 2,000 paths (JSON size)")
    # the same with a 1 KiB int at 100,000 paths: 250 MB of decimal digits, each conversion quadratic
    p = PROTO2 + b"\x8b" + u32(1024) + b"\x7f" * 1024 + b"q\x00" + POP + b"]" + MARK + b"h\x00" * 100000 + b"e" + STOP
    attack("shared_bigint_100000_paths.pt", checkpoint(p), "CKPT_OK", "", "one 1 KiB int at 100,000 paths (JSON size)")
    # a 1 MiB key reused at 100 nesting levels: the dotted path would be 100 MiB
    p = PROTO2 + big + b"q\x00" + POP + EMPTY_DICT + b"q\x01" + POP
    for k in range(1, 101):
        p += EMPTY_DICT + b"h\x00" + b"h" + u8(k) + b"s" + b"q" + u8(k + 1) + POP
    p += b"h" + u8(101) + STOP
    attack("long_key_nested.pt", checkpoint(p), "CKPT_ERR_LIMIT", "dotted path longer than 1048576 bytes",
           "1 MiB dict key reused at 100 nesting levels (path length)")


def build_find():
    # a dict that holds itself under "a", "a.a" and "a.a.a": a dotted key of n components can be split
    # into those keys in tribonacci(n) ways; ckpt_checkpoint_find must give up after its step budget
    p = PROTO2 + EMPTY_DICT + b"q\x00" + b"".join(ustr(k) + b"h\x00s" for k in ("a", "a.a", "a.a.a")) + STOP
    attack("find_self_dict_dotted_keys.pt", checkpoint(p), "CKPT_OK", "", "dotted-key backtracking over a cycle")


def build_equal_keys():
    # two distinct but equal keys, A_k = (A_k-1, A_k-1) and B_k likewise over 19 levels: comparing them
    # walks 2^19 pairs, and every SETITEM of B into a dict holding A compares them again
    def dag(first):
        p, prev = b"", 0
        for k in range(19):
            p += b"j" + u32(prev) + b"j" + u32(prev) + b"\x86" + b"r" + u32(first + k) + POP
            prev = first + k
        return p, prev
    pa, ia = dag(1)
    pb, ib = dag(100)
    p = PROTO2 + NONE + b"r" + u32(0) + POP + pa + pb + EMPTY_DICT + b"j" + u32(ia) + bint(1) + b"s"
    p += (b"j" + u32(ib) + bint(1) + b"s") * 200 + STOP
    attack("equal_dag_keys.pt", checkpoint(p), "CKPT_ERR_LIMIT", "takes too long (more than 16777216 comparisons in this load",
           "equal memo-DAG tuple keys compared on every SETITEM")
    # two equal frozensets of 6,000 ints: comparing them is quadratic in their size
    items = b"".join(b"M" + u16(i) for i in range(6000))
    p = (b"\x80\x04" + EMPTY_DICT + MARK + items + b"\x91" + bint(1) + b"s" + MARK + items + b"\x91" + b"\x94" +
         bint(1) + b"s" + (b"h\x00" + bint(1) + b"s") * 3 + STOP)
    attack("equal_frozenset_keys.pt", checkpoint(p), "CKPT_ERR_LIMIT", "takes too long (more than 16777216 comparisons in this load",
           "equal 6,000-item frozenset keys (quadratic comparison)")


def main():
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):
        os.remove(os.path.join(OUT, fn))
    build()
    build_find()
    build_amplifiers()
    build_logical()
    build_equal_keys()
    lines = ["# file\tstatus\tmessage substring\tattack class (written by gen_attacks.py; do not edit)\n"]
    for name, data, status, needle, what in ATTACKS:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        assert "\t" not in needle and "\n" not in needle
        lines.append("%s\t%s\t%s\t%s\n" % (name, status, needle, what))
    with open(os.path.join(OUT, "MANIFEST"), "w") as f:
        f.writelines(lines)
    print("%d attack files in %s" % (len(ATTACKS), OUT))


if __name__ == "__main__":
    sys.exit(main())
