#!/bin/sh
# Pack what tools/gpu_check.sh runs on the GPU machine (which has the NVIDIA driver, nvcc,
# PyTorch's cuDNN, but none of our Debian libraries and no network) into gpu_carry/
# (git-ignored), on the build machine:
#   gpu_carry/bin/        tfswa and the GPU test programs of `make CUDA=1` (debug info
#                         stripped); they link the CUDA runtime statically
#   gpu_carry/lib.tar.xz  the shared libraries they need (ldd) that such a machine lacks:
#                         oneDNN, OpenBLAS, FFTW, libsndfile, OpenMPI, ... Left out: the C
#                         library, libstdc++/libgcc_s/libz (the machine's own, newer) and
#                         the driver, cuDNN, cuBLAS(Lt), cuFFT and NCCL (the machine's own:
#                         libcuda, PyTorch's wheels; cuBLAS+cuFFT are 880 MB, too big to carry;
#                         NCCL is in PyTorch's nvidia/nccl/lib)
#   gpu_carry/MANIFEST    what was packed, from which commit, with sizes
# usage: tools/gpu_pack.sh   (from anywhere; builds with make CUDA=1 first)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CARRY="$ROOT/gpu_carry"
B="$ROOT/build-cuda"
cd "$ROOT"
${MAKE:-make} --no-print-directory -j2 CUDA=1 SAN= all > /dev/null
rm -rf "$CARRY"
mkdir -p "$CARRY/bin" "$CARRY/lib"
bins="$B/tfswa $(ls "$B"/tests/gpu/* 2> /dev/null | grep -v '\.d$' || true)"
for f in $bins; do
  [ -x "$f" ] || continue
  strip --strip-debug -o "$CARRY/bin/$(basename "$f")" "$f"
done
# the shared libraries the binaries need, except those the GPU machine has (or must use its own)
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libstdc\+\+|libgcc_s|libz\.so|libcuda\.so|libnvidia|libcudnn|libcublas|libcufft|libnccl)'
for f in "$CARRY"/bin/*; do
  ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
  echo "$name" | grep -Eq "$skip" && continue
  cp -L "$path" "$CARRY/lib/$name"
done
missing=$(for f in "$CARRY"/bin/*; do ldd "$f" | grep 'not found' | grep -Ev 'libcudnn|libcublas|libcufft|libnccl' || true; done)
[ -z "$missing" ] || { echo "gpu_pack: libraries not found here: $missing" >&2; exit 1; }
tar -C "$CARRY/lib" -cf - . | xz -T2 -6 > "$CARRY/lib.tar.xz"
libs=$(ls "$CARRY/lib" | tr '\n' ' ')
unpacked=$(du -sk "$CARRY/lib" | awk '{ print $1 }')
rm -rf "$CARRY/lib"
{
  echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2> /dev/null || echo ' (with uncommitted changes)')"
  echo "nvcc: $(${CUDA_HOME:-/usr/local/cuda}/bin/nvcc --version | tail -n 1)"
  echo "cuDNN headers: $(sed -n 's/^#define CUDNN_\(MAJOR\|MINOR\|PATCHLEVEL\) \([0-9]*\)/\2/p' ${CUDA_HOME:-/usr/local/cuda}/include/cudnn_version.h | tr '\n' '.' | sed 's/\.$//')"
  echo "glibc here: $(ldd --version | head -n 1)"
  echo "binaries: $(ls "$CARRY/bin" | tr '\n' ' ')"
  echo "libraries (lib.tar.xz, ${unpacked} KiB unpacked): $libs"
  echo "needs on the GPU machine: the NVIDIA driver (libcuda.so.1), libcudnn.so.9, libcublas.so.13, libcublasLt.so.13, libcufft.so.12 (CUDA 13), libnccl.so.2, glibc >= the one here, libstdc++, libz"
  (cd "$CARRY" && find . -type f ! -name MANIFEST -exec sha256sum {} +)
} > "$CARRY/MANIFEST"
total=$(du -sk "$CARRY" | awk '{ print $1 }')
echo "gpu_carry: $total KiB ($(ls "$CARRY/bin" | wc -l) binaries, libraries $unpacked KiB unpacked -> $(du -k "$CARRY/lib.tar.xz" | awk '{ print $1 }') KiB xz)"
[ "$total" -lt 65536 ] || { echo "gpu_pack: gpu_carry is $total KiB, over 64 MiB" >&2; exit 1; }
