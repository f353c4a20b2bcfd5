/* CPU emulation of the CUDA C++ that src/cuda/elem.cu uses, for checking its kernels'
 * indexing, reductions and launch plumbing on a machine without a GPU
 * (tests/gpu/run_emulated.sh): tests/gpu/emu/launch2emu.py rewrites each
 * `kernel<<<grid, block, shmem, stream>>>(args)` into emu_run(grid, block, lambda); a
 * launch runs blockDim threads as std::threads that walk the grid's blocks in order;
 * __syncthreads is a block barrier; the warp shuffles exchange values through a per-warp
 * barrier; __shared__ variables are statics (one block runs at a time). Not emulated:
 * __CUDA_ARCH__ code paths (the host ones run), FMA contraction, timing, real errors. */
#ifndef TFSWA_EMU_CUDA_RUNTIME_H
#define TFSWA_EMU_CUDA_RUNTIME_H
#include <algorithm>
#include <barrier>
#include <cmath>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __launch_bounds__(x)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

extern thread_local dim3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

/* the barriers and shuffle slots of the launch running */
struct emu_block {
    std::unique_ptr<std::barrier<>> all;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    std::vector<double> slots; /* one per thread */
};
extern emu_block *emu_cur;
extern thread_local int emu_tid; /* linear thread index in the block */

inline void __syncthreads() {
    emu_cur->all->arrive_and_wait();
}

/* the value lane `src` of this warp passes (v itself when src is outside the warp) */
template <class T> inline T emu_exchange(T v, int src) {
    const int lane = emu_tid & 31, w = emu_tid >> 5;
    double *s = &emu_cur->slots[(size_t)w * 32];
    s[lane] = (double)v;
    emu_cur->warps[w]->arrive_and_wait();
    T r = src >= 0 && src < 32 ? (T)s[src] : v;
    emu_cur->warps[w]->arrive_and_wait();
    return r;
}
template <class T> inline T __shfl_down_sync(unsigned, T v, int o) {
    return emu_exchange(v, (emu_tid & 31) + o);
}
template <class T> inline T __shfl_xor_sync(unsigned, T v, int o) {
    return emu_exchange(v, (emu_tid & 31) ^ o);
}
template <class T> inline T __shfl_sync(unsigned, T v, int src) {
    return emu_exchange(v, src);
}
using std::max;
using std::min;

/* run body for every thread of every block of grid g, block b */
void emu_run(dim3 g, dim3 b, const std::function<void()> &body);
/* the same for a kernel whose threads never meet (launch2emu.py decides): every thread of
 * every block in turn on the calling OS thread */
void emu_run_seq(dim3 g, dim3 b, const std::function<void()> &body);

#endif
