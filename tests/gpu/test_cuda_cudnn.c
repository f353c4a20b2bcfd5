/* src/cuda/conv.cu through its C face (cuda/cuda_backend.h) against the CPU ref backend of
 * nn/kernels.h, in fp32, bf16 and fp16 arithmetic (--use_amp on the card, amp_dtype bf16 or
 * fp16):
 *   - fp32: as test_cuda_conv (which goes through nn/kernels.h), max |cuda - ref| <=
 *     1e-4 max |ref| forward, 1e-3 backward;
 *   - bf16: against the ref backend's bf16 emulation (operands rounded to bf16, fp32 sums):
 *     conv.cu rounds each result once more to bf16 (cuDNN writes bf16) before it widens or
 *     adds it, and sums dbias from the fp32 dout: 1e-2 max |ref| (a result rounded to bf16
 *     is off by at most 2^-9 of itself; a GPU algorithm's sum order adds a little); and the
 *     bf16 results differ from the fp32 ones by more than 1e-4 (the rounding happens);
 *   - fp16: against the ref backend's fp32 (it has no fp16): operands and results rounded to
 *     11 bits, 5e-3 max |ref|, and more than 1e-5 away from fp32; a dout of 1e-9 (below
 *     fp16's 2^-24) is lost, dweight unchanged, which the trainer's loss scaling prevents;
 *   - the accumulate (+=) contract of backward and set_dinp (=) on prefilled outputs;
 *   - the workspace a shape asks for holds the bf16 operand copies
 *     (tf_cuda_conv_half_copy_bytes) before cuDNN's own; one byte less is an error naming
 *     both sizes, not a crash;
 *   - the description says which arithmetic; bf16 asked of a card below compute capability
 *     8.0 gives fp32 and says why, fp16 works there (emulation only: TFSWA_EMU_CC=7.5).
 * Runs on a GPU (make CUDA=1 gpu-tests, tools/gpu_check.sh) and without one:
 * tests/gpu/run_emulated.sh build test_cuda_cudnn, where tests/gpu/emu/cudnn.h stands in for
 * cuDNN (it checks the descriptors, algorithms and workspace of every call and scribbles
 * over the workspace). */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "nn/kernels.h"
#include "test.h"

#define GPU_TEST_SEED 0x2545f4914f6cdd1dull
#include "gpu_test.h"

#define TOL_FWD  1e-4
#define TOL_BWD  1e-3
#define TOL_BF16 1e-2
#define TOL_FP16 5e-3
static const char *const NAMES[] = {"fp32", "bf16", "fp16"};

typedef struct {
    int B, Cin, Cout, H, W, k, bias;
} shape;

static const shape SHAPES[] = {
    {1, 3, 5, 7, 9, 3, 1},     {3, 16, 8, 12, 10, 1, 1}, {2, 33, 17, 19, 23, 3, 0},
    {2, 64, 32, 16, 20, 3, 1}, {1, 1, 4, 40, 1, 3, 1},
};
#define NSHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* max |a - b| / max |b| */
static double rel(const float *a, const float *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        s = fmax(s, fabs(b[i]));
        const double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d;
    }
    return s > 0 ? e / s : e;
}

static float *dup_to_dev(const float *h, size_t n) {
    return dev_copy(h, n);
}

/* One shape in one arithmetic dt (TF_CUDA_CONV_*) with one set_dinp: conv.cu vs the ref
 * backend on the same data. *fwd_keep (forward output, fp32 mode) is kept for the 16-bit
 * runs' "differs" check. */
static void check_shape(const shape *s, int dt, int set_dinp, float **fwd_keep) {
    const int bf16 = dt == TF_CUDA_CONV_BF16;
    const size_t hw = (size_t)s->H * s->W, ni = (size_t)s->B * s->Cin * hw,
                 no = (size_t)s->B * s->Cout * hw, nw = (size_t)s->Cout * s->Cin * s->k * s->k,
                 nb = (size_t)s->Cout;
    float *x = host(ni, -1, 1), *w = host(nw, -0.5f, 0.5f), *b = host(nb, -1, 1),
          *dy = host(no, -1, 1), *dx0 = host(ni, -1, 1), *dw0 = host(nw, -1, 1),
          *db0 = host(nb, -1, 1);
    /* the CPU oracle */
    tf_kernels *ref = NULL;
    CHECK(tf_kernels_create(&ref, TF_BACKEND_REF, bf16 ? TF_DT_BF16 : TF_DT_FP32, 1) == TF_OK);
    size_t rws = 0;
    CHECK(tf_kern_conv2d_add(ref, s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, 1, &rws) ==
          TF_OK);
    void *rw = malloc(rws ? rws : 1);
    float *ry = host(no, 0, 0), *rdx = hcopy(dx0, ni), *rdw = hcopy(dw0, nw), *rdb = hcopy(db0, nb);
    tf_kern_conv2d_forward(ref, ry, x, w, s->bias ? b : NULL, s->B, s->Cin, s->Cout, s->H, s->W,
                           s->k, rw, rws);
    tf_kern_conv2d_backward(ref, rdx, rdw, s->bias ? rdb : NULL, dy, x, w, s->B, s->Cin, s->Cout,
                            s->H, s->W, s->k, rw, rws, set_dinp);
    CHECK(tf_kernels_status(ref) == TF_OK);
    tf_kernels_free(ref);
    free(rw);
    /* conv.cu */
    tf_cuda_conv *c = NULL;
    char err[512] = "";
    CHECKF(tf_cuda_conv_create(&c, (size_t)64 << 20, dt, err, sizeof err) == 0, "%s", err);
    if (!c) goto out;
    CHECK(tf_cuda_conv_dtype(c) == dt);
    char want_d[32];
    snprintf(want_d, sizeof want_d, "%s arithmetic", NAMES[dt]);
    CHECKF(strstr(tf_cuda_conv_describe(c), want_d) != NULL, "%s", tf_cuda_conv_describe(c));
    size_t wsf = 0, wst = 0;
    CHECKF(tf_cuda_conv_add(c, s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, 0, &wsf, err,
                            sizeof err) == 0,
           "%s", err);
    CHECKF(tf_cuda_conv_add(c, s->B, s->Cin, s->Cout, s->H, s->W, s->k, s->bias, 1, &wst, err,
                            sizeof err) == 0,
           "%s", err);
    if (dt) { /* the copies come first; cuDNN's own workspace after them */
        CHECKF(wsf >= tf_cuda_conv_half_copy_bytes(s->B, s->Cin, s->Cout, s->H, s->W, s->k, 0) &&
                   wst >= tf_cuda_conv_half_copy_bytes(s->B, s->Cin, s->Cout, s->H, s->W, s->k, 1),
               "ws forward %zu, training %zu", wsf, wst);
    }
    CHECK(wst >= wsf);
    {
        float *dx = dup_to_dev(x, ni), *dwt = dup_to_dev(w, nw), *db = dup_to_dev(b, nb),
              *ddy = dup_to_dev(dy, no), *ddx = dup_to_dev(dx0, ni), *ddw = dup_to_dev(dw0, nw),
              *ddb = dup_to_dev(db0, nb), *dout = NULL;
        void *ws = NULL;
        CU(cudaMalloc((void **)&dout, no * sizeof(float)));
        CU(cudaMalloc(&ws, wst ? wst : 1));
        CHECKF(tf_cuda_conv_forward(c, dout, dx, dwt, s->bias ? db : NULL, s->B, s->Cin, s->Cout,
                                    s->H, s->W, s->k, ws, wsf, err, sizeof err) == 0,
               "%s", err);
        CHECKF(tf_cuda_conv_backward(c, ddx, ddw, s->bias ? ddb : NULL, ddy, dx, dwt, s->B, s->Cin,
                                     s->Cout, s->H, s->W, s->k, ws, wst, set_dinp, err,
                                     sizeof err) == 0,
               "%s", err);
        if (wst > 0) { /* one byte short: refused with both sizes named, nothing written */
            err[0] = 0;
            CHECK(tf_cuda_conv_backward(c, ddx, ddw, NULL, ddy, dx, dwt, s->B, s->Cin, s->Cout,
                                        s->H, s->W, s->k, ws, wst - 1, set_dinp, err,
                                        sizeof err) != 0);
            char want[64];
            snprintf(want, sizeof want, "needs %zu workspace bytes", wst);
            CHECKF(strstr(err, want) != NULL, "'%s'", err);
        }
        float *gy = host(no, 0, 0), *gdx = host(ni, 0, 0), *gdw = host(nw, 0, 0),
              *gdb = host(nb, 0, 0);
        down(gy, dout, no);
        down(gdx, ddx, ni);
        down(gdw, ddw, nw);
        down(gdb, ddb, nb);
        const double tf = bf16 ? TOL_BF16
                          : dt ? TOL_FP16
                               : TOL_FWD,
                     tb = bf16 ? TOL_BF16
                          : dt ? TOL_FP16
                               : TOL_BWD;
        const double ey = rel(gy, ry, no), ex = rel(gdx, rdx, ni), ew = rel(gdw, rdw, nw),
                     eb = s->bias ? rel(gdb, rdb, nb) : 0;
        CHECKF(ey <= tf && ex <= tb && ew <= tb && eb <= tb,
               "%s B%d %d->%d %dx%d k%d set_dinp %d: out %.3g dinp %.3g dweight %.3g dbias %.3g",
               NAMES[dt], s->B, s->Cin, s->Cout, s->H, s->W, s->k, set_dinp, ey, ex, ew, eb);
        if (!dt && !*fwd_keep) {
            *fwd_keep = gy;
            gy = NULL;
        } else if (dt && *fwd_keep) { /* the rounding happens: 16 bits are not fp32 */
            const double d = rel(gy, *fwd_keep, no), lo = bf16 ? 1e-4 : 1e-5;
            CHECKF(d > lo && d <= tf, "%s vs fp32 output %.3g", NAMES[dt], d);
        }
        if (dt == TF_CUDA_CONV_FP16 && !set_dinp) { /* a dout below 2^-25: flushed, lost */
            float *tiny = host(no, 0, 0);
            for (size_t i = 0; i < no; i++) tiny[i] = dy[i] * 1e-9f;
            float *dtiny = dup_to_dev(tiny, no), *w1 = host(nw, 0, 0), *w2 = host(nw, 0, 0);
            down(w1, ddw, nw);
            CHECKF(tf_cuda_conv_backward(c, NULL, ddw, NULL, dtiny, dx, dwt, s->B, s->Cin, s->Cout,
                                         s->H, s->W, s->k, ws, wst, 0, err, sizeof err) == 0,
                   "%s", err);
            down(w2, ddw, nw);
            CHECK(!memcmp(w1, w2, nw * sizeof(float)));
            free(tiny), free(w1), free(w2);
            cudaFree(dtiny);
        }
        free(gy), free(gdx), free(gdw), free(gdb);
        cudaFree(dx), cudaFree(dwt), cudaFree(db), cudaFree(ddy), cudaFree(ddx), cudaFree(ddw);
        cudaFree(ddb), cudaFree(dout), cudaFree(ws);
    }
out:
    tf_cuda_conv_free(c);
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0);
    free(ry), free(rdx), free(rdw), free(rdb);
}

static void run_all(int dt, int set_dinp) {
    for (size_t i = 0; i < NSHAPES; i++) {
        float *keep = NULL;
        rng = GPU_TEST_SEED + i; /* the same data for fp32 and 16 bits */
        if (dt) {
            check_shape(&SHAPES[i], 0, set_dinp, &keep); /* the fp32 output to differ from */
            rng = GPU_TEST_SEED + i;
        }
        check_shape(&SHAPES[i], dt, set_dinp, &keep);
        free(keep);
    }
}

static void test_fp32_accumulate(void) {
    run_all(0, 0);
}
static void test_fp32_set_dinp(void) {
    run_all(0, 1);
}
static void test_bf16_accumulate(void) {
    run_all(TF_CUDA_CONV_BF16, 0);
}
static void test_bf16_set_dinp(void) {
    run_all(TF_CUDA_CONV_BF16, 1);
}
static void test_fp16_accumulate(void) {
    run_all(TF_CUDA_CONV_FP16, 0);
}
static void test_fp16_set_dinp(void) {
    run_all(TF_CUDA_CONV_FP16, 1);
}

/* bf16 on a card without bf16 tensor cores: fp32, and the description says why */
static void test_bf16_old_card(void) {
#ifdef TFSWA_GPU_EMU
    setenv("TFSWA_EMU_CC", "7.5", 1);
    tf_cuda_conv *c = NULL;
    char err[512] = "";
    CHECKF(tf_cuda_conv_create(&c, (size_t)1 << 20, TF_CUDA_CONV_BF16, err, sizeof err) == 0, "%s",
           err);
    if (c) {
        CHECK(tf_cuda_conv_dtype(c) == TF_CUDA_CONV_FP32);
        CHECKF(strstr(tf_cuda_conv_describe(c),
                      "fp32 arithmetic (bf16 requested: needs compute capability 8.0)") != NULL,
               "%s", tf_cuda_conv_describe(c));
        /* the workspace of fp32 too: no copies */
        tf_cuda_conv *f = NULL;
        size_t ws = 0, ws32 = 1;
        CHECK(tf_cuda_conv_create(&f, (size_t)1 << 20, TF_CUDA_CONV_FP32, err, sizeof err) == 0);
        CHECK(tf_cuda_conv_add(c, 2, 3, 4, 5, 6, 3, 1, 1, &ws, err, sizeof err) == 0 && f &&
              tf_cuda_conv_add(f, 2, 3, 4, 5, 6, 3, 1, 1, &ws32, err, sizeof err) == 0 &&
              ws == ws32);
        tf_cuda_conv_free(f);
    }
    tf_cuda_conv_free(c);
    c = NULL; /* fp16 tensor cores exist from 7.0 */
    CHECK(tf_cuda_conv_create(&c, (size_t)1 << 20, TF_CUDA_CONV_FP16, err, sizeof err) == 0 && c &&
          tf_cuda_conv_dtype(c) == TF_CUDA_CONV_FP16);
    tf_cuda_conv_free(c);
    setenv("TFSWA_EMU_CC", "6.1", 1);
    c = NULL;
    CHECK(tf_cuda_conv_create(&c, (size_t)1 << 20, TF_CUDA_CONV_FP16, err, sizeof err) == 0 && c &&
          tf_cuda_conv_dtype(c) == TF_CUDA_CONV_FP32 &&
          strstr(tf_cuda_conv_describe(c), "(fp16 requested: needs compute capability 7.0)"));
    tf_cuda_conv_free(c);
    CHECK(tf_cuda_conv_create(&c, 1, 3, err, sizeof err) != 0 && strstr(err, "expected"));
    unsetenv("TFSWA_EMU_CC");
#else
    printf("  (a real card: its compute capability is what it is; emulation checks this)\n");
#endif
}

int main(void) {
    if (!gpu_present("test_cuda_cudnn")) return 1;
    RUN(test_fp32_accumulate);
    RUN(test_fp32_set_dinp);
    RUN(test_bf16_accumulate);
    RUN(test_bf16_set_dinp);
    RUN(test_fp16_accumulate);
    RUN(test_fp16_set_dinp);
    RUN(test_bf16_old_card);
    return TEST_END();
}
