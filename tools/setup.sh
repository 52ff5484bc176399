#!/bin/sh
# setup.sh: install what is missing, build, and inspect the bundled example checkpoint.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
[ -d build ] || meson setup build
ninja -C build
./build/tools/ckpt inspect tests/fixtures/data/example.pt
