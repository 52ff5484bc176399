#!/bin/sh
# test.sh: the whole test suite (what .ci/run runs):
#   1. install the Debian packages the tests need (torch, Check, libzip, clang)
#   2. build and run every test suite in a normal build
#   3. build and run them again under AddressSanitizer + UndefinedBehaviorSanitizer
#   3b. the threaded registry suites under ThreadSanitizer (build-tsan)
#   4. interop: regenerate the fixtures with real torch and compare libckpt's view with torch's
#   5. fuzz smoke: each libFuzzer harness for a short bounded time on its corpus
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
sh tools/deps.sh --test
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n==== %s\n' "$*"; }

step "normal build"
[ -d build ] || meson setup build
ninja -C build
meson test -C build --print-errorlogs --num-processes "$jobs"

step "ASan + UBSan build"
[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes "$jobs"

step "ThreadSanitizer build (registry shared by threads, thread-local scopes)"
[ -d build-tsan ] || meson setup build-tsan -Db_sanitize=thread -Dbuildtype=debug
ninja -C build-tsan
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    meson test -C build-tsan --print-errorlogs registry registry_threads

step "interop with real torch"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 tests/fixtures/gen_fixtures.py "$tmp/fixtures"
# the committed fixtures must be exactly what torch writes today
for f in "$tmp"/fixtures/*; do
    cmp "$f" "tests/fixtures/data/$(basename "$f")" || { echo "fixture drift: $(basename "$f")"; exit 1; }
done
CKPT_FIXTURE_DIR="$tmp/fixtures" ./build/tests/test_fixtures
[ -f tests/interop/run.sh ] && sh tests/interop/run.sh "$root/build" "$tmp"

if [ -f fuzz/run.sh ] && command -v clang >/dev/null; then
    step "fuzz smoke"
    sh fuzz/run.sh --smoke
fi
step "all tests passed"
