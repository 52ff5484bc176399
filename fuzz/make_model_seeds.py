#!/usr/bin/env python3
"""Seed corpora for the model-mode harnesses (plain Python 3, no torch):
    python3 fuzz/make_model_seeds.py
fuzz_model: the whole-model fixtures as they are (zip, legacy, TorchScript), and data.pkl + storage
records of the zip ones in the harness's structured form (TorchScript ones with their code/ files as
"#code PATH" parts). fuzz_schema: the schema fixtures and a few hand-written schemas.
Files named seed-* are rewritten; other files (findings) are left alone."""
import os
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


def structured(name):
    with zipfile.ZipFile(os.path.join(DATA, name)) as z:
        prefix = z.namelist()[0].split("/", 1)[0]
        keys = sorted((n.rsplit("/", 1)[1] for n in z.namelist() if n.startswith(prefix + "/data/")), key=int)
        assert keys == [str(i) for i in range(len(keys))], name
        parts = [z.read(f"{prefix}/data.pkl")] + [z.read(f"{prefix}/data/{k}") for k in keys]
        for n in z.namelist():   # code files as "#code PATH\n<text>" parts
            if n.startswith(prefix + "/code/") and n.endswith(".py"):
                parts.append(b"#code " + n[len(prefix) + 6:].encode() + b"\n" + z.read(n))
    return SEP.join(parts)


def main():
    for name in ("model_features.pth", "model_protocol1.pth", "model_timm_old.pth", "model_legacy.pth",
                 "model_ts.pth", "model_newest.pth"):
        write("fuzz_model", name, read(name))
    for name in ("model_features.pth", "model_protocol4.pth", "model_dataparallel.pth", "model_training.pth",
                 "model_newest.pth", "torchscript.pt"):
        write("fuzz_model", name.rsplit(".", 1)[0] + ".structured", structured(name))
    for name in ("model_timm_new.schema.json", "model_mlp_new.schema.json"):
        write("fuzz_schema", name, read(name))
    write("fuzz_schema", "presence.json", b'{"keys": {"conv.w": {}, "x": {"dtype": "float32"}}}')
    write("fuzz_schema", "classes.json",
          b'{"keys": {"conv.w": {"dtype": "float32", "shape": [4]}}, "classes": {"pkgx.Net": {"attributes": '
          b'["conv", "act"]}, "other.Conv": {"attributes": ["w", "kernel", "bias"], "optional_attributes": ["k"]}}}')


if __name__ == "__main__":
    main()
