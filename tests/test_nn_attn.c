/* Attention-side kernels (src/nn/attn.h): layer norm, linear, softmax, attention core,
 * Swin window helpers, layout changes and the transformer block.
 * - against PyTorch (tests/reference/nn_attn_ref.py run with /usr/bin/python3; float64
 *   reference): forward max|a-b|/max|b| <= 1e-5, gradients <= 1e-4;
 * - central finite differences with a float64 loss;
 * - SW-MSA mask locality; exact adjoints of the permutations; backward accumulates.
 * Run from the repository root (the reference script is found from __FILE__). */
#include <stdint.h>
#include <unistd.h>

#include "nn/attn.h"
#include "test.h"
#include "util/rng.h"

/* ---------------------------------------------------------------- utilities */
static tf_rng g_rng;

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void fill_normal(float *x, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * tf_rng_normal(&g_rng));
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* max|a - b| / max|b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i]));
    double m = max_abs(b, n);
    return m > 0 ? e / m : e;
}

static double dot64(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

#define CHECK_REL(what, a, b, n, tol)                                                              \
    do {                                                                                           \
        double e_ = rel_err((a), (b), (n));                                                        \
        printf("  # %-28s rel err %.2e\n", (what), e_);                                            \
        CHECKF(e_ <= (tol), "%s: max|a-b|/max|b| = %.3g > %.3g", (what), e_, (double)(tol));       \
    } while (0)

/* Central differences of a float64 loss: for up to maxk entries of p (n), compare
 * (L(p+h) - L(p-h)) / (actual 2h) with the analytic gradient g; returns
 * max |fd - g| / max(max|g|, 1e-3). */
typedef double (*loss_fn)(void *ctx);
static double fd_check(loss_fn f, void *ctx, float *p, const float *g, size_t n, int maxk) {
    const double h = 1e-2;
    double err = 0;
    size_t step = n <= (size_t)maxk ? 1 : n / (size_t)maxk;
    size_t start = step > 1 ? tf_rng_below(&g_rng, step) : 0;
    for (size_t i = start; i < n; i += step) {
        float p0 = p[i];
        float pp = (float)(p0 + h), pm = (float)(p0 - h);
        p[i] = pp;
        double lp = f(ctx);
        p[i] = pm;
        double lm = f(ctx);
        p[i] = p0;
        double fd = (lp - lm) / ((double)pp - (double)pm);
        err = fmax(err, fabs(fd - g[i]));
    }
    return err / fmax(max_abs(g, n), 1e-3);
}

#define FD_TOL 2e-3
#define CHECK_FD(what, f, ctx, p, g, n)                                                            \
    do {                                                                                           \
        double e_ = fd_check((f), (ctx), (p), (g), (n), 40);                                       \
        printf("  # fd %-25s rel err %.2e\n", (what), e_);                                         \
        CHECKF(e_ <= FD_TOL, "%s: finite-difference error %.3g > %g", (what), e_, FD_TOL);         \
    } while (0)

/* ------------------------------------------------------ the transformer block */
static const char *PNAMES[13] = {"ln1_w",  "ln1_b", "qkv_w",         "qkv_b", "proj_w",
                                 "proj_b", "ln2_w", "ln2_b",         "fc1_w", "fc1_b",
                                 "fc2_w",  "fc2_b", "rel_bias_table"};

static float **pfield(tf_tblock_params *p, int i) {
    float **f[13] = {&p->ln1_w,  &p->ln1_b, &p->qkv_w,         &p->qkv_b, &p->proj_w,
                     &p->proj_b, &p->ln2_w, &p->ln2_b,         &p->fc1_w, &p->fc1_b,
                     &p->fc2_w,  &p->fc2_b, &p->rel_bias_table};
    return f[i];
}

static size_t psize(int i, int C, int H, int Hd, int R) {
    size_t c = (size_t)C, hd = (size_t)Hd;
    size_t s[13] = {c, c, 3 * c * c, 3 * c, c * c, c, c, c, hd * c, hd, c * hd, c, (size_t)R * H};
    return s[i];
}

/* A block with all its memory. swin = 1: x is a (B, T, F, C) map, windows (wt, wf),
 * shift (st, sf), the Swin mask when shifted and use_mask; swin = 0: x is (N, L, C). */
typedef struct {
    int swin, B, T, F, wt, wf, st, sf;
    int N, L, C, H, Hd, R, nW;
    float *pmem, *gmem, *saved, *ws, *mask;
    int *index;
    tf_tblock_params p, g;
    tf_tblock_saved s;
    size_t nx;
    float *x, *dx, *dout, *out;
    float *win_in, *win_out, *dwin_in, *dwin_out;
} blk;

static void blk_init(blk *b, int N, int L, int C, int H, int Hd, int R) {
    b->N = N, b->L = L, b->C = C, b->H = H, b->Hd = Hd, b->R = R;
    size_t np = tf_tblock_param_floats(C, H, Hd, R);
    b->pmem = falloc(np), b->gmem = falloc(np);
    tf_tblock_params_point(&b->p, b->pmem, C, H, Hd, R);
    tf_tblock_params_point(&b->g, b->gmem, C, H, Hd, R);
    b->saved = falloc(tf_tblock_saved_floats(N, L, C, H, Hd));
    tf_tblock_saved_point(&b->s, b->saved, N, L, C, H, Hd);
    b->ws = falloc(tf_tblock_workspace_floats(N, L, C, H, Hd));
    b->nx = (size_t)N * L * C;
    b->x = falloc(b->nx), b->dx = falloc(b->nx), b->dout = falloc(b->nx), b->out = falloc(b->nx);
    b->index = calloc((size_t)L * L, sizeof(int));
    if (!b->index) exit(1);
}

/* random parameters of the size a trained block might have, inputs, dout */
static void blk_randomize(blk *b) {
    for (int i = 0; i < 13; i++) {
        float *f = *pfield(&b->p, i);
        size_t n = psize(i, b->C, b->H, b->Hd, b->R);
        if (!f) continue;
        int is_lnw = i == 0 || i == 6;
        fill_normal(f, n, i == 12 ? 0.5 : (i % 2 == 1 || is_lnw) ? 0.2 : 0.4);
        if (is_lnw)
            for (size_t k = 0; k < n; k++) f[k] += 1.f;
    }
    fill_normal(b->x, b->nx, 1.0);
    fill_normal(b->dout, b->nx, 1.0);
}

static void blk_init_swin(blk *b, int B, int T, int F, int C, int H, int Hd, int wt, int wf,
                          int shifted, int use_mask) {
    *b = (blk){0};
    b->swin = 1, b->B = B, b->T = T, b->F = F, b->wt = wt, b->wf = wf;
    b->st = shifted ? wt / 2 : 0, b->sf = shifted ? wf / 2 : 0;
    b->nW = (T / wt) * (F / wf);
    int L = wt * wf;
    blk_init(b, B * b->nW, L, C, H, Hd, tf_swin_relpos_rows(wt, wf));
    tf_swin_relpos_index(b->index, wt, wf);
    if (shifted && use_mask) {
        b->mask = falloc((size_t)b->nW * L * L);
        tf_swin_attn_mask(b->mask, T, F, wt, wf, b->st, b->sf);
    }
    b->win_in = falloc(b->nx), b->win_out = falloc(b->nx);
    b->dwin_in = falloc(b->nx), b->dwin_out = falloc(b->nx);
}

static void blk_free(blk *b) {
    free(b->pmem), free(b->gmem), free(b->saved), free(b->ws), free(b->mask), free(b->index);
    free(b->x), free(b->dx), free(b->dout), free(b->out);
    free(b->win_in), free(b->win_out), free(b->dwin_in), free(b->dwin_out);
}

static void blk_forward(blk *b) {
    const int *idx = b->p.rel_bias_table ? b->index : NULL;
    if (!b->swin) {
        tf_tblock_forward(b->out, &b->s, b->x, &b->p, idx, b->mask, b->nW, b->N, b->L, b->C, b->H,
                          b->Hd);
        return;
    }
    tf_window_partition_forward(b->win_in, b->x, b->B, b->T, b->F, b->C, b->wt, b->wf, b->st,
                                b->sf);
    tf_tblock_forward(b->win_out, &b->s, b->win_in, &b->p, idx, b->mask, b->nW, b->N, b->L, b->C,
                      b->H, b->Hd);
    tf_window_reverse_forward(b->out, b->win_out, b->B, b->T, b->F, b->C, b->wt, b->wf, b->st,
                              b->sf);
}

/* dx and g accumulate; forward must have run */
static void blk_backward(blk *b) {
    const int *idx = b->p.rel_bias_table ? b->index : NULL;
    if (!b->swin) {
        tf_tblock_backward(b->dx, &b->g, b->dout, &b->s, b->x, &b->p, idx, b->N, b->L, b->C, b->H,
                           b->Hd, b->ws);
        return;
    }
    memset(b->dwin_out, 0, b->nx * sizeof(float));
    memset(b->dwin_in, 0, b->nx * sizeof(float));
    tf_window_reverse_backward(b->dwin_out, b->dout, b->B, b->T, b->F, b->C, b->wt, b->wf, b->st,
                               b->sf);
    tf_tblock_backward(b->dwin_in, &b->g, b->dwin_out, &b->s, b->win_in, &b->p, idx, b->N, b->L,
                       b->C, b->H, b->Hd, b->ws);
    tf_window_partition_backward(b->dx, b->dwin_in, b->B, b->T, b->F, b->C, b->wt, b->wf, b->st,
                                 b->sf);
}

static double blk_loss(void *ctx) {
    blk *b = ctx;
    blk_forward(b);
    return dot64(b->out, b->dout, b->nx);
}

/* ------------------------------------------------------- the PyTorch reference */
typedef struct {
    char name[64];
    int ndim;
    unsigned shape[8];
    size_t n;
    float *data;
} ref_tensor;

static ref_tensor *g_ref;
static int g_nref, g_ref_ok;

static int rd_u32(const unsigned char **p, const unsigned char *end, uint32_t *v) {
    if (end - *p < 4) return 0;
    *v = (uint32_t)(*p)[0] | (uint32_t)(*p)[1] << 8 | (uint32_t)(*p)[2] << 16 |
         (uint32_t)(*p)[3] << 24;
    *p += 4;
    return 1;
}

/* parse the file written by nn_attn_ref.py (format in its docstring); 1 on success */
static int ref_parse(const unsigned char *buf, size_t size) {
    const unsigned char *p = buf, *end = buf + size;
    uint32_t count;
    if (size < 12 || memcmp(p, "TFNNREF1", 8)) return 0;
    p += 8;
    if (!rd_u32(&p, end, &count) || count > 10000) return 0;
    g_ref = calloc(count, sizeof(ref_tensor));
    if (!g_ref) return 0;
    for (uint32_t i = 0; i < count; i++) {
        ref_tensor *t = &g_ref[i];
        uint32_t len, nd;
        if (!rd_u32(&p, end, &len) || len >= sizeof t->name || (size_t)(end - p) < len) return 0;
        memcpy(t->name, p, len);
        p += len;
        if (!rd_u32(&p, end, &nd) || nd > 8) return 0;
        t->ndim = (int)nd;
        t->n = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (!rd_u32(&p, end, &t->shape[d])) return 0;
            t->n *= t->shape[d];
        }
        if ((size_t)(end - p) / 4 < t->n) return 0;
        t->data = falloc(t->n);
        for (size_t k = 0; k < t->n; k++) { /* little-endian float32 */
            uint32_t u;
            rd_u32(&p, end, &u);
            memcpy(&t->data[k], &u, 4);
        }
        g_nref = (int)i + 1;
    }
    return p == end;
}

/* the tensor `name` with n elements, or NULL (and the test fails) */
static float *ref_get(const char *name, size_t n) {
    for (int i = 0; i < g_nref; i++)
        if (!strcmp(g_ref[i].name, name)) {
            CHECKF(g_ref[i].n == n, "reference %s has %zu elements, expected %zu", name, g_ref[i].n,
                   n);
            return g_ref[i].n == n ? g_ref[i].data : NULL;
        }
    CHECKF(0, "reference tensor %s missing", name);
    return NULL;
}

static void script_path(char *out, size_t cap) {
    const char *f = __FILE__, *slash = strrchr(f, '/');
    int dirlen = slash ? (int)(slash - f) : 0;
    snprintf(out, cap, "%.*s%sreference/nn_attn_ref.py", dirlen, f, slash ? "/" : "");
}

static void test_torch_reference_runs(void) {
    char script[512], dir[] = "/tmp/tfswa_nnattn_XXXXXX", bin[600], cmd[1400];
    script_path(script, sizeof script);
    if (access(script, R_OK)) {
        CHECKF(0, "reference script %s not found (run the test from the repository root)", script);
        return;
    }
    if (system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        CHECKF(0, "PyTorch is missing: /usr/bin/python3 cannot import torch and numpy "
                  "(apt-get install python3-torch python3-numpy); the reference test FAILS");
        return;
    }
    if (!mkdtemp(dir)) {
        CHECKF(0, "mkdtemp failed");
        return;
    }
    snprintf(bin, sizeof bin, "%s/ref.bin", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, bin);
    int rc = system(cmd);
    CHECKF(rc == 0, "%s exited with %d", cmd, rc);
    FILE *fp = fopen(bin, "rb");
    if (rc == 0 && fp) {
        unsigned char *buf = NULL;
        long size = -1;
        if (!fseek(fp, 0, SEEK_END) && (size = ftell(fp)) > 0 && !fseek(fp, 0, SEEK_SET) &&
            (buf = malloc((size_t)size)) && fread(buf, 1, (size_t)size, fp) == (size_t)size)
            g_ref_ok = ref_parse(buf, (size_t)size);
        CHECKF(g_ref_ok, "%s: cannot parse the reference file (%ld bytes)", bin, size);
        free(buf);
    } else {
        CHECKF(0, "cannot open %s", bin);
    }
    if (fp) fclose(fp);
    remove(bin);
    rmdir(dir);
}

#define NEED_REF()                                                                                 \
    do {                                                                                           \
        if (!g_ref_ok) {                                                                           \
            CHECKF(0, "no PyTorch reference (see test_torch_reference_runs)");                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void test_torch_layernorm(void) {
    NEED_REF();
    const int N = 7, C = 12;
    float *x = ref_get("ln.x", N * C), *w = ref_get("ln.w", C), *b = ref_get("ln.b", C);
    float *dout = ref_get("ln.dout", N * C), *yr = ref_get("ln.out", N * C);
    float *dxr = ref_get("ln.dx", N * C), *dwr = ref_get("ln.dw", C), *dbr = ref_get("ln.db", C);
    if (!x || !w || !b || !dout || !yr || !dxr || !dwr || !dbr) return;
    float y[84], mean[7], rstd[7], dx[84] = {0}, dw[12] = {0}, db[12] = {0};
    tf_layernorm_forward(y, mean, rstd, x, w, b, N, C);
    tf_layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    CHECK_REL("layernorm out", y, yr, N * C, 1e-5);
    CHECK_REL("layernorm dx", dx, dxr, N * C, 1e-4);
    CHECK_REL("layernorm dw", dw, dwr, C, 1e-4);
    CHECK_REL("layernorm db", db, dbr, C, 1e-4);
}

static void test_torch_linear(void) {
    NEED_REF();
    const int N = 5, IC = 6, OC = 7;
    float *x = ref_get("lin.x", N * IC), *w = ref_get("lin.w", OC * IC), *b = ref_get("lin.b", OC);
    float *dout = ref_get("lin.dout", N * OC), *yr = ref_get("lin.out", N * OC);
    float *dxr = ref_get("lin.dx", N * IC), *dwr = ref_get("lin.dw", OC * IC);
    float *dbr = ref_get("lin.db", OC);
    if (!x || !w || !b || !dout || !yr || !dxr || !dwr || !dbr) return;
    float y[35], dx[30] = {0}, dw[42] = {0}, db[7] = {0};
    tf_linear_forward(y, x, w, b, N, IC, OC);
    tf_linear_backward(dx, dw, db, dout, x, w, N, IC, OC);
    CHECK_REL("linear out", y, yr, N * OC, 1e-5);
    CHECK_REL("linear dx", dx, dxr, N * IC, 1e-4);
    CHECK_REL("linear dw", dw, dwr, OC * IC, 1e-4);
    CHECK_REL("linear db", db, dbr, OC, 1e-4);
}

static void test_torch_attention_bias_mask(void) {
    NEED_REF();
    const int N = 6, wt = 5, wf = 4, L = 20, C = 8, H = 2, nW = 3, R = 63;
    float *qkv = ref_get("att.qkv", (size_t)N * L * 3 * C), *table = ref_get("att.table", R * H);
    float *idxf = ref_get("att.index", L * L), *mask = ref_get("att.mask", (size_t)nW * L * L);
    float *dout = ref_get("att.dout", (size_t)N * L * C), *yr = ref_get("att.out", N * L * C);
    float *pr = ref_get("att.probs", (size_t)N * H * L * L);
    float *dqr = ref_get("att.dqkv", (size_t)N * L * 3 * C), *dtr = ref_get("att.dtable", R * H);
    if (!qkv || !table || !idxf || !mask || !dout || !yr || !pr || !dqr || !dtr) return;
    int index[400];
    tf_swin_relpos_index(index, wt, wf);
    int same = 1;
    for (int i = 0; i < L * L; i++) same &= index[i] == (int)idxf[i];
    CHECKF(same, "tf_swin_relpos_index differs from Swin's relative_position_index");
    CHECK(tf_swin_relpos_rows(wt, wf) == R);
    float *y = falloc((size_t)N * L * C), *att = falloc((size_t)N * H * L * L);
    float *dq = falloc((size_t)N * L * 3 * C), *dt = falloc(R * H);
    float *ws = falloc(tf_attention_workspace_floats(N, L, H));
    tf_attention_forward(y, att, qkv, table, index, mask, nW, N, L, C, H);
    tf_attention_backward(dq, dt, dout, qkv, att, index, N, L, C, H, ws);
    CHECK_REL("attention out", y, yr, (size_t)N * L * C, 1e-5);
    CHECK_REL("attention probs", att, pr, (size_t)N * H * L * L, 1e-5);
    CHECK_REL("attention dqkv", dq, dqr, (size_t)N * L * 3 * C, 1e-4);
    CHECK_REL("attention dtable", dt, dtr, R * H, 1e-4);
    free(y), free(att), free(dq), free(dt), free(ws);
}

/* load a block's params/x/dout from prefix.*, run forward + backward, compare all */
static void compare_block(blk *b, const char *prefix) {
    char nm[96];
    int ok = 1;
    for (int i = 0; i < 13; i++) {
        float *f = *pfield(&b->p, i);
        if (!f) continue;
        snprintf(nm, sizeof nm, "%s.%s", prefix, PNAMES[i]);
        float *r = ref_get(nm, psize(i, b->C, b->H, b->Hd, b->R));
        if (r) memcpy(f, r, psize(i, b->C, b->H, b->Hd, b->R) * sizeof(float));
        ok &= r != NULL;
    }
    snprintf(nm, sizeof nm, "%s.x", prefix);
    float *x = ref_get(nm, b->nx);
    snprintf(nm, sizeof nm, "%s.dout", prefix);
    float *dout = ref_get(nm, b->nx);
    if (!ok || !x || !dout) return;
    memcpy(b->x, x, b->nx * sizeof(float));
    memcpy(b->dout, dout, b->nx * sizeof(float));
    blk_forward(b);
    blk_backward(b);
    snprintf(nm, sizeof nm, "%s.out", prefix);
    float *r = ref_get(nm, b->nx);
    if (r) CHECK_REL(nm, b->out, r, b->nx, 1e-5);
    snprintf(nm, sizeof nm, "%s.dx", prefix);
    if ((r = ref_get(nm, b->nx))) CHECK_REL(nm, b->dx, r, b->nx, 1e-4);
    for (int i = 0; i < 13; i++) {
        float *f = *pfield(&b->g, i);
        if (!f) continue;
        size_t n = psize(i, b->C, b->H, b->Hd, b->R);
        snprintf(nm, sizeof nm, "%s.g.%s", prefix, PNAMES[i]);
        if ((r = ref_get(nm, n))) CHECK_REL(nm, f, r, n, 1e-4);
    }
}

static void test_torch_tblock_plain(void) {
    NEED_REF();
    blk b = {0};
    blk_init(&b, 3, 7, 8, 2, 16, 0);
    compare_block(&b, "tb");
    blk_free(&b);
}

static void test_torch_swin_wmsa(void) {
    NEED_REF();
    blk b = {0};
    blk_init_swin(&b, 2, 10, 8, 8, 2, 16, 5, 4, 0, 0);
    compare_block(&b, "wmsa");
    blk_free(&b);
}

static void test_torch_swin_swmsa(void) {
    NEED_REF();
    blk b = {0};
    blk_init_swin(&b, 2, 10, 8, 8, 2, 16, 5, 4, 1, 1);
    CHECK(b.st == 2 && b.sf == 2 && b.nW == 4);
    float *mr = ref_get("swmsa.mask", (size_t)b.nW * 400);
    if (mr)
        CHECKF(!memcmp(mr, b.mask, (size_t)b.nW * 400 * sizeof(float)),
               "tf_swin_attn_mask differs from Swin's img_mask construction");
    compare_block(&b, "swmsa");
    blk_free(&b);
}

/* ------------------------------------------------------- finite differences */
typedef struct {
    int N, C;
    float *x, *w, *b, *y, *mean, *rstd, *dout;
} ln_ctx;

static double ln_loss(void *c) {
    ln_ctx *k = c;
    tf_layernorm_forward(k->y, k->mean, k->rstd, k->x, k->w, k->b, k->N, k->C);
    return dot64(k->y, k->dout, (size_t)k->N * k->C);
}

static void test_fd_layernorm(void) {
    enum { N = 4, C = 10 };
    float x[N * C], w[C], b[C], y[N * C], mean[N], rstd[N], dout[N * C];
    float dx[N * C] = {0}, dw[C] = {0}, db[C] = {0};
    fill_normal(x, N * C, 1.5), fill_normal(w, C, 0.5), fill_normal(b, C, 0.5);
    fill_normal(dout, N * C, 1.0);
    ln_ctx k = {N, C, x, w, b, y, mean, rstd, dout};
    ln_loss(&k);
    tf_layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    CHECK_FD("layernorm dx", ln_loss, &k, x, dx, N * C);
    CHECK_FD("layernorm dw", ln_loss, &k, w, dw, C);
    CHECK_FD("layernorm db", ln_loss, &k, b, db, C);
}

typedef struct {
    int N, IC, OC;
    float *x, *w, *b, *y, *dout;
} lin_ctx;

static double lin_loss(void *c) {
    lin_ctx *k = c;
    tf_linear_forward(k->y, k->x, k->w, k->b, k->N, k->IC, k->OC);
    return dot64(k->y, k->dout, (size_t)k->N * k->OC);
}

static void test_fd_linear(void) {
    enum { N = 3, IC = 5, OC = 4 };
    float x[N * IC], w[OC * IC], b[OC], y[N * OC], dout[N * OC];
    float dx[N * IC] = {0}, dw[OC * IC] = {0}, db[OC] = {0};
    fill_normal(x, N * IC, 1), fill_normal(w, OC * IC, 0.5), fill_normal(b, OC, 0.5);
    fill_normal(dout, N * OC, 1);
    lin_ctx k = {N, IC, OC, x, w, b, y, dout};
    lin_loss(&k);
    tf_linear_backward(dx, dw, db, dout, x, w, N, IC, OC);
    CHECK_FD("linear dx", lin_loss, &k, x, dx, N * IC);
    CHECK_FD("linear dw", lin_loss, &k, w, dw, OC * IC);
    CHECK_FD("linear db", lin_loss, &k, b, db, OC);
    /* no bias: forward equals with-bias minus b; dbias NULL is allowed */
    float y2[N * OC], dx2[N * IC] = {0}, dw2[OC * IC] = {0};
    lin_loss(&k); /* y at the unperturbed parameters */
    tf_linear_forward(y2, x, w, NULL, N, IC, OC);
    for (int i = 0; i < N * OC; i++) CHECK_NEAR(y2[i] + b[i % OC], y[i], 1e-6);
    tf_linear_backward(dx2, dw2, NULL, dout, x, w, N, IC, OC);
    CHECK_REL("linear no-bias dx", dx2, dx, N * IC, 1e-6);
}

static void test_fd_softmax(void) {
    enum { N = 3, L = 6 };
    float x[N * L], p[N * L], dout[N * L], dx[N * L] = {0};
    fill_normal(x, N * L, 2), fill_normal(dout, N * L, 1);
    tf_softmax_forward(p, x, N, L);
    for (int n = 0; n < N; n++) {
        double mx = -1e30, s = 0;
        for (int j = 0; j < L; j++) mx = fmax(mx, x[n * L + j]);
        for (int j = 0; j < L; j++) s += exp(x[n * L + j] - mx);
        for (int j = 0; j < L; j++) CHECK_NEAR(p[n * L + j], exp(x[n * L + j] - mx) / s, 1e-6);
    }
    tf_softmax_backward(dx, dout, p, N, L);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < L; j++) { /* dx_j = sum_k dout_k dp_k/dx_j (double) */
            double g = 0;
            for (int k = 0; k < L; k++)
                g += dout[n * L + k] * p[n * L + k] * ((k == j) - p[n * L + j]);
            CHECK_NEAR(dx[n * L + j], g, 1e-6);
        }
}

typedef struct {
    int N, L, C, H, nW;
    float *qkv, *table, *mask, *y, *att, *dout;
    int *index;
} att_ctx;

static double att_loss(void *c) {
    att_ctx *k = c;
    tf_attention_forward(k->y, k->att, k->qkv, k->table, k->index, k->mask, k->nW, k->N, k->L, k->C,
                         k->H);
    return dot64(k->y, k->dout, (size_t)k->N * k->L * k->C);
}

static void test_fd_attention_bias_mask(void) {
    enum { N = 4, L = 6, C = 8, H = 2, nW = 2, R = 11 };
    float qkv[N * L * 3 * C], table[R * H], mask[nW * L * L], y[N * L * C];
    float att[N * H * L * L], dout[N * L * C], dq[N * L * 3 * C] = {0}, dt[R * H] = {0};
    int index[L * L];
    tf_swin_relpos_index(index, L, 1); /* 1-D relative index i - j + L - 1 */
    for (int i = 0; i < L; i++)
        for (int j = 0; j < L; j++) CHECK(index[i * L + j] == i - j + L - 1);
    fill_normal(qkv, sizeof qkv / 4, 1), fill_normal(table, R * H, 0.5);
    fill_normal(mask, nW * L * L, 0.5);
    for (int i = 0; i < nW * L * L; i++)
        if (tf_rng_uniform(&g_rng) < 0.3 && (i / L) % L != i % L) mask[i] = -100.f;
    fill_normal(dout, N * L * C, 1);
    float *ws = falloc(tf_attention_workspace_floats(N, L, H));
    att_ctx k = {N, L, C, H, nW, qkv, table, mask, y, att, dout, index};
    att_loss(&k);
    tf_attention_backward(dq, dt, dout, qkv, att, index, N, L, C, H, ws);
    CHECK_FD("attention dqkv", att_loss, &k, qkv, dq, N * L * 3 * C);
    CHECK_FD("attention dtable", att_loss, &k, table, dt, R * H);
    free(ws);
}

static void fd_block(blk *b, const char *what) {
    char nm[96];
    blk_forward(b);
    blk_backward(b);
    snprintf(nm, sizeof nm, "%s dx", what);
    CHECK_FD(nm, blk_loss, b, b->x, b->dx, b->nx);
    for (int i = 0; i < 13; i++) {
        float *f = *pfield(&b->p, i);
        if (!f) continue;
        snprintf(nm, sizeof nm, "%s %s", what, PNAMES[i]);
        CHECK_FD(nm, blk_loss, b, f, *pfield(&b->g, i), psize(i, b->C, b->H, b->Hd, b->R));
    }
}

static void test_fd_tblock_bias_mask(void) {
    blk b = {0};
    blk_init(&b, 4, 6, 8, 2, 16, 11);
    b.nW = 2;
    tf_swin_relpos_index(b.index, 6, 1);
    b.mask = falloc(2 * 36);
    for (int i = 0; i < 72; i++) b.mask[i] = (i / 6) % 6 != i % 6 && i % 5 == 1 ? -100.f : 0.f;
    blk_randomize(&b);
    fd_block(&b, "tblock");
    blk_free(&b);
}

static void test_fd_swin_swmsa_block(void) {
    blk b = {0};
    blk_init_swin(&b, 1, 10, 8, 8, 2, 16, 5, 4, 1, 1);
    blk_randomize(&b);
    fd_block(&b, "swmsa");
    blk_free(&b);
}

/* ------------------------------------------------------ SW-MSA mask locality */
/* Output change (max over channels) at every token when token (t0, f0) is perturbed. */
static void perturb_diff(blk *b, int t0, int f0, double *diff) {
    blk_forward(b);
    float *out0 = falloc(b->nx);
    memcpy(out0, b->out, b->nx * sizeof(float));
    float *xt = b->x + ((size_t)t0 * b->F + f0) * b->C;
    float *x0 = falloc(b->C);
    memcpy(x0, xt, b->C * sizeof(float));
    /* not constant over channels: LayerNorm would remove a constant shift */
    for (int c = 0; c < b->C; c++) xt[c] += (c % 2 ? 0.5f : -0.3f) * (float)(c + 1);
    blk_forward(b);
    memcpy(xt, x0, b->C * sizeof(float));
    free(x0);
    for (int tok = 0; tok < b->T * b->F; tok++) {
        diff[tok] = 0;
        for (int c = 0; c < b->C; c++)
            diff[tok] = fmax(diff[tok], fabs(b->out[tok * b->C + c] - out0[tok * b->C + c]));
    }
    free(out0);
}

static void test_swmsa_mask_locality(void) {
    /* T=10, F=8, window 5x4, shift (2,2): after the roll token (t,f) sits at
     * ((t-2) mod 10, (f-2) mod 8). Token (0,0) -> (8,6): the bottom-right window, which
     * straddles the roll in both axes; its region (rolled t in {8,9}, f in {6,7}) is the
     * original t in {0,1}, f in {0,1}. The window's other 16 tokens (original t in
     * {7,8,9,0,1} x f in {6,7,0,1}) come from other regions. Token (3,3) -> (1,1) lies in
     * the top-left window (original t 2..6, f 2..5), all one region. */
    blk b = {0};
    blk_init_swin(&b, 1, 10, 8, 8, 2, 16, 5, 4, 1, 1);
    blk_randomize(&b);
    double diff[80];
    perturb_diff(&b, 0, 0, diff);
    int bad_far = 0, bad_region = 0, bad_same = 0;
    double leak = 0;
    for (int t = 0; t < 10; t++)
        for (int f = 0; f < 8; f++) {
            double d = diff[t * 8 + f];
            int in_win = (t >= 7 || t <= 1) && (f >= 6 || f <= 1);
            int in_reg = t <= 1 && f <= 1;
            if (in_reg)
                bad_same += !(d > 1e-4);
            else if (in_win)
                bad_region += !(d <= 1e-20), leak = fmax(leak, d);
            else
                bad_far += d != 0.0;
        }
    CHECKF(bad_same == 0, "%d tokens of the perturbed token's region did not change", bad_same);
    CHECKF(bad_far == 0, "%d tokens outside the shifted window changed", bad_far);
    CHECKF(bad_region == 0, "%d tokens of the window's other regions changed (max %.3g)",
           bad_region, leak);
    perturb_diff(&b, 3, 3, diff);
    bad_far = bad_same = 0;
    for (int t = 0; t < 10; t++)
        for (int f = 0; f < 8; f++) {
            int in_win = t >= 2 && t <= 6 && f >= 2 && f <= 5;
            if (in_win)
                bad_same += !(diff[t * 8 + f] > 1e-4);
            else
                bad_far += diff[t * 8 + f] != 0.0;
        }
    CHECKF(bad_same == 0 && bad_far == 0, "interior window: %d unchanged inside, %d changed out",
           bad_same, bad_far);
    blk_free(&b);

    /* control: the same shifted windows WITHOUT the mask do mix the regions */
    blk_init_swin(&b, 1, 10, 8, 8, 2, 16, 5, 4, 1, 0);
    blk_randomize(&b);
    perturb_diff(&b, 0, 0, diff);
    int mixed = 0;
    for (int t = 0; t < 10; t++)
        for (int f = 0; f < 8; f++)
            if ((t >= 7 || t <= 1) && (f >= 6 || f <= 1) && !(t <= 1 && f <= 1))
                mixed += diff[t * 8 + f] > 1e-4;
    CHECKF(mixed == 16, "without the mask only %d of 16 other-region tokens changed", mixed);
    blk_free(&b);
}

/* ---------------------------------------------- permutations and their adjoints */
static void test_window_partition_roll_adjoint(void) {
    enum { B = 2, T = 10, F = 8, C = 3, wt = 5, wf = 4, n = B * T * F * C };
    float *x = falloc(n), *w = falloc(n), *x2 = falloc(n), *y = falloc(n), *aty = falloc(n);
    fill_normal(x, n, 1), fill_normal(y, n, 1);
    for (int shifted = 0; shifted < 2; shifted++) {
        int st = shifted ? 2 : 0, sf = shifted ? 2 : 0;
        tf_window_partition_forward(w, x, B, T, F, C, wt, wf, st, sf);
        /* window (b, i, j), token (ti, fj) = x[b, (i*wt+ti+st) % T, (j*wf+fj+sf) % F]
         * (torch.roll(x, (-st, -sf)) then window_partition) */
        int bad = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    for (int ti = 0; ti < wt; ti++)
                        for (int fj = 0; fj < wf; fj++)
                            for (int c = 0; c < C; c++) {
                                int t = (i * wt + ti + st) % T, f = (j * wf + fj + sf) % F;
                                size_t iw =
                                    ((((size_t)b * 2 + i) * 2 + j) * 20 + ti * wf + fj) * C + c;
                                bad += w[iw] != x[((b * T + t) * F + f) * C + c];
                            }
        CHECKF(bad == 0, "partition (shift %d): %d elements misplaced", shifted, bad);
        tf_window_reverse_forward(x2, w, B, T, F, C, wt, wf, st, sf);
        CHECK(!memcmp(x2, x, n * sizeof(float)));
        /* <P x, y> = <x, P^T y> with P^T from the backward; same for the reverse */
        memset(aty, 0, n * sizeof(float));
        tf_window_partition_backward(aty, y, B, T, F, C, wt, wf, st, sf);
        CHECK_NEAR(dot64(w, y, n), dot64(x, aty, n), 1e-9);
        tf_window_reverse_forward(x2, y, B, T, F, C, wt, wf, st, sf);
        memset(aty, 0, n * sizeof(float));
        tf_window_reverse_backward(aty, x, B, T, F, C, wt, wf, st, sf);
        CHECK_NEAR(dot64(x2, x, n), dot64(y, aty, n), 1e-9);
    }
    free(x), free(w), free(x2), free(y), free(aty);
}

static void test_map_seq_layouts(void) {
    enum { B = 2, C = 3, F = 4, T = 5, n = B * C * F * T };
    float x[n], tt[n], tf[n], sw[n], x2[n], y[n], aty[n];
    fill_normal(x, n, 1), fill_normal(y, n, 1);
    tf_map_to_seq_forward(tt, x, B, C, F, T, TF_SEQ_TIME);
    tf_map_to_seq_forward(tf, x, B, C, F, T, TF_SEQ_FREQ);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < F; f++)
                for (int t = 0; t < T; t++) {
                    float v = x[((b * C + c) * F + f) * T + t];
                    bad += tt[((b * F + f) * T + t) * C + c] != v; /* (B*F, T, C) */
                    bad += tf[((b * T + t) * F + f) * C + c] != v; /* (B*T, F, C) */
                }
    CHECKF(bad == 0, "%d token elements misplaced", bad);
    tf_seq_swap_forward(sw, tt, B, C, F, T, TF_SEQ_TIME);
    CHECK(!memcmp(sw, tf, sizeof sw));
    tf_seq_swap_forward(sw, tf, B, C, F, T, TF_SEQ_FREQ);
    CHECK(!memcmp(sw, tt, sizeof sw));
    for (int ax = 0; ax < 2; ax++) {
        const float *tok = ax ? tf : tt;
        tf_seq_to_map_forward(x2, tok, B, C, F, T, (tf_seq_axis)ax);
        CHECK(!memcmp(x2, x, sizeof x));
        memset(aty, 0, sizeof aty);
        tf_map_to_seq_backward(aty, y, B, C, F, T, (tf_seq_axis)ax);
        CHECK_NEAR(dot64(tok, y, n), dot64(x, aty, n), 1e-9);
        tf_seq_to_map_forward(x2, y, B, C, F, T, (tf_seq_axis)ax);
        memset(aty, 0, sizeof aty);
        tf_seq_to_map_backward(aty, x, B, C, F, T, (tf_seq_axis)ax);
        CHECK_NEAR(dot64(x2, x, n), dot64(y, aty, n), 1e-9);
        tf_seq_swap_forward(sw, y, B, C, F, T, (tf_seq_axis)ax);
        memset(aty, 0, sizeof aty);
        tf_seq_swap_backward(aty, x, B, C, F, T, (tf_seq_axis)ax);
        CHECK_NEAR(dot64(sw, x, n), dot64(y, aty, n), 1e-9);
    }
}

static void test_tblock_sizes(void) {
    const int N = 3, L = 20, C = 8, H = 2, Hd = 16, R = 63;
    const size_t nl = (size_t)N * L;
    size_t ns = tf_tblock_saved_floats(N, L, C, H, Hd), np = tf_tblock_param_floats(C, H, Hd, R);
    CHECK(ns == nl * (7 * C + 4 + 2 * Hd) + (size_t)N * H * L * L);
    CHECK(np == (size_t)4 * C * C + 2 * C * Hd + 9 * C + Hd + R * H);
    CHECK(tf_tblock_param_floats(C, H, Hd, 0) == np - (size_t)R * H);
    float *m = falloc(ns > np ? ns : np);
    tf_tblock_saved s;
    tf_tblock_saved_point(&s, m, N, L, C, H, Hd);
    CHECK(s.gelu + nl * Hd == m + ns && s.att == m + nl * (4 * C + 2));
    tf_tblock_params p;
    tf_tblock_params_point(&p, m, C, H, Hd, R);
    CHECK(p.rel_bias_table + R * H == m + np && p.fc2_b + C == p.rel_bias_table);
    tf_tblock_params_point(&p, m, C, H, Hd, 0);
    CHECK(p.rel_bias_table == NULL);
    CHECK(tf_attention_workspace_floats(10, L, H) == (size_t)10 * H * L * L);
    CHECK(tf_attention_workspace_floats(1000, L, H) == (size_t)64 * H * L * L);
    free(m);
}

static void test_swin_check_dims(void) {
    CHECK(tf_swin_check_dims(10, 8, 5, 4, 2, 2) == TF_OK);
    CHECK(tf_swin_check_dims(10, 8, 5, 4, 0, 0) == TF_OK);
    CHECK(tf_swin_check_dims(11, 8, 5, 4, 2, 2) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "11") && strstr(tf_errmsg(), "pad"));
    CHECK(tf_swin_check_dims(10, 6, 5, 4, 2, 2) == TF_EUSER);
    CHECK(tf_swin_check_dims(10, 8, 5, 4, 5, 2) == TF_EUSER);
    CHECK(tf_swin_check_dims(10, 8, 0, 4, 0, 0) == TF_EUSER);
    CHECK(tf_swin_check_dims(0, 8, 5, 4, 0, 0) == TF_EUSER);
}

/* --------------------------------------------------- backward accumulates (+=) */
/* run(ctx) calls a backward into grads (n); with grads pre-filled with g0 the result must be
 * g0 + (the result from zeros). */
static void check_accumulates(const char *what, void (*run)(void *), void *ctx, float *grads,
                              size_t n) {
    float *fresh = falloc(n), *g0 = falloc(n);
    memset(grads, 0, n * sizeof(float));
    run(ctx);
    memcpy(fresh, grads, n * sizeof(float));
    fill_normal(g0, n, 1);
    memcpy(grads, g0, n * sizeof(float));
    run(ctx);
    double err = 0, scale = fmax(max_abs(fresh, n), 1.0);
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs(grads[i] - g0[i] - fresh[i]));
    CHECKF(err <= 1e-5 * scale, "%s: backward does not accumulate (err %.3g)", what, err);
    free(fresh), free(g0);
}

typedef struct {
    float *x, *w, *b, *mean, *rstd, *dout, *g; /* g = dx | dw | db */
    int N, C;
} ln_acc;

static void run_ln(void *c) {
    ln_acc *k = c;
    tf_layernorm_backward(k->g, k->g + k->N * k->C, k->g + k->N * k->C + k->C, k->dout, k->x, k->w,
                          k->mean, k->rstd, k->N, k->C);
}

typedef struct {
    float *x, *w, *dout, *g;
    int N, IC, OC;
} lin_acc;

static void run_lin(void *c) {
    lin_acc *k = c;
    float *dx = k->g, *dw = dx + k->N * k->IC, *db = dw + k->OC * k->IC;
    tf_linear_backward(dx, dw, db, k->dout, k->x, k->w, k->N, k->IC, k->OC);
}

static void run_att(void *c) {
    att_ctx *k = c; /* k->y holds dqkv | dtable here */
    float *ws = falloc(tf_attention_workspace_floats(k->N, k->L, k->H));
    tf_attention_backward(k->y, k->y + k->N * k->L * 3 * k->C, k->dout, k->qkv, k->att, k->index,
                          k->N, k->L, k->C, k->H, ws);
    free(ws);
}

static void run_blk(void *c) {
    blk_backward(c); /* into both dx and gmem */
}

typedef struct {
    float *x, *g;
    int which;
} perm_acc;

static void run_perm(void *c) {
    perm_acc *k = c;
    switch (k->which) {
    case 0:
        tf_window_partition_backward(k->g, k->x, 2, 10, 8, 3, 5, 4, 2, 2);
        break;
    case 1:
        tf_window_reverse_backward(k->g, k->x, 2, 10, 8, 3, 5, 4, 2, 2);
        break;
    case 2:
        tf_map_to_seq_backward(k->g, k->x, 2, 3, 8, 10, TF_SEQ_TIME);
        break;
    case 3:
        tf_seq_to_map_backward(k->g, k->x, 2, 3, 8, 10, TF_SEQ_FREQ);
        break;
    case 4:
        tf_seq_swap_backward(k->g, k->x, 2, 3, 8, 10, TF_SEQ_TIME);
        break;
    default:
        tf_softmax_backward(k->g, k->x, k->x + 240, 4, 60);
        break;
    }
}

static void test_backward_accumulates(void) {
    enum { N = 3, C = 5, IC = 4, OC = 6 };
    float x[N * C], w[C], b[C], mean[N], rstd[N], y[N * C], dout[N * OC];
    float g[N * C + 2 * C];
    fill_normal(x, N * C, 1), fill_normal(w, C, 1), fill_normal(b, C, 1);
    fill_normal(dout, N * OC, 1);
    tf_layernorm_forward(y, mean, rstd, x, w, b, N, C);
    ln_acc la = {x, w, b, mean, rstd, dout, g, N, C};
    check_accumulates("layernorm", run_ln, &la, g, sizeof g / 4);

    float lx[N * IC], lw[OC * IC], lg[N * IC + OC * IC + OC];
    fill_normal(lx, N * IC, 1), fill_normal(lw, OC * IC, 1);
    lin_acc lc = {lx, lw, dout, lg, N, IC, OC};
    check_accumulates("linear", run_lin, &lc, lg, sizeof lg / 4);

    enum { AN = 2, L = 6, AC = 4, H = 2, R = 11 };
    float qkv[AN * L * 3 * AC], table[R * H], att[AN * H * L * L], ao[AN * L * AC];
    float adout[AN * L * AC], ag[AN * L * 3 * AC + R * H];
    int index[L * L];
    tf_swin_relpos_index(index, L, 1);
    fill_normal(qkv, sizeof qkv / 4, 1), fill_normal(table, R * H, 1);
    fill_normal(adout, AN * L * AC, 1);
    tf_attention_forward(ao, att, qkv, table, index, NULL, 1, AN, L, AC, H);
    att_ctx ac = {AN, L, AC, H, 1, qkv, table, NULL, ag, att, adout, index};
    check_accumulates("attention", run_att, &ac, ag, sizeof ag / 4);

    blk bk = {0};
    blk_init(&bk, 3, 5, 8, 2, 16, 9); /* plain: tf_tblock_backward's dinp directly */
    tf_swin_relpos_index(bk.index, 5, 1);
    blk_randomize(&bk);
    blk_forward(&bk);
    check_accumulates("tblock params", run_blk, &bk, bk.gmem, tf_tblock_param_floats(8, 2, 16, 9));
    check_accumulates("tblock dx", run_blk, &bk, bk.dx, bk.nx);
    blk_free(&bk);
    blk_init_swin(&bk, 1, 10, 8, 8, 2, 16, 5, 4, 1, 1);
    blk_randomize(&bk);
    blk_forward(&bk);
    check_accumulates("tblock params (swin)", run_blk, &bk, bk.gmem,
                      tf_tblock_param_floats(8, 2, 16, bk.R));
    check_accumulates("tblock dx (swin)", run_blk, &bk, bk.dx, bk.nx);
    blk_free(&bk);

    float px[480], pg[480];
    fill_normal(px, 480, 1);
    tf_softmax_forward(px + 240, px + 240, 4, 60);
    for (int which = 0; which < 6; which++) {
        perm_acc pa = {px, pg, which};
        check_accumulates("permutation/softmax", run_perm, &pa, pg, which == 5 ? 240 : 480);
    }
}

/* ------------------------------------- sizes that take the OpenMP / chunked paths */
/* The kernels switch to OpenMP above a size threshold and the attention backward works in
 * chunks of 64 sequences: compare those paths with one-row / one-sequence calls (which
 * take the sequential paths checked against PyTorch above) and a float64 linear. */
static void test_large_sizes_match_small_calls(void) {
    /* attention: N = 70 sequences (two chunks), L = 20 (5x4 window index), mask nW = 3 */
    enum { N = 70, L = 20, C = 16, H = 2, nW = 3, R = 63 };
    const size_t nq = (size_t)N * L * 3 * C, no = (size_t)N * L * C, na = (size_t)N * H * L * L;
    float *qkv = falloc(nq), *table = falloc(R * H), *mask = falloc(nW * L * L);
    float *y = falloc(no), *y1 = falloc(no), *att = falloc(na), *att1 = falloc(na);
    float *dout = falloc(no), *dq = falloc(nq), *dq1 = falloc(nq), *dt = falloc(R * H);
    float *dt1 = falloc(R * H), *ws = falloc(tf_attention_workspace_floats(N, L, H));
    int index[L * L];
    tf_swin_relpos_index(index, 5, 4);
    fill_normal(qkv, nq, 1), fill_normal(table, R * H, 0.5), fill_normal(dout, no, 1);
    tf_swin_attn_mask(mask, 5, 12, 5, 4, 2, 2); /* 3 windows of a 5 x 12 map */
    tf_attention_forward(y, att, qkv, table, index, mask, nW, N, L, C, H);
    tf_attention_backward(dq, dt, dout, qkv, att, index, N, L, C, H, ws);
    for (int n = 0; n < N; n++) {
        size_t oq = (size_t)n * L * 3 * C, oo = (size_t)n * L * C, oa = (size_t)n * H * L * L;
        tf_attention_forward(y1 + oo, att1 + oa, qkv + oq, table, index, mask + (n % nW) * L * L, 1,
                             1, L, C, H);
        tf_attention_backward(dq1 + oq, dt1, dout + oo, qkv + oq, att1 + oa, index, 1, L, C, H, ws);
    }
    CHECK_REL("attention N=70 out", y, y1, no, 1e-6);
    CHECK_REL("attention N=70 probs", att, att1, na, 1e-6);
    CHECK_REL("attention N=70 dqkv", dq, dq1, nq, 1e-6);
    CHECK_REL("attention N=70 dtable", dt, dt1, R * H, 1e-5);
    free(qkv), free(table), free(mask), free(y), free(y1), free(att), free(att1), free(dout);
    free(dq), free(dq1), free(dt), free(dt1), free(ws);

    /* layernorm: 600 x 64 rows at once vs one row at a time */
    enum { LN = 600, LC = 64 };
    float *x = falloc(LN * LC), *w = falloc(LC), *b = falloc(LC), *o = falloc(LN * LC);
    float *o1 = falloc(LN * LC), *mu = falloc(LN), *rs = falloc(LN), *lout = falloc(LN * LC);
    float *dx = falloc(LN * LC), *dx1 = falloc(LN * LC), *g = falloc(4 * LC);
    fill_normal(x, LN * LC, 2), fill_normal(w, LC, 1), fill_normal(b, LC, 1);
    fill_normal(lout, LN * LC, 1);
    tf_layernorm_forward(o, mu, rs, x, w, b, LN, LC);
    tf_layernorm_backward(dx, g, g + LC, lout, x, w, mu, rs, LN, LC);
    for (int n = 0; n < LN; n++) {
        float m1, r1;
        tf_layernorm_forward(o1 + n * LC, &m1, &r1, x + n * LC, w, b, 1, LC);
        tf_layernorm_backward(dx1 + n * LC, g + 2 * LC, g + 3 * LC, lout + n * LC, x + n * LC, w,
                              &m1, &r1, 1, LC);
    }
    CHECK_REL("layernorm 600x64 out", o, o1, LN * LC, 1e-6);
    CHECK_REL("layernorm 600x64 dx", dx, dx1, LN * LC, 1e-6);
    CHECK_REL("layernorm 600x64 dw", g, g + 2 * LC, LC, 1e-5);
    CHECK_REL("layernorm 600x64 db", g + LC, g + 3 * LC, LC, 1e-5);
    free(x), free(w), free(b), free(o), free(o1), free(mu), free(rs), free(lout), free(dx);
    free(dx1), free(g);

    /* linear: 1100 x 16 -> 64 against float64 loops */
    enum { M = 1100, IC = 16, OC = 64 };
    float *li = falloc(M * IC), *lw = falloc(OC * IC), *lb = falloc(OC), *ly = falloc(M * OC);
    float *ld = falloc(M * OC), *ldx = falloc(M * IC), *ldw = falloc(OC * IC), *ldb = falloc(OC);
    float *ry = falloc(M * OC), *rdx = falloc(M * IC), *rdw = falloc(OC * IC), *rdb = falloc(OC);
    fill_normal(li, M * IC, 1), fill_normal(lw, OC * IC, 1), fill_normal(lb, OC, 1);
    fill_normal(ld, M * OC, 1);
    tf_linear_forward(ly, li, lw, lb, M, IC, OC);
    tf_linear_backward(ldx, ldw, ldb, ld, li, lw, M, IC, OC);
    for (int m = 0; m < M; m++)
        for (int oc = 0; oc < OC; oc++) {
            double s = lb[oc];
            for (int i = 0; i < IC; i++) s += (double)li[m * IC + i] * lw[oc * IC + i];
            ry[m * OC + oc] = (float)s;
        }
    for (int m = 0; m < M; m++)
        for (int i = 0; i < IC; i++) {
            double s = 0;
            for (int oc = 0; oc < OC; oc++) s += (double)ld[m * OC + oc] * lw[oc * IC + i];
            rdx[m * IC + i] = (float)s;
        }
    for (int oc = 0; oc < OC; oc++) {
        double sb = 0;
        for (int i = 0; i < IC; i++) {
            double s = 0;
            for (int m = 0; m < M; m++) s += (double)ld[m * OC + oc] * li[m * IC + i];
            rdw[oc * IC + i] = (float)s;
        }
        for (int m = 0; m < M; m++) sb += ld[m * OC + oc];
        rdb[oc] = (float)sb;
    }
    CHECK_REL("linear 1100x16x64 out", ly, ry, M * OC, 1e-5);
    CHECK_REL("linear 1100x16x64 dx", ldx, rdx, M * IC, 1e-5);
    CHECK_REL("linear 1100x16x64 dw", ldw, rdw, OC * IC, 1e-5);
    CHECK_REL("linear 1100x16x64 db", ldb, rdb, OC, 1e-5);
    free(li), free(lw), free(lb), free(ly), free(ld), free(ldx), free(ldw), free(ldb), free(ry);
    free(rdx), free(rdw), free(rdb);

    /* permutations: (2, 20, 16, 128) map, element formula and round trips */
    enum { PB = 2, PT = 20, PF = 16, PC = 128, wt = 5, wf = 4, st = 2, sf = 2 };
    const size_t np = (size_t)PB * PT * PF * PC;
    float *px = falloc(np), *pw = falloc(np), *px2 = falloc(np);
    fill_normal(px, np, 1);
    tf_window_partition_forward(pw, px, PB, PT, PF, PC, wt, wf, st, sf);
    int bad = 0;
    for (int bb = 0; bb < PB; bb++)
        for (int tr = 0; tr < PT; tr++)
            for (int fr = 0; fr < PF; fr++) {
                size_t w = ((size_t)bb * (PT / wt) + tr / wt) * (PF / wf) + fr / wf;
                size_t iw = (w * wt * wf + (tr % wt) * wf + fr % wf) * PC;
                size_t ix = (((size_t)bb * PT + (tr + st) % PT) * PF + (fr + sf) % PF) * PC;
                bad += memcmp(pw + iw, px + ix, PC * sizeof(float)) != 0;
            }
    CHECKF(bad == 0, "large partition: %d tokens misplaced", bad);
    tf_window_reverse_forward(px2, pw, PB, PT, PF, PC, wt, wf, st, sf);
    CHECK(!memcmp(px2, px, np * sizeof(float)));
    tf_map_to_seq_forward(pw, px, PB, PC, PF, PT, TF_SEQ_TIME);
    tf_seq_to_map_forward(px2, pw, PB, PC, PF, PT, TF_SEQ_TIME);
    CHECK(!memcmp(px2, px, np * sizeof(float)));
    bad = 0;
    for (int bb = 0; bb < PB; bb++)
        for (int c = 0; c < PC; c += 7)
            for (int f = 0; f < PF; f++)
                for (int t = 0; t < PT; t++)
                    bad += pw[(((size_t)bb * PF + f) * PT + t) * PC + c] !=
                           px[(((size_t)bb * PC + c) * PF + f) * PT + t];
    CHECKF(bad == 0, "large map_to_seq: %d elements misplaced", bad);
    free(px), free(pw), free(px2);
}

int main(void) {
    tf_rng_seed(&g_rng, 20250101, 1, 2, 3);
    RUN(test_torch_reference_runs);
    RUN(test_torch_layernorm);
    RUN(test_torch_linear);
    RUN(test_torch_attention_bias_mask);
    RUN(test_torch_tblock_plain);
    RUN(test_torch_swin_wmsa);
    RUN(test_torch_swin_swmsa);
    RUN(test_fd_layernorm);
    RUN(test_fd_linear);
    RUN(test_fd_softmax);
    RUN(test_fd_attention_bias_mask);
    RUN(test_fd_tblock_bias_mask);
    RUN(test_fd_swin_swmsa_block);
    RUN(test_swmsa_mask_locality);
    RUN(test_window_partition_roll_adjoint);
    RUN(test_map_seq_layouts);
    RUN(test_swin_check_dims);
    RUN(test_tblock_sizes);
    RUN(test_backward_accumulates);
    RUN(test_large_sizes_match_small_calls);
    for (int i = 0; i < g_nref; i++) free(g_ref[i].data);
    free(g_ref);
    return TEST_END();
}
