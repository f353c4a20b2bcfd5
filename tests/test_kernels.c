/* The kernel interface (nn/kernels.h): the dnnl backend against the ref backend (the
 * oracle, itself checked against PyTorch in test_conv/test_model_ref) on odd shapes:
 * channels and widths that are not multiples of the vector length, batch 1 and 3, both
 * layouts the dnnl backend picks (blocked on large maps, plain on small ones), k 1 and 3,
 * with and without bias, and the accumulate (+=) contract of the backward. Workspaces are
 * allocated at exactly the registered size, so an overrun is a heap error under ASan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/kernels.h"
#include "fixtures.h"
#include "test.h"

static void *ws_alloc(size_t bytes) {
    return bytes ? aligned_alloc(64, bytes) : NULL;
}

typedef struct {
    int B, Cin, Cout, H, W, k, bias;
} shape;

/* one shape through both backends: forward, backward with and without dinp */
static void check_shape(tf_kernels *ref, tf_kernels *dn, shape s, double tol) {
    const int B = s.B, Ci = s.Cin, Co = s.Cout, H = s.H, W = s.W, k = s.k;
    const size_t ni = (size_t)B * Ci * H * W, no = (size_t)B * Co * H * W,
                 nw = (size_t)Co * Ci * k * k;
    size_t wr = 0, wd = 0;
    CHECK(tf_kern_conv2d_add(ref, B, Ci, Co, H, W, k, s.bias, 1, &wr) == TF_OK);
    CHECK(tf_kern_conv2d_add(dn, B, Ci, Co, H, W, k, s.bias, 1, &wd) == TF_OK);
    CHECK(tf_kernels_commit(dn) == TF_OK);
    void *wsr = ws_alloc(wr), *wsd = ws_alloc(wd);
    float *x = test_rand_floats(ni, 1), *w = test_rand_floats(nw, 2),
          *b = s.bias ? test_rand_floats((size_t)Co, 3) : NULL;
    float *dy = test_rand_floats(no, 4), *y0 = test_rand_floats(no, 5),
          *y1 = malloc(no * sizeof(float));
    memcpy(y1, y0, no * sizeof(float));
    tf_kern_conv2d_forward(ref, y0, x, w, b, B, Ci, Co, H, W, k, wsr, wr);
    tf_kern_conv2d_forward(dn, y1, x, w, b, B, Ci, Co, H, W, k, wsd, wd);
    CHECK(tf_kernels_status(dn) == TF_OK);
    double ef = test_max_rel_err(y1, y0, no);
    CHECKF(ef < tol, "B%d %d->%d %dx%d k%d bias %d: forward rel err %.3g (tol %.1g)", B, Ci, Co, H,
           W, k, s.bias, ef, tol);
    /* backward: gradients start non-zero, both backends must ADD */
    float *dx0 = test_rand_floats(ni, 6), *dx1 = malloc(ni * sizeof(float));
    float *dw0 = test_rand_floats(nw, 7), *dw1 = malloc(nw * sizeof(float));
    float *db0 = test_rand_floats((size_t)Co, 8), *db1 = malloc((size_t)Co * sizeof(float));
    memcpy(dx1, dx0, ni * sizeof(float));
    memcpy(dw1, dw0, nw * sizeof(float));
    memcpy(db1, db0, (size_t)Co * sizeof(float));
    float *dx_start = malloc(ni * sizeof(float));
    memcpy(dx_start, dx0, ni * sizeof(float));
    tf_kern_conv2d_backward(ref, dx0, dw0, s.bias ? db0 : NULL, dy, x, w, B, Ci, Co, H, W, k, wsr,
                            wr, 0);
    tf_kern_conv2d_backward(dn, dx1, dw1, s.bias ? db1 : NULL, dy, x, w, B, Ci, Co, H, W, k, wsd,
                            wd, 0);
    CHECK(tf_kernels_status(dn) == TF_OK);
    double ex = test_max_rel_err(dx1, dx0, ni), ew = test_max_rel_err(dw1, dw0, nw);
    double eb = s.bias ? test_max_rel_err(db1, db0, (size_t)Co) : 0;
    CHECKF(ex < tol && ew < tol && eb < tol,
           "B%d %d->%d %dx%d k%d: backward rel err dinp %.3g dweight %.3g dbias %.3g", B, Ci, Co, H,
           W, k, ex, ew, eb);
    /* dinp NULL: only the weight gradients move (again +=) */
    memcpy(dx1, dx_start, ni * sizeof(float));
    tf_kern_conv2d_backward(ref, NULL, dw0, s.bias ? db0 : NULL, dy, x, w, B, Ci, Co, H, W, k, wsr,
                            wr, 0);
    tf_kern_conv2d_backward(dn, NULL, dw1, s.bias ? db1 : NULL, dy, x, w, B, Ci, Co, H, W, k, wsd,
                            wd, 0);
    ew = test_max_rel_err(dw1, dw0, nw);
    CHECKF(ew < tol, "dinp NULL: dweight rel err %.3g", ew);
    CHECK(memcmp(dx1, dx_start, ni * sizeof(float)) == 0);
    /* set_dinp: dinp overwritten; what was there (dx_start, non-zero) must not count */
    memset(dx0, 0, ni * sizeof(float));
    tf_kern_conv2d_backward(ref, dx0, dw0, NULL, dy, x, w, B, Ci, Co, H, W, k, wsr, wr, 0);
    memcpy(dx1, dx_start, ni * sizeof(float));
    tf_kern_conv2d_backward(dn, dx1, dw1, NULL, dy, x, w, B, Ci, Co, H, W, k, wsd, wd, 1);
    CHECK(tf_kernels_status(dn) == TF_OK);
    ex = test_max_rel_err(dx1, dx0, ni);
    CHECKF(ex < tol, "set_dinp: dinp rel err %.3g against the ref's sum onto zeros", ex);
    free(x), free(w), free(b), free(dy), free(y0), free(y1), free(dx0), free(dx1), free(dw0);
    free(dw1), free(db0), free(db1), free(dx_start), free(wsr), free(wsd);
}

static void test_dnnl_matches_ref_fp32(void) {
    tf_kernels *ref = NULL, *dn = NULL;
    CHECK(tf_kernels_create(&ref, TF_BACKEND_REF, TF_DT_FP32, 2) == TF_OK);
    CHECK(tf_kernels_create(&dn, TF_BACKEND_DNNL, TF_DT_FP32, 2) == TF_OK);
    if (!ref || !dn) return;
    printf("  %s\n", tf_kernels_describe(dn));
    const shape sh[] = {
        {1, 5, 13, 7, 11, 3, 1},   /* small map: plain layout, odd channels */
        {3, 13, 6, 9, 10, 3, 1},   /* batch 3 */
        {1, 3, 8, 50, 61, 3, 1},   /* 3050 px: blocked layout, odd width */
        {3, 16, 24, 41, 67, 3, 0}, /* blocked, batch 3, no bias */
        {1, 7, 9, 50, 53, 1, 1},   /* 1x1 blocked */
        {3, 24, 5, 5, 7, 1, 1},    /* 1x1 plain */
        {1, 1, 1, 1, 1, 3, 1},     /* 1 pixel: every tap is padding but the centre */
    };
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) check_shape(ref, dn, sh[i], 1e-5);
    tf_kernels_free(ref);
    tf_kernels_free(dn);
}

/* bf16 arithmetic: operands rounded to bf16 (8-bit mantissa: relative error <= 2^-9 each,
 * so a product errs by <= ~2^-8 relative) with fp32 sums. The errors of the n terms of a
 * reduction have random signs: the sum errs by about sqrt(n) * 2^-8 * (typical term), while
 * the sum itself is about sqrt(n) * (typical term) for random data. So max error over max
 * |value| stays a small multiple of 2^-8 = 3.9e-3 whatever n; the bound is 4 * 2^-8.
 * The ref backend emulates it on any CPU (test_bf16_emulated); oneDNN runs it natively on
 * AVX512-BF16 / AMX, where it must match the emulation to fp32 rounding (only the order of
 * the fp32 sums differs), and elsewhere falls back to fp32 and says so. */
#define BF16_TOL (4.0 / 256)

static void test_bf16_emulated(void) {
    tf_kernels *ref = NULL, *emu = NULL;
    CHECK(tf_kernels_create(&ref, TF_BACKEND_REF, TF_DT_FP32, 2) == TF_OK);
    CHECK(tf_kernels_create(&emu, TF_BACKEND_REF, TF_DT_BF16, 2) == TF_OK);
    if (!ref || !emu) return;
    CHECK(tf_kernels_compute(emu) == TF_DT_BF16);
    const shape sh[] = {
        {1, 5, 13, 7, 11, 3, 1}, {3, 16, 24, 41, 67, 3, 0}, {1, 7, 9, 50, 53, 1, 1}};
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) check_shape(ref, emu, sh[i], BF16_TOL);
    tf_kernels_free(ref);
    tf_kernels_free(emu);
}

/* the emulation really rounds: one weight whose fp32 value differs from its bf16 rounding
 * by a relative 2^-10 moves the 1x1 conv's output by exactly that */
static void test_bf16_rounds(void) {
    tf_kernels *emu = NULL;
    CHECK(tf_kernels_create(&emu, TF_BACKEND_REF, TF_DT_BF16, 1) == TF_OK);
    if (!emu) return;
    size_t ws = 0;
    CHECK(tf_kern_conv2d_add(emu, 1, 1, 1, 1, 1, 1, 0, 0, &ws) == TF_OK);
    void *w = ws_alloc(ws);
    float x = 1.f, wt = 1.f + 1.f / 1024, y = 0;
    tf_kern_conv2d_forward(emu, &y, &x, &wt, NULL, 1, 1, 1, 1, 1, 1, w, ws);
    CHECK(tf_kernels_status(emu) == TF_OK);
    CHECKF(y == 1.f, "bf16 1 x (1 + 2^-10) = %.9g, expected 1 (rounded weight)", y);
    free(w);
    tf_kernels_free(emu);
}

static void test_dnnl_bf16(void) {
    if (!tf_kernels_native_bf16(TF_BACKEND_DNNL)) {
        tf_kernels *dn = NULL;
        CHECK(tf_kernels_create(&dn, TF_BACKEND_DNNL, TF_DT_BF16, 2) == TF_OK);
        if (!dn) return;
        /* the fallback is fp32 arithmetic, and it says so */
        CHECK(tf_kernels_compute(dn) == TF_DT_FP32);
        CHECK(strstr(tf_kernels_describe(dn), "no native bf16") != NULL);
        printf("  bf16 arithmetic: not native on this CPU; fallback checked (%s)\n",
               tf_kernels_describe(dn));
        tf_kernels_free(dn);
        return;
    }
    tf_kernels *emu = NULL, *dn = NULL;
    CHECK(tf_kernels_create(&emu, TF_BACKEND_REF, TF_DT_BF16, 2) == TF_OK);
    CHECK(tf_kernels_create(&dn, TF_BACKEND_DNNL, TF_DT_BF16, 2) == TF_OK);
    if (!emu || !dn) return;
    CHECK(tf_kernels_compute(dn) == TF_DT_BF16);
    printf("  %s\n", tf_kernels_describe(dn));
    const shape sh[] = {
        {1, 5, 13, 7, 11, 3, 1}, {3, 16, 24, 41, 67, 3, 0}, {1, 7, 9, 50, 53, 1, 1}};
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) check_shape(emu, dn, sh[i], 1e-4);
    tf_kernels_free(emu);
    tf_kernels_free(dn);
}

/* A shape the plan did not list: created at first use when it fits the planned workspace,
 * a clear internal error when it does not. */
static void test_unlisted_shape(void) {
    tf_kernels *dn = NULL;
    CHECK(tf_kernels_create(&dn, TF_BACKEND_DNNL, TF_DT_FP32, 2) == TF_OK);
    if (!dn) return;
    size_t ws = 0;
    CHECK(tf_kern_conv2d_add(dn, 1, 8, 8, 60, 60, 3, 1, 0, &ws) == TF_OK);
    CHECK(tf_kernels_commit(dn) == TF_OK);
    CHECK(tf_kernels_n_shapes(dn) == 1);
    void *w = ws_alloc(ws);
    float *x = test_rand_floats(8 * 60 * 60, 1), *wt = test_rand_floats(8 * 8 * 9, 2),
          *b = test_rand_floats(8, 3);
    float *y = malloc(8 * 60 * 60 * sizeof(float));
    /* smaller map: fits */
    tf_kern_conv2d_forward(dn, y, x, wt, b, 1, 8, 8, 50, 60, 3, w, ws);
    CHECK(tf_kernels_status(dn) == TF_OK);
    CHECK(tf_kernels_n_shapes(dn) == 2);
    /* larger channel count than planned: refused, not run */
    float *x2 = test_rand_floats(64 * 60 * 60, 4), *w2 = test_rand_floats(64 * 64 * 9, 5);
    float *y2 = malloc(64 * 60 * 60 * sizeof(float));
    tf_kern_conv2d_forward(dn, y2, x2, w2, NULL, 1, 64, 64, 60, 60, 3, w, ws);
    CHECK(tf_kernels_status(dn) == TF_EINTERNAL);
    CHECK(tf_kernels_status(dn) == TF_OK); /* cleared once reported */
    free(w), free(x), free(wt), free(b), free(y), free(x2), free(w2), free(y2);
    tf_kernels_free(dn);
}

int main(void) {
    RUN(test_dnnl_matches_ref_fp32);
    RUN(test_bf16_emulated);
    RUN(test_bf16_rounds);
    RUN(test_dnnl_bf16);
    RUN(test_unlisted_shape);
    return TEST_END();
}
