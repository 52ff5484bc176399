#!/usr/bin/python3
"""Interop of the files libckpt writes with real torch 1.13 and with a safetensors reader written here
to the format's specification (no safetensors package is installed).

    /usr/bin/python3 tests/interop/check_interop.py pt FIXTURE_DIR WRITTEN_DIR
        every WRITTEN_DIR/<name>.pt (written by `ckpt convert` from FIXTURE_DIR/<name>.pt):
        zipfile reads it (CRCs checked), every record is stored with its data 64-byte aligned,
        torch.load(weights_only=True) reads it (see below), and it equals the original element for
        element, with the same tensor sharing; ref_inspect gives the same document.
    /usr/bin/python3 tests/interop/check_interop.py st FIXTURE_DIR WRITTEN_DIR
        every WRITTEN_DIR/<name>.safetensors: parsed by spec_read() and equal to the original's tensors
        (names dropped for a shared storage must be recorded as aliases of a kept name).
    /usr/bin/python3 tests/interop/check_interop.py ext SAFETENSORS PT INSPECT_JSON
        a safetensors file from another writer, its .pt conversion and libckpt's inspect JSON of it:
        the same tensors, values and XXH3 digests.

torch 1.13's weights-only unpickler has no BINFLOAT (Python floats), LONG4 (ints of 256+ bytes) and
allows fewer globals than current torch (no set, frozenset, bytes, bytearray, complex, torch.device,
Counter). A written file that needs one of those is loaded with weights_only=False, which is safe
here because libckpt itself wrote the file; the script says so, and checks that such a file needed it
only because its original did too.
"""
import json
import math
import os
import pickletools
import struct
import sys
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures", "pypkg"))   # the classes some fixtures pickle
import numpy as np  # noqa: E402
from ref_inspect import ref_inspect  # noqa: E402

# torch 1.13 _weights_only_unpickler: allowed opcodes lack BINFLOAT and LONG4; its globals
WO_113_GLOBALS = {
    "collections OrderedDict", "torch.nn.parameter Parameter", "torch.serialization _get_layout",
    "torch Size", "torch Tensor", "torch._utils _rebuild_parameter", "torch._utils _rebuild_tensor",
    "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_sparse_tensor",
    "torch._utils _rebuild_meta_tensor_no_storage", "torch._utils _rebuild_sparse_csr_tensor",
    "_codecs encode",
}


def needs_full_unpickler(pkl):
    """Why torch 1.13's weights-only unpickler cannot read this pickle ('' if it can)."""
    why = set()
    for op, arg, _ in pickletools.genops(pkl):
        if op.name in ("BINFLOAT", "LONG4"):
            why.add(op.name)
        elif op.name == "GLOBAL":
            mod, name = arg.split(" ", 1)
            if arg in WO_113_GLOBALS or (mod == "torch" and (name.endswith("Storage") or hasattr(torch, name)
                                                             and isinstance(getattr(torch, name), torch.dtype))):
                continue
            why.add(arg.replace(" ", "."))
    return ", ".join(sorted(why))


# ----------------------------------------------------------------------------------------------
def check_zip(path):
    """zipfile accepts it (testzip reads every member and checks its CRC-32); stored; 64-aligned."""
    with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
        assert bad is None, f"{path}: bad CRC in {bad}"
        infos = zf.infolist()
    with open(path, "rb") as f:
        raw = f.read()
    prefix = infos[0].filename.split("/", 1)[0]
    names = [i.filename.split("/", 1)[1] for i in infos]
    assert names[:4] == ["data.pkl", ".format_version", ".storage_alignment", "byteorder"], names
    assert names[-2:] == ["version", ".data/serialization_id"], names
    for i in infos:
        assert i.compress_type == zipfile.ZIP_STORED, i.filename
        assert i.filename.startswith(prefix + "/"), i.filename
        sig, = struct.unpack_from("<I", raw, i.header_offset)
        assert sig == 0x04034B50
        nlen, xlen = struct.unpack_from("<HH", raw, i.header_offset + 26)
        data = i.header_offset + 30 + nlen + xlen
        assert data % 64 == 0, f"{i.filename}: data at {data}, not 64-aligned"
        first_extra = raw[i.header_offset + 30 + nlen:i.header_offset + 32 + nlen]
        assert first_extra in (b"FB", b"\x01\x00"), f"{i.filename}: extra field {first_extra!r}"
    return prefix


def walk(obj, path=""):
    """(path, value) pairs in a deterministic order, each container once."""
    seen, out, stack = set(), [], [(path, obj)]
    while stack:
        p, o = stack.pop()
        if id(o) in seen and not isinstance(o, (int, float, str, bytes, bool, type(None), complex)):
            out.append((p, ("<seen>", id(o))))
            continue
        seen.add(id(o))
        out.append((p, o))
        if isinstance(o, dict):
            stack.extend((f"{p}.{k!r}", v) for k, v in reversed(list(o.items())))
            if getattr(o, "__dict__", None):
                stack.append((f"{p}.__dict__", o.__dict__))
        elif isinstance(o, (list, tuple)):
            stack.extend((f"{p}.{i}", v) for i, v in reversed(list(enumerate(o))))
        elif isinstance(o, (set, frozenset)):
            stack.extend((f"{p}.{i}", v) for i, v in reversed(list(enumerate(sorted(o, key=repr)))))
    return out


def same_scalar(a, b):
    if isinstance(a, np.generic) and not isinstance(b, np.generic):
        return same_scalar(a.item(), b)        # the numpy preset reads NumPy scalars as Python numbers
    if isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.shape != b.shape:
            return False
        native = a.dtype.newbyteorder("=")       # written in host order
        return a.astype(native).tobytes() == b.astype(native).tobytes() and native == b.dtype.newbyteorder("=")
    if isinstance(a, np.dtype):
        return isinstance(b, np.dtype) and a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, complex):
        return same_scalar(a.real, b.real) and same_scalar(a.imag, b.imag)
    return a == b


def tensor_bytes(t):
    t = t.detach()
    if t.is_quantized:
        t = t.int_repr()
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


SWAP_ORIGINAL = False   # torch 1.13 ignores the byteorder record: its view of a big-endian file is unswapped
PRE_ZIP = False         # legacy/tar originals: a view storage becomes its base storage plus an offset


def swapped(data, t):
    unit = t.element_size() // 2 if t.is_complex() else t.element_size()
    if unit <= 1:
        return data
    return b"".join(data[i:i + unit][::-1] for i in range(0, len(data), unit))


def same_tensor(a, b):
    if type(a) is not type(b) or a.dtype != b.dtype or a.shape != b.shape or a.requires_grad != b.requires_grad:
        return False
    if a.layout != torch.strided:                # sparse: the same components
        if a.layout != b.layout:
            return False
        if a.layout == torch.sparse_coo:
            return (tensor_bytes(a._indices()) == tensor_bytes(b._indices())
                    and tensor_bytes(a._values()) == tensor_bytes(b._values()))
        return (tensor_bytes(a.crow_indices()) == tensor_bytes(b.crow_indices())
                and tensor_bytes(a.col_indices()) == tensor_bytes(b.col_indices())
                and tensor_bytes(a.values()) == tensor_bytes(b.values()))
    if a.stride() != b.stride() or a.device != b.device:
        return False
    if a.storage_offset() != b.storage_offset() and not PRE_ZIP:  # a legacy view's offset moves to its base
        return False
    if a.is_meta:
        return True
    if a.is_quantized and (a.qscheme() != b.qscheme() or
                           (a.qscheme() == torch.per_tensor_affine and (a.q_scale() != b.q_scale() or
                                                                         a.q_zero_point() != b.q_zero_point()))):
        return False
    if SWAP_ORIGINAL:
        return swapped(tensor_bytes(a), a) == tensor_bytes(b)
    return tensor_bytes(a) == tensor_bytes(b)


def compare(orig, copy, name):
    wa, wb = walk(orig), walk(copy)
    assert len(wa) == len(wb), f"{name}: {len(wa)} vs {len(wb)} values"
    ids_a, ids_b = {}, {}
    tensors_a, tensors_b = [], []
    for (pa, a), (pb, b) in zip(wa, wb):
        assert pa == pb, f"{name}: {pa} vs {pb}"
        if isinstance(a, tuple) and len(a) == 2 and a[0] == "<seen>":
            assert isinstance(b, tuple) and b[0] == "<seen>" and ids_a[a[1]] == ids_b[b[1]], f"{name}: sharing at {pa}"
            continue
        ids_a[id(a)] = pa
        ids_b[id(b)] = pb
        if isinstance(a, torch.Tensor):
            assert same_tensor(a, b), f"{name}: tensor {pa} differs"
            tensors_a.append(a)
            tensors_b.append(b)
        elif isinstance(a, (dict, list, tuple, set, frozenset)):
            assert type(a) is type(b) and len(a) == len(b), f"{name}: {pa}: {type(a)} vs {type(b)}"
        elif hasattr(a, "__dict__") and type(a).__module__ not in ("builtins", "torch", "numpy"):
            assert type(a) is type(b) and vars(a).keys() == vars(b).keys(), f"{name}: {pa}: {a!r} vs {b!r}"
        else:
            assert same_scalar(a, b), f"{name}: {pa}: {a!r} vs {b!r}"
    # tensors share storage in the copy exactly where they did in the original
    def span(t):
        if t.layout != torch.strided or t.is_meta or t.is_quantized:
            return None
        if PRE_ZIP:
            # a legacy view storage is written as its base storage plus an offset, so
            # compare the bytes the tensors' elements occupy instead of whole storages
            if t.numel() == 0:
                return t.data_ptr(), t.data_ptr()
            last = sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
            return t.data_ptr(), t.data_ptr() + (last + 1) * t.element_size()
        st = t.storage()
        return st.data_ptr(), st.data_ptr() + st.nbytes()

    def shared(x, y):                           # their storages' memory overlaps (legacy views slice a base)
        return x[0] < y[1] and y[0] < x[1] if x[1] > x[0] and y[1] > y[0] else x[0] == y[0]
    for i in range(len(tensors_a)):
        for j in range(i + 1, len(tensors_a)):
            if span(tensors_a[i]) is None or span(tensors_a[j]) is None:
                continue
            sa = shared(span(tensors_a[i]), span(tensors_a[j]))
            sb = shared(span(tensors_b[i]), span(tensors_b[j]))
            assert sa == sb, f"{name}: storage sharing of tensors {i} and {j} differs"
    return len(tensors_a)


def load_written(path, original):
    with zipfile.ZipFile(path) as zf:
        prefix = zf.infolist()[0].filename.split("/", 1)[0]
        why = needs_full_unpickler(zf.read(f"{prefix}/data.pkl"))
    try:
        torch.load(original, weights_only=True)
        original_wo = True
    except Exception:
        original_wo = False
    if not why:
        return torch.load(path, weights_only=True), "weights_only=True"
    assert not original_wo, f"{path}: needs {why} but torch's own file loads with weights_only=True"
    print(f"  note: {os.path.basename(path)} holds {why}, which torch 1.13's weights-only unpickler lacks "
          f"(the original does too): loaded with weights_only=False, safe for a file libckpt wrote")
    return torch.load(path, weights_only=False), "weights_only=False"


def check_pt(fixture_dir, written_dir):
    names = sorted(f[:-3] for f in os.listdir(written_dir) if f.endswith(".pt"))
    assert names, "no written .pt files"
    for name in names:
        path, orig_path = os.path.join(written_dir, name + ".pt"), os.path.join(fixture_dir, name + ".pt")
        prefix = check_zip(path)
        assert prefix == name, f"{path}: archive prefix {prefix}"
        try:
            orig = torch.load(orig_path, weights_only=False)
        except Exception as e:                  # written by a newer torch (v3 dtypes, CSC/BSR, ...)
            print(f"  {name:12s} SKIP torch 1.13: it cannot load the original either ({type(e).__name__}: "
                  f"{str(e).splitlines()[0][:90]}); libckpt's own round trip covers it (test_writer)")
            continue
        copy, how = load_written(path, orig_path)
        global SWAP_ORIGINAL, PRE_ZIP
        is_zip = zipfile.is_zipfile(orig_path)   # legacy and tar originals are not
        PRE_ZIP = not is_zip
        if is_zip:
            with zipfile.ZipFile(orig_path) as zf:
                bo = [i for i in zf.namelist() if i.endswith("/byteorder")]
                SWAP_ORIGINAL = bool(bo) and zf.read(bo[0]) == b"big" and torch.__version__ < "2"
        n = compare(orig, copy, name)
        note = " (the original is big-endian: torch 1.13 ignores that, so its view was byte-swapped to compare)" \
            if SWAP_ORIGINAL else ""
        SWAP_ORIGINAL = False
        simple = False
        if is_zip:
            with zipfile.ZipFile(orig_path) as zf:
                simple = zf.infolist()[0].filename.endswith("/data.pkl") and not os.path.exists(
                    os.path.join(fixture_dir, name + ".allow"))
        else:
            note += " (from a pre-zip format)"
        if simple:                              # ref_inspect reads plain torch zips (no user classes)
            try:
                ra, rb = ref_inspect(orig_path), ref_inspect(path)
            except Exception as e:
                ra = rb = None
                note += f", ref_inspect n/a ({type(e).__name__})"
            if ra is not None:
                for k in ("file", "byteorder"):
                    ra.pop(k)
                    rb.pop(k)
                assert ra == rb, f"{name}: ref_inspect documents differ"
                note += ", ref_inspect identical"
        print(f"  {name:12s} ok: torch.load({how}), {n} tensors equal, sharing kept, 64-aligned, zipfile CRCs ok{note}")


# ----------------------------------------------------------------------------------------------
ST_DTYPES = {"BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "F16": torch.float16,
             "BF16": torch.bfloat16, "I32": torch.int32, "F32": torch.float32, "F64": torch.float64,
             "I64": torch.int64, "C64": torch.complex64}
ST_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "F16": 2, "BF16": 2, "I32": 4, "F32": 4, "F64": 8, "I64": 8,
            "C64": 8, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}


def spec_read(path):
    """A safetensors reader written from the format's description; strict about every rule."""
    with open(path, "rb") as f:
        raw = f.read()
    assert len(raw) >= 8, "shorter than the header length"
    n, = struct.unpack_from("<Q", raw, 0)
    assert n <= 100_000_000, "header above 100 MB"
    assert 8 + n <= len(raw), "header past the end"
    text = raw[8:8 + n].decode("utf-8")
    assert text.startswith("{"), "header must start with '{'"
    assert n % 8 == 0 and text == text.rstrip(" ") + " " * (len(text) - len(text.rstrip(" "))), "padding"

    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), "duplicate keys"
        return dict(pairs)
    header = json.loads(text, object_pairs_hook=no_dups)
    meta = header.pop("__metadata__", None)
    assert meta is None or all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    entries = sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"], kv[0]))
    data = raw[8 + n:]
    pos, out = 0, {}
    for name, info in entries:
        assert set(info) == {"dtype", "shape", "data_offsets"}, info
        b, e = info["data_offsets"]
        assert b == pos and e >= b, f"{name}: offsets {b},{e} after {pos}"
        numel = math.prod(info["shape"])
        assert e - b == numel * ST_SIZES[info["dtype"]], f"{name}: size"
        pos = e
        buf = bytearray(data[b:e])
        t = torch.frombuffer(buf, dtype=ST_DTYPES[info["dtype"]]) if buf else torch.empty(0, dtype=ST_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    assert pos == len(data), "data not covered exactly"
    order = [k for k in json.loads(text) if k != "__metadata__"]
    sizes = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
             "C64", "F64", "I64", "U64"]
    keyed = [(-sizes.index(header[k]["dtype"]), k) for k in order]
    assert keyed == sorted(keyed), "tensors not in the reference writer's order (dtype alignment, then name)"
    return out, meta or {}


def flat_tensors(obj, prefix=""):
    """name -> tensor the way libckpt names them (dotted keys, first path for a shared tensor object)."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flat_tensors(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def check_st(fixture_dir, written_dir):
    names = sorted(f[:-12] for f in os.listdir(written_dir) if f.endswith(".safetensors"))
    assert names, "no written .safetensors files"
    for name in names:
        got, meta = spec_read(os.path.join(written_dir, name + ".safetensors"))
        orig = flat_tensors(torch.load(os.path.join(fixture_dir, name + ".pt"), weights_only=False))
        aliases = 0
        for key, t in orig.items():
            if key in got:
                g = got[key]
                assert g.dtype == t.dtype and tuple(g.shape) == tuple(t.shape), key
                assert tensor_bytes(g) == tensor_bytes(t), f"{name}: {key} differs"
            else:
                kept = meta.get(key)
                assert kept in got, f"{name}: {key} neither stored nor an alias"
                assert orig[kept].storage().data_ptr() == t.storage().data_ptr(), f"{name}: alias {key} -> {kept}"
                aliases += 1
        print(f"  {name:12s} ok: spec reader agrees, {len(got)} tensors"
              + (f", {aliases} shared-storage names recorded as aliases" if aliases else ""))


def check_ext(st_path, pt_path, inspect_json):
    import xxhash
    got, _ = spec_read(st_path)
    loaded = torch.load(pt_path, weights_only=True)
    with open(inspect_json, encoding="utf-8") as f:
        doc = json.load(f)
    assert doc["format"] == "safetensors"
    assert set(loaded) == set(got), (set(loaded), set(got))
    digests = {t["key"]: t["xxh3_64"] for t in doc["tensors"]}
    for k, t in got.items():
        assert same_tensor(loaded[k], t.contiguous()), f"{k}: torch's view of the .pt differs"
        assert digests[k] == xxhash.xxh3_64_hexdigest(tensor_bytes(t)), f"{k}: digest"
    print(f"  {os.path.basename(st_path)} ok: {len(got)} tensors, .pt loads with weights_only=True, values and "
          f"digests equal")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "pt":
        check_pt(sys.argv[2], sys.argv[3])
    elif mode == "st":
        check_st(sys.argv[2], sys.argv[3])
    elif mode == "ext":
        check_ext(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: check_interop.py pt|st|ext ...")
