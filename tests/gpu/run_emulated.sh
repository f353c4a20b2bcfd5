#!/bin/sh
# Runs tests/gpu/test_cuda_elem.c without a GPU: src/cuda/elem.cu, its launches rewritten by
# tests/gpu/emu/launch2emu.py, compiled by g++ against the CPU emulation of
# tests/gpu/emu (each block's threads as std::threads, barriers for __syncthreads and the
# warp shuffles). It checks the kernels' indexing, reductions and launch plumbing against
# the CPU functions; not their speed, not the GPU's FMA rounding, not the real runtime.
# Needs BUILD/libtfswa.a (`make`) and g++ with C++20. About a minute on 2 cores.
# Usage: tests/gpu/run_emulated.sh [BUILD]   (default build; TEST_ONLY=name runs one test)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
out=$build/tests/gpu-emu
emu=$root/tests/gpu/emu
mkdir -p "$out"
/usr/bin/python3 "$emu/launch2emu.py" "$root/src/cuda/elem.cu" >"$out/elem_emu.cpp"
g++ -std=c++20 -O1 -Wall -Wextra -I"$emu" -I"$root/src" -I"$root/include" \
    -c "$out/elem_emu.cpp" -o "$out/elem_emu.o"
g++ -std=c++20 -O1 -Wall -Wextra -I"$emu" -c "$emu/emu.cpp" -o "$out/emu.o"
gcc -std=c11 -D_GNU_SOURCE -O1 -Wall -Wextra -fopenmp -I"$emu" -I"$root/src" -I"$root/include" \
    -I"$root/tests" -c "$root/tests/gpu/test_cuda_elem.c" -o "$out/test_cuda_elem.o"
g++ -o "$out/test_cuda_elem" "$out/test_cuda_elem.o" "$out/elem_emu.o" "$out/emu.o" \
    "$build/libtfswa.a" $(pkg-config --libs sndfile fftw3f fftw3 openblas soxr yaml-0.1 libcjson \
    libpng lapacke ompi-c) -ldnnl -lgomp -lm -lpthread
exec "$out/test_cuda_elem"
