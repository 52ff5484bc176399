#!/bin/sh
# run.sh BUILD_DIR TMPDIR: interop of what libckpt writes with real torch 1.13 (/usr/bin/python3) and
# with a safetensors reader written to the specification (tests/interop/check_interop.py).
#   1. every fixture -> `ckpt convert` -> .pt: torch.load reads it (weights_only=True where torch 1.13
#      can), equal element for element with the original, sharing kept, 64-aligned, zipfile CRCs ok;
#   2. every state-dict fixture -> .safetensors: the spec reader parses it and agrees with torch;
#      fixtures safetensors cannot hold fail with exit 2 and leave no file;
#   3. the real .safetensors files of ../shared/corpus/external/candle read, convert to .pt that
#      torch loads with the same values (skipped with a reason when the corpus is absent);
#   4. `ckpt convert` exit codes: 1 for a refused global, 2 for malformed input or I/O, no output left;
#   5. with CKPT_TEST_ZIP64=1: a 4.5 GiB checkpoint written by libckpt loads in torch (zip64);
#   6. model mode: whole-model fixtures -> `ckpt convert --model` -> torch (tests/interop/model.sh).
set -eu
build=$(cd "$1" && pwd)
tmp=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ckpt="$build/tools/ckpt"
py=/usr/bin/python3
fixtures="$tmp/fixtures"
[ -d "$fixtures" ] || fixtures="$root/tests/fixtures/data"
out="$tmp/interop"
rm -rf "$out"
mkdir -p "$out/pt" "$out/st" "$out/ext" "$out/fail"

# the registry options a fixture's <name>.allow sidecar asks for
allow_opts() { [ -f "${1%.pt}.allow" ] && sed 's/^allow /--allow /;s/^preset /--allow-preset /;s/^handler /--handler /' "${1%.pt}.allow" | tr '\n' ' '; true; }

echo "interop 1: fixtures -> .pt -> torch 1.13 ($fixtures)"
for f in "$fixtures"/*.pt; do
    n=$(basename "$f" .pt)
    if [ "$n" = torchscript ]; then # code, not a checkpoint: convert refuses it
        set +e; "$ckpt" convert "$f" "$out/pt/$n.pt" 2>/dev/null; rc=$?; set -e
        [ "$rc" -eq 2 ] && [ ! -e "$out/pt/$n.pt" ] || { echo "FAIL: TorchScript conversion exited $rc"; exit 1; }
        echo "  torchscript: refused (exit 2, no file): a TorchScript archive carries code"
        continue
    fi
    # shellcheck disable=SC2046
    "$ckpt" convert "$f" "$out/pt/$n.pt" $(allow_opts "$f")
done
"$py" "$here/check_interop.py" pt "$fixtures" "$out/pt"

echo "interop 2: state dicts -> .safetensors -> spec reader"
for f in "$fixtures"/*.pt; do
    n=$(basename "$f" .pt)
    # shellcheck disable=SC2046
    if "$ckpt" convert "$f" "$out/st/$n.safetensors" $(allow_opts "$f") 2>"$out/fail/$n.err"; then
        :
    else
        rc=$?
        [ "$rc" -eq 2 ] || { echo "FAIL: convert $n to safetensors exited $rc"; exit 1; }
        [ ! -e "$out/st/$n.safetensors" ] || { echo "FAIL: failed conversion left $n.safetensors"; exit 1; }
        [ "$(ls -A "$out/st" | grep -c '\.tmp-' || true)" -eq 0 ] || { echo "FAIL: temporary file left"; exit 1; }
        echo "  $n: not convertible (exit 2, no file): $(cut -c1-110 "$out/fail/$n.err")"
    fi
done
"$py" "$here/check_interop.py" st "$fixtures" "$out/st"

echo "interop 3: external safetensors files"
corpus="${CKPT_EXTERNAL_CORPUS:-$root/../shared/corpus/external}"
[ -d "$corpus/candle" ] || corpus="$root/../../shared/corpus/external"
if [ -d "$corpus/candle" ] && ls "$corpus"/candle/*.safetensors >/dev/null 2>&1; then
    for f in "$corpus"/candle/*.safetensors; do
        n=$(basename "$f" .safetensors)
        "$ckpt" convert "$f" "$out/ext/$n.pt"
        "$ckpt" inspect --json "$f" > "$out/ext/$n.json"
        "$py" "$here/check_interop.py" ext "$f" "$out/ext/$n.pt" "$out/ext/$n.json"
    done
else
    echo "  SKIP: no .safetensors files under $corpus/candle (set CKPT_EXTERNAL_CORPUS)"
fi

echo "interop 4: convert exit codes"
expect_fail() { # expected-code input output
    set +e
    "$ckpt" convert "$2" "$3" 2>"$out/fail/last.err"
    rc=$?
    set -e
    [ "$rc" -eq "$1" ] || { echo "FAIL: convert $2 exited $rc, expected $1: $(cat "$out/fail/last.err")"; exit 1; }
    [ ! -e "$3" ] || { echo "FAIL: convert $2 left $3"; exit 1; }
    echo "  exit $rc, no output: $(cut -c1-100 "$out/fail/last.err")"
}
"$py" -c "
import argparse, torch
torch.save({'w': torch.ones(2), 'args': argparse.Namespace(lr=0.1)}, '$out/fail/blocked.pt')"
expect_fail 1 "$out/fail/blocked.pt" "$out/fail/blocked-out.pt"
printf 'not a checkpoint\n' > "$out/fail/text.pt"
expect_fail 2 "$out/fail/text.pt" "$out/fail/text-out.pt"
head -c 300 "$fixtures/mlp.pt" > "$out/fail/truncated.pt"
expect_fail 2 "$out/fail/truncated.pt" "$out/fail/truncated-out.pt"
expect_fail 2 "$fixtures/mlp.pt" "$out/fail/no-such-dir/x.pt"
# a failed conversion over an existing file leaves that file as it was
cp "$fixtures/mlp.pt" "$out/fail/keep.pt"
set +e
"$ckpt" convert "$out/fail/truncated.pt" "$out/fail/keep.pt" 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 2 ] && cmp -s "$fixtures/mlp.pt" "$out/fail/keep.pt" || { echo "FAIL: existing output changed"; exit 1; }
[ "$(ls -A "$out/fail" | grep -c '\.tmp-' || true)" -eq 0 ] || { echo "FAIL: temporary file left"; exit 1; }
echo "  exit 2 over an existing file: the file is unchanged, no temporary file left"

if [ "${CKPT_TEST_ZIP64:-}" = 1 ]; then
    echo "interop 5: a 4.5 GiB checkpoint through libckpt and torch"
    "$py" -c "
import torch
t = torch.zeros(9 << 29, dtype=torch.uint8); t[::1 << 20] = 7; t[-1] = 9
torch.save({'big': t, 'after': torch.arange(3.0)}, '$out/big-torch.pt')"
    "$ckpt" convert "$out/big-torch.pt" "$out/big.pt"
    rm -f "$out/big-torch.pt"
    "$py" -c "
import torch, zipfile
zipfile.ZipFile('$out/big.pt').infolist()
d = torch.load('$out/big.pt', weights_only=True)
t = d['big']
assert t.numel() == 9 << 29 and int(t[-1]) == 9 and int(t[1 << 20]) == 7 and int(t[1]) == 0
assert d['after'].tolist() == [0.0, 1.0, 2.0]
print('  4.5 GiB zip64 checkpoint written by libckpt loads in torch 1.13')"
    rm -f "$out/big.pt"
else
    echo "interop 5: SKIP the 4.5 GiB zip64 round trip (set CKPT_TEST_ZIP64=1; needs ~10 GB RAM+disk)"
fi
echo "interop 6: model mode (ckpt convert --model)"
sh "$here/model.sh" "$build" "$tmp"
echo "interop: all passed"
