/* The device transformer block of src/cuda/tblock.cu (tf_cuda_tblock_forward/backward)
 * against the CPU block it stands for (tf_tblock_forward/backward of src/nn/tblock.c, checked
 * against references by test_nn_attn), on random inputs: a plain TSA-like block (no bias
 * table, no mask), a Swin W-MSA block (relative-position bias table) and a Swin SW-MSA block
 * (bias table and the shifted-window mask), and one with more than one 64-sequence chunk of
 * the attention backward. After the forward: out and every saved tensor; after the backward:
 * dinp and every gradient, both starting from random nonzero values on both sides (they
 * accumulate, +=). The device workspace and outputs start as junk (NaN bytes). Tolerances:
 * max |gpu - cpu| <= tol * max(1, max |cpu|), 1e-4 forward, 1e-3 backward. Needs a CUDA device
 * (exits 1 with one line saying so when there is none; tests/gpu/run_emulated.sh runs it on
 * the CPU emulation). Built by `make CUDA=1`; run by tools/gpu_check.sh. */
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "cuda/blas.h"
#include "nn/tblock_cuda.h"
#include "nn/attn.h"
#include "test.h"

#define GPU_TEST_SEED 0x61c8864680b583ebull
#include "gpu_test.h"

#include "gpu_blas_test.h"

#define FWD 1e-4 /* forward outputs and saved tensors */
#define BWD 1e-3 /* dinp and the gradients */

static void *devb(const void *h, size_t bytes) {
    void *d = NULL;
    CU(cudaMalloc(&d, bytes ? bytes : 1));
    if (bytes && h) CU(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}
static float *dev(const float *h, size_t n) {
    return devb(h, n * sizeof(float));
}
/* n floats of device junk: every byte 0xff (NaN), so anything read before written shows */
static float *djunk(size_t n) {
    float *d = devb(NULL, n * sizeof(float));
    CU(cudaMemset(d, 0xff, (n ? n : 1) * sizeof(float)));
    return d;
}

/* the fields of tf_tblock_params / tf_tblock_saved: name, offset from the buffer's start,
 * floats */
typedef struct {
    const char *name;
    size_t off, n;
} field;

/* 13 fields (the table's n = 0 without one) */
static int param_fields(field *f, int C, int H, int Hd, int R) {
    const size_t P = tf_tblock_param_floats(C, H, Hd, R);
    float *base = host(P + 1, 0, 0);
    tf_tblock_params p;
    tf_tblock_params_point(&p, base, C, H, Hd, R);
    const size_t c = (size_t)C, hd = (size_t)Hd;
    const char *names[13] = {"ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b",        "ln2_w",
                             "ln2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b",  "rel_bias_table"};
    float *ptr[13] = {p.ln1_w, p.ln1_b, p.qkv_w, p.qkv_b, p.proj_w, p.proj_b,        p.ln2_w,
                      p.ln2_b, p.fc1_w, p.fc1_b, p.fc2_w, p.fc2_b,  p.rel_bias_table};
    size_t n[13] = {c, c, 3 * c * c, 3 * c, c * c, c, c, c, hd * c, hd, c * hd, c, (size_t)R * H};
    size_t sum = 0;
    for (int i = 0; i < 13; i++) {
        f[i].name = names[i];
        f[i].off = ptr[i] ? (size_t)(ptr[i] - base) : P;
        f[i].n = ptr[i] ? n[i] : 0;
        sum += f[i].n;
    }
    CHECKF(sum == P, "parameter fields %zu floats, tf_tblock_param_floats %zu", sum, P);
    free(base);
    return 13;
}

/* 13 fields */
static int saved_fields(field *f, int N, int L, int C, int H, int Hd) {
    const size_t S = tf_tblock_saved_floats(N, L, C, H, Hd);
    float *base = host(S, 0, 0);
    tf_tblock_saved s;
    tf_tblock_saved_point(&s, base, N, L, C, H, Hd);
    const size_t nl = (size_t)N * L, c = (size_t)C;
    const char *names[13] = {"ln1", "ln1_mean", "ln1_rstd", "qkv",      "att", "atty",
                             "x1",  "ln2",      "ln2_mean", "ln2_rstd", "fc1", "gelu"};
    float *ptr[13] = {s.ln1, s.ln1_mean, s.ln1_rstd, s.qkv, s.att,  s.atty, s.x1,
                      s.ln2, s.ln2_mean, s.ln2_rstd, s.fc1, s.gelu, NULL};
    size_t n[13] = {nl * c,  nl,      nl,     3 * nl * c, (size_t)N * H * L * L,
                    nl * c,  nl * c,  nl * c, nl,         nl,
                    nl * Hd, nl * Hd, 0};
    size_t sum = 0;
    for (int i = 0; i < 12; i++) {
        f[i].name = names[i];
        f[i].off = (size_t)(ptr[i] - base);
        f[i].n = n[i];
        sum += n[i];
    }
    CHECKF(sum == S, "saved fields %zu floats, tf_tblock_saved_floats %zu", sum, S);
    free(base);
    return 12;
}

/* One block: N sequences of L tokens, C channels, H heads, MLP hidden Hd. Swin windows
 * wt x wf (L = wt*wf) with the bias table when rel; the shifted-window mask of a T x F map
 * (nW = (T/wt)*(F/wf) windows, shift wt/2, wf/2) when masked. */
static void block_case(const char *what, int N, int L, int C, int H, int Hd, int rel, int wt,
                       int wf, int masked, int T, int F) {
    const int R = rel ? tf_swin_relpos_rows(wt, wf) : 0;
    const int nW = masked ? (T / wt) * (F / wf) : 1;
    const size_t nx = (size_t)N * L * C, P = tf_tblock_param_floats(C, H, Hd, R);
    const size_t S = tf_tblock_saved_floats(N, L, C, H, Hd), LL = (size_t)L * L;
    if (rel) CHECK(L == wt * wf);

    /* host inputs: parameters (LayerNorm weights near 1), input, bias index and mask */
    float *pm = host(P, -0.3f, 0.3f), *x = host(nx, -1, 1);
    tf_tblock_params p;
    tf_tblock_params_point(&p, pm, C, H, Hd, R);
    for (int c = 0; c < C; c++) p.ln1_w[c] += 1, p.ln2_w[c] += 1;
    if (rel)
        for (size_t i = 0; i < (size_t)R * H; i++) p.rel_bias_table[i] = urand(-1, 1);
    int *index = NULL;
    float *mask = NULL;
    if (rel) {
        index = malloc(LL * sizeof *index);
        if (!index) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        tf_swin_relpos_index(index, wt, wf);
    }
    if (masked) {
        mask = host((size_t)nW * LL, 0, 0);
        tf_swin_attn_mask(mask, T, F, wt, wf, wt / 2, wf / 2);
    }

    /* CPU forward */
    float *sv = host(S, 0, 0), *y = host(nx, 0, 0);
    tf_tblock_saved s;
    tf_tblock_saved_point(&s, sv, N, L, C, H, Hd);
    tf_tblock_forward(y, &s, x, &p, index, mask, nW, N, L, C, H, Hd);

    /* GPU forward into junk */
    float *gpm = dev(pm, P), *gx = dev(x, nx), *gsv = djunk(S), *gy = djunk(nx);
    int *gindex = index ? devb(index, LL * sizeof *index) : NULL;
    float *gmask = mask ? dev(mask, (size_t)nW * LL) : NULL;
    tf_tblock_params gp;
    tf_tblock_params_point(&gp, gpm, C, H, Hd, R);
    tf_tblock_saved gs;
    tf_tblock_saved_point(&gs, gsv, N, L, C, H, Hd);
    BL(tf_cuda_tblock_forward(g_blas, gy, &gs, gx, &gp, gindex, gmask, nW, N, L, C, H, Hd, NULL));
    CHECKF(dclose("out", gy, y, nx, FWD), "%s", what);
    field f[13];
    int nf = saved_fields(f, N, L, C, H, Hd);
    for (int i = 0; i < nf; i++)
        CHECKF(dclose(f[i].name, gsv + f[i].off, sv + f[i].off, f[i].n, FWD), "%s: saved %s", what,
               f[i].name);

    float *svg = host(S, 0, 0); /* the GPU's saved tensors, to see the backward keeps them */
    down(svg, gsv, S);

    /* backward: dinp and the gradients start nonzero (+=) */
    float *dy = host(nx, -1, 1), *dx0 = host(nx, -1, 1), *gr0 = host(P, -1, 1);
    float *dx = hcopy(dx0, nx), *gr = hcopy(gr0, P);
    float *gdy = dev(dy, nx), *gdx = dev(dx0, nx), *ggr = dev(gr0, P);
    tf_tblock_params g, gg;
    tf_tblock_params_point(&g, gr, C, H, Hd, R);
    tf_tblock_params_point(&gg, ggr, C, H, Hd, R);
    const size_t W = tf_tblock_workspace_floats(N, L, C, H, Hd);
    const size_t GW = tf_cuda_tblock_workspace_floats(N, L, C, H, Hd);
    float *ws = host(W, 0, 0), *gws = djunk(GW);
    tf_tblock_backward(dx, &g, dy, &s, x, &p, index, N, L, C, H, Hd, ws);
    BL(tf_cuda_tblock_backward(g_blas, gdx, &gg, gdy, &gs, gx, &gp, gindex, R, N, L, C, H, Hd, gws,
                               NULL));
    CHECKF(dclose("dinp (+=)", gdx, dx, nx, BWD), "%s", what);
    nf = param_fields(f, C, H, Hd, R);
    for (int i = 0; i < nf; i++)
        if (f[i].n)
            CHECKF(dclose(f[i].name, ggr + f[i].off, gr + f[i].off, f[i].n, BWD),
                   "%s: gradient %s (+=)", what, f[i].name);
    /* the forward's inputs and saved tensors are read-only to the backward */
    CHECKF(dclose("inp after backward", gx, x, nx, 0), "%s", what);
    CHECKF(dclose("saved after backward", gsv, svg, S, 0), "%s", what);

    cudaFree(gpm), cudaFree(gx), cudaFree(gsv), cudaFree(gy), cudaFree(gindex), cudaFree(gmask);
    cudaFree(gdy), cudaFree(gdx), cudaFree(ggr), cudaFree(gws);
    free(pm), free(x), free(index), free(mask), free(sv), free(y), free(dy), free(dx0), free(gr0),
        free(dx), free(gr);
    free(ws), free(svg);
}

static void test_tsa_block(void) {
    /* plain: no bias table, no mask (TSA / FSA) */
    block_case("tsa", 6, 8, 16, 2, 32, 0, 0, 0, 0, 0, 0);
}

static void test_swin_block(void) {
    /* W-MSA: 4 x 4 windows, bias table, no mask */
    block_case("w-msa", 6, 16, 16, 4, 32, 1, 4, 4, 0, 0, 0);
    /* SW-MSA: 2 x 4 windows of a 4 x 8 map (nW = 4), 2 images, bias table and mask */
    block_case("sw-msa", 8, 8, 16, 4, 32, 1, 2, 4, 1, 4, 8);
}

static void test_many_sequences(void) {
    /* N > 64: the attention backward's second chunk; masked, nW = 2 */
    block_case("chunks", 70, 8, 16, 2, 24, 1, 2, 4, 1, 2, 8);
}

int main(void) {
    if (!gpu_blas_open("test_cuda_tblock")) return 1;
    RUN(test_tsa_block);
    RUN(test_swin_block);
    RUN(test_many_sequences);
    tf_cuda_blas_destroy(g_blas);
    return TEST_END();
}
