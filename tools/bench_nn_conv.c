/* Stand-alone conv2d timing through tf_conv2d_bench() (until `tfswa bench model` wires it in).
 * Build and run from the repo root after `make`:
 *   gcc -std=c11 -O2 -fopenmp -Isrc $(pkg-config --cflags openblas) tools/bench_nn_conv.c \
 *       build/libtfswa.a $(pkg-config --libs openblas) -lm -o build/bench_nn_conv
 *   build/bench_nn_conv [B Cin Cout H W k tile nthreads blas_threads iters]
 * Defaults: 1 32 32 256 128 3 0 2 1 20 (conv3x3 32->32 on 256x128, 2 OpenMP threads). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/conv.h"

int main(int argc, char **argv) {
    int v[10] = {1, 32, 32, 256, 128, 3, 0, 2, 1, 20};
    for (int i = 1; i < argc && i <= 10; i++) v[i - 1] = atoi(argv[i]);
    openblas_set_num_threads(v[8]);
    tf_conv2d_bench_result r;
    if (tf_conv2d_bench(&r, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[9]) != TF_OK) {
        fprintf(stderr, "bench_nn_conv: %s\n", tf_errmsg());
        return 1;
    }
    printf("conv%dx%d B=%d %d->%d %dx%d tile=%d threads=%d blas_threads=%d iters=%d: "
           "fwd min %.2f ms mean %.2f ms %.1f GFLOP/s, bwd min %.2f ms mean %.2f ms %.1f GFLOP/s\n",
           v[5], v[5], v[0], v[1], v[2], v[3], v[4], v[6], v[7], v[8], v[9], 1e3 * r.fwd_min_s,
           1e3 * r.fwd_mean_s, r.fwd_gflops, 1e3 * r.bwd_min_s, 1e3 * r.bwd_mean_s, r.bwd_gflops);
    return 0;
}
