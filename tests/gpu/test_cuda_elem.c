/* The CUDA kernels of src/cuda/elem.cu against the CPU functions they stand for (random
 * inputs; the CPU functions are themselves checked against references by test_act,
 * test_elem, test_nn_attn, test_nn_conv, test_optim, test_loss, test_stft, test_model_ref;
 * the model glue against dsp/stft.h, dsp/subband.c, tf_copy_corner and the head activation
 * written out as model/forward.c computes it). Tolerances: element-wise
 * outputs max |gpu - cpu| <= 1e-5 * max(1, max |cpu|); outputs of reductions (statistics,
 * dweight/dbias, losses) 1e-4 relative. Needs a CUDA device (exits 1 with one line saying
 * so when there is none). Only the CUDA build builds it:
 *   nvcc -std=c++17 -O2 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
 *        -Isrc -Iinclude -c src/cuda/elem.cu -o build-cuda/src/cuda/elem.o
 *   nvcc -O2 -Xcompiler -std=c11,-D_GNU_SOURCE,-Wall,-Wextra,-fopenmp -x c -Isrc -Iinclude \
 *        -Itests -c tests/gpu/test_cuda_elem.c -o build-cuda/tests/gpu/test_cuda_elem.o
 *   nvcc -o build-cuda/tests/gpu/test_cuda_elem build-cuda/tests/gpu/test_cuda_elem.o \
 *        build-cuda/src/cuda/elem.o build/libtfswa.a $(pkg-config --libs sndfile fftw3f \
 *        fftw3 openblas soxr yaml-0.1 libcjson libpng lapacke ompi-c) -ldnnl -lgomp -lm
 */
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "cuda/elem.h"
#include "dsp/stft.h"
#include "model/model_internal.h" /* tf_copy_corner */
#include "nn/act.h"
#include "nn/attn.h"
#include "nn/conv.h"
#include "optim/optim.h"
#include "test.h"

#define GPU_TEST_SEED 0x9e3779b97f4a7c15ull
#include "gpu_test.h"
#include "train/loss.h"
#include "util/bf16.h"
#include "util/hd.h"

/* device copy of h (n) */
static float *dev(const float *h, size_t n) {
    void *d = NULL;
    CU(cudaMalloc(&d, (n ? n : 1) * sizeof(float)));
    if (n && h) CU(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

#define EW  1e-5 /* element-wise */
#define RED 1e-4 /* reductions */

static void test_gelu(void) {
    const size_t n = 100003;
    float *x = host(n, -8, 8), *d = host(n, -1, 1), *acc = host(n, -1, 1);
    x[0] = 0.f, x[1] = -30.f, x[2] = 30.f, x[3] = -100.f;
    float *y = host(n, 0, 0), *dx = hcopy(acc, n);
    tf_gelu_forward(y, x, n);
    tf_gelu_backward(dx, d, x, n);
    float *gx = dev(x, n), *gy = dev(y, n), *gd = dev(d, n), *gdx = dev(acc, n);
    CU(tf_cuda_gelu_forward(gy, gx, n, NULL));
    CHECK(dclose("gelu forward", gy, y, n, EW));
    CU(tf_cuda_gelu_backward(gdx, gd, gx, n, NULL));
    CHECK(dclose("gelu backward (+=)", gdx, dx, n, EW));
    CU(tf_cuda_gelu_forward(gx, gx, n, NULL)); /* in place */
    CHECK(dclose("gelu forward in place", gx, y, n, EW));
    cudaFree(gx), cudaFree(gy), cudaFree(gd), cudaFree(gdx);
    free(x), free(d), free(acc), free(y), free(dx);
}

/* one BatchNorm shape: training forward (+GELU), backward, eval forward */
static void bn_case(int B, int C, int H, int W, int affine, int running) {
    const size_t n = (size_t)B * C * H * W;
    float *x = host(n, -2, 3), *d = host(n, -1, 1), *acc = host(n, -1, 1);
    float *w = affine ? host(C, 0.5f, 1.5f) : NULL, *b = affine ? host(C, -1, 1) : NULL;
    float *rm0 = host(C, -0.5f, 0.5f), *rv0 = host(C, 0.5f, 2.f);
    float *gw = affine ? dev(w, C) : NULL, *gb = affine ? dev(b, C) : NULL;
    float *gx = dev(x, n), *gd = dev(d, n);
    for (int gelu = 0; gelu < 2; gelu++) {
        float *y = host(n, 0, 0), *mean = host(C, 0, 0), *rstd = host(C, 0, 0);
        float *rm = hcopy(rm0, C), *rv = hcopy(rv0, C);
        (gelu ? tf_batchnorm2d_gelu_forward
              : tf_batchnorm2d_forward)(y, mean, rstd, running ? rm : NULL, running ? rv : NULL, x,
                                        w, b, B, C, H, W, 0.1f, 1e-5f);
        float *gy = dev(y, n), *gm = dev(mean, C), *gr = dev(rstd, C), *grm = dev(rm0, C),
              *grv = dev(rv0, C);
        CU(tf_cuda_batchnorm2d_forward(gy, gm, gr, running ? grm : NULL, running ? grv : NULL, gx,
                                       gw, gb, B, C, H, W, 0.1f, 1e-5f, gelu, NULL));
        CHECK(dclose(gelu ? "bn+gelu forward" : "bn forward", gy, y, n, EW));
        CHECK(dclose("bn mean", gm, mean, C, RED));
        CHECK(dclose("bn rstd", gr, rstd, C, RED));
        CHECK(dclose("bn running mean", grm, running ? rm : rm0, C, RED));
        CHECK(dclose("bn running var", grv, running ? rv : rv0, C, RED));
        if (!gelu) { /* backward from the saved statistics (the CPU ones on both sides) */
            float *dx = hcopy(acc, n), *dw = host(C, -1, 1), *db = host(C, -1, 1);
            float *gdx = dev(dx, n), *gdw = dev(dw, C), *gdb = dev(db, C);
            CU(cudaMemcpy(gm, mean, C * sizeof(float), cudaMemcpyHostToDevice));
            CU(cudaMemcpy(gr, rstd, C * sizeof(float), cudaMemcpyHostToDevice));
            tf_batchnorm2d_backward(dx, dw, db, d, x, w, mean, rstd, B, C, H, W);
            CU(tf_cuda_batchnorm2d_backward(gdx, gdw, gdb, gd, gx, gw, gm, gr, B, C, H, W, NULL));
            CHECK(dclose("bn backward dx", gdx, dx, n, EW));
            CHECK(dclose("bn backward dweight", gdw, dw, C, RED));
            CHECK(dclose("bn backward dbias", gdb, db, C, RED));
            /* dinp NULL: only the parameter gradients */
            tf_batchnorm2d_backward(NULL, dw, db, d, x, w, mean, rstd, B, C, H, W);
            CU(tf_cuda_batchnorm2d_backward(NULL, gdw, gdb, gd, gx, gw, gm, gr, B, C, H, W, NULL));
            CHECK(dclose("bn backward dweight (no dinp)", gdw, dw, C, RED));
            CHECK(dclose("bn backward dbias (no dinp)", gdb, db, C, RED));
            cudaFree(gdx), cudaFree(gdw), cudaFree(gdb);
            free(dx), free(dw), free(db);
        }
        /* eval mode from the running statistics */
        (gelu ? tf_batchnorm2d_gelu_eval_forward
              : tf_batchnorm2d_eval_forward)(y, x, w, b, rm0, rv0, B, C, H, W, 1e-5f);
        CU(cudaMemcpy(grm, rm0, C * sizeof(float), cudaMemcpyHostToDevice));
        CU(cudaMemcpy(grv, rv0, C * sizeof(float), cudaMemcpyHostToDevice));
        CU(tf_cuda_batchnorm2d_eval_forward(gy, gx, gw, gb, grm, grv, B, C, H, W, 1e-5f, gelu,
                                            NULL));
        CHECK(dclose(gelu ? "bn+gelu eval forward" : "bn eval forward", gy, y, n, EW));
        if (!gelu) { /* eval-mode backward */
            float *dx = hcopy(acc, n), *dw = host(C, -1, 1), *db = host(C, -1, 1);
            float *gdx = dev(dx, n), *gdw = dev(dw, C), *gdb = dev(db, C);
            tf_batchnorm2d_eval_backward(dx, dw, db, d, x, w, rm0, rv0, B, C, H, W, 1e-5f);
            CU(tf_cuda_batchnorm2d_eval_backward(gdx, gdw, gdb, gd, gx, gw, grm, grv, B, C, H, W,
                                                 1e-5f, NULL));
            CHECK(dclose("bn eval backward dx", gdx, dx, n, EW));
            CHECK(dclose("bn eval backward dweight", gdw, dw, C, RED));
            CHECK(dclose("bn eval backward dbias", gdb, db, C, RED));
            cudaFree(gdx), cudaFree(gdw), cudaFree(gdb);
            free(dx), free(dw), free(db);
        }
        cudaFree(gy), cudaFree(gm), cudaFree(gr), cudaFree(grm), cudaFree(grv);
        free(y), free(mean), free(rstd), free(rm), free(rv);
    }
    cudaFree(gx), cudaFree(gd), cudaFree(gw), cudaFree(gb);
    free(x), free(d), free(acc), free(w), free(b), free(rm0), free(rv0);
}

static void test_batchnorm(void) {
    bn_case(2, 5, 7, 33, 1, 1);  /* H*W = 231: fewer than a block's threads */
    bn_case(3, 4, 48, 40, 1, 1); /* several elements per thread */
    bn_case(1, 3, 1, 1, 0, 1);   /* n = 1 (unbiased variance falls back to the biased 0) */
    bn_case(2, 6, 9, 10, 0, 0);  /* no affine, no running statistics */
}

static void ln_case(int N, int C) {
    const size_t n = (size_t)N * C;
    float *x = host(n, -2, 3), *d = host(n, -1, 1), *acc = host(n, -1, 1);
    float *w = host(C, 0.5f, 1.5f), *b = host(C, -1, 1);
    float *y = host(n, 0, 0), *mean = host(N, 0, 0), *rstd = host(N, 0, 0);
    float *dx = hcopy(acc, n), *dw = host(C, -1, 1), *db = host(C, -1, 1);
    float *gx = dev(x, n), *gd = dev(d, n), *gw = dev(w, C), *gb = dev(b, C), *gy = dev(y, n);
    float *gm = dev(mean, N), *gr = dev(rstd, N), *gdx = dev(dx, n), *gdw = dev(dw, C),
          *gdb = dev(db, C);
    float *ws = dev(NULL, tf_cuda_layernorm_backward_workspace_floats(N, C));
    tf_layernorm_forward(y, mean, rstd, x, w, b, N, C);
    CU(tf_cuda_layernorm_forward(gy, gm, gr, gx, gw, gb, N, C, NULL));
    CHECK(dclose("layernorm forward", gy, y, n, EW));
    CHECK(dclose("layernorm mean", gm, mean, N, RED));
    CHECK(dclose("layernorm rstd", gr, rstd, N, RED));
    CU(cudaMemcpy(gm, mean, N * sizeof(float), cudaMemcpyHostToDevice));
    CU(cudaMemcpy(gr, rstd, N * sizeof(float), cudaMemcpyHostToDevice));
    tf_layernorm_backward(dx, dw, db, d, x, w, mean, rstd, N, C);
    CU(tf_cuda_layernorm_backward(gdx, gdw, gdb, gd, gx, gw, gm, gr, N, C, ws, NULL));
    CHECK(dclose("layernorm backward dx", gdx, dx, n, EW));
    CHECK(dclose("layernorm backward dweight", gdw, dw, C, RED));
    CHECK(dclose("layernorm backward dbias", gdb, db, C, RED));
    cudaFree(gx), cudaFree(gd), cudaFree(gw), cudaFree(gb), cudaFree(gy), cudaFree(gm);
    cudaFree(gr), cudaFree(gdx), cudaFree(gdw), cudaFree(gdb), cudaFree(ws);
    free(x), free(d), free(acc), free(w), free(b), free(y), free(mean), free(rstd), free(dx);
    free(dw), free(db);
}

static void test_layernorm(void) {
    ln_case(1000, 37); /* several chunks of rows, channels not a multiple of 32 */
    ln_case(7, 96);
}

static void softmax_case(int N, int L) {
    const size_t n = (size_t)N * L;
    float *x = host(n, -6, 6), *d = host(n, -1, 1), *acc = host(n, -1, 1);
    float *y = host(n, 0, 0), *dx = hcopy(acc, n);
    x[0] = -1e30f; /* a masked score */
    tf_softmax_forward(y, x, N, L);
    tf_softmax_backward(dx, d, y, N, L);
    float *gx = dev(x, n), *gy = dev(y, n), *gd = dev(d, n), *gdx = dev(acc, n);
    CU(tf_cuda_softmax_forward(gy, gx, N, L, NULL));
    CHECK(dclose("softmax forward", gy, y, n, EW));
    CU(cudaMemcpy(gy, y, n * sizeof(float), cudaMemcpyHostToDevice));
    CU(tf_cuda_softmax_backward(gdx, gd, gy, N, L, NULL));
    CHECK(dclose("softmax backward", gdx, dx, n, EW));
    CU(tf_cuda_softmax_forward(gx, gx, N, L, NULL)); /* in place */
    CHECK(dclose("softmax forward in place", gx, y, n, EW));
    cudaFree(gx), cudaFree(gy), cudaFree(gd), cudaFree(gdx);
    free(x), free(d), free(acc), free(y), free(dx);
}

static void test_softmax(void) {
    softmax_case(300, 20);
    softmax_case(33, 257);
    softmax_case(5, 1);
}

static void test_resample(void) {
    const int B = 2, C = 3, H = 10, W = 14; /* pooling input / upsampling output size */
    const size_t n = (size_t)B * C * H * W, q = n / 4;
    float *x = host(n, -1, 1), *xs = host(q, -1, 1), *acc = host(n, -1, 1), *accq = host(q, -1, 1);
    float *y = host(q, 0, 0), *u = host(n, 0, 0), *dx = hcopy(acc, n), *dxs = hcopy(accq, q);
    float *gx = dev(x, n), *gxs = dev(xs, q), *gy = dev(y, q), *gu = dev(u, n);
    float *gdx = dev(acc, n), *gdxs = dev(accq, q);
    tf_avgpool2x2_forward(y, x, B, C, H, W);
    CU(tf_cuda_avgpool2x2_forward(gy, gx, B, C, H, W, NULL));
    CHECK(dclose("avgpool forward", gy, y, q, EW));
    tf_avgpool2x2_backward(dx, xs, B, C, H, W); /* dout = xs (B, C, H/2, W/2) */
    CU(tf_cuda_avgpool2x2_backward(gdx, gxs, B, C, H, W, NULL));
    CHECK(dclose("avgpool backward", gdx, dx, n, EW));
    tf_upsample2x_forward(u, xs, B, C, H / 2, W / 2);
    CU(tf_cuda_upsample2x_forward(gu, gxs, B, C, H / 2, W / 2, NULL));
    CHECK(dclose("upsample forward", gu, u, n, EW));
    tf_upsample2x_backward(dxs, x, B, C, H / 2, W / 2); /* dout = x (B, C, H, W) */
    CU(tf_cuda_upsample2x_backward(gdxs, gx, B, C, H / 2, W / 2, NULL));
    CHECK(dclose("upsample backward", gdxs, dxs, q, EW));
    /* a 1 x 1 map: both taps are the one pixel */
    float one = 0.7f, up1[4], d4[4] = {0.1f, 0.2f, 0.3f, 0.4f}, d1 = 0.f;
    float *g1 = dev(&one, 1), *g4 = dev(up1, 4), *gd4 = dev(d4, 4), *gd1 = dev(&d1, 1);
    tf_upsample2x_forward(up1, &one, 1, 1, 1, 1);
    CU(tf_cuda_upsample2x_forward(g4, g1, 1, 1, 1, 1, NULL));
    CHECK(dclose("upsample forward 1x1", g4, up1, 4, EW));
    tf_upsample2x_backward(&d1, d4, 1, 1, 1, 1);
    CU(tf_cuda_upsample2x_backward(gd1, gd4, 1, 1, 1, 1, NULL));
    CHECK(dclose("upsample backward 1x1", gd1, &d1, 1, EW));
    cudaFree(g1), cudaFree(g4), cudaFree(gd4), cudaFree(gd1);
    cudaFree(gx), cudaFree(gxs), cudaFree(gy), cudaFree(gu), cudaFree(gdx), cudaFree(gdxs);
    free(x), free(xs), free(acc), free(accq), free(y), free(u), free(dx), free(dxs);
}

static void test_windows(void) {
    const int B = 2, T = 10, F = 8, C = 6, wt = 5, wf = 4;
    const size_t n = (size_t)B * T * F * C;
    const int shifts[3][2] = {{0, 0}, {2, 2}, {3, 1}};
    for (int k = 0; k < 3; k++) {
        const int st = shifts[k][0], sf = shifts[k][1];
        float *x = host(n, -1, 1), *acc = host(n, -1, 1), *win = host(n, 0, 0),
              *back = host(n, 0, 0);
        float *dx = hcopy(acc, n), *dw = hcopy(acc, n);
        float *gx = dev(x, n), *gwin = dev(win, n), *gback = dev(back, n), *gdx = dev(acc, n),
              *gdw = dev(acc, n);
        tf_window_partition_forward(win, x, B, T, F, C, wt, wf, st, sf);
        CU(tf_cuda_window_partition_forward(gwin, gx, B, T, F, C, wt, wf, st, sf, NULL));
        CHECK(dclose("window partition", gwin, win, n, 0));
        tf_window_reverse_forward(back, win, B, T, F, C, wt, wf, st, sf);
        CU(tf_cuda_window_reverse_forward(gback, gwin, B, T, F, C, wt, wf, st, sf, NULL));
        CHECK(dclose("window reverse", gback, back, n, 0));
        CHECK(dclose("window reverse of partition = x", gback, x, n, 0));
        tf_window_partition_backward(dx, x, B, T, F, C, wt, wf, st, sf);
        CU(tf_cuda_window_partition_backward(gdx, gx, B, T, F, C, wt, wf, st, sf, NULL));
        CHECK(dclose("window partition backward", gdx, dx, n, 0));
        tf_window_reverse_backward(dw, x, B, T, F, C, wt, wf, st, sf);
        CU(tf_cuda_window_reverse_backward(gdw, gx, B, T, F, C, wt, wf, st, sf, NULL));
        CHECK(dclose("window reverse backward", gdw, dw, n, 0));
        cudaFree(gx), cudaFree(gwin), cudaFree(gback), cudaFree(gdx), cudaFree(gdw);
        free(x), free(acc), free(win), free(back), free(dx), free(dw);
    }
}

static void test_concat_and_tokens(void) {
    const int B = 2, C1 = 3, C2 = 5, H = 6, W = 7, C = C1 + C2;
    const size_t hw = (size_t)H * W, na = (size_t)B * C1 * hw, nb = (size_t)B * C2 * hw,
                 n = na + nb;
    float *a = host(na, -1, 1), *b = host(nb, -1, 1), *out = host(n, 0, 0), *d = host(n, -1, 1);
    float *da = host(na, -1, 1), *db = host(nb, -1, 1);
    float *ga = dev(a, na), *gb = dev(b, nb), *gout = dev(out, n), *gd = dev(d, n);
    float *gda = dev(da, na), *gdb = dev(db, nb);
    tf_concat_forward(out, a, b, B, C1, C2, H, W);
    CU(tf_cuda_concat_forward(gout, ga, gb, B, C1, C2, H, W, NULL));
    CHECK(dclose("concat forward", gout, out, n, 0));
    tf_concat_backward(da, db, d, B, C1, C2, H, W);
    CU(tf_cuda_concat_backward(gda, gdb, gd, B, C1, C2, H, W, NULL));
    CHECK(dclose("concat backward a", gda, da, na, 0));
    CHECK(dclose("concat backward b", gdb, db, nb, 0));
    tf_concat_backward(NULL, db, d, B, C1, C2, H, W);
    CU(tf_cuda_concat_backward(NULL, gdb, gd, B, C1, C2, H, W, NULL));
    CHECK(dclose("concat backward b only", gdb, db, nb, 0));
    /* the map (B, C, F, T) = (B, C, H, W) to tokens and back, both axes, and the swap */
    const int F = H, T = W;
    for (int ts = 0; ts < 2; ts++) {
        const tf_seq_axis ax = ts ? TF_SEQ_TIME : TF_SEQ_FREQ;
        float *tok = host(n, 0, 0), *map = host(n, 0, 0), *acc = host(n, -1, 1);
        float *dx = hcopy(acc, n), *dt = hcopy(acc, n), *sw = host(n, 0, 0), *dsw = hcopy(acc, n);
        float *gtok = dev(tok, n), *gmap = dev(map, n), *gdx = dev(acc, n), *gdt = dev(acc, n);
        float *gsw = dev(sw, n), *gdsw = dev(acc, n);
        tf_map_to_seq_forward(tok, out, B, C, F, T, ax);
        CU(tf_cuda_map_to_seq_forward(gtok, gout, B, C, F, T, ts, NULL));
        CHECK(dclose("map to tokens", gtok, tok, n, 0));
        tf_seq_to_map_forward(map, tok, B, C, F, T, ax);
        CU(tf_cuda_seq_to_map_forward(gmap, gtok, B, C, F, T, ts, NULL));
        CHECK(dclose("tokens to map", gmap, map, n, 0));
        CHECK(dclose("tokens to map of map to tokens = map", gmap, out, n, 0));
        tf_map_to_seq_backward(dx, d, B, C, F, T, ax); /* d as tokens */
        CU(tf_cuda_map_to_seq_backward(gdx, gd, B, C, F, T, ts, NULL));
        CHECK(dclose("map to tokens backward", gdx, dx, n, 0));
        tf_seq_to_map_backward(dt, d, B, C, F, T, ax); /* d as a map */
        CU(tf_cuda_seq_to_map_backward(gdt, gd, B, C, F, T, ts, NULL));
        CHECK(dclose("tokens to map backward", gdt, dt, n, 0));
        tf_seq_swap_forward(sw, tok, B, C, F, T, ax);
        CU(tf_cuda_seq_swap_forward(gsw, gtok, B, C, F, T, ts, NULL));
        CHECK(dclose("token layout swap", gsw, sw, n, 0));
        tf_seq_swap_backward(dsw, d, B, C, F, T, ax);
        CU(tf_cuda_seq_swap_backward(gdsw, gd, B, C, F, T, ts, NULL));
        CHECK(dclose("token layout swap backward", gdsw, dsw, n, 0));
        cudaFree(gtok), cudaFree(gmap), cudaFree(gdx), cudaFree(gdt), cudaFree(gsw), cudaFree(gdsw);
        free(tok), free(map), free(acc), free(dx), free(dt), free(sw), free(dsw);
    }
    cudaFree(ga), cudaFree(gb), cudaFree(gout), cudaFree(gd), cudaFree(gda), cudaFree(gdb);
    free(a), free(b), free(out), free(d), free(da), free(db);
}

/* one device double */
static double dev_double(const double *d) {
    double v = 0;
    CU(cudaDeviceSynchronize());
    CU(cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost));
    return v;
}

static void test_loss(void) {
    const int n_sig = 3;
    const int64_t N = 40000;
    const size_t n = (size_t)n_sig * N;
    float *y = host(n, -1, 1), *t = host(n, -1, 1), *dy = host(n, 0, 0);
    for (size_t i = 0; i < n; i += 97) t[i] = y[i]; /* ties: gradient 0 */
    tf_loss_ctx *l = NULL;
    double loss = 0;
    CHECK(tf_loss_create(&l, TF_LOSS_L1, N) == TF_OK);
    CHECK(l && tf_loss_eval(l, y, t, n_sig, N, 0.5, dy, &loss) == TF_OK);
    tf_loss_free(l);
    double *gws = NULL, *gloss = NULL;
    CU(cudaMalloc((void **)&gws, tf_cuda_loss_workspace_doubles() * sizeof(double)));
    CU(cudaMalloc((void **)&gloss, sizeof(double)));
    float *gy = dev(y, n), *gt = dev(t, n), *gdy = dev(NULL, n);
    CU(tf_cuda_loss_l1(gy, gt, n, 0.5, gdy, gloss, gws, NULL));
    double g = dev_double(gloss);
    CHECKF(fabs(g - loss) <= RED * fabs(loss), "l1 loss gpu %.12g cpu %.12g", g, loss);
    CHECK(dclose("l1 gradient", gdy, dy, n, 0));
    /* STFT magnitude part on random spectra against a plain double loop; some bins 0 */
    const size_t m = 70001;
    float *yr = host(m, -1, 1), *yi = host(m, -1, 1), *tr = host(m, -1, 1), *ti = host(m, -1, 1);
    float *dr = host(m, 0, 0), *di = host(m, 0, 0);
    for (size_t i = 0; i < m; i += 101) yr[i] = yi[i] = 0.f;
    const float gm = 1e-3f;
    double ref = 0;
    for (size_t i = 0; i < m; i++) {
        double my = sqrt((double)yr[i] * yr[i] + (double)yi[i] * yi[i]);
        double mt = sqrt((double)tr[i] * tr[i] + (double)ti[i] * ti[i]);
        double dd = my - mt, sg = dd > 0 ? gm : dd < 0 ? -gm : 0;
        ref += fabs(dd);
        dr[i] = my > 0 ? (float)(sg * yr[i] / my) : 0.f;
        di[i] = my > 0 ? (float)(sg * yi[i] / my) : 0.f;
    }
    float *g1 = dev(yr, m), *g2 = dev(yi, m), *g3 = dev(tr, m), *g4 = dev(ti, m);
    float *gdr = dev(NULL, m), *gdi = dev(NULL, m);
    CU(tf_cuda_loss_mag_l1(g1, g2, g3, g4, m, gm, gdr, gdi, gloss, gws, NULL));
    g = dev_double(gloss);
    CHECKF(fabs(g - ref) <= RED * ref, "magnitude loss gpu %.12g ref %.12g", g, ref);
    CHECK(dclose("magnitude gradient (real)", gdr, dr, m, EW * gm));
    CHECK(dclose("magnitude gradient (imag)", gdi, di, m, EW * gm));
    cudaFree(g1), cudaFree(g2), cudaFree(g3), cudaFree(g4), cudaFree(gdr), cudaFree(gdi);
    cudaFree(gy), cudaFree(gt), cudaFree(gdy), cudaFree(gws), cudaFree(gloss);
    free(y), free(t), free(dy), free(yr), free(yi), free(tr), free(ti), free(dr), free(di);
}

static void test_adam(void) {
    const size_t n = 100003;
    for (int adamw = 0; adamw < 2; adamw++) {
        tf_adam_cfg c = tf_adam_default(adamw);
        c.weight_decay = 0.05f;
        float *p = host(n, -1, 1), *m = host(n, 0, 0), *v = host(n, 0, 0);
        float *gp = dev(p, n), *gm = dev(m, n), *gv = dev(v, n);
        for (int64_t t = 1; t <= 3; t++) {
            float *g = host(n, -0.1f, 0.1f), *gg = dev(g, n);
            tf_adam_step(&c, p, g, m, v, n, t, 1e-3f);
            CU(tf_cuda_adam_step(c.adamw, c.beta1, c.beta2, c.eps, c.weight_decay, gp, gg, gm, gv,
                                 n, t, 1e-3f, NULL));
            cudaFree(gg), free(g);
        }
        CHECK(dclose(adamw ? "adamw params" : "adam params", gp, p, n, EW));
        CHECK(dclose("adam m", gm, m, n, EW));
        CHECK(dclose("adam v", gv, v, n, EW));
        cudaFree(gp), cudaFree(gm), cudaFree(gv);
        free(p), free(m), free(v);
    }
}

static void test_norm_scale_ema(void) {
    const size_t n = 200003;
    float *g = host(n, -1, 1), *e = host(n, -1, 1), *p = host(n, -1, 1);
    float *gg = dev(g, n), *ge = dev(e, n), *gp = dev(p, n);
    double *gws = NULL, *gnorm = NULL;
    CU(cudaMalloc((void **)&gws, tf_cuda_loss_workspace_doubles() * sizeof(double)));
    CU(cudaMalloc((void **)&gnorm, sizeof(double)));
    const double norm = tf_global_norm(g, n);
    CU(tf_cuda_global_norm(gg, n, gnorm, gws, NULL));
    const double gn = dev_double(gnorm);
    CHECKF(fabs(gn - norm) <= RED * norm, "global norm gpu %.12g cpu %.12g", gn, norm);
    const float scale = tf_clip_by_norm(g, n, norm, 0.5 * norm);
    CU(tf_cuda_scale(gg, n, scale, NULL));
    CHECK(dclose("clip scaling", gg, g, n, 0));
    tf_ema_update(e, p, n, 0.999f);
    CU(tf_cuda_ema_update(ge, gp, n, 0.999f, NULL));
    CHECK(dclose("ema update", ge, e, n, EW));
    CU(tf_cuda_global_norm(gg, 0, gnorm, gws, NULL)); /* empty: 0 */
    CHECK(dev_double(gnorm) == 0.0);
    cudaFree(gg), cudaFree(ge), cudaFree(gp), cudaFree(gws), cudaFree(gnorm);
    free(g), free(e), free(p);
}

/* ------------------------------------------------------------------ model glue */
static void test_glue_add_copy(void) {
    const size_t n = 10007;
    float *x = host(n, -1, 1), *y = host(n, -1, 1), *a = host(n, -1, 1), *ref = host(n, 0, 0);
    float *gx = dev(x, n), *gy = dev(y, n), *ga = dev(a, n), *go = dev(NULL, n);
    for (size_t i = 0; i < n; i++) ref[i] = y[i] + x[i];
    CU(tf_cuda_add(gy, gx, n, NULL));
    CHECK(dclose("add (+=)", gy, ref, n, 0));
    for (size_t i = 0; i < n; i++) ref[i] = a[i] + x[i];
    CU(tf_cuda_add2(go, ga, gx, n, NULL));
    CHECK(dclose("add2", go, ref, n, 0));
    CU(tf_cuda_add2(ga, ga, gx, n, NULL)); /* out aliases a */
    CHECK(dclose("add2 in place (a)", ga, ref, n, 0));
    for (size_t i = 0; i < n; i++) ref[i] = x[i] + ref[i];
    CU(tf_cuda_add2(ga, gx, ga, n, NULL)); /* out aliases b */
    CHECK(dclose("add2 in place (b)", ga, ref, n, 0));
    cudaFree(gx), cudaFree(gy), cudaFree(ga), cudaFree(go);
    free(x), free(y), free(a), free(ref);
    /* channels [c0, c0 + Cs) of dst (B, Cd, hw), the others keep their (random) values */
    const int B = 3, Cd = 7, cases[3][2] = {{2, 3}, {0, 7}, {6, 1}}; /* (c0, Cs) */
    const size_t hw = 37, nd = (size_t)B * Cd * hw;
    for (int k = 0; k < 3; k++) {
        const int c0 = cases[k][0], Cs = cases[k][1];
        const size_t ns = (size_t)B * Cs * hw;
        float *src = host(ns, -1, 1), *dst = host(nd, -1, 1), *gsrc = dev(src, ns),
              *gdst = dev(dst, nd);
        for (int b = 0; b < B; b++)
            for (int c = 0; c < Cs; c++)
                memcpy(dst + ((size_t)b * Cd + c0 + c) * hw, src + ((size_t)b * Cs + c) * hw,
                       hw * sizeof(float));
        CU(tf_cuda_copy_channels(gdst, Cd, c0, gsrc, B, Cs, hw, NULL));
        CHECK(dclose("copy channels", gdst, dst, nd, 0));
        cudaFree(gsrc), cudaFree(gdst);
        free(src), free(dst);
    }
}

/* mag, phase: the CPU tf_magphase; combine for S targets over one phase: tf_combine_* per
 * (b, s) */
/* bf16 storage: pack a channel range (with and without rounding src in place), unpack,
 * unpack-add (the bf16 convolutions' dinp/dweight +=) against util/bf16.h's rounding (round
 * to nearest even; ties, NaN and values past the largest bf16 included) */
static void test_bf16_pack_unpack(void) {
    const int B = 3, Cs = 5, Cd = 9, c0 = 2;
    const size_t hw = 1001, ns = (size_t)B * Cs * hw, nd = (size_t)B * Cd * hw;
    float *x = host(ns, -4, 4);
    x[0] = 1.f + 1.f / 256, x[1] = 1.f + 3.f / 256, x[2] = -(1.f + 1.f / 256); /* ties */
    x[3] = NAN, x[4] = 3.4e38f, x[5] = -0.f, x[6] = 1e-40f;                    /* denormal */
    uint16_t *want = malloc(nd * sizeof *want), *got = malloc(nd * sizeof *got);
    CHECK(want && got);
    if (!want || !got) return;
    for (size_t i = 0; i < nd; i++) want[i] = 0x1234; /* untouched channels */
    for (int b = 0; b < B; b++)
        for (int c = 0; c < Cs; c++)
            for (size_t i = 0; i < hw; i++)
                want[((size_t)b * Cd + c0 + c) * hw + i] =
                    tf_f32_to_bf16(x[((size_t)b * Cs + c) * hw + i]);
    void *gd = NULL;
    CU(cudaMalloc(&gd, nd * sizeof(uint16_t)));
    for (size_t i = 0; i < nd; i++) got[i] = 0x1234;
    CU(cudaMemcpy(gd, got, nd * sizeof *got, cudaMemcpyHostToDevice));
    float *gx = dev(x, ns);
    for (int round = 0; round < 2; round++) {
        CU(tf_cuda_bf16_pack(gd, Cd, c0, gx, B, Cs, hw, round, NULL));
        CU(cudaDeviceSynchronize());
        CU(cudaMemcpy(got, gd, nd * sizeof *got, cudaMemcpyDeviceToHost));
        size_t bad = 0;
        for (size_t i = 0; i < nd; i++)
            bad += got[i] != want[i] &&
                   !(isnan(tf_bf16_to_f32(got[i])) && isnan(tf_bf16_to_f32(want[i])));
        CHECKF(bad == 0, "round %d: %zu of %zu bf16 values differ", round, bad, nd);
    }
    /* round = 1 left src rounded: the values the pack stored */
    float *xr = host(ns, 0, 0), *wide = host(nd, 0, 0);
    for (size_t i = 0; i < ns; i++) xr[i] = tf_bf16_to_f32(tf_f32_to_bf16(x[i]));
    float *hx = host(ns, 0, 0);
    down(hx, gx, ns);
    hx[3] = xr[3] = hx[4] = xr[4] = 0.f; /* NaN and Inf: checked above */
    CHECK(close_to("pack round=1 rounds src", hx, xr, ns, 0));
    for (size_t i = 0; i < nd; i++) /* NaN and Inf checked above: 0 below (for the scale) */
        if (!isfinite(tf_bf16_to_f32(want[i]))) want[i] = 0;
    for (size_t i = 0; i < nd; i++) wide[i] = tf_bf16_to_f32(want[i]);
    CU(cudaMemcpy(gd, want, nd * sizeof *want, cudaMemcpyHostToDevice));
    float *acc = host(nd, -1, 1), *sum = host(nd, 0, 0);
    for (size_t i = 0; i < nd; i++) sum[i] = acc[i] + wide[i];
    float *gw = dev(acc, nd);
    CU(tf_cuda_half_unpack(gw, gd, nd, 0, 1, NULL));
    CHECK(dclose("bf16 unpack-add (+=)", gw, sum, nd, 0));
    CU(tf_cuda_half_unpack(gw, gd, nd, 0, 0, NULL));
    CHECK(dclose("bf16 unpack (=, exact)", gw, wide, nd, 0));
    /* the plain 16-bit copies of the convolutions (tf_cuda_half_pack/_unpack) in both
     * formats, against util/hd.h (tf_elem_f32_to_f16 is checked against _Float16 by
     * tests/test_elem.c); x with fp16's edges: overflow, subnormals, flush */
    x[7] = 70000.f, x[8] = -65520.f, x[9] = 3e-6f, x[10] = 2e-8f, x[11] = 65504.f;
    CU(cudaMemcpy(gx, x, ns * sizeof(float), cudaMemcpyHostToDevice));
    for (int f16 = 0; f16 < 2; f16++) {
        for (size_t i = 0; i < ns; i++)
            want[i] = f16 ? tf_elem_f32_to_f16(x[i]) : tf_f32_to_bf16(x[i]);
        CU(tf_cuda_half_pack(gd, gx, ns, f16, NULL));
        CU(cudaDeviceSynchronize());
        CU(cudaMemcpy(got, gd, ns * sizeof *got, cudaMemcpyDeviceToHost));
        CHECKF(!memcmp(got, want, ns * sizeof *got), "%s pack", f16 ? "fp16" : "bf16");
        for (size_t i = 0; i < ns; i++) { /* finite values for the widening checks */
            const float v = f16 ? tf_elem_f16_to_f32(want[i]) : tf_bf16_to_f32(want[i]);
            if (!isfinite(v)) want[i] = 0;
            wide[i] = f16 ? tf_elem_f16_to_f32(want[i]) : tf_bf16_to_f32(want[i]);
            sum[i] = acc[i] + wide[i];
        }
        CU(cudaMemcpy(gd, want, ns * sizeof *want, cudaMemcpyHostToDevice));
        CU(cudaMemcpy(gw, acc, ns * sizeof(float), cudaMemcpyHostToDevice));
        CU(tf_cuda_half_unpack(gw, gd, ns, f16, 1, NULL));
        CHECKF(dclose("16-bit unpack (+=)", gw, sum, ns, 0), "%s", f16 ? "fp16" : "bf16");
        CU(tf_cuda_half_unpack(gw, gd, ns, f16, 0, NULL));
        CHECKF(dclose("16-bit unpack (=)", gw, wide, ns, 0), "%s", f16 ? "fp16" : "bf16");
    }
    cudaFree(gd), cudaFree(gx), cudaFree(gw);
    free(x), free(want), free(got), free(xr), free(wide), free(hx), free(acc), free(sum);
}

static void test_magphase_combine(void) {
    const size_t n = 5003;
    float *re = host(n, -2, 2), *im = host(n, -2, 2);
    for (size_t i = 0; i < n; i += 13) re[i] = im[i] = 0.f; /* |X| == 0 */
    for (size_t i = 5; i < n; i += 29) re[i] = 0.f;
    for (size_t i = 7; i < n; i += 31) im[i] = 0.f;
    re[1] = -0.f, im[1] = -0.f;
    re[2] = 1e-30f, im[2] = -1e-30f; /* tiny but not 0: the double sum does not underflow */
    float *mag = host(n, 0, 0), *pr = host(n, 0, 0), *pi = host(n, 0, 0);
    tf_magphase(mag, pr, pi, re, im, n);
    float *gre = dev(re, n), *gim = dev(im, n);
    float *gm = dev(NULL, n), *gpr = dev(NULL, n), *gpi = dev(NULL, n);
    CU(tf_cuda_magphase(gm, gpr, gpi, gre, gim, n, NULL));
    CHECK(dclose("magphase mag", gm, mag, n, EW));
    CHECK(dclose("magphase pr", gpr, pr, n, EW));
    CHECK(dclose("magphase pi", gpi, pi, n, EW));
    float *fill = host(n, 5, 6), *gfill = dev(fill, n); /* outputs from other values */
    CU(cudaMemcpy(gpr, fill, n * sizeof(float), cudaMemcpyHostToDevice));
    CU(tf_cuda_magphase(NULL, gpr, gfill, gre, gim, n, NULL)); /* phase only */
    CHECK(dclose("magphase phase only (pr)", gpr, pr, n, EW));
    CHECK(dclose("magphase phase only (pi)", gfill, pi, n, EW));
    CU(cudaMemcpy(gfill, fill, n * sizeof(float), cudaMemcpyHostToDevice));
    CU(tf_cuda_magphase(gfill, NULL, NULL, gre, gim, n, NULL)); /* magnitude only */
    CHECK(dclose("magphase magnitude only", gfill, mag, n, EW));
    cudaFree(gre), cudaFree(gim), cudaFree(gfill);
    free(re), free(im), free(fill);
    /* combine over (B, S, m), phase (B, m) */
    const int Ss[2] = {1, 4};
    for (int k = 0; k < 2; k++) {
        const int B = 3, S = Ss[k];
        const size_t m = 2 * 9 * 13, nt = (size_t)B * S * m; /* (2, Fb, T) per target */
        float *ph_r = host((size_t)B * m, -1, 1), *ph_i = host((size_t)B * m, -1, 1);
        float *mg = host(nt, 0, 3), *dyr = host(nt, -1, 1), *dyi = host(nt, -1, 1);
        float *yr = host(nt, 0, 0), *yi = host(nt, 0, 0), *dm = host(nt, -1, 1);
        float *gph_r = dev(ph_r, (size_t)B * m), *gph_i = dev(ph_i, (size_t)B * m);
        float *gmg = dev(mg, nt), *gdyr = dev(dyr, nt), *gdyi = dev(dyi, nt), *gdm = dev(dm, nt);
        float *gyr = host(nt, 7, 8), *gyi = host(nt, 7, 8); /* written over */
        float *dgyr = dev(gyr, nt), *dgyi = dev(gyi, nt);
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) {
                const size_t o = ((size_t)b * S + s) * m;
                tf_combine_forward(yr + o, yi + o, mg + o, ph_r + b * m, ph_i + b * m, m);
                tf_combine_backward(dm + o, dyr + o, dyi + o, ph_r + b * m, ph_i + b * m, m);
            }
        CU(tf_cuda_combine_forward(dgyr, dgyi, gmg, gph_r, gph_i, B, S, m, NULL));
        CHECK(dclose(S == 1 ? "combine forward re (S 1)" : "combine forward re (S 4)", dgyr, yr, nt,
                     EW));
        CHECK(dclose("combine forward im", dgyi, yi, nt, EW));
        CU(tf_cuda_combine_backward(gdm, gdyr, gdyi, gph_r, gph_i, B, S, m, NULL));
        CHECK(dclose(S == 1 ? "combine backward (+=, S 1)" : "combine backward (+=, S 4)", gdm, dm,
                     nt, EW));
        cudaFree(gph_r), cudaFree(gph_i), cudaFree(gmg), cudaFree(gdyr), cudaFree(gdyi);
        cudaFree(gdm), cudaFree(dgyr), cudaFree(dgyi);
        free(ph_r), free(ph_i), free(mg), free(dyr), free(dyi), free(yr), free(yi), free(dm);
        free(gyr), free(gyi);
    }
    cudaFree(gm), cudaFree(gpr), cudaFree(gpi);
    free(mag), free(pr), free(pi);
}

/* the four subband transforms against dsp/subband.c, outputs starting from random values
 * (the = ones overwrite everything, the Nyquist rows included; the += ones leave them), and
 * the corner copy against tf_copy_corner */
static void test_subband(void) {
    const int cases[4][5] = {{2, 2, 9, 13, 4}, {1, 3, 5, 7, 1}, {2, 1, 17, 1, 4}, {1, 2, 3, 11, 2}};
    for (int k = 0; k < 4; k++) {
        const int B = cases[k][0], C = cases[k][1], F = cases[k][2], T = cases[k][3],
                  K = cases[k][4];
        const size_t nf = (size_t)B * C * F * T, ns = (size_t)B * C * (F - 1) * T;
        float *full = host(nf, -1, 1), *sub = host(ns, -1, 1);
        float *o_s = host(ns, -3, 3), *o_f = host(nf, -3, 3), *d_f = host(nf, -3, 3),
              *d_s = host(ns, -3, 3);
        float *g_full = dev(full, nf), *g_sub = dev(sub, ns);
        float *go_s = dev(o_s, ns), *go_f = dev(o_f, nf), *gd_f = dev(d_f, nf),
              *gd_s = dev(d_s, ns);
        CHECK(tf_subband_split(o_s, full, B, C, F, T, K) == TF_OK);
        CU(tf_cuda_subband_split(go_s, g_full, B, C, F, T, K, NULL));
        CHECK(dclose("subband split", go_s, o_s, ns, 0));
        CHECK(tf_subband_merge(o_f, sub, B, C, F, T, K) == TF_OK);
        CU(tf_cuda_subband_merge(go_f, g_sub, B, C, F, T, K, NULL));
        CHECK(dclose("subband merge", go_f, o_f, nf, 0));
        CHECK(tf_subband_split_backward(d_f, sub, B, C, F, T, K) == TF_OK);
        CU(tf_cuda_subband_split_backward(gd_f, g_sub, B, C, F, T, K, NULL));
        CHECK(dclose("subband split backward (+=)", gd_f, d_f, nf, 0));
        CHECK(tf_subband_merge_backward(d_s, full, B, C, F, T, K) == TF_OK);
        CU(tf_cuda_subband_merge_backward(gd_s, g_full, B, C, F, T, K, NULL));
        CHECK(dclose("subband merge backward (+=)", gd_s, d_s, ns, 0));
        cudaFree(g_full), cudaFree(g_sub), cudaFree(go_s), cudaFree(go_f), cudaFree(gd_f);
        cudaFree(gd_s);
        free(full), free(sub), free(o_s), free(o_f), free(d_f), free(d_s);
    }
    /* (Fd, Td) from (Fsrc, Tsrc): crop one axis and pad the other, both ways; equal; 1 x 1 */
    const int cc[5][4] = {
        {5, 19, 8, 13}, {9, 6, 4, 11}, {7, 10, 7, 10}, {1, 1, 3, 4}, {6, 5, 1, 1}};
    const size_t R = 5;
    for (int k = 0; k < 5; k++) {
        const int Fd = cc[k][0], Td = cc[k][1], Fsrc = cc[k][2], Tsrc = cc[k][3];
        const size_t nd = R * Fd * Td, nsrc = R * Fsrc * Tsrc;
        float *src = host(nsrc, -1, 1), *dst = host(nd, 0, 0), *gdst0 = host(nd, 2, 3);
        float *gsrc = dev(src, nsrc), *gdst = dev(gdst0, nd); /* every element written */
        tf_copy_corner(dst, Fd, Td, src, Fsrc, Tsrc, R);
        CU(tf_cuda_copy_corner(gdst, Fd, Td, gsrc, Fsrc, Tsrc, R, NULL));
        CHECK(dclose("copy corner", gdst, dst, nd, 0));
        cudaFree(gsrc), cudaFree(gdst);
        free(src), free(dst), free(gdst0);
    }
}

/* The head activation as forward.c computes it, per item b and target s: the target's K2
 * channels of z (B, S*K2, Fp, Tp) cropped by tf_copy_corner to (K2, Fs, T), then ReLU or
 * x0 / (1 + expf(-h)) (the formulas written out here, not nn/elem.h's); and its backward:
 * dz = dh's channels padded by tf_copy_corner, then times act'(z) over the whole item. */
static void head_case(int B, int S, int K2, int Fs, int T, int Fp, int Tp, int mask) {
    const size_t hw = (size_t)Fp * Tp, nz = (size_t)B * S * K2 * hw,
                 nh = (size_t)B * S * K2 * Fs * T, nx = (size_t)B * K2 * hw;
    float *z = host(nz, -6, 6), *x0 = mask ? host(nx, 0, 2) : NULL, *dh = host(nh, -1, 1);
    for (size_t i = 0; i < nz; i += 11) z[i] = 0.f; /* ReLU' at 0: 0 */
    float *h = host(nh, 0, 0), *dz = host(nz, 0, 0);
    for (int b = 0; b < B; b++) {
        const float *zb = z + (size_t)b * S * K2 * hw, *xb = mask ? x0 + (size_t)b * K2 * hw : NULL;
        for (int s = 0; s < S; s++) {
            float *hc = h + ((size_t)b * S + s) * K2 * Fs * T;
            tf_copy_corner(hc, Fs, T, zb + (size_t)s * K2 * hw, Fp, Tp, (size_t)K2);
            if (xb) {
                for (int c = 0; c < K2; c++) {
                    const float *xi = xb + (size_t)c * hw;
                    float *hh = hc + (size_t)c * Fs * T;
                    for (int f = 0; f < Fs; f++)
                        for (int t = 0; t < T; t++)
                            hh[(size_t)f * T + t] =
                                xi[(size_t)f * Tp + t] / (1.f + expf(-hh[(size_t)f * T + t]));
                }
            } else {
                for (size_t i = 0; i < (size_t)K2 * Fs * T; i++) hc[i] = hc[i] > 0 ? hc[i] : 0.f;
            }
        }
        float *dzb = dz + (size_t)b * S * K2 * hw;
        for (int s = 0; s < S; s++)
            tf_copy_corner(dzb + (size_t)s * K2 * hw, Fp, Tp,
                           dh + ((size_t)b * S + s) * K2 * Fs * T, Fs, T, (size_t)K2);
        for (int r = 0; r < S * K2; r++) {
            for (size_t i = 0; i < hw; i++) {
                const float zi = zb[r * hw + i];
                if (xb) {
                    float sg = 1.f / (1.f + expf(-zi));
                    dzb[r * hw + i] *= xb[(size_t)(r % K2) * hw + i] * sg * (1.f - sg);
                } else if (!(zi > 0)) {
                    dzb[r * hw + i] = 0.f;
                }
            }
        }
    }
    float *gz = dev(z, nz), *gx0 = mask ? dev(x0, nx) : NULL, *gdh = dev(dh, nh);
    float *fill_h = host(nh, 5, 6), *fill_z = host(nz, 5, 6); /* written over */
    float *gh = dev(fill_h, nh), *gdz = dev(fill_z, nz);
    CU(tf_cuda_head_forward(gh, gz, gx0, B, S, K2, Fs, T, Fp, Tp, NULL));
    CHECK(dclose(mask ? "head forward (mask)" : "head forward (relu)", gh, h, nh, EW));
    CU(tf_cuda_head_backward(gdz, gdh, gz, gx0, B, S, K2, Fs, T, Fp, Tp, NULL));
    CHECK(dclose(mask ? "head backward (mask)" : "head backward (relu)", gdz, dz, nz, EW));
    cudaFree(gz), cudaFree(gx0), cudaFree(gdh), cudaFree(gh), cudaFree(gdz);
    free(z), free(x0), free(dh), free(h), free(dz), free(fill_h), free(fill_z);
}

static void test_head(void) {
    for (int mask = 0; mask < 2; mask++) {
        head_case(2, 4, 8, 5, 13, 8, 16, mask); /* K 4, S 4, Fs < Fp, T < Tp */
        head_case(3, 1, 2, 6, 7, 6, 7, mask);   /* K 1, S 1, no padding */
        head_case(1, 2, 4, 3, 9, 4, 9, mask);   /* only Fs < Fp */
        head_case(2, 1, 2, 4, 5, 4, 12, mask);  /* only T < Tp */
    }
}

int main(void) {
    if (!gpu_present("test_cuda_elem")) return 1;
    RUN(test_gelu);
    RUN(test_batchnorm);
    RUN(test_layernorm);
    RUN(test_softmax);
    RUN(test_resample);
    RUN(test_windows);
    RUN(test_concat_and_tokens);
    RUN(test_loss);
    RUN(test_adam);
    RUN(test_norm_scale_ema);
    RUN(test_glue_add_copy);
    RUN(test_bf16_pack_unpack);
    RUN(test_magphase_combine);
    RUN(test_subband);
    RUN(test_head);
    return TEST_END();
}
