/* The cuBLAS launchers of src/cuda/blas.cu (linear, attention) and the cuFFT STFT/ISTFT of
 * src/cuda/fft.cu against the CPU functions they stand for (src/nn/linear.c, src/nn/attn.c,
 * src/dsp/stft.c; those are checked against references by test_nn_attn and test_stft), on
 * random inputs; plus the GPU STFT -> ISTFT round trip and the adjoint identities
 * <A x, y> = <x, A^T y> of the GPU STFT and ISTFT; and linear and attention again with bf16
 * and fp16 GEMMs (--use_amp) against the same fp32 CPU functions (BF16_TOL, FP16_TOL). Tolerances:
 * forward outputs max |gpu - cpu| <= 1e-5 * max(1, max |cpu|) (also the FFTs, see FFT_EW); backward
 * outputs and reductions 1e-4 relative. Backward launchers add (+=): they start from a random
 * nonzero gradient on both sides. Needs a CUDA device (exits 1 with one line saying so when there
 * is none). Built by `make CUDA=1`; run by tools/gpu_check.sh. */
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "cuda/blas.h"
#include "cuda/fft.h"
#include "dsp/stft.h"
#include "nn/attn.h"
#include "test.h"

#define GPU_TEST_SEED 0x2545f4914f6cdd1dull
#include "gpu_test.h"

#include "gpu_blas_test.h"
#define FT(g, call)                                                                                \
    do {                                                                                           \
        if (call) {                                                                                \
            fprintf(stderr, "  %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                        \
                    tf_cuda_stft_error(g));                                                        \
            t_cur_failed_ = 1;                                                                     \
        }                                                                                          \
    } while (0)

static void *devb(const void *h, size_t bytes) {
    void *d = NULL;
    CU(cudaMalloc(&d, bytes ? bytes : 1));
    if (bytes && h) CU(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}
static float *dev(const float *h, size_t n) {
    return devb(h, n * sizeof(float));
}

#define EW  1e-5 /* element-wise / forward */
#define RED 1e-4 /* backward, reductions */
/* bf16 GEMMs (TF_CUDA_BLAS_BF16, --use_amp) against the CPU's fp32: operands rounded to bf16
 * (2^-9 relative each), sums of products with random signs: a few 1e-3 of max(1, max |cpu|)
 * measured (tests/gpu/run_emulated.sh build test_cuda_blasfft prints them); allowed 2e-2 */
#define BF16_TOL 2e-2
/* fp16 GEMMs (TF_CUDA_BLAS_FP16, amp_dtype fp16): 11-bit operands, 8x finer than bf16 */
#define FP16_TOL 5e-3

/* the linear and attention tolerances in force (bf16 swaps them) and the largest relative
 * difference from the CPU seen (bf16: it must exceed 1e-4, i.e. the rounding happened) */
static double g_ew = EW, g_red = RED, g_seen = 0;

/* max |d - c| / max(1, max |c|) of the device array d, recorded in g_seen */
static double diff(const float *d, const float *c, size_t n) {
    float *g = host(n, 0, 0);
    down(g, d, n);
    double e = 0, sc = 1;
    for (size_t i = 0; i < n; i++) {
        sc = fmax(sc, fabs(c[i]));
        e = fmax(e, fabs((double)g[i] - c[i]));
    }
    free(g);
    if (e / sc > g_seen) g_seen = e / sc;
    return e / sc;
}
/* FFT outputs (sums of n_fft products) use the same 1e-5 of max(1, max |cpu|): FFTW's
 * batched and single plans differ by 2e-7 of that scale here (tests/gpu/run_emulated.sh
 * with FFT_EW 1e-7 printed the errors), cuFFT should be within a few times that */
#define FFT_EW EW

/* ---------------------------------------------------------------------- linear */

static void linear_case(int N, int IC, int OC, int with_bias, int with_dinp) {
    const size_t nx = (size_t)N * IC, nw = (size_t)OC * IC, ny = (size_t)N * OC;
    float *x = host(nx, -1, 1), *w = host(nw, -0.5f, 0.5f), *b = with_bias ? host(OC, -1, 1) : NULL;
    float *dy = host(ny, -1, 1), *dx0 = host(nx, -1, 1), *dw0 = host(nw, -1, 1),
          *db0 = host(OC, -1, 1);
    float *y = host(ny, 0, 0), *junk = host(ny, -9, 9);
    float *dx = hcopy(dx0, nx), *dw = hcopy(dw0, nw), *db = hcopy(db0, OC);
    tf_linear_forward(y, x, w, b, N, IC, OC);
    tf_linear_backward(with_dinp ? dx : NULL, dw, with_bias ? db : NULL, dy, x, w, N, IC, OC);
    float *gx = dev(x, nx), *gw = dev(w, nw), *gb = b ? dev(b, OC) : NULL, *gy = dev(junk, ny);
    float *gdy = dev(dy, ny), *gdx = dev(dx0, nx), *gdw = dev(dw0, nw), *gdb = dev(db0, OC);
    BL(tf_cuda_linear_forward(g_blas, gy, gx, gw, gb, N, IC, OC));
    diff(gy, y, ny);
    CHECKF(dclose("linear forward", gy, y, ny, g_ew), "N %d IC %d OC %d bias %d", N, IC, OC,
           with_bias);
    BL(tf_cuda_linear_backward(g_blas, with_dinp ? gdx : NULL, gdw, with_bias ? gdb : NULL, gdy, gx,
                               gw, N, IC, OC));
    CHECKF(dclose("linear dinp (+=)", gdx, dx, nx, g_red), "N %d IC %d OC %d", N, IC, OC);
    CHECKF(dclose("linear dweight (+=)", gdw, dw, nw, g_red), "N %d IC %d OC %d", N, IC, OC);
    CHECKF(dclose("linear dbias (+=)", gdb, db, OC, g_red), "N %d IC %d OC %d", N, IC, OC);
    cudaFree(gx), cudaFree(gw), cudaFree(gb), cudaFree(gy), cudaFree(gdy), cudaFree(gdx);
    cudaFree(gdw), cudaFree(gdb);
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0), free(y), free(junk);
    free(dx), free(dw), free(db);
}

static void test_linear(void) {
    linear_case(7, 5, 3, 1, 1);
    linear_case(1, 1, 1, 0, 1);
    linear_case(300, 48, 144, 1, 1);  /* qkv projection of a small model */
    linear_case(513, 64, 64, 0, 0);   /* no bias, no dinp */
    linear_case(2000, 96, 384, 1, 1); /* MLP */
    linear_case(4, 0, 6, 1, 1);       /* IC = 0: out = bias */
    linear_case(4, 0, 6, 0, 1);       /* IC = 0: out = 0 */
}

/* ------------------------------------------------------------------- attention */

/* one attention shape; wt x wf windows (L = wt*wf) with Swin's relative bias when bias,
 * the shifted-window mask of a (2wt, 2wf) map when masked */
static void attn_case(int N, int wt, int wf, int C, int H, int bias, int masked) {
    const int L = wt * wf, R = tf_swin_relpos_rows(wt, wf), nW = masked ? 4 : 1;
    const size_t nq = (size_t)N * L * 3 * C, no = (size_t)N * L * C, na = (size_t)N * H * L * L;
    const size_t LL = (size_t)L * L;
    float *qkv = host(nq, -1.5f, 1.5f), *dout = host(no, -1, 1), *dqkv0 = host(nq, -1, 1);
    float *table = bias ? host((size_t)R * H, -1, 1) : NULL, *dtab0 = host((size_t)R * H, -1, 1);
    int *index = malloc(LL * sizeof *index);
    float *mask = masked ? host((size_t)nW * LL, 0, 0) : NULL;
    if (!index) exit(1);
    tf_swin_relpos_index(index, wt, wf);
    if (masked) tf_swin_attn_mask(mask, 2 * wt, 2 * wf, wt, wf, wt / 2, wf / 2);
    float *out = host(no, 0, 0), *att = host(na, 0, 0), *dqkv = hcopy(dqkv0, nq);
    float *dtab = hcopy(dtab0, (size_t)R * H);
    float *ws = host(tf_attention_workspace_floats(N, L, H), 0, 0);
    tf_attention_forward(out, att, qkv, table, index, mask, nW, N, L, C, H);
    tf_attention_backward(dqkv, bias ? dtab : NULL, dout, qkv, att, index, N, L, C, H, ws);

    float *gq = dev(qkv, nq), *gdo = dev(dout, no), *gdq = dev(dqkv0, nq);
    float *gt = table ? dev(table, (size_t)R * H) : NULL, *gdt = dev(dtab0, (size_t)R * H);
    float *gm = mask ? dev(mask, (size_t)nW * LL) : NULL;
    int *gi = devb(index, LL * sizeof *index);
    float *go = dev(NULL, no), *ga = dev(NULL, na);
    float *gws = dev(NULL, tf_cuda_attention_workspace_floats(N, L, H));
    BL(tf_cuda_attention_forward(g_blas, go, ga, gq, gt, gi, gm, nW, N, L, C, H));
    diff(go, out, no);
    CHECKF(dclose("attention probabilities", ga, att, na, g_ew), "N %d L %d C %d H %d", N, L, C, H);
    CHECKF(dclose("attention out", go, out, no, g_ew), "N %d L %d C %d H %d", N, L, C, H);
    BL(tf_cuda_attention_backward(g_blas, gdq, bias ? gdt : NULL, gdo, gq, ga, gi, R, N, L, C, H,
                                  gws));
    CHECKF(dclose("attention dqkv (+=)", gdq, dqkv, nq, g_red), "N %d L %d C %d H %d", N, L, C, H);
    CHECKF(dclose("attention dbias_table (+=)", gdt, dtab, (size_t)R * H, g_red),
           "N %d L %d C %d H %d", N, L, C, H);
    cudaFree(gq), cudaFree(gdo), cudaFree(gdq), cudaFree(gt), cudaFree(gdt), cudaFree(gm);
    cudaFree(gi), cudaFree(go), cudaFree(ga), cudaFree(gws);
    free(qkv), free(dout), free(dqkv0), free(table), free(dtab0), free(index), free(mask);
    free(out), free(att), free(dqkv), free(dtab), free(ws);
}

static void test_attention(void) {
    attn_case(3, 2, 2, 8, 2, 0, 0);    /* plain, tiny */
    attn_case(8, 5, 4, 32, 4, 1, 0);   /* paper windows 5 x 4, bias table */
    attn_case(8, 4, 4, 24, 3, 1, 1);   /* bias and shifted-window mask (nW = 4) */
    attn_case(130, 5, 4, 16, 2, 1, 1); /* more than one 64-sequence backward chunk */
    attn_case(6, 40, 1, 32, 4, 0, 0);  /* a time-axis sequence, L = 40 > one warp */
    attn_case(2, 8, 8, 64, 8, 1, 0);   /* L = 64 */
}

/* the same cases with a TF_CUDA_BLAS_BF16 (FP16) handle: within BF16_TOL (FP16_TOL) of the
 * CPU's fp32, and further than 1e-4 (1e-5) somewhere (the operands were rounded) */
static void half_run(void (*cases)(void), const char *what, int fp16) {
    tf_cuda_blas *fp32 = g_blas, *h = NULL;
    char err[256];
    CHECKF(tf_cuda_blas_create(&h, NULL, fp16 ? TF_CUDA_BLAS_FP16 : TF_CUDA_BLAS_BF16, err,
                               sizeof err) == 0,
           "%s", err);
    if (!h) return;
    g_blas = h, g_ew = g_red = fp16 ? FP16_TOL : BF16_TOL, g_seen = 0;
    cases();
    const char *dt = fp16 ? "fp16" : "bf16";
    printf("  %s with %s GEMMs: largest forward difference from the CPU's fp32 %.3g\n", what, dt,
           g_seen);
    CHECKF(g_seen > (fp16 ? 1e-5 : 1e-4), "%s: %s GEMMs within %g of fp32: not rounded?", what, dt,
           g_seen);
    g_blas = fp32, g_ew = EW, g_red = RED;
    tf_cuda_blas_destroy(h);
}

static void test_linear_bf16(void) {
    half_run(test_linear, "linear", 0);
}

static void test_attention_bf16(void) {
    half_run(test_attention, "attention", 0);
}

static void test_linear_fp16(void) {
    half_run(test_linear, "linear", 1);
}

static void test_attention_fp16(void) {
    half_run(test_attention, "attention", 1);
}

/* ------------------------------------------------------------------------ STFT */

static double hdot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* one (n_fft, hop, S, N): the four operators against the CPU, the round trip, adjoints */
static void stft_case(int n_fft, int hop, int S, int64_t N, int S_call) {
    tf_stft *st = NULL;
    if (tf_stft_create(&st, n_fft, hop) != TF_OK) {
        CHECKF(0, "tf_stft_create(%d, %d): %s", n_fft, hop, tf_errmsg());
        return;
    }
    tf_cuda_stft *g = NULL;
    char err[256];
    if (tf_cuda_stft_create(&g, st, S, N, NULL, err, sizeof err)) {
        CHECKF(0, "tf_cuda_stft_create(%d, %d, %d, %lld): %s", n_fft, hop, S, (long long)N, err);
        tf_stft_destroy(st);
        return;
    }
    size_t pb = 0, bb = 0;
    tf_cuda_stft_sizes(g, &pb, &bb);
    printf("  stft n_fft %d hop %d S %d N %lld: cuFFT plans %zu bytes, buffers %zu bytes\n", n_fft,
           hop, S, (long long)N, pb, bb);
    S = S_call; /* the calls use S_call <= S_max signals */
    const int F = tf_stft_bins(st);
    const int64_t T = tf_stft_frames(st, N);
    const size_t nx = (size_t)S * N, ns = (size_t)S * F * T;
    float *x = host(nx, -1, 1), *re = host(ns, 0, 0), *im = host(ns, 0, 0);
    float *dre = host(ns, -1, 1), *dim = host(ns, -1, 1), *dy = host(nx, -1, 1);
    float *dx0 = host(nx, -1, 1), *dr0 = host(ns, -1, 1), *di0 = host(ns, -1, 1);
    float *y = host(nx, 0, 0), *dx = hcopy(dx0, nx), *dr = hcopy(dr0, ns), *di = hcopy(di0, ns);
    CHECK(tf_stft_forward(st, re, im, x, S, N) == TF_OK);
    CHECK(tf_istft_forward(st, y, dre, dim, S, N) == TF_OK);
    CHECK(tf_stft_backward(st, dx, dre, dim, S, N) == TF_OK);
    CHECK(tf_istft_backward(st, dr, di, dy, S, N) == TF_OK);

    float *gx = dev(x, nx), *gre = dev(NULL, ns), *gim = dev(NULL, ns), *gy = dev(NULL, nx);
    float *gdre = dev(dre, ns), *gdim = dev(dim, ns), *gdy = dev(dy, nx);
    float *gdx = dev(dx0, nx), *gdr = dev(dr0, ns), *gdi = dev(di0, ns);
    FT(g, tf_cuda_stft_forward(g, gre, gim, gx, S, N));
    CHECKF(dclose("stft re", gre, re, ns, FFT_EW), "n_fft %d hop %d N %lld", n_fft, hop,
           (long long)N);
    CHECKF(dclose("stft im", gim, im, ns, FFT_EW), "n_fft %d hop %d N %lld", n_fft, hop,
           (long long)N);
    FT(g, tf_cuda_istft_forward(g, gy, gdre, gdim, S, N));
    CHECKF(dclose("istft", gy, y, nx, FFT_EW), "n_fft %d hop %d N %lld", n_fft, hop, (long long)N);
    FT(g, tf_cuda_stft_backward(g, gdx, gdre, gdim, S, N));
    CHECKF(dclose("stft backward (+=)", gdx, dx, nx, RED), "n_fft %d hop %d N %lld", n_fft, hop,
           (long long)N);
    FT(g, tf_cuda_istft_backward(g, gdr, gdi, gdy, S, N));
    CHECKF(dclose("istft backward re (+=)", gdr, dr, ns, RED), "n_fft %d hop %d N %lld", n_fft, hop,
           (long long)N);
    CHECKF(dclose("istft backward im (+=)", gdi, di, ns, RED), "n_fft %d hop %d N %lld", n_fft, hop,
           (long long)N);

    /* round trip on the GPU: ISTFT(STFT(x)) = x */
    FT(g, tf_cuda_istft_forward(g, gy, gre, gim, S, N));
    CHECKF(dclose("round trip", gy, x, nx, FFT_EW), "n_fft %d hop %d N %lld", n_fft, hop,
           (long long)N);

    /* adjoints on the GPU alone: <STFT x, (a, b)> = <x, STFT^T (a, b)> and
     * <ISTFT (a, b), v> = <(a, b), ISTFT^T v> (gradients from zero) */
    float *hre = host(ns, 0, 0), *him = host(ns, 0, 0), *hv = host(nx, 0, 0);
    CU(cudaMemset(gdx, 0, nx * sizeof(float)));
    FT(g, tf_cuda_stft_backward(g, gdx, gdre, gdim, S, N));
    down(hre, gre, ns), down(him, gim, ns), down(hv, gdx, nx);
    double lhs = hdot(hre, dre, ns) + hdot(him, dim, ns), rhs = hdot(x, hv, nx);
    CHECKF(fabs(lhs - rhs) <= RED * fmax(1.0, fabs(lhs)), "stft adjoint: %.9g vs %.9g", lhs, rhs);
    CU(cudaMemset(gdr, 0, ns * sizeof(float)));
    CU(cudaMemset(gdi, 0, ns * sizeof(float)));
    FT(g, tf_cuda_istft_forward(g, gy, gdre, gdim, S, N));
    FT(g, tf_cuda_istft_backward(g, gdr, gdi, gdy, S, N));
    down(hv, gy, nx), down(hre, gdr, ns), down(him, gdi, ns);
    lhs = hdot(hv, dy, nx), rhs = hdot(dre, hre, ns) + hdot(dim, him, ns);
    CHECKF(fabs(lhs - rhs) <= RED * fmax(1.0, fabs(lhs)), "istft adjoint: %.9g vs %.9g", lhs, rhs);
    /* a wrong length is refused with a message */
    CHECK(tf_cuda_stft_forward(g, gre, gim, gx, S, N + 1) != 0);
    CHECK(strlen(tf_cuda_stft_error(g)) > 0);

    cudaFree(gx), cudaFree(gre), cudaFree(gim), cudaFree(gy), cudaFree(gdre), cudaFree(gdim);
    cudaFree(gdy), cudaFree(gdx), cudaFree(gdr), cudaFree(gdi);
    free(x), free(re), free(im), free(dre), free(dim), free(dy), free(dx0), free(dr0), free(di0);
    free(y), free(dx), free(dr), free(di), free(hre), free(him), free(hv);
    tf_cuda_stft_destroy(g);
    tf_stft_destroy(st);
}

static void test_stft(void) {
    stft_case(16, 4, 3, 50, 3);        /* tiny, reflect padding */
    stft_case(16, 5, 2, 5, 2);         /* N <= n_fft/2: zero padding; hop not dividing n_fft */
    stft_case(64, 16, 4, 1000, 3);     /* fewer signals than the plans were made for */
    stft_case(2048, 441, 4, 44100, 4); /* the paper's n_fft and hop, 1 s stereo x 2 */
    stft_case(2048, 512, 2, 3001, 2);  /* T with a partial last frame */
}

int main(void) {
    if (!gpu_blas_open("test_cuda_blasfft")) return 1;
    RUN(test_linear);
    RUN(test_attention);
    RUN(test_linear_bf16);
    RUN(test_attention_bf16);
    RUN(test_linear_fp16);
    RUN(test_attention_fp16);
    RUN(test_stft);
    tf_cuda_blas_destroy(g_blas);
    return TEST_END();
}
