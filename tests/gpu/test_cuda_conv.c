/* The cuda backend of nn/kernels.h (cuDNN, src/cuda/conv.cu) against the ref backend
 * (the CPU oracle, itself checked against PyTorch in test_conv / test_model_ref), on a GPU:
 * conv2d forward and backward on random data for k 1 and 3, with and without bias, batch 1
 * and 3, odd channel counts and map sizes, the accumulate (+=) contract of the backward and
 * set_dinp (=). fp32: max |cuda - ref| / max |ref| <= 1e-4 forward, 1e-3 backward. Also: a
 * shape registered at its first call, a workspace too small (an error, not a crash), and
 * a CUDA failure reported through tf_kernels_status.
 * Built by `make CUDA=1` only (build-cuda/tests/gpu/test_cuda_conv); needs a GPU: run by
 * tools/gpu_check.sh. Usage: test_cuda_conv [DEVICE_INDEX] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "nn/kernels.h"
#include "fixtures.h"
#include "test.h"
#include "util/device.h"

#define TOL_FWD 1e-4
#define TOL_BWD 1e-3

static int g_device = 0;

/* device copy of host x (n floats), NULL on failure (reported) */
static float *dev_copy(const float *x, size_t n) {
    void *d = NULL;
    char err[512];
    if (tf_cuda_malloc(&d, n * sizeof(float), err, sizeof err) ||
        (x && tf_cuda_memcpy_h2d(d, x, n * sizeof(float), err, sizeof err))) {
        fprintf(stderr, "  %s\n", err);
        tf_cuda_free(d);
        return NULL;
    }
    return d;
}

static int host_copy(float *h, const float *d, size_t n) {
    char err[512];
    if (tf_cuda_memcpy_d2h(h, d, n * sizeof(float), err, sizeof err)) {
        fprintf(stderr, "  %s\n", err);
        return -1;
    }
    return 0;
}

typedef struct {
    int B, Cin, Cout, H, W, k, bias;
} shape;

static const shape SHAPES[] = {
    {1, 3, 5, 7, 9, 3, 1},
    {1, 3, 5, 7, 9, 1, 0},
    {3, 16, 8, 12, 10, 3, 0},
    {3, 16, 8, 12, 10, 1, 1},
    {2, 33, 17, 19, 23, 3, 1},
    {1, 64, 64, 32, 38, 3, 1},
    {2, 64, 32, 32, 38, 1, 1},
    {1, 96, 96, 16, 19, 3, 0},
    {4, 32, 64, 64, 24, 3, 1},
    {1, 1, 4, 40, 1, 3, 1},
    /* the paper model's sizes: first level (32 channels, 6 s at hop 512 x 256 bins) and the
     * bottleneck (384 channels) */
    {2, 32, 32, 128, 256, 3, 1},
    {4, 384, 384, 16, 32, 3, 1},
};
#define NSHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* One shape, one set_dinp: forward and backward of both backends on the same data. */
static void check_shape(const shape *s, int set_dinp) {
    const size_t hw = (size_t)s->H * s->W, ni = (size_t)s->B * s->Cin * hw,
                 no = (size_t)s->B * s->Cout * hw, nw = (size_t)s->Cout * s->Cin * s->k * s->k,
                 nb = (size_t)s->Cout;
    const uint64_t seed = (uint64_t)(s->B * 131 + s->Cin * 31 + s->Cout * 7 + s->k + s->H);
    float *x = test_rand_floats(ni, seed), *w = test_rand_floats(nw, seed + 1),
          *b = test_rand_floats(nb, seed + 2), *dy = test_rand_floats(no, seed + 3),
          *dx0 = test_rand_floats(ni, seed + 4), *dw0 = test_rand_floats(nw, seed + 5),
          *db0 = test_rand_floats(nb, seed + 6);
    float *y_ref = malloc(no * sizeof(float)), *y_gpu = malloc(no * sizeof(float));
    float *dx_ref = malloc(ni * sizeof(float)), *dw_ref = malloc(nw * sizeof(float)),
          *db_ref = malloc(nb * sizeof(float));
    float *dx_gpu = malloc(ni * sizeof(float)), *dw_gpu = malloc(nw * sizeof(float)),
          *db_gpu = malloc(nb * sizeof(float));
    tf_kernels *kr = NULL, *kc = NULL;
    float *d_x = NULL, *d_w = NULL, *d_b = NULL, *d_y = NULL, *d_dy = NULL, *d_dx = NULL,
          *d_dw = NULL, *d_db = NULL;
    void *ws_ref = NULL, *ws_gpu = NULL;
    CHECK(x && w && b && dy && dx0 && dw0 && db0 && y_ref && y_gpu && dx_ref && dw_ref && db_ref &&
          dx_gpu && dw_gpu && db_gpu);
    if (t_cur_failed_) goto out;
    /* ref on the host */
    CHECK(tf_kernels_create(&kr, TF_BACKEND_REF, TF_DT_FP32, 8) == TF_OK);
    CHECKF(tf_kernels_create(&kc, TF_BACKEND_CUDA, TF_DT_FP32, 1) == TF_OK, "%s", tf_errmsg());
    if (t_cur_failed_) goto out;
    size_t wr_f, wr_b, wc_f, wc_b;
    CHECK(tf_kern_conv2d_add(kr, s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, 0, &wr_f) ==
          TF_OK);
    CHECK(tf_kern_conv2d_add(kr, s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, 1, &wr_b) ==
          TF_OK);
    CHECKF(tf_kern_conv2d_add(kc, s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, 0, &wc_f) ==
               TF_OK,
           "%s", tf_errmsg());
    CHECKF(tf_kern_conv2d_add(kc, s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, 1, &wc_b) ==
               TF_OK,
           "%s", tf_errmsg());
    CHECK(tf_kernels_commit(kr) == TF_OK && tf_kernels_commit(kc) == TF_OK);
    CHECK(wc_f <= TF_KERN_CUDA_WS_LIMIT && wc_b <= TF_KERN_CUDA_WS_LIMIT);
    if (t_cur_failed_) goto out;
    const size_t wr = wr_f > wr_b ? wr_f : wr_b, wc = wc_f > wc_b ? wc_f : wc_b;
    ws_ref = wr ? aligned_alloc(64, (wr + 63) / 64 * 64) : NULL;
    char err[512];
    if (tf_cuda_malloc(&ws_gpu, wc, err, sizeof err)) {
        CHECKF(0, "%s", err);
        goto out;
    }
    d_x = dev_copy(x, ni), d_w = dev_copy(w, nw), d_b = dev_copy(b, nb), d_y = dev_copy(NULL, no);
    d_dy = dev_copy(dy, no), d_dx = dev_copy(dx0, ni), d_dw = dev_copy(dw0, nw);
    d_db = dev_copy(db0, nb);
    CHECK(d_x && d_w && d_b && d_y && d_dy && d_dx && d_dw && d_db);
    if (t_cur_failed_) goto out;

    /* forward: y = conv(x, w) (+ b) */
    tf_kern_conv2d_forward(kr, y_ref, x, w, s->bias ? b : NULL, s->B, s->Cin, s->Cout, s->H, s->W,
                           s->k, ws_ref, wr);
    tf_kern_conv2d_forward(kc, d_y, d_x, d_w, s->bias ? d_b : NULL, s->B, s->Cin, s->Cout, s->H,
                           s->W, s->k, ws_gpu, wc);
    CHECKF(tf_kernels_status(kc) == TF_OK, "%s", tf_errmsg());
    CHECK(host_copy(y_gpu, d_y, no) == 0);
    double ef = test_max_rel_err(y_gpu, y_ref, no);
    CHECKF(ef <= TOL_FWD, "forward rel err %.3g > %g", ef, TOL_FWD);

    /* backward: dw += , db += , dx += (set_dinp: =) starting from the same random values */
    memcpy(dx_ref, dx0, ni * sizeof(float));
    memcpy(dw_ref, dw0, nw * sizeof(float));
    memcpy(db_ref, db0, nb * sizeof(float));
    tf_kern_conv2d_backward(kr, dx_ref, dw_ref, s->bias ? db_ref : NULL, dy, x, w, s->B, s->Cin,
                            s->Cout, s->H, s->W, s->k, ws_ref, wr, set_dinp);
    tf_kern_conv2d_backward(kc, d_dx, d_dw, s->bias ? d_db : NULL, d_dy, d_x, d_w, s->B, s->Cin,
                            s->Cout, s->H, s->W, s->k, ws_gpu, wc, set_dinp);
    CHECKF(tf_kernels_status(kc) == TF_OK, "%s", tf_errmsg());
    CHECK(host_copy(dx_gpu, d_dx, ni) == 0 && host_copy(dw_gpu, d_dw, nw) == 0 &&
          host_copy(db_gpu, d_db, nb) == 0);
    double ex = test_max_rel_err(dx_gpu, dx_ref, ni), ew = test_max_rel_err(dw_gpu, dw_ref, nw),
           eb = s->bias ? test_max_rel_err(db_gpu, db_ref, nb) : 0;
    CHECKF(ex <= TOL_BWD && ew <= TOL_BWD && eb <= TOL_BWD,
           "backward rel err dinp %.3g dweight %.3g dbias %.3g > %g", ex, ew, eb, TOL_BWD);
    if (!s->bias) /* no dbias asked: untouched */
        CHECK(host_copy(db_gpu, d_db, nb) == 0 && !memcmp(db_gpu, db0, nb * sizeof(float)));
    char algos[512];
    tf_kernels_shape_algos(kc, 0, algos, sizeof algos);
    printf("  B %d Cin %d Cout %d %dx%d k %d bias %d set_dinp %d: fwd %.2g, dinp %.2g, "
           "dweight %.2g, dbias %.2g | ws fwd %zu bwd %zu | %s\n",
           s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, set_dinp, ef, ex, ew, eb, wc_f, wc_b,
           algos);
out:
    tf_cuda_free(d_x), tf_cuda_free(d_w), tf_cuda_free(d_b), tf_cuda_free(d_y);
    tf_cuda_free(d_dy), tf_cuda_free(d_dx), tf_cuda_free(d_dw), tf_cuda_free(d_db);
    tf_cuda_free(ws_gpu);
    free(ws_ref);
    tf_kernels_free(kr);
    tf_kernels_free(kc);
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0);
    free(y_ref), free(y_gpu), free(dx_ref), free(dw_ref), free(db_ref);
    free(dx_gpu), free(dw_gpu), free(db_gpu);
}

static void test_conv_accumulate(void) {
    for (size_t i = 0; i < NSHAPES; i++) check_shape(&SHAPES[i], 0);
}

static void test_conv_set_dinp(void) {
    for (size_t i = 0; i < NSHAPES; i++) check_shape(&SHAPES[i], 1);
}

/* dinp with set_dinp = 1 is overwritten even when it held NaN (cuDNN must not read it) */
static void test_set_dinp_ignores_nan(void) {
    const shape s = {2, 8, 6, 10, 11, 3, 1};
    const size_t ni = (size_t)s.B * s.Cin * s.H * s.W, no = (size_t)s.B * s.Cout * s.H * s.W,
                 nw = (size_t)s.Cout * s.Cin * 9;
    float *x = test_rand_floats(ni, 1), *w = test_rand_floats(nw, 2), *dy = test_rand_floats(no, 3),
          *dx = malloc(ni * sizeof(float));
    float *dx_ref = calloc(ni, sizeof(float)), *dw = calloc(nw, sizeof(float));
    tf_kernels *kr = NULL, *kc = NULL;
    CHECK(x && w && dy && dx && dx_ref && dw);
    CHECK(tf_kernels_create(&kr, TF_BACKEND_REF, TF_DT_FP32, 8) == TF_OK);
    CHECKF(tf_kernels_create(&kc, TF_BACKEND_CUDA, TF_DT_FP32, 1) == TF_OK, "%s", tf_errmsg());
    size_t wr = 0, wc = 0;
    if (!t_cur_failed_) {
        CHECK(tf_kern_conv2d_add(kr, s.B, s.Cin, s.Cout, s.H, s.W, 3, 0, 1, &wr) == TF_OK);
        CHECK(tf_kern_conv2d_add(kc, s.B, s.Cin, s.Cout, s.H, s.W, 3, 0, 1, &wc) == TF_OK);
    }
    void *wsr = wr ? aligned_alloc(64, (wr + 63) / 64 * 64) : NULL, *wsc = NULL;
    char err[512];
    float *nan = malloc(ni * sizeof(float));
    for (size_t i = 0; nan && i < ni; i++) nan[i] = NAN;
    float *d_x = dev_copy(x, ni), *d_w = dev_copy(w, nw), *d_dy = dev_copy(dy, no),
          *d_dx = dev_copy(nan, ni), *d_dw = dev_copy(dw, nw);
    CHECK(!tf_cuda_malloc(&wsc, wc, err, sizeof err));
    CHECK(d_x && d_w && d_dy && d_dx && d_dw && nan);
    if (!t_cur_failed_) {
        tf_kern_conv2d_backward(kr, dx_ref, dw, NULL, dy, x, w, s.B, s.Cin, s.Cout, s.H, s.W, 3,
                                wsr, wr, 1);
        tf_kern_conv2d_backward(kc, d_dx, d_dw, NULL, d_dy, d_x, d_w, s.B, s.Cin, s.Cout, s.H, s.W,
                                3, wsc, wc, 1);
        CHECKF(tf_kernels_status(kc) == TF_OK, "%s", tf_errmsg());
        CHECK(host_copy(dx, d_dx, ni) == 0);
        double e = test_max_rel_err(dx, dx_ref, ni);
        CHECKF(e <= TOL_BWD, "set_dinp over NaN: rel err %.3g", e);
    }
    tf_cuda_free(d_x), tf_cuda_free(d_w), tf_cuda_free(d_dy), tf_cuda_free(d_dx);
    tf_cuda_free(d_dw), tf_cuda_free(wsc);
    free(wsr), free(nan), free(x), free(w), free(dy), free(dx), free(dx_ref), free(dw);
    tf_kernels_free(kr), tf_kernels_free(kc);
}

/* a shape not registered runs when its workspace fits; a too small workspace is an error
 * recorded in tf_kernels_status (and nothing is written) */
static void test_unregistered_and_small_ws(void) {
    tf_kernels *kc = NULL;
    CHECKF(tf_kernels_create(&kc, TF_BACKEND_CUDA, TF_DT_FP32, 1) == TF_OK, "%s", tf_errmsg());
    if (!kc) return;
    const int B = 2, Cin = 24, Cout = 12, H = 20, W = 21;
    const size_t ni = (size_t)B * Cin * H * W, no = (size_t)B * Cout * H * W,
                 nw = (size_t)Cout * Cin * 9;
    float *x = test_rand_floats(ni, 11), *w = test_rand_floats(nw, 12),
          *y = malloc(no * sizeof(float));
    float *d_x = dev_copy(x, ni), *d_w = dev_copy(w, nw), *d_y = dev_copy(NULL, no);
    void *ws = NULL;
    char err[512];
    const size_t big = (size_t)64 << 20;
    CHECK(!tf_cuda_malloc(&ws, big, err, sizeof err));
    CHECK(x && w && y && d_x && d_w && d_y);
    if (!t_cur_failed_) {
        CHECK(tf_kernels_n_shapes(kc) == 0);
        tf_kern_conv2d_forward(kc, d_y, d_x, d_w, NULL, B, Cin, Cout, H, W, 3, ws, big);
        CHECKF(tf_kernels_status(kc) == TF_OK, "%s", tf_errmsg());
        CHECK(tf_kernels_n_shapes(kc) == 1);
        size_t need = 0;
        CHECK(tf_kern_conv2d_add(kc, B, Cin, Cout, H, W, 3, 0, 1, &need) == TF_OK);
        if (need > 0) { /* one byte short: refused, reported */
            tf_kern_conv2d_backward(kc, d_x, d_w, NULL, d_y, d_x, d_w, B, Cin, Cout, H, W, 3, ws,
                                    need - 1, 0);
            CHECK(tf_kernels_status(kc) == TF_EINTERNAL && strstr(tf_errmsg(), "workspace"));
            CHECK(tf_kernels_status(kc) == TF_OK); /* cleared */
        } else {
            printf("  (backward of this shape needs no workspace: the short-workspace case "
                   "is not exercised)\n");
        }
    }
    tf_cuda_free(d_x), tf_cuda_free(d_w), tf_cuda_free(d_y), tf_cuda_free(ws);
    free(x), free(w), free(y);
    tf_kernels_free(kc);
}

/* the device module: properties of the device the tests ran on */
static void test_device_info(void) {
    tf_device d = {TF_DEVICE_CUDA, g_device};
    tf_device_info info;
    CHECKF(tf_device_open(&d, "device", NULL, &info) == TF_OK, "%s", tf_errmsg());
    CHECK(info.count >= 1 && info.total_bytes > 0 && info.free_bytes <= info.total_bytes);
    CHECK(info.cc_major >= 5 && info.bf16 == (info.cc_major >= 8) && info.name[0]);
    /* out of range: the clear line */
    tf_device bad = {TF_DEVICE_CUDA, info.count};
    CHECK(tf_device_open(&bad, "--device", NULL, NULL) == TF_EUSER &&
          strstr(tf_errmsg(), "out of range"));
    CHECK(tf_device_open(&d, "device", NULL, &info) == TF_OK); /* back to ours */
}

int main(int argc, char **argv) {
    if (argc > 1) g_device = atoi(argv[1]);
    tf_device d = {TF_DEVICE_CUDA, g_device};
    tf_device_info info;
    if (tf_device_open(&d, "device", NULL, &info) != TF_OK) {
        printf("FAIL open: %s\n", tf_errmsg());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    char line[512], v[128];
    tf_device_describe(&info, line, sizeof line);
    tf_cuda_versions(v, sizeof v);
    printf("device %s; %s\n", line, v);
    RUN(test_device_info);
    RUN(test_conv_accumulate);
    RUN(test_conv_set_dinp);
    RUN(test_set_dinp_ignores_nan);
    RUN(test_unregistered_and_small_ws);
    return TEST_END();
}
