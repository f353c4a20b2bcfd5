#!/bin/sh
# Check the Debian packages tfswa needs; install the missing ones with apt-get,
# printing the exact command first (sudo when not root). Extra packages to check may be
# given as arguments (`make fuzz` adds clang and its sanitizer/fuzzer runtime).
# usage: tools/deps.sh [PACKAGE...]
set -e
PKGS="$* build-essential pkg-config libsndfile1-dev libfftw3-dev libopenblas-dev liblapacke-dev \
libsoxr-dev libyaml-dev libcjson-dev libdnnl-dev libpng-dev libopenmpi-dev openmpi-bin python3-torch python3-numpy python3-venv"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "deps: all Debian packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo "
echo "deps: missing:$missing"
echo "+ ${SUDO}apt-get update && ${SUDO}apt-get install -y --no-install-recommends$missing"
${SUDO}apt-get update
DEBIAN_FRONTEND=noninteractive ${SUDO}apt-get install -y --no-install-recommends $missing
