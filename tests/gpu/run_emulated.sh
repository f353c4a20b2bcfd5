#!/bin/sh
# Runs a GPU test program of tests/gpu without a GPU: src/cuda/elem.cu, blas.cu, fft.cu,
# tblock.cu and conv.cu, their launches rewritten by tests/gpu/emu/launch2emu.py, compiled by
# g++ against the CPU emulation of tests/gpu/emu (each block's threads as std::threads,
# barriers for __syncthreads and the warp shuffles; cuBLAS's GEMMs by OpenBLAS in
# column-major, cuFFT's batched transforms by FFTW, cuDNN's convolutions by the CPU ref
# conv2d with its descriptors, algorithms and workspace checked: tests/gpu/emu/cublas_v2.h,
# cufft.h, cudnn.h; test_cuda_cudnn for conv.cu). It checks the kernels'
# indexing, reductions and launch plumbing and the GEMM/FFT operand layouts against the
# CPU functions; not their speed, not the GPU's FMA rounding, not the real runtime or
# libraries. Needs BUILD/libtfswa.a (`make`) and g++ with C++20. About a minute on 2 cores.
# Usage: tests/gpu/run_emulated.sh [BUILD [PROGRAM]]   (default build test_cuda_elem; PROGRAM
# test_cuda_blasfft for blas.cu/fft.cu, test_cuda_tblock for tblock.cu; TEST_ONLY=name runs
# one test). MPI_NP=N: the program runs as N MPI ranks (mpirun --allow-run-as-root
# --oversubscribe -np N), each seeing N emulated devices (TFSWA_EMU_DEVICES), NCCL emulated
# over MPI (tests/gpu/emu/nccl.h; e.g. MPI_NP=2 ... test_cuda_dist).
# EMU_ASAN=1: everything but BUILD's library under AddressSanitizer, into
# BUILD/tests/gpu-emu-asan ("device" buffers are malloc'd, so a kernel or memset writing past
# a buffer or a too-small workspace shows).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
prog=${2:-test_cuda_elem}
out=$build/tests/gpu-emu
san=""
if [ "${EMU_ASAN:-0}" = 1 ]; then out=$build/tests/gpu-emu-asan san="-g -fsanitize=address"; fi
emu=$root/tests/gpu/emu
mkdir -p "$out"
inc="-I$emu -I$root/src -I$root/include $(pkg-config --cflags openblas fftw3f)"
objs=""
for cu in elem blas fft tblock conv; do
  if [ "$cu" = conv ]; then  # no kernels of its own: cuDNN calls and elem.cu's functions
    cp "$root/src/cuda/$cu.cu" "$out/${cu}_emu.cpp"
  else
    /usr/bin/python3 "$emu/launch2emu.py" "$root/src/cuda/$cu.cu" >"$out/${cu}_emu.cpp"
  fi
  g++ -std=c++20 -O1 $san -Wall -Wextra $inc -c "$out/${cu}_emu.cpp" -o "$out/${cu}_emu.o"
  objs="$objs $out/${cu}_emu.o"
done
# the host code of src/*/*_cuda.c (the device model and trainer) against the emulated
# runtime; their convolutions go through nn/kernels.h, which the test programs create with
# the ref backend under TFSWA_GPU_EMU ("device" memory is host memory here)
for c in model/model_cuda train/step_cuda infer/sep_model_cuda; do
  n=$(basename "$c")
  gcc -std=c11 -D_GNU_SOURCE -DTFSWA_GPU_EMU=1 -O1 $san -Wall -Wextra -fopenmp $inc \
      -c "$root/src/$c.c" -o "$out/${n}_emu.o"
  objs="$objs $out/${n}_emu.o"
done
g++ -std=c++20 -O1 $san -Wall -Wextra -I"$emu" -c "$emu/emu.cpp" -o "$out/emu.o"
gcc -std=c11 -D_GNU_SOURCE -O1 $san -Wall -Wextra -I"$emu" $(pkg-config --cflags ompi-c) \
    -c "$emu/nccl_emu.c" -o "$out/nccl_emu.o"
gcc -std=c11 -D_GNU_SOURCE -DTFSWA_GPU_EMU=1 -O1 $san -Wall -Wextra -fopenmp $inc -I"$root/tests" \
    -c "$root/tests/gpu/$prog.c" -o "$out/$prog.o"
g++ $san -o "$out/$prog" "$out/$prog.o" $objs "$out/emu.o" "$out/nccl_emu.o" \
    "$build/tests/libtesthelp.a" "$build/libtfswa.a" $(pkg-config --libs sndfile fftw3f fftw3 openblas soxr yaml-0.1 libcjson \
    libpng lapacke ompi-c) -ldnnl -lgomp -lm -lpthread
if [ -n "${MPI_NP:-}" ]; then
  export TFSWA_EMU_DEVICES="$MPI_NP"
  exec mpirun --allow-run-as-root --oversubscribe -np "$MPI_NP" "$out/$prog"
fi
exec "$out/$prog"
