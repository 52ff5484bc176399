#!/bin/sh
# deps.sh: install the Debian 12 packages libckpt needs that are missing. Runs apt-get update once, and
# only when something is missing. Uses sudo when not root.
set -eu
build_pkgs="build-essential meson ninja-build pkg-config zlib1g-dev libxxhash-dev libjansson-dev"
test_pkgs="check libzip-dev clang libclang-rt-14-dev python3-torch python3-numpy python3-xxhash"
want="$build_pkgs"
[ "${1:-}" = "--test" ] && want="$build_pkgs $test_pkgs"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $missing
