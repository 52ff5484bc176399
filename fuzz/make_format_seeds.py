#!/usr/bin/env python3
"""Seed corpora for the format harnesses (plain Python 3, no torch):
    python3 fuzz/make_format_seeds.py
fuzz_legacy: the legacy-format fixtures as they are. fuzz_tar: the tar fixture, and its members in the
harness's structured form. fuzz_torchscript: the TorchScript fixture, and data.pkl + storage records
of the fixtures with TorchScript classes, quantized, sparse, meta and v3 tensors in structured form.
fuzz_scan: the legacy and tar fixtures as they are (named seed-format-*; make_seeds.py keeps them).
Files named seed-* are rewritten; other files (findings) are left alone."""
import io
import os
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "fixtures", "data")
SEP = b"\xff\xfeSTOR"


def write(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def structured_zip(name):
    with zipfile.ZipFile(os.path.join(DATA, name)) as z:
        prefix = z.namelist()[0].split("/", 1)[0]
        keys = sorted((n.rsplit("/", 1)[1] for n in z.namelist() if n.startswith(prefix + "/data/")), key=int)
        assert keys == [str(i) for i in range(len(keys))], name
        parts = [z.read(f"{prefix}/data.pkl")] + [z.read(f"{prefix}/data/{k}") for k in keys]
    return SEP.join(parts)


def main():
    for name in ("legacy_state_dict.pt", "legacy_mixed.pt", "legacy_protocol4.pt", "legacy_views.pt",
                 "legacy_model.pth"):
        write("fuzz_legacy", name, read(name))
        write("fuzz_scan", "format-" + name, read(name))
    write("fuzz_scan", "format-tar_state_dict.pt", read("tar_state_dict.pt"))
    write("fuzz_tar", "tar_state_dict.pt", read("tar_state_dict.pt"))
    with tarfile.open(os.path.join(DATA, "tar_state_dict.pt")) as t:
        members = [t.extractfile(n).read() for n in ("pickle", "tensors", "storages", "sys_info")]
    write("fuzz_tar", "tar_state_dict.structured", SEP.join(members))
    write("fuzz_torchscript", "torchscript.pt", read("torchscript.pt"))
    for name in ("torchscript.pt", "quantized.pt", "sparse.pt", "meta.pt", "v3_dtypes.pt", "newer_kinds.pt"):
        write("fuzz_torchscript", name.replace(".pt", ".structured"), structured_zip(name))


if __name__ == "__main__":
    main()
