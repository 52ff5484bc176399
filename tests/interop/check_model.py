#!/usr/bin/python3
"""Model mode with real torch 1.13: what `ckpt convert --model` wrote for every fixture with a
<name>.sd.json (tests/fixtures/gen_models.py).

    /usr/bin/python3 tests/interop/check_model.py FIXTURE_DIR WRITTEN_DIR

For each: torch.load(WRITTEN/<name>.pt, weights_only=True) is exactly model.state_dict() of the original
(torch.load of the whole model, or torch.jit.load): the same keys in the same order, dtypes, shapes,
values, and the same keys sharing a storage; load_state_dict(strict=True) into a fresh model of the same
architecture (the original reloaded, every value zeroed) succeeds and restores every value; and the
safetensors file, read by check_interop.spec_read, holds the same tensors (a name dropped for a shared
storage recorded as an alias of a kept one).
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures", "pypkg"))   # the classes the whole models pickle
from check_interop import spec_read, tensor_bytes  # noqa: E402

if not hasattr(torch._utils, "_rebuild_parameter_with_state"):
    # newer torch's rebuild function, which model_newest.pth pickles (gen_models.save_newest): this torch
    # 1.13 reads that file with it (torch.load of the original only; the converted files never need it)
    def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
        p = torch.nn.Parameter(data, requires_grad)
        p.__dict__.update(state)
        return p
    torch._utils._rebuild_parameter_with_state = _rebuild_parameter_with_state


def original(fixture_dir, ref):
    """The model the reference describes: torch's own load of the file (trusted: the repo's fixture)."""
    path = os.path.join(fixture_dir, ref["file"])
    if ref["source"] == "torchscript":
        return torch.jit.load(path)
    model = torch.load(path)
    for part in filter(None, ref["path"].split(".")):
        model = model[part] if isinstance(model, dict) else getattr(model, part)
    return model


def groups(sd):
    g, out = {}, []
    for v in sd.values():
        out.append(g.setdefault(v.storage().data_ptr(), len(g)))
    return out


def same(a, b, what):
    assert list(a) == list(b), f"{what}: keys {list(a)} != {list(b)}"
    for k in a:
        x, y = a[k], b[k]
        assert x.dtype == y.dtype and x.shape == y.shape, f"{what}: {k} {x.dtype}{list(x.shape)} != {y.dtype}{list(y.shape)}"
        assert tensor_bytes(x) == tensor_bytes(y), f"{what}: {k} values differ"


def main(fixture_dir, written_dir):
    refs = sorted(f[:-8] for f in os.listdir(fixture_dir) if f.endswith(".sd.json"))
    assert len(refs) >= 13, refs
    for name in refs:
        with open(os.path.join(fixture_dir, name + ".sd.json"), encoding="utf-8") as f:
            ref = json.load(f)
        model = original(fixture_dir, ref)
        want = model.state_dict()
        assert [e["key"] for e in ref["keys"]] == list(want), name
        got = torch.load(os.path.join(written_dir, name + ".pt"), weights_only=True)
        same(got, want, name)
        assert groups(got) == groups(want), f"{name}: storage sharing differs"
        assert all(not t.requires_grad for t in got.values())
        # a fresh model of the same architecture: every value zeroed, then the converted state dict
        fresh = original(fixture_dir, ref)
        with torch.no_grad():
            for t in fresh.state_dict().values():
                t.zero_()
        result = fresh.load_state_dict(got, strict=True)
        assert not result.missing_keys and not result.unexpected_keys, result
        same(fresh.state_dict(), want, f"{name} after load_state_dict")
        st, meta = spec_read(os.path.join(written_dir, name + ".safetensors"))
        aliases = 0
        for k, t in want.items():
            if k in st:
                assert st[k].dtype == t.dtype and tuple(st[k].shape) == tuple(t.shape), k
                assert tensor_bytes(st[k]) == tensor_bytes(t), f"{name}: safetensors {k} differs"
            else:
                kept = meta.get(k)
                assert kept in st and want[kept].storage().data_ptr() == t.storage().data_ptr(), f"{name}: {k}"
                aliases += 1
        print(f"  {name:20s} ok: {len(got)} keys, weights_only load, load_state_dict(strict=True), safetensors"
              + (f" ({aliases} shared names as aliases)" if aliases else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
