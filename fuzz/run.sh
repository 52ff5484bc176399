#!/bin/sh
# run.sh: libFuzzer campaigns (see fuzz/README.md).
#   sh fuzz/run.sh HARNESS SECONDS [libFuzzer options...]   one campaign; new inputs go to fuzz/out/HARNESS/
#   sh fuzz/run.sh --smoke [SECONDS]                        every harness briefly (CI; default 20 s each, seed 1)
#   sh fuzz/run.sh --list                                   the harnesses
# Builds a clang tree with -Dfuzzing=true and ASan+UBSan in build-fuzz/ (or $FUZZ_BUILD) when needed.
set -eu
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD:-build-fuzz}
harnesses="fuzz_zip fuzz_unpickle fuzz_scan fuzz_load fuzz_json fuzz_zip_libzip fuzz_legacy fuzz_tar fuzz_torchscript fuzz_roundtrip fuzz_safetensors fuzz_model fuzz_schema"

dict_of() {
    case "$1" in
    fuzz_zip | fuzz_zip_libzip) echo fuzz/dict/zip.dict ;;
    fuzz_unpickle) echo fuzz/dict/pickle.dict ;;
    fuzz_schema) echo fuzz/dict/schema.dict ;;
    *) echo fuzz/dict/checkpoint.dict ;;
    esac
}

ensure_build() {
    if [ ! -f "$build/build.ninja" ]; then
        CC=clang meson setup "$build" -Dfuzzing=true -Dtests=false -Db_sanitize=address,undefined \
            -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
    fi
    ninja -C "$build" >/dev/null
}

# run HARNESS SECONDS OUTDIR [options]: a bounded campaign; non-zero exit when libFuzzer found something
run() {
    h=$1 secs=$2 out=$3
    shift 3
    [ -x "$build/fuzz/$h" ] || { echo "no harness $h (is libzip-dev installed?)" >&2; return 1; }
    mkdir -p "$out/corpus"
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/fuzz/$h" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -dict="$(dict_of "$h")" -artifact_prefix="$out/" -print_final_stats=1 "$@" \
        "$out/corpus" "fuzz/corpus/$h"
}

case "${1:-}" in
--list) echo "$harnesses" ;;
--smoke)
    secs=${2:-20}
    ensure_build
    tmp=fuzz/out/smoke # new inputs and artifacts stay there (git-ignored) for a look after a failure
    rm -rf "$tmp"
    mkdir -p "$tmp"
    failed=""
    for h in $harnesses; do
        [ -x "$build/fuzz/$h" ] || { echo "skip $h: not built"; continue; }
        printf '%s: %s s ... ' "$h" "$secs"
        # a fixed seed: the same code and corpus explore the same inputs on every run, so a smoke failure
        # comes from the change under test, not from luck (FUZZ_SEED=0 lets libFuzzer pick one)
        if run "$h" "$secs" "$tmp/$h" -seed="${FUZZ_SEED:-1}" >"$tmp/$h.log" 2>&1; then
            grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$tmp/$h.log" | tr '\n' ' '
            echo ok
        else
            echo FAILED
            tail -n 60 "$tmp/$h.log"
            ls "$tmp/$h"/crash-* "$tmp/$h"/leak-* "$tmp/$h"/timeout-* "$tmp/$h"/oom-* 2>/dev/null || true
            failed="$failed $h"
        fi
    done
    [ -z "$failed" ] || { echo "fuzz smoke failed:$failed"; exit 1; }
    echo "fuzz smoke: all harnesses ran clean"
    ;;
"" | -h | --help) sed -n '2,6p' "$0"; exit 2 ;;
*)
    h=$1
    secs=${2:?usage: run.sh HARNESS SECONDS}
    shift 2
    ensure_build
    run "$h" "$secs" "fuzz/out/$h" "$@"
    ;;
esac
