/* Stand-alone conv2d timing (forward and backward of tf_conv2d on random data).
 * Build (`make tools`, after `make`) and run from the repository root:
 *   build/tools/bench_nn_conv [B Cin Cout H W k tile nthreads blas_threads iters]
 * Defaults: 1 32 32 256 128 3 0 2 1 20 (conv3x3 32->32 on 256x128, 2 OpenMP threads).
 * Seconds per call are the minimum and mean over `iters` calls after one warm-up call. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/conv.h"
#include "util/rng.h"
#include "util/clock.h"

typedef struct {
    double fwd_min_s, fwd_mean_s, bwd_min_s, bwd_mean_s;
    double fwd_gflops, bwd_gflops; /* from the minimum times and tf_conv2d_flops */
} bench_result;

static void fill(float *x, size_t n, uint64_t stream) {
    tf_rng r;
    tf_rng_seed(&r, 1234, stream, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)tf_rng_range(&r, -1.0, 1.0);
}

static tf_status conv2d_bench(bench_result *res, int B, int Cin, int Cout, int H, int W, int k,
                              int tile, int nthreads, int iters) {
    if (k != 1 && k != 3)
        return tf_err(TF_EUSER, "conv2d bench: kernel size %d (must be 1 or 3)", k);
    if (B < 1 || Cin < 1 || Cout < 1 || H < 1 || W < 1 || iters < 1 || nthreads < 1)
        return tf_err(TF_EUSER, "conv2d bench: dims, iters and threads must be >= 1");
    size_t n_in = (size_t)B * Cin * H * W, n_out = (size_t)B * Cout * H * W;
    size_t n_w = (size_t)Cout * Cin * k * k;
    size_t n_ws = tf_conv2d_workspace_floats(Cin, Cout, H, W, k, tile, nthreads);
    size_t total = 2 * n_in + 2 * n_out + 2 * n_w + 2 * (size_t)Cout + n_ws;
    float *mem = tf_malloc(total * sizeof(float), "conv2d bench buffers");
    if (!mem) return TF_EINTERNAL;
    /* inp, dinp (B, Cin, H, W); out, dout (B, Cout, H, W); w, dw (Cout, Cin, k, k);
     * bias, dbias (Cout); then the workspace */
    float *inp = mem, *dinp = inp + n_in, *out = dinp + n_in, *dout = out + n_out;
    float *w = dout + n_out, *dw = w + n_w, *bias = dw + n_w, *dbias = bias + Cout;
    float *ws = dbias + Cout;
    fill(inp, n_in, 1), fill(dout, n_out, 2), fill(w, n_w, 3), fill(bias, (size_t)Cout, 4);
    for (size_t i = 0; i < n_in; i++) dinp[i] = 0.f;
    for (size_t i = 0; i < n_w; i++) dw[i] = 0.f;
    for (int i = 0; i < Cout; i++) dbias[i] = 0.f;

    double fmin = 1e30, fsum = 0.0, bmin = 1e30, bsum = 0.0;
    for (int it = 0; it <= iters; it++) { /* iteration 0 is the warm-up */
        double t0 = tf_now_s();
        tf_conv2d_forward(out, inp, w, bias, B, Cin, Cout, H, W, k, ws, tile, nthreads);
        double t1 = tf_now_s();
        tf_conv2d_backward(dinp, dw, dbias, dout, inp, w, B, Cin, Cout, H, W, k, ws, tile,
                           nthreads);
        double t2 = tf_now_s();
        if (it == 0) continue;
        fmin = t1 - t0 < fmin ? t1 - t0 : fmin, fsum += t1 - t0;
        bmin = t2 - t1 < bmin ? t2 - t1 : bmin, bsum += t2 - t1;
    }
    double fl = tf_conv2d_flops(B, Cin, Cout, H, W, k);
    res->fwd_min_s = fmin, res->fwd_mean_s = fsum / iters;
    res->bwd_min_s = bmin, res->bwd_mean_s = bsum / iters;
    res->fwd_gflops = fl / fmin * 1e-9;
    res->bwd_gflops = 2.0 * fl / bmin * 1e-9;
    free(mem);
    return TF_OK;
}

int main(int argc, char **argv) {
    int v[10] = {1, 32, 32, 256, 128, 3, 0, 2, 1, 20};
    if (argc > 11) {
        fprintf(stderr, "usage: %s [B Cin Cout H W k tile nthreads blas_threads iters]\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        char *end;
        long x = strtol(argv[i], &end, 10);
        if (end == argv[i] || *end || x < 0 || x > 1 << 20) {
            fprintf(stderr, "bench_nn_conv: argument %d: '%s' is not an integer in [0, 2^20]\n", i,
                    argv[i]);
            return 2;
        }
        v[i - 1] = (int)x;
    }
    if (v[8] < 1) {
        fprintf(stderr, "bench_nn_conv: blas_threads must be >= 1\n");
        return 2;
    }
    openblas_set_num_threads(v[8]);
    bench_result r = {0};
    tf_status st = conv2d_bench(&r, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[9]);
    if (st != TF_OK) {
        fprintf(stderr, "bench_nn_conv: %s\n", tf_errmsg());
        return st == TF_EUSER ? 2 : 1;
    }
    printf("conv%dx%d B=%d %d->%d %dx%d tile=%d threads=%d blas_threads=%d iters=%d: "
           "fwd min %.2f ms mean %.2f ms %.1f GFLOP/s, bwd min %.2f ms mean %.2f ms %.1f GFLOP/s\n",
           v[5], v[5], v[0], v[1], v[2], v[3], v[4], v[6], v[7], v[8], v[9], 1e3 * r.fwd_min_s,
           1e3 * r.fwd_mean_s, r.fwd_gflops, 1e3 * r.bwd_min_s, 1e3 * r.bwd_mean_s, r.bwd_gflops);
    return 0;
}
