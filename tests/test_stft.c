/* STFT / ISTFT and helpers: against PyTorch (tests/reference/stft_ref.py, float64 torch),
 * against a direct float64 DFT, round trips, adjoint dot products (float64 accumulation),
 * finite differences in float64, thread-count independence and concurrent use.
 * Run from the repository root (the reference script is found at tests/reference/). */
#include <omp.h>
#include <stdint.h>
#include <unistd.h>

#include "dsp/stft.h"
#include "test.h"
#include "util/rng.h"

#define REF_SCRIPT "tests/reference/stft_ref.py"
#define TORCH_TOL  1e-4 /* max |C - torch| / max |torch| per tensor */

/* ---------- small helpers ---------- */

static float *fbuf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void fill_uniform(float *a, size_t n, uint64_t seed, double lo, double hi) {
    tf_rng r;
    tf_rng_seed(&r, seed, 1, 2, 3);
    for (size_t i = 0; i < n; i++) a[i] = (float)tf_rng_range(&r, lo, hi);
}

static void fill_normal(float *a, size_t n, uint64_t seed) {
    tf_rng r;
    tf_rng_seed(&r, seed, 4, 5, 6);
    for (size_t i = 0; i < n; i++) a[i] = (float)tf_rng_normal(&r);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? e / m : e;
}

static tf_stft *make(int n_fft, int hop) {
    tf_stft *st = NULL;
    tf_status s = tf_stft_create(&st, n_fft, hop);
    CHECKF(s == TF_OK, "create(%d, %d): %s", n_fft, hop, tf_errmsg());
    return st;
}

/* ---------- the PyTorch reference file ---------- */

typedef struct {
    char name[64];
    int ndim;
    int64_t shape[4];
    size_t n;
    float *data;
} ref_t;

static ref_t g_ref[256];
static int g_nref = -1; /* -1: not loaded yet; 0: failed */
static char g_ref_err[2048];

static int load_ref(void) {
    if (g_nref >= 0) return g_nref > 0;
    g_nref = 0;
    if (access(REF_SCRIPT, R_OK) != 0) {
        snprintf(g_ref_err, sizeof g_ref_err, "%s not found (run from the repository root)",
                 REF_SCRIPT);
        return 0;
    }
    char dir[] = "/tmp/tfswa_stft_XXXXXX", path[600], cmd[1400];
    if (!mkdtemp(dir)) {
        snprintf(g_ref_err, sizeof g_ref_err, "mkdtemp failed");
        return 0;
    }
    snprintf(path, sizeof path, "%s/ref.bin", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", REF_SCRIPT, path);
    int rc = system(cmd);
    FILE *f = rc == 0 ? fopen(path, "rb") : NULL;
    if (!f) {
        snprintf(g_ref_err, sizeof g_ref_err,
                 "'%s' failed (status %d): PyTorch reference unavailable (needs /usr/bin/python3 "
                 "with torch and numpy)",
                 cmd, rc);
        remove(path);
        rmdir(dir);
        return 0;
    }
    char magic[8];
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, "TFREF001", 8);
    int n = 0;
    while (ok) {
        uint32_t len, nd;
        if (fread(&len, 4, 1, f) != 1) break; /* end of file */
        ref_t *r = &g_ref[n];
        ok = n < 256 && len < sizeof r->name && fread(r->name, 1, len, f) == len &&
             fread(&nd, 4, 1, f) == 1 && nd >= 1 && nd <= 4 && fread(r->shape, 8, nd, f) == nd;
        if (!ok) break;
        r->name[len] = 0;
        r->ndim = (int)nd;
        r->n = 1;
        for (uint32_t d = 0; d < nd; d++) r->n *= (size_t)r->shape[d];
        r->data = fbuf(r->n);
        n++;
        ok = fread(r->data, sizeof(float), r->n, f) == r->n;
    }
    fclose(f);
    remove(path);
    rmdir(dir);
    if (!ok || n == 0) {
        snprintf(g_ref_err, sizeof g_ref_err, "reference file from %s is malformed", REF_SCRIPT);
        for (int i = 0; i < n; i++) free(g_ref[i].data);
        return 0;
    }
    g_nref = n;
    return 1;
}

static const ref_t *ref(int c, const char *name) {
    char full[64];
    snprintf(full, sizeof full, "case%d/%s", c, name);
    for (int i = 0; i < g_nref; i++)
        if (!strcmp(g_ref[i].name, full)) return &g_ref[i];
    return NULL;
}

/* Runs fn on every case of the reference file. */
typedef void (*case_fn)(tf_stft *st, int c, int S, int64_t N);
static void for_each_case(case_fn fn) {
    if (!load_ref()) {
        CHECKF(0, "%s", g_ref_err);
        return;
    }
    for (int c = 0;; c++) {
        const ref_t *p = ref(c, "params");
        if (!p) {
            CHECKF(c >= 6, "only %d reference cases", c);
            return;
        }
        tf_stft *st = make((int)p->data[0], (int)p->data[1]);
        if (!st) return;
        fn(st, c, (int)p->data[3], (int64_t)p->data[2]);
        tf_stft_destroy(st);
    }
}

static void cmp_ref(const float *a, const ref_t *r, size_t n, int c, const char *what) {
    CHECKF(r && r->n == n, "case%d %s: missing or wrong size", c, what);
    if (!r || r->n != n) return;
    double e = rel_err(a, r->data, n);
    printf("  case%d %-10s rel err %.2e\n", c, what, e);
    CHECKF(e <= TORCH_TOL, "case%d %s: rel err %g > %g", c, what, e, TORCH_TOL);
}

static void torch_stft_case(tf_stft *st, int c, int S, int64_t N) {
    size_t n = (size_t)S * tf_stft_bins(st) * tf_stft_frames(st, N);
    float *re = fbuf(n), *im = fbuf(n);
    CHECK(tf_stft_forward(st, re, im, ref(c, "x")->data, S, N) == TF_OK);
    cmp_ref(re, ref(c, "X_re"), n, c, "stft re");
    cmp_ref(im, ref(c, "X_im"), n, c, "stft im");
    free(re), free(im);
}

static void torch_istft_case(tf_stft *st, int c, int S, int64_t N) {
    float *y = fbuf((size_t)S * N);
    CHECK(tf_istft_forward(st, y, ref(c, "Z_re")->data, ref(c, "Z_im")->data, S, N) == TF_OK);
    cmp_ref(y, ref(c, "y"), (size_t)S * N, c, "istft");
    free(y);
}

static void torch_istft_backward_case(tf_stft *st, int c, int S, int64_t N) {
    size_t n = (size_t)S * tf_stft_bins(st) * tf_stft_frames(st, N);
    float *dre = fbuf(n), *dim = fbuf(n);
    CHECK(tf_istft_backward(st, dre, dim, ref(c, "g")->data, S, N) == TF_OK);
    cmp_ref(dre, ref(c, "gZ_re"), n, c, "istft^T re");
    cmp_ref(dim, ref(c, "gZ_im"), n, c, "istft^T im");
    free(dre), free(dim);
}

static void torch_stft_backward_case(tf_stft *st, int c, int S, int64_t N) {
    float *dx = fbuf((size_t)S * N);
    CHECK(tf_stft_backward(st, dx, ref(c, "G_re")->data, ref(c, "G_im")->data, S, N) == TF_OK);
    cmp_ref(dx, ref(c, "gx"), (size_t)S * N, c, "stft^T");
    free(dx);
}

static void test_torch_stft(void) {
    for_each_case(torch_stft_case);
}
static void test_torch_istft(void) {
    for_each_case(torch_istft_case);
}
static void test_torch_istft_backward(void) {
    for_each_case(torch_istft_backward_case);
}
static void test_torch_stft_backward(void) {
    for_each_case(torch_stft_backward_case);
}

/* ---------- direct float64 DFT (also covers the zero-padded short-signal mode) ---------- */

static void test_stft_matches_direct_dft(void) {
    const int n_fft = 16, hop = 4, pad = 8, F = 9;
    const int64_t lens[] = {1, 5, 8, 9, 23};
    tf_stft *st = make(n_fft, hop);
    if (!st) return;
    for (int li = 0; li < 5; li++) {
        int64_t N = lens[li], T = tf_stft_frames(st, N);
        CHECK(T == 1 + N / hop);
        float *x = fbuf(N), *re = fbuf(F * T), *im = fbuf(F * T);
        fill_uniform(x, N, 10 + li, -1, 1);
        CHECK(tf_stft_forward(st, re, im, x, 1, N) == TF_OK);
        double err = 0;
        for (int64_t t = 0; t < T; t++)
            for (int f = 0; f < F; f++) {
                double ar = 0, ai = 0;
                for (int n = 0; n < n_fft; n++) {
                    int64_t i = t * hop - pad + n;
                    double v = 0;
                    if (N > pad) { /* reflect */
                        if (i < 0) i = -i;
                        if (i >= N) i = 2 * (N - 1) - i;
                        v = x[i];
                    } else if (i >= 0 && i < N) {
                        v = x[i]; /* zero padding for short signals */
                    }
                    double w = 0.5 - 0.5 * cos(2 * M_PI * n / n_fft), a = -2 * M_PI * f * n / n_fft;
                    ar += w * v * cos(a), ai += w * v * sin(a);
                }
                err = fmax(err, fmax(fabs(ar - re[f * T + t]), fabs(ai - im[f * T + t])));
            }
        CHECKF(err < 1e-5, "N %lld: max err %g", (long long)N, err);
        free(x), free(re), free(im);
    }
    tf_stft_destroy(st);
}

/* ---------- round trip ---------- */

static void round_trip_tol(int n_fft, int hop, int64_t N, int S, double tol) {
    tf_stft *st = make(n_fft, hop);
    if (!st) return;
    size_t n = (size_t)S * tf_stft_bins(st) * tf_stft_frames(st, N);
    float *x = fbuf((size_t)S * N), *y = fbuf((size_t)S * N), *re = fbuf(n), *im = fbuf(n);
    fill_uniform(x, (size_t)S * N, (uint64_t)N * 7 + n_fft, -1, 1);
    CHECK(tf_stft_forward(st, re, im, x, S, N) == TF_OK);
    CHECK(tf_istft_forward(st, y, re, im, S, N) == TF_OK);
    double e = 0;
    for (size_t i = 0; i < (size_t)S * N; i++) e = fmax(e, fabs((double)x[i] - y[i]));
    CHECKF(e <= tol, "n_fft %d hop %d N %lld: max abs err %g", n_fft, hop, (long long)N, e);
    free(x), free(y), free(re), free(im);
    tf_stft_destroy(st);
}

static void round_trip(int n_fft, int hop, int64_t N, int S) {
    round_trip_tol(n_fft, hop, N, S, 1e-5);
}

static void test_round_trip(void) {
    round_trip(2048, 441, 60417, 2);
    round_trip(2048, 441, 1500, 2); /* shorter than the window, reflect */
    round_trip(2048, 441, 700, 2);  /* shorter than n_fft/2: zero padding */
    round_trip(2048, 512, 4096, 1);
    round_trip(2048, 1024, 3072, 1);
    /* hop = n_fft/2 and a ragged end: the last samples are covered by the tail of one frame
     * only, where the window envelope is w^2 ~ 1.6e-4, which amplifies fp32 rounding (torch
     * in fp32 does the same) */
    round_trip_tol(2048, 1024, 3000, 1, 5e-5);
    for (int64_t N = 1; N <= 40; N++) round_trip(16, 4, N, 2);
    round_trip(16, 3, 50, 2);
    round_trip(16, 8, 33, 1);
    round_trip(16, 1, 50, 1);  /* hop 1: 16 frames per sample, 2 block colours */
    round_trip(64, 2, 300, 2); /* 3 block colours */
}

/* ---------- adjoint dot products ---------- */

/* <ISTFT X, y> == <X, ISTFT^T y>, y = ISTFT X + noise so the product cannot cancel */
static void adjoint_istft(int n_fft, int hop, int64_t N, int S) {
    tf_stft *st = make(n_fft, hop);
    if (!st) return;
    size_t n = (size_t)S * tf_stft_bins(st) * tf_stft_frames(st, N), m = (size_t)S * N;
    float *re = fbuf(n), *im = fbuf(n), *dre = fbuf(n), *dim = fbuf(n);
    float *ax = fbuf(m), *y = fbuf(m);
    fill_normal(re, n, 1), fill_normal(im, n, 2), fill_normal(y, m, 3);
    CHECK(tf_istft_forward(st, ax, re, im, S, N) == TF_OK);
    for (size_t i = 0; i < m; i++) y[i] = ax[i] + 0.5f * y[i];
    CHECK(tf_istft_backward(st, dre, dim, y, S, N) == TF_OK);
    double lhs = dot(ax, y, m), rhs = dot(re, dre, n) + dot(im, dim, n);
    CHECKF(fabs(lhs - rhs) <= 1e-5 * fabs(lhs), "n_fft %d hop %d N %lld: %.9g vs %.9g", n_fft, hop,
           (long long)N, lhs, rhs);
    free(re), free(im), free(dre), free(dim), free(ax), free(y);
    tf_stft_destroy(st);
}

/* <STFT x, G> == <x, STFT^T G>, G = STFT x + noise */
static void adjoint_stft(int n_fft, int hop, int64_t N, int S) {
    tf_stft *st = make(n_fft, hop);
    if (!st) return;
    size_t n = (size_t)S * tf_stft_bins(st) * tf_stft_frames(st, N), m = (size_t)S * N;
    float *re = fbuf(n), *im = fbuf(n), *gre = fbuf(n), *gim = fbuf(n);
    float *x = fbuf(m), *dx = fbuf(m);
    fill_uniform(x, m, 4, -1, 1), fill_normal(gre, n, 5), fill_normal(gim, n, 6);
    CHECK(tf_stft_forward(st, re, im, x, S, N) == TF_OK);
    for (size_t i = 0; i < n; i++) gre[i] = re[i] + gre[i], gim[i] = im[i] + gim[i];
    for (size_t i = 0; i < m; i++) dx[i] = 0.25f; /* backward accumulates: checked below */
    CHECK(tf_stft_backward(st, dx, gre, gim, S, N) == TF_OK);
    for (size_t i = 0; i < m; i++) dx[i] -= 0.25f;
    double lhs = dot(re, gre, n) + dot(im, gim, n), rhs = dot(x, dx, m);
    CHECKF(fabs(lhs - rhs) <= 1e-5 * fabs(lhs), "n_fft %d hop %d N %lld: %.9g vs %.9g", n_fft, hop,
           (long long)N, lhs, rhs);
    free(re), free(im), free(gre), free(gim), free(x), free(dx);
    tf_stft_destroy(st);
}

static void test_adjoint_istft(void) {
    adjoint_istft(2048, 441, 20000, 2);
    adjoint_istft(64, 16, 300, 3);
    adjoint_istft(64, 16, 20, 2); /* short: zero-padding mode */
    adjoint_istft(64, 32, 1, 1);
    adjoint_istft(16, 3, 29, 2);
    adjoint_istft(64, 2, 300, 2);
}

static void test_adjoint_stft(void) {
    adjoint_stft(2048, 441, 20000, 2);
    adjoint_stft(64, 16, 300, 3);
    adjoint_stft(64, 16, 40, 2); /* shorter than the window, reflect */
    adjoint_stft(64, 16, 20, 2); /* short: zero-padding mode */
    adjoint_stft(64, 32, 1, 1);
    adjoint_stft(16, 3, 29, 2);
    adjoint_stft(16, 8, 9, 2);
    adjoint_stft(64, 2, 300, 2);
    adjoint_stft(16, 1, 50, 1);
}

/* ---------- subbands ---------- */

static void test_subbands(void) {
    const int B = 2, C = 2, F = 17, T = 5, K = 4, Fs = 4;
    size_t nf = (size_t)B * C * F * T, ns = (size_t)B * C * K * Fs * T;
    float *m = fbuf(nf), *sub = fbuf(ns), *back = fbuf(nf), *g = fbuf(ns), *dm = fbuf(nf);
    float *h = fbuf(nf), *dsub = fbuf(ns);
    fill_normal(m, nf, 7);
    CHECK(tf_subband_split(sub, m, B, C, F, T, K) == TF_OK);
    /* layout: channel c*K + k, bin f of the subband = bin k*Fs + f of channel c */
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < K; k++)
                for (int f = 0; f < Fs; f++)
                    for (int t = 0; t < T; t++)
                        bad += sub[(((size_t)b * C * K + c * K + k) * Fs + f) * T + t] !=
                               m[(((size_t)b * C + c) * F + k * Fs + f) * T + t];
    CHECK(bad == 0);
    CHECK(tf_subband_merge(back, sub, B, C, F, T, K) == TF_OK);
    for (size_t i = 0; i < nf; i++) {
        size_t f = (i / T) % F;
        bad += back[i] != (f == (size_t)F - 1 ? 0.f : m[i]);
    }
    CHECK(bad == 0);
    /* adjoints: <split m, g> == <m, split^T g>, <merge s, h> == <s, merge^T h> */
    fill_normal(g, ns, 8), fill_normal(h, nf, 9);
    CHECK(tf_subband_split_backward(dm, g, B, C, F, T, K) == TF_OK);
    CHECK_NEAR(dot(sub, g, ns), dot(m, dm, nf), 1e-9);
    CHECK(tf_subband_merge_backward(dsub, h, B, C, F, T, K) == TF_OK);
    CHECK_NEAR(dot(back, h, nf), dot(sub, dsub, ns), 1e-9);
    /* bad K */
    CHECK(tf_subband_split(sub, m, B, C, F, T, 3) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "3 subbands") != NULL);
    CHECK(tf_subband_merge(back, sub, B, C, F, T, 0) == TF_EUSER);
    free(m), free(sub), free(back), free(g), free(dm), free(h), free(dsub);
}

/* ---------- magnitude, phase, combine ---------- */

static void test_magphase_combine(void) {
    enum { n = 64 };
    float re[n], im[n], mag[n], pr[n], pi[n], dmag[n], dre[n], dim[n], yr[n], yi[n];
    float gr[n], gi[n], dm[n];
    fill_normal(re, n, 11), fill_normal(im, n, 12), fill_normal(dmag, n, 13);
    fill_normal(gr, n, 14), fill_normal(gi, n, 15);
    re[3] = im[3] = 0.f; /* |X| == 0 */
    re[4] = 0.f, im[4] = -2.f;
    tf_magphase(mag, pr, pi, re, im, n);
    for (int k = 0; k < n; k++) {
        double m = hypot(re[k], im[k]);
        CHECK_NEAR(mag[k], m, 1e-6);
        if (m > 0) {
            CHECK_NEAR(pr[k], re[k] / m, 1e-6);
            CHECK_NEAR(pi[k], im[k] / m, 1e-6);
        }
    }
    CHECK(mag[3] == 0.f && pr[3] == 1.f && pi[3] == 0.f);
    CHECK(pr[4] == 0.f && pi[4] == -1.f);
    /* |X| backward vs central differences of sum(dmag * |X|) in float64 */
    for (int k = 0; k < n; k++) dre[k] = dim[k] = 1.f;
    tf_mag_backward(dre, dim, dmag, re, im, n);
    CHECK(dre[3] == 1.f && dim[3] == 1.f); /* zero gradient at |X| == 0, as torch.abs */
    for (int k = 0; k < n; k++) {
        if (k == 3) continue;
        double h = 1e-6, a = re[k], b = im[k];
        double ga = dmag[k] * (hypot(a + h, b) - hypot(a - h, b)) / (2 * h);
        double gb = dmag[k] * (hypot(a, b + h) - hypot(a, b - h)) / (2 * h);
        CHECK_NEAR(dre[k] - 1.0, ga, 1e-5);
        CHECK_NEAR(dim[k] - 1.0, gb, 1e-5);
    }
    /* Y = M P, and dM vs central differences of sum(gr*Yr + gi*Yi) in float64 */
    tf_combine_forward(yr, yi, dmag, pr, pi, n);
    for (int k = 0; k < n; k++) {
        CHECK_NEAR(yr[k], (double)dmag[k] * pr[k], 1e-6);
        CHECK_NEAR(yi[k], (double)dmag[k] * pi[k], 1e-6);
        dm[k] = 0.5f;
    }
    tf_combine_backward(dm, gr, gi, pr, pi, n);
    for (int k = 0; k < n; k++) {
        double h = 1e-3, M = dmag[k];
        double lp = gr[k] * (M + h) * pr[k] + gi[k] * (M + h) * pi[k];
        double lm = gr[k] * (M - h) * pr[k] + gi[k] * (M - h) * pi[k];
        CHECK_NEAR(dm[k] - 0.5, (lp - lm) / (2 * h), 1e-5);
    }
}

/* ---------- threads ---------- */

typedef struct {
    float *re, *im, *y, *dre, *dim, *dx;
} outs;

static void run_all(tf_stft *st, outs *o, const float *x, const float *g, const float *zr,
                    const float *zi, int S, int64_t N) {
    size_t n = (size_t)S * tf_stft_bins(st) * tf_stft_frames(st, N);
    memset(o->dre, 0, n * sizeof(float)), memset(o->dim, 0, n * sizeof(float));
    memset(o->dx, 0, (size_t)S * N * sizeof(float));
    CHECK(tf_stft_forward(st, o->re, o->im, x, S, N) == TF_OK);
    CHECK(tf_istft_forward(st, o->y, zr, zi, S, N) == TF_OK);
    CHECK(tf_istft_backward(st, o->dre, o->dim, g, S, N) == TF_OK);
    CHECK(tf_stft_backward(st, o->dx, zr, zi, S, N) == TF_OK);
}

static void test_thread_count_independent(void) {
    const int S = 3;
    const int64_t N = 30000; /* 101 frames: 7 blocks of 16 per signal */
    tf_stft *st = make(1024, 300);
    if (!st) return;
    size_t n = (size_t)S * tf_stft_bins(st) * tf_stft_frames(st, N), m = (size_t)S * N;
    float *x = fbuf(m), *g = fbuf(m), *zr = fbuf(n), *zi = fbuf(n);
    fill_uniform(x, m, 20, -1, 1), fill_normal(g, m, 21), fill_normal(zr, n, 22);
    fill_normal(zi, n, 23);
    outs o[2];
    for (int k = 0; k < 2; k++) {
        o[k] = (outs){fbuf(n), fbuf(n), fbuf(m), fbuf(n), fbuf(n), fbuf(m)};
        omp_set_num_threads(k + 1);
        run_all(st, &o[k], x, g, zr, zi, S, N);
    }
    omp_set_num_threads(2);
    CHECK(!memcmp(o[0].re, o[1].re, n * sizeof(float)));
    CHECK(!memcmp(o[0].im, o[1].im, n * sizeof(float)));
    CHECK(!memcmp(o[0].y, o[1].y, m * sizeof(float)));
    CHECK(!memcmp(o[0].dre, o[1].dre, n * sizeof(float)));
    CHECK(!memcmp(o[0].dim, o[1].dim, n * sizeof(float)));
    CHECK(!memcmp(o[0].dx, o[1].dx, m * sizeof(float)));
    /* one object used by two threads at once, one signal each, gives the same results */
    outs c[2];
    for (int k = 0; k < 2; k++)
        c[k] = (outs){fbuf(n / S), fbuf(n / S), fbuf(N), fbuf(n / S), fbuf(n / S), fbuf(N)};
    omp_set_max_active_levels(1);
#pragma omp parallel for num_threads(2)
    for (int k = 0; k < 2; k++)
        run_all(st, &c[k], x + k * N, g + k * N, zr + k * n / S, zi + k * n / S, 1, N);
    for (int k = 0; k < 2; k++) {
        CHECK(!memcmp(c[k].re, o[0].re + k * n / S, n / S * sizeof(float)));
        CHECK(!memcmp(c[k].y, o[0].y + k * N, N * sizeof(float)));
        CHECK(!memcmp(c[k].dre, o[0].dre + k * n / S, n / S * sizeof(float)));
        CHECK(!memcmp(c[k].dx, o[0].dx + k * N, N * sizeof(float)));
    }
    for (int k = 0; k < 2; k++) {
        outs *p[2] = {&o[k], &c[k]};
        for (int q = 0; q < 2; q++)
            free(p[q]->re), free(p[q]->im), free(p[q]->y), free(p[q]->dre), free(p[q]->dim),
                free(p[q]->dx);
    }
    free(x), free(g), free(zr), free(zi);
    tf_stft_destroy(st);
}

/* ---------- argument errors ---------- */

static void test_bad_arguments(void) {
    tf_stft *st = NULL;
    CHECK(tf_stft_create(&st, 2047, 441) == TF_EUSER && st == NULL);
    CHECK(strstr(tf_errmsg(), "2047") != NULL);
    CHECK(tf_stft_create(&st, 2, 1) == TF_EUSER);
    CHECK(tf_stft_create(&st, 2048, 0) == TF_EUSER);
    CHECK(tf_stft_create(&st, 2048, 1025) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "1025") != NULL);
    st = make(16, 4);
    if (!st) return;
    CHECK(tf_stft_bins(st) == 9 && tf_stft_frames(st, 37) == 10 && tf_stft_n_fft(st) == 16 &&
          tf_stft_hop(st) == 4);
    const float *w = tf_stft_window(st);
    CHECK(w[0] == 0.f && w[8] == 1.f && fabs(w[4] - 0.5f) < 1e-7);
    float buf[16] = {0};
    CHECK(tf_stft_forward(st, buf, buf, buf, 1, 0) == TF_EUSER);
    CHECK(tf_istft_forward(st, buf, buf, buf, 1, 0) == TF_EUSER);
    CHECK(tf_stft_forward(st, buf, buf, buf, 0, 4) == TF_OK); /* no signals: nothing to do */
    tf_stft_destroy(st);
    tf_stft_destroy(NULL);
}

/* tf_stft_inv_envelope (what src/cuda/fft.cu's ISTFT uses) against the envelope summed
 * directly: every frame t of the padded signal that covers sample i, in double */
static void test_inv_envelope(void) {
    const int cases[][3] = {{16, 4, 50}, {16, 5, 3},        {64, 32, 200}, {20, 7, 33},
                            {8, 1, 9},   {2048, 441, 5000}, {16, 8, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int n_fft = cases[c][0], hop = cases[c][1], N = cases[c][2], pad = n_fft / 2;
        tf_stft *st = make(n_fft, hop);
        if (!st) continue;
        const float *w = tf_stft_window(st);
        const int64_t T = tf_stft_frames(st, N);
        float *ie = fbuf((size_t)N);
        tf_stft_inv_envelope(st, ie, N);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double e = 0;
            for (int64_t t = 0; t < T; t++) {
                int64_t k = i + pad - t * hop;
                if (k >= 0 && k < n_fft) e += (double)w[k] * w[k];
            }
            double want = e > 1e-11 ? 1.0 / e : 0.0;
            worst = fmax(worst, fabs(ie[i] - want) / fmax(1.0, fabs(want)));
        }
        CHECKF(worst <= 1e-6, "n_fft %d hop %d N %d: max rel err %g", n_fft, hop, N, worst);
        free(ie);
        tf_stft_destroy(st);
    }
}

int main(void) {
    RUN(test_torch_stft);
    RUN(test_torch_istft);
    RUN(test_torch_istft_backward);
    RUN(test_torch_stft_backward);
    RUN(test_stft_matches_direct_dft);
    RUN(test_round_trip);
    RUN(test_adjoint_istft);
    RUN(test_adjoint_stft);
    RUN(test_inv_envelope);
    RUN(test_subbands);
    RUN(test_magphase_combine);
    RUN(test_thread_count_independent);
    RUN(test_bad_arguments);
    for (int i = 0; i < g_nref; i++) free(g_ref[i].data);
    return TEST_END();
}
