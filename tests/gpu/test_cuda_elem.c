/* The CUDA kernels of src/cuda/elem.cu against the CPU functions they stand for (random
 * inputs; the CPU functions are themselves checked against references by test_act,
 * test_elem, test_nn_attn, test_nn_conv, test_optim, test_loss). Tolerances: element-wise
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
#include "nn/act.h"
#include "nn/attn.h"
#include "nn/conv.h"
#include "optim/optim.h"
#include "test.h"

#define GPU_TEST_SEED 0x9e3779b97f4a7c15ull
#include "gpu_test.h"
#include "train/loss.h"

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

int main(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        printf("test_cuda_elem: no CUDA device (%s)\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 1;
    }
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
    return TEST_END();
}
