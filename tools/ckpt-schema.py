#!/usr/bin/env python3
"""ckpt-schema.py: write the schema `ckpt check --schema` reads, from a live PyTorch model.

The schema says what the current code expects: every state_dict() key with its dtype and shape, and
for each module class the attributes its instances have (where nn.Module looks them up: the instance
__dict__, _parameters, _buffers and _modules, leaving out nn.Module's own bookkeeping): "attributes"
every instance has, "optional_attributes" only some have (the children of a container class). `ckpt check`
compares a checkpoint -- a state dict, or an old whole-model pickle read without its classes -- with it:

    python3 tools/ckpt-schema.py timm:create_model --args '["resnet18"]' -o resnet18.schema.json
    python3 tools/ckpt-schema.py mypkg.nets:Net --kwargs '{"width": 64}' -o net.schema.json
    ckpt check old_model.pt --schema net.schema.json

MODULE:FACTORY is imported and called (with --args / --kwargs as JSON) to build the model: this runs
your code, as building the model does anyway. From Python:

    import importlib.util
    spec = importlib.util.spec_from_file_location("ckpt_schema", "tools/ckpt-schema.py")
    ckpt_schema = importlib.util.module_from_spec(spec); spec.loader.exec_module(ckpt_schema)
    json.dump(ckpt_schema.schema_of(model), open("model.schema.json", "w"), indent=2)
"""
import argparse
import importlib
import json
import sys

# nn.Module.__init__'s own attributes over the versions, which schemas leave out (libckpt/model.c has
# the same list): they differ between torch releases, not between versions of a model's code.
INTERNAL = {
    "training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_backward_pre_hooks",
    "_backward_hooks", "_is_full_backward_hook", "_forward_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks", "_modules", "_compiled_call_impl",
}
WRAPPERS = {"torch.nn.parallel.data_parallel.DataParallel",
            "torch.nn.parallel.distributed.DistributedDataParallel"}


def class_name(obj):
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def unwrap(model):
    """The model inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if class_name(model) in WRAPPERS:
            model = model.module
        elif class_name(model) == "torch._dynamo.eval_frame.OptimizedModule":
            model = model._orig_mod
        else:
            return model


def attributes(module):
    """Where nn.Module.__getattr__ finds attributes, in first-seen order."""
    names = [k for k in vars(module) if k not in INTERNAL]
    names += list(module._parameters) + list(module._buffers) + list(module._modules)
    return list(dict.fromkeys(names))


def schema_of(model):
    import torch
    model = unwrap(model)
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError("a TorchScript module: build the eager (Python) model instead")
    keys = {}
    for k, v in model.state_dict().items():
        if isinstance(v, torch.Tensor):
            keys[k] = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
        else:
            keys[k] = {}                      # _extra_state: presence only
    # per class: the attributes every instance has ("attributes": ckpt check reports any one a pickled
    # instance lacks) and those only some have ("optional_attributes": a container's children, say)
    seen = {}
    for m in model.modules():                 # each module once, like ckpt's module list
        instances, counts = seen.setdefault(class_name(m), [0, {}])
        seen[class_name(m)][0] = instances + 1
        for a in attributes(m):
            counts[a] = counts.get(a, 0) + 1
    classes = {}
    for c, (n, counts) in seen.items():
        spec = {"attributes": [a for a, k in counts.items() if k == n]}
        optional = [a for a, k in counts.items() if k < n]
        if optional:
            spec["optional_attributes"] = optional
        classes[c] = spec
    return {"keys": keys, "classes": classes}


def main(argv):
    ap = argparse.ArgumentParser(description="Write a libckpt schema (for `ckpt check --schema`) from a live model.")
    ap.add_argument("factory", help="MODULE:CALLABLE that returns the model (a class or a function)")
    ap.add_argument("--args", default="[]", help="positional arguments as a JSON list")
    ap.add_argument("--kwargs", default="{}", help="keyword arguments as a JSON object")
    ap.add_argument("-o", "--output", help="output file (default: stdout)")
    a = ap.parse_args(argv[1:])
    mod_name, _, attr = a.factory.partition(":")
    if not mod_name or not attr:
        ap.error("FACTORY must be MODULE:CALLABLE")
    factory = importlib.import_module(mod_name)
    for part in attr.split("."):
        factory = getattr(factory, part)
    model = factory(*json.loads(a.args), **json.loads(a.kwargs))
    text = json.dumps(schema_of(model), indent=2, ensure_ascii=False) + "\n"
    if a.output:
        with open(a.output, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
