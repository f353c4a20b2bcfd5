/* conv2d timing on random data, for `tfswa bench` (library code: measures, never prints). */
#include <stdlib.h>
#include <time.h>

#include "nn/conv.h"
#include "util/rng.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *x, size_t n, uint64_t stream) {
    tf_rng r;
    tf_rng_seed(&r, 1234, stream, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)tf_rng_range(&r, -1.0, 1.0);
}

tf_status tf_conv2d_bench(tf_conv2d_bench_result *res, int B, int Cin, int Cout, int H, int W,
                          int k, int tile, int nthreads, int iters) {
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
    float *inp = mem, *dinp = inp + n_in, *out = dinp + n_in, *dout = out + n_out;
    float *w = dout + n_out, *dw = w + n_w, *bias = dw + n_w, *dbias = bias + Cout;
    float *ws = dbias + Cout;
    fill(inp, n_in, 1), fill(dout, n_out, 2), fill(w, n_w, 3), fill(bias, (size_t)Cout, 4);
    for (size_t i = 0; i < n_in; i++) dinp[i] = 0.f;
    for (size_t i = 0; i < n_w; i++) dw[i] = 0.f;
    for (int i = 0; i < Cout; i++) dbias[i] = 0.f;

    double fmin = 1e30, fsum = 0.0, bmin = 1e30, bsum = 0.0;
    for (int it = 0; it <= iters; it++) { /* iteration 0 is the warm-up */
        double t0 = now_s();
        tf_conv2d_forward(out, inp, w, bias, B, Cin, Cout, H, W, k, ws, tile, nthreads);
        double t1 = now_s();
        tf_conv2d_backward(dinp, dw, dbias, dout, inp, w, B, Cin, Cout, H, W, k, ws, tile,
                           nthreads);
        double t2 = now_s();
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
