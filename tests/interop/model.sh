#!/bin/sh
# model.sh BUILD_DIR TMPDIR: model mode (`ckpt convert --model`) with real torch 1.13 (/usr/bin/python3):
#   1. every fixture with a <name>.sd.json (whole models in the zip format with protocols 1, 2 and 4, the
#      legacy format, a newest-style pickle, a training checkpoint, DataParallel, TorchScript) converts
#      to .pt and .safetensors; torch.load(.pt, weights_only=True) gives exactly model.state_dict() of
#      the original (keys, order, dtypes, shapes, values, shared storages), load_state_dict(strict=True)
#      into a fresh model of the same architecture succeeds and restores every value; the safetensors
#      reader written to the spec agrees (tests/interop/check_model.py);
#   2. --check S.json reports first (exit 1, file written); errors are exit 2 with no file.
set -eu
build=$(cd "$1" && pwd)
tmp=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ckpt="$build/tools/ckpt"
py=/usr/bin/python3
fixtures="$tmp/fixtures"
[ -d "$fixtures" ] || fixtures="$root/tests/fixtures/data"
out="$tmp/interop-model"
rm -rf "$out"
mkdir -p "$out"

echo "model interop 1: whole models -> ckpt convert --model -> torch 1.13 ($fixtures)"
for ref in "$fixtures"/*.sd.json; do
    n=$(basename "$ref" .sd.json)
    f="$fixtures/$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['file'])" "$ref")"
    "$ckpt" convert --model "$f" "$out/$n.pt"
    "$ckpt" convert --model "$f" "$out/$n.safetensors"
done
"$py" "$here/check_model.py" "$fixtures" "$out"

echo "model interop 2: convert --model --check"
set +e
"$ckpt" convert --model "$fixtures/model_mlp_old.pth" "$out/checked.pt" --check "$fixtures/model_mlp_new.schema.json" \
    2>"$out/check.err"
rc=$?
set -e
[ "$rc" -eq 1 ] && [ -f "$out/checked.pt" ] && grep -q "shape mismatch: fc1.weight: expected \[16, 4\], found \[8, 4\]" "$out/check.err" ||
    { echo "FAIL: convert --check exited $rc: $(cat "$out/check.err")"; exit 1; }
echo "  findings reported, file written, exit 1"
printf '{"keys": []}' > "$out/bad.schema.json"
set +e
"$ckpt" convert --model "$fixtures/model_mlp_old.pth" "$out/bad.pt" --check "$out/bad.schema.json" 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 2 ] && [ ! -e "$out/bad.pt" ] || { echo "FAIL: a malformed schema exited $rc"; exit 1; }
echo "  malformed schema: exit 2, no file"
set +e
"$ckpt" convert --model "$fixtures/nested.pt" "$out/none.pt" 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 2 ] && [ ! -e "$out/none.pt" ] || { echo "FAIL: a file without a model exited $rc"; exit 1; }
echo "  no model in the file: exit 2, no file"
echo "model interop: all passed"
