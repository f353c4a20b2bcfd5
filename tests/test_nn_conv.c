/* conv2d, batchnorm2d, avgpool2x2, upsample2x, concat: against PyTorch (forward and
 * autograd of (out * dout).sum(), computed in float64 by tests/reference/nn_conv_ref.py)
 * and against central finite differences of the same loss in float64, independently of
 * PyTorch. PyTorch (python3-torch for /usr/bin/python3) is a declared test dependency:
 * without it the reference tests FAIL with a message saying so.
 *
 * Tolerances: relative max error max|a - b| / max|b| per tensor; forward 1e-5 and
 * gradients 1e-4 against the float64 reference (float32 kernels over <= 36-term sums
 * are ~1e-7 off). Finite differences use eps = 1e-2: conv, pooling, upsampling and
 * concat are linear in each argument, so the central difference has no truncation
 * error and only float32 rounding of the forward shows, divided by 2 eps (a smaller eps
 * amplifies that noise); batch norm is smooth with O(eps^2) ~ 1e-4 truncation at unit
 * scale. Measured: ~1e-7 against PyTorch, <= 4e-5 against finite differences; the
 * finite-difference checks use 1e-3. */
#include <limits.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/conv.h"
#include "test.h"
#include "util/rng.h"

/* ---- reference file ---------------------------------------------------------------- */

#define REF_SEED  1234
#define REF_MAX   128
#define REF_MAXND 4

typedef struct {
    char name[64];
    int ndim, dims[REF_MAXND];
    size_t n;
    const unsigned char *data; /* n little-endian float32, possibly unaligned */
} ref_tensor;

static ref_tensor g_ref[REF_MAX];
static int g_nref;
static unsigned char *g_refbuf;
static char g_referr[PATH_MAX + 256] = "reference not loaded";

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Parse a "TFREF001" file (format in nn_conv_ref.py); 0 on success. */
static int ref_parse(unsigned char *buf, size_t size) {
    size_t pos = 12;
    if (size < 12 || memcmp(buf, "TFREF001", 8) != 0) return -1;
    uint32_t count = rd_u32(buf + 8);
    if (count > REF_MAX) return -1;
    for (uint32_t i = 0; i < count; i++) {
        ref_tensor *t = &g_ref[i];
        if (pos + 4 > size) return -1;
        uint32_t len = rd_u32(buf + pos);
        pos += 4;
        if (len >= sizeof t->name || pos + len + 4 > size) return -1;
        memcpy(t->name, buf + pos, len), t->name[len] = 0;
        pos += len;
        uint32_t nd = rd_u32(buf + pos);
        pos += 4;
        if (nd > REF_MAXND || pos + 4 * (size_t)nd > size) return -1;
        t->ndim = (int)nd, t->n = 1;
        for (uint32_t d = 0; d < nd; d++, pos += 4) {
            t->dims[d] = (int)rd_u32(buf + pos);
            t->n *= (size_t)t->dims[d];
        }
        if (t->n > (size - pos) / 4) return -1;
        t->data = buf + pos;
        pos += 4 * t->n;
    }
    g_nref = (int)count;
    return pos == size ? 0 : -1;
}

/* Locate the script: next to this source file (relative to the build's working dir,
 * the repo root), else relative to the executable (BUILD/tests/test_nn_conv). */
static int find_script(char *path, size_t cap) {
    char dir[PATH_MAX - 64];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    snprintf(path, cap, "%s/reference/nn_conv_ref.py", dir);
    if (access(path, R_OK) == 0) return 0;
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) return -1;
    dir[n] = 0;
    for (int up = 0; up < 3; up++) { /* strip test_nn_conv, tests, BUILD */
        slash = strrchr(dir, '/');
        if (!slash) return -1;
        *slash = 0;
    }
    snprintf(path, cap, "%s/tests/reference/nn_conv_ref.py", dir);
    return access(path, R_OK) == 0 ? 0 : -1;
}

static int ref_load(void) {
    char script[PATH_MAX], tmpl[] = "/tmp/tfswa_nnconv_XXXXXX", file[PATH_MAX], cmd[3 * PATH_MAX];
    if (access("/usr/bin/python3", X_OK) != 0) {
        snprintf(g_referr, sizeof g_referr,
                 "/usr/bin/python3 not found: python3 with torch is a test dependency");
        return -1;
    }
    if (find_script(script, sizeof script) != 0) {
        snprintf(g_referr, sizeof g_referr, "cannot find tests/reference/nn_conv_ref.py");
        return -1;
    }
    if (!mkdtemp(tmpl)) {
        snprintf(g_referr, sizeof g_referr, "mkdtemp failed");
        return -1;
    }
    snprintf(file, sizeof file, "%s/ref.bin", tmpl);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 /usr/bin/python3 '%s' %d '%s'", script, REF_SEED,
             file);
    int rc = system(cmd), ok = -1;
    if (rc != 0) {
        snprintf(g_referr, sizeof g_referr,
                 "'%s' failed (exit %d): PyTorch reference unavailable (python3-torch for "
                 "/usr/bin/python3 is a test dependency)",
                 script, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    } else {
        FILE *f = fopen(file, "rb");
        long size = -1;
        if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
        if (f && size > 0 && fseek(f, 0, SEEK_SET) == 0 && (g_refbuf = malloc((size_t)size)) &&
            fread(g_refbuf, 1, (size_t)size, f) == (size_t)size &&
            ref_parse(g_refbuf, (size_t)size) == 0)
            ok = 0;
        else
            snprintf(g_referr, sizeof g_referr, "cannot read or parse %s", file);
        if (f) fclose(f);
    }
    remove(file);
    rmdir(tmpl);
    return ok;
}

/* The tensor `name`; NULL (and a failed check) when it is missing or its shape differs
 * from the ndim dims given (-1 = any). Data are copied to aligned storage by the caller. */
static const ref_tensor *ref_get(const char *name, int ndim, const int *dims) {
    for (int i = 0; i < g_nref; i++) {
        ref_tensor *t = &g_ref[i];
        if (strcmp(t->name, name) != 0) continue;
        int ok = t->ndim == ndim;
        for (int d = 0; ok && d < ndim; d++) ok = dims[d] < 0 || dims[d] == t->dims[d];
        CHECKF(ok, "reference tensor %s has an unexpected shape", name);
        return ok ? t : NULL;
    }
    CHECKF(0, "reference tensor %s missing (%s)", name, g_referr);
    return NULL;
}

/* malloc'd float copy of a reference tensor (the file's data may be unaligned) */
static float *ref_copy(const char *name, int ndim, const int *dims) {
    const ref_tensor *t = ref_get(name, ndim, dims);
    if (!t) return NULL;
    float *p = malloc(t->n * sizeof(float));
    if (p) memcpy(p, t->data, t->n * sizeof(float));
    return p;
}

/* ---- helpers ------------------------------------------------------------------------ */

static float *zeros(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static float *randn(size_t n, uint64_t stream, float scale, float shift) {
    tf_rng r;
    tf_rng_seed(&r, 99, stream, 0, 0);
    float *p = zeros(n);
    for (size_t i = 0; i < n; i++) p[i] = shift + scale * (float)tf_rng_normal(&r);
    return p;
}

/* max|a - b| / max|b| (absolute when b is all zero) */
static double relerr(const float *a, const float *b, size_t n) {
    double e = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - (double)b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? e / m : e;
}

#define CHECK_REL(what, a, b, n, tol)                                                              \
    do {                                                                                           \
        const float *a__ = (a), *b__ = (b);                                                        \
        double e__ = (a__ && b__) ? relerr(a__, b__, (n)) : INFINITY;                              \
        CHECKF(e__ <= (tol), "%s: relative max error %.3g > %g", (what), e__, (double)(tol));      \
    } while (0)

/* Workspace of exactly tf_conv2d_workspace_floats() floats (NULL when 0), so ASan catches
 * any access past the documented size. */
static float *conv_ws(int Cin, int Cout, int H, int W, int k, int tile, int nt) {
    size_t n = tf_conv2d_workspace_floats(Cin, Cout, H, W, k, tile, nt);
    if (!n) return NULL;
    float *p = malloc(n * sizeof(float));
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = NAN; /* kernels must not read stale scratch */
    return p;
}

/* Central finite differences of L(p) = sum(fwd(p) * dout) in double, for every element
 * of param (n_param); returns max|num - grad| / max|grad|. */
typedef void (*fwd_fn)(void *ctx, float *out);
static double fd_relerr(fwd_fn fwd, void *ctx, float *out, const float *dout, size_t n_out,
                        float *param, size_t n_param, const float *grad, float eps) {
    double e = 0.0, m = 0.0;
    for (size_t i = 0; i < n_param; i++) {
        float v = param[i];
        double l[2];
        for (int s = 0; s < 2; s++) {
            param[i] = s ? v - eps : v + eps;
            fwd(ctx, out);
            double acc = 0.0;
            for (size_t j = 0; j < n_out; j++) acc += (double)out[j] * dout[j];
            l[s] = acc;
        }
        param[i] = v;
        double num = (l[0] - l[1]) / (2.0 * (double)eps);
        e = fmax(e, fabs(num - grad[i]));
        m = fmax(m, fabs((double)grad[i]));
    }
    return m > 0 ? e / m : e;
}

#define FD_EPS 1e-2f
#define FD_TOL 1e-3

/* ---- conv2d ------------------------------------------------------------------------- */

typedef struct {
    const float *inp, *w, *bias;
    int B, Cin, Cout, H, W, k, tile, nt;
    float *ws;
} conv_ctx;

static void conv_fwd(void *p, float *out) {
    conv_ctx *c = p;
    tf_conv2d_forward(out, c->inp, c->w, c->bias, c->B, c->Cin, c->Cout, c->H, c->W, c->k, c->ws,
                      c->tile, c->nt);
}

static void check_conv_case(const char *cs, int k, int has_bias, int tile, int nt) {
    char nm[64], what[96];
    const ref_tensor *ti, *tw;
    snprintf(nm, sizeof nm, "%s.inp", cs);
    int any4[4] = {-1, -1, -1, -1};
    if (!(ti = ref_get(nm, 4, any4))) return;
    snprintf(nm, sizeof nm, "%s.weight", cs);
    int wd[4] = {-1, ti->dims[1], k, k};
    if (!(tw = ref_get(nm, 4, wd))) return;
    int B = ti->dims[0], Cin = ti->dims[1], H = ti->dims[2], W = ti->dims[3], Cout = tw->dims[0];
    int od[4] = {B, Cout, H, W}, bd[1] = {Cout};
    size_t n_in = ti->n, n_out = (size_t)B * Cout * H * W, n_w = tw->n;
#define LOAD(var, suffix, nd, dims)                                                                \
    snprintf(nm, sizeof nm, "%s." suffix, cs);                                                     \
    float *var = ref_copy(nm, nd, dims);
    LOAD(inp, "inp", 4, ti->dims)
    LOAD(w, "weight", 4, tw->dims)
    LOAD(dout, "dout", 4, od)
    LOAD(out_ref, "out", 4, od)
    LOAD(dinp_ref, "dinp", 4, ti->dims)
    LOAD(dw_ref, "dweight", 4, tw->dims)
    float *bias = NULL, *db_ref = NULL;
    if (has_bias) {
        snprintf(nm, sizeof nm, "%s.bias", cs);
        bias = ref_copy(nm, 1, bd);
        snprintf(nm, sizeof nm, "%s.dbias", cs);
        db_ref = ref_copy(nm, 1, bd);
    }
#undef LOAD
    float *ws = conv_ws(Cin, Cout, H, W, k, tile, nt);
    float *out = zeros(n_out), *dinp = zeros(n_in), *dw = zeros(n_w), *db = zeros(Cout);
    if (inp && w && dout && (!has_bias || bias)) {
        tf_conv2d_forward(out, inp, w, bias, B, Cin, Cout, H, W, k, ws, tile, nt);
        tf_conv2d_backward(dinp, dw, has_bias ? db : NULL, dout, inp, w, B, Cin, Cout, H, W, k, ws,
                           tile, nt);
    }
    snprintf(what, sizeof what, "%s tile=%d threads=%d out", cs, tile, nt);
    CHECK_REL(what, out, out_ref, n_out, 1e-5);
    snprintf(what, sizeof what, "%s tile=%d threads=%d dinp", cs, tile, nt);
    CHECK_REL(what, dinp, dinp_ref, n_in, 1e-4);
    snprintf(what, sizeof what, "%s tile=%d threads=%d dweight", cs, tile, nt);
    CHECK_REL(what, dw, dw_ref, n_w, 1e-4);
    if (has_bias) {
        snprintf(what, sizeof what, "%s tile=%d threads=%d dbias", cs, tile, nt);
        CHECK_REL(what, db, db_ref, (size_t)Cout, 1e-4);
    }
    free(inp), free(w), free(dout), free(out_ref), free(dinp_ref), free(dw_ref), free(bias);
    free(db_ref), free(ws), free(out), free(dinp), free(dw), free(db);
}

static void test_conv_matches_pytorch(void) {
    /* one tile / one thread, many tiles splitting rows, threads with uneven tiles */
    const int cfg[4][2] = {{0, 1}, {7, 1}, {7, 2}, {16, 3}};
    for (int c = 0; c < 4; c++) {
        check_conv_case("conv3a", 3, 1, cfg[c][0], cfg[c][1]);
        check_conv_case("conv3b", 3, 0, cfg[c][0], cfg[c][1]);
        check_conv_case("conv1", 1, 1, cfg[c][0], cfg[c][1]);
    }
}

/* Several tiles (and threads) give the one-tile, one-thread result. */
static void test_conv_tiling_consistent(void) {
    int B = 2, Cin = 5, Cout = 6, H = 9, W = 11, hw = H * W;
    for (int k = 1; k <= 3; k += 2) {
        size_t n_in = (size_t)B * Cin * hw, n_out = (size_t)B * Cout * hw;
        size_t n_w = (size_t)Cout * Cin * k * k;
        float *inp = randn(n_in, 1, 1.f, 0.f), *w = randn(n_w, 2, 0.3f, 0.f);
        float *bias = randn(Cout, 3, 1.f, 0.f), *dout = randn(n_out, 4, 1.f, 0.f);
        float *o1 = zeros(n_out), *di1 = zeros(n_in), *dw1 = zeros(n_w), *db1 = zeros(Cout);
        float *ws = conv_ws(Cin, Cout, H, W, k, hw, 1);
        tf_conv2d_forward(o1, inp, w, bias, B, Cin, Cout, H, W, k, ws, hw, 1);
        tf_conv2d_backward(di1, dw1, db1, dout, inp, w, B, Cin, Cout, H, W, k, ws, hw, 1);
        free(ws);
        const int cfg[4][2] = {{13, 1}, {13, 2}, {W, 3}, {1, 2}};
        for (int c = 0; c < 4; c++) {
            int tile = cfg[c][0], nt = cfg[c][1];
            float *o = zeros(n_out), *di = zeros(n_in), *dw = zeros(n_w), *db = zeros(Cout);
            ws = conv_ws(Cin, Cout, H, W, k, tile, nt);
            tf_conv2d_forward(o, inp, w, bias, B, Cin, Cout, H, W, k, ws, tile, nt);
            tf_conv2d_backward(di, dw, db, dout, inp, w, B, Cin, Cout, H, W, k, ws, tile, nt);
            char what[64];
            snprintf(what, sizeof what, "k=%d tile=%d threads=%d", k, tile, nt);
            CHECK_REL(what, o, o1, n_out, 1e-6);
            CHECK_REL(what, di, di1, n_in, 1e-6);
            CHECK_REL(what, dw, dw1, n_w, 1e-6);
            CHECK_REL(what, db, db1, (size_t)Cout, 1e-6);
            free(ws), free(o), free(di), free(dw), free(db);
        }
        free(inp), free(w), free(bias), free(dout), free(o1), free(di1), free(dw1), free(db1);
    }
}

static void test_conv_finite_difference(void) {
    int B = 2, Cin = 3, Cout = 4, H = 5, W = 7, hw = H * W;
    for (int k = 1; k <= 3; k += 2) {
        size_t n_in = (size_t)B * Cin * hw, n_out = (size_t)B * Cout * hw;
        size_t n_w = (size_t)Cout * Cin * k * k;
        float *inp = randn(n_in, 11, 1.f, 0.f), *w = randn(n_w, 12, 0.3f, 0.f);
        float *bias = randn(Cout, 13, 1.f, 0.f), *dout = randn(n_out, 14, 1.f, 0.f);
        float *out = zeros(n_out), *di = zeros(n_in), *dw = zeros(n_w), *db = zeros(Cout);
        float *ws = conv_ws(Cin, Cout, H, W, k, 8, 2);
        tf_conv2d_backward(di, dw, db, dout, inp, w, B, Cin, Cout, H, W, k, ws, 8, 2);
        conv_ctx c = {inp, w, bias, B, Cin, Cout, H, W, k, 8, 2, ws};
        double e_in = fd_relerr(conv_fwd, &c, out, dout, n_out, inp, n_in, di, FD_EPS);
        double e_w = fd_relerr(conv_fwd, &c, out, dout, n_out, w, n_w, dw, FD_EPS);
        double e_b = fd_relerr(conv_fwd, &c, out, dout, n_out, bias, Cout, db, FD_EPS);
        CHECKF(e_in < FD_TOL && e_w < FD_TOL && e_b < FD_TOL,
               "k=%d finite differences: dinp %.3g dweight %.3g dbias %.3g", k, e_in, e_w, e_b);
        free(inp), free(w), free(bias), free(dout), free(out), free(di), free(dw), free(db);
        free(ws);
    }
}

/* Backward adds: two calls on gradients starting at g0 give g0 + 2 g. */
static void test_conv_backward_accumulates(void) {
    int B = 2, Cin = 3, Cout = 4, H = 5, W = 6, hw = H * W;
    for (int k = 1; k <= 3; k += 2) {
        size_t n_in = (size_t)B * Cin * hw, n_out = (size_t)B * Cout * hw;
        size_t n_w = (size_t)Cout * Cin * k * k;
        float *inp = randn(n_in, 21, 1.f, 0.f), *w = randn(n_w, 22, 0.3f, 0.f);
        float *dout = randn(n_out, 24, 1.f, 0.f);
        float *di1 = zeros(n_in), *dw1 = zeros(n_w), *db1 = zeros(Cout);
        float *di2 = randn(n_in, 25, 1.f, 0.f), *dw2 = randn(n_w, 26, 1.f, 0.f);
        float *db2 = randn(Cout, 27, 1.f, 0.f);
        float *e_i = zeros(n_in), *e_w = zeros(n_w), *e_b = zeros(Cout);
        float *ws = conv_ws(Cin, Cout, H, W, k, 7, 2);
        tf_conv2d_backward(di1, dw1, db1, dout, inp, w, B, Cin, Cout, H, W, k, ws, 7, 2);
        for (size_t i = 0; i < n_in; i++) e_i[i] = di2[i] + 2 * di1[i];
        for (size_t i = 0; i < n_w; i++) e_w[i] = dw2[i] + 2 * dw1[i];
        for (int i = 0; i < Cout; i++) e_b[i] = db2[i] + 2 * db1[i];
        for (int r = 0; r < 2; r++)
            tf_conv2d_backward(di2, dw2, db2, dout, inp, w, B, Cin, Cout, H, W, k, ws, 7, 2);
        CHECK_REL("conv dinp accumulates", di2, e_i, n_in, 1e-6);
        CHECK_REL("conv dweight accumulates", dw2, e_w, n_w, 1e-6);
        CHECK_REL("conv dbias accumulates", db2, e_b, (size_t)Cout, 1e-6);
        /* dinp and dbias may be NULL: dweight still right */
        float *dw3 = zeros(n_w);
        tf_conv2d_backward(NULL, dw3, NULL, dout, inp, w, B, Cin, Cout, H, W, k, ws, 7, 2);
        CHECK_REL("conv dweight with dinp NULL", dw3, dw1, n_w, 1e-6);
        free(inp), free(w), free(dout), free(di1), free(dw1), free(db1), free(di2), free(dw2);
        free(db2), free(e_i), free(e_w), free(e_b), free(ws), free(dw3);
    }
}

static void test_conv_workspace_and_flops(void) {
    /* k=3: max(fwd nt*Cin*9*t, bwd Cin*Cout*9 + (nt-1)*Cout*Cin*9 + nt*max*9*t) */
    CHECK(tf_conv2d_workspace_floats(3, 4, 6, 10, 3, 0, 1) == (size_t)(108 + 4 * 9 * 60));
    CHECK(tf_conv2d_workspace_floats(3, 4, 6, 10, 3, 16, 2) == (size_t)(2 * 108 + 2 * 4 * 9 * 16));
    CHECK(tf_conv2d_workspace_floats(32, 32, 256, 128, 3, 4096, 2) ==
          (size_t)(2 * 9216 + 2 * 288 * 4096));
    CHECK(tf_conv2d_workspace_floats(3, 4, 6, 10, 1, 0, 1) == 0);
    CHECK(tf_conv2d_workspace_floats(3, 4, 6, 10, 1, 0, 3) == (size_t)(2 * 12));
    CHECK(tf_conv2d_workspace_floats(3, 4, 6, 10, 5, 0, 1) == 0);
    CHECK(tf_conv2d_flops(1, 32, 32, 256, 128, 3) == 2.0 * 32 * 32 * 9 * 256 * 128);
}

/* ---- batchnorm2d -------------------------------------------------------------------- */

typedef struct {
    const float *inp, *w, *b, *rm, *rv;
    float *mean, *rstd;
    int B, C, H, W, train;
} bn_ctx;

static void bn_fwd(void *p, float *out) {
    bn_ctx *c = p;
    if (c->train)
        tf_batchnorm2d_forward(out, c->mean, c->rstd, NULL, NULL, c->inp, c->w, c->b, c->B, c->C,
                               c->H, c->W, 0.1f, 1e-5f);
    else
        tf_batchnorm2d_eval_forward(out, c->inp, c->w, c->b, c->rm, c->rv, c->B, c->C, c->H, c->W,
                                    1e-5f);
}

static void check_bn_case(const char *cs, int train) {
    char nm[64], what[96];
    const ref_tensor *ti;
    int any4[4] = {-1, -1, -1, -1};
    snprintf(nm, sizeof nm, "%s.inp", cs);
    if (!(ti = ref_get(nm, 4, any4))) return;
    int B = ti->dims[0], C = ti->dims[1], H = ti->dims[2], W = ti->dims[3], cd[1] = {C};
    size_t n = ti->n;
    const char *names[] = {"inp",          "weight", "bias",          "running_mean0",
                           "running_var0", "dout",   "out",           "dinp",
                           "dweight",      "dbias",  "running_mean1", "running_var1"};
    float *t[12];
    for (int i = 0; i < 12; i++) {
        snprintf(nm, sizeof nm, "%s.%s", cs, names[i]);
        int big = i == 0 || i == 5 || i == 6 || i == 7;
        t[i] = ref_copy(nm, big ? 4 : 1, big ? ti->dims : cd);
    }
    int ok = 1;
    for (int i = 0; i < 12; i++) ok = ok && t[i];
    float *out = zeros(n), *dinp = zeros(n), *dw = zeros(C), *db = zeros(C);
    float *mean = zeros(C), *rstd = zeros(C), *rm = zeros(C), *rv = zeros(C);
    if (ok) {
        memcpy(rm, t[3], C * sizeof(float)), memcpy(rv, t[4], C * sizeof(float));
        if (train) {
            tf_batchnorm2d_forward(out, mean, rstd, rm, rv, t[0], t[1], t[2], B, C, H, W, 0.1f,
                                   1e-5f);
            tf_batchnorm2d_backward(dinp, dw, db, t[5], t[0], t[1], mean, rstd, B, C, H, W);
        } else {
            tf_batchnorm2d_eval_forward(out, t[0], t[1], t[2], rm, rv, B, C, H, W, 1e-5f);
            tf_batchnorm2d_eval_backward(dinp, dw, db, t[5], t[0], t[1], rm, rv, B, C, H, W, 1e-5f);
        }
    }
    const struct {
        const char *n;
        float *a;
        int ref;
        size_t len;
        double tol;
    } cmp[] = {{"out", out, 6, n, 1e-5},          {"dinp", dinp, 7, n, 1e-4},
               {"dweight", dw, 8, C, 1e-4},       {"dbias", db, 9, C, 1e-4},
               {"running_mean", rm, 10, C, 1e-5}, {"running_var", rv, 11, C, 1e-5}};
    for (int i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "%s %s", cs, cmp[i].n);
        CHECK_REL(what, cmp[i].a, t[cmp[i].ref], cmp[i].len, cmp[i].tol);
    }
    for (int i = 0; i < 12; i++) free(t[i]);
    free(out), free(dinp), free(dw), free(db), free(mean), free(rstd), free(rm), free(rv);
}

/* Batch statistics, the running-stat update with the UNBIASED variance (momentum 0.1) and
 * the exact training backward match PyTorch. */
static void test_bn_train_matches_pytorch(void) {
    check_bn_case("bn", 1);
}

/* Eval mode uses (and keeps) the running statistics. */
static void test_bn_eval_matches_pytorch(void) {
    check_bn_case("bneval", 0);
}

/* The running variance really is the unbiased one (would be off by n/(n-1) otherwise). */
static void test_bn_running_var_unbiased(void) {
    float x[4] = {1.f, 2.f, 4.f, 7.f}, out[4], mean, rstd, rm = 0.f, rv = 1.f;
    tf_batchnorm2d_forward(out, &mean, &rstd, &rm, &rv, x, NULL, NULL, 1, 1, 2, 2, 0.1f, 1e-5f);
    /* mean 3.5, biased var 5.25, unbiased 7 */
    CHECK_NEAR(mean, 3.5, 1e-6);
    CHECK_NEAR(rstd, 1.0 / sqrt(5.25 + 1e-5), 1e-6);
    CHECK_NEAR(rm, 0.35, 1e-6);
    CHECK_NEAR(rv, 0.9 + 0.1 * 7.0, 1e-6);
}

static void test_bn_finite_difference(void) {
    int B = 2, C = 3, H = 4, W = 5;
    size_t n = (size_t)B * C * H * W;
    for (int train = 0; train <= 1; train++) {
        float *x = randn(n, 31, 2.f, 0.5f), *w = randn(C, 32, 0.5f, 1.f), *b = randn(C, 33, 1, 0);
        float *rm = randn(C, 34, 1.f, 0.f), *rv = randn(C, 35, 0.2f, 1.f);
        float *dout = randn(n, 36, 1.f, 0.f), *out = zeros(n);
        float *dx = zeros(n), *dw = zeros(C), *db = zeros(C), *mean = zeros(C), *rstd = zeros(C);
        bn_ctx c = {x, w, b, rm, rv, mean, rstd, B, C, H, W, train};
        bn_fwd(&c, out);
        if (train)
            tf_batchnorm2d_backward(dx, dw, db, dout, x, w, mean, rstd, B, C, H, W);
        else
            tf_batchnorm2d_eval_backward(dx, dw, db, dout, x, w, rm, rv, B, C, H, W, 1e-5f);
        double e_x = fd_relerr(bn_fwd, &c, out, dout, n, x, n, dx, FD_EPS);
        double e_w = fd_relerr(bn_fwd, &c, out, dout, n, w, C, dw, FD_EPS);
        double e_b = fd_relerr(bn_fwd, &c, out, dout, n, b, C, db, FD_EPS);
        CHECKF(e_x < FD_TOL && e_w < FD_TOL && e_b < FD_TOL,
               "bn %s finite differences: dinp %.3g dweight %.3g dbias %.3g",
               train ? "train" : "eval", e_x, e_w, e_b);
        free(x), free(w), free(b), free(rm), free(rv), free(dout), free(out), free(dx), free(dw);
        free(db), free(mean), free(rstd);
    }
}

static void test_bn_backward_accumulates(void) {
    int B = 2, C = 3, H = 3, W = 4;
    size_t n = (size_t)B * C * H * W;
    for (int train = 0; train <= 1; train++) {
        float *x = randn(n, 41, 1.f, 0.f), *w = randn(C, 42, 1.f, 0.f), *rv = randn(C, 43, .1f, 1);
        float *dout = randn(n, 44, 1.f, 0.f), *mean = zeros(C), *rstd = zeros(C), *out = zeros(n);
        float *g1[3] = {zeros(n), zeros(C), zeros(C)};
        float *g2[3] = {randn(n, 45, 1, 0), randn(C, 46, 1, 0), randn(C, 47, 1, 0)};
        float *ex[3] = {zeros(n), zeros(C), zeros(C)};
        size_t len[3] = {n, (size_t)C, (size_t)C};
        tf_batchnorm2d_forward(out, mean, rstd, NULL, NULL, x, w, NULL, B, C, H, W, 0.1f, 1e-5f);
        for (int r = 0; r < 3; r++) {
            float **g = r == 0 ? g1 : g2;
            if (train)
                tf_batchnorm2d_backward(g[0], g[1], g[2], dout, x, w, mean, rstd, B, C, H, W);
            else
                tf_batchnorm2d_eval_backward(g[0], g[1], g[2], dout, x, w, mean, rv, B, C, H, W,
                                             1e-5f);
            if (r == 0)
                for (int t = 0; t < 3; t++)
                    for (size_t i = 0; i < len[t]; i++) ex[t][i] = g2[t][i] + 2 * g1[t][i];
        }
        for (int t = 0; t < 3; t++) {
            CHECK_REL(train ? "bn train accumulates" : "bn eval accumulates", g2[t], ex[t], len[t],
                      1e-6);
            free(g1[t]), free(g2[t]), free(ex[t]);
        }
        free(x), free(w), free(rv), free(dout), free(mean), free(rstd), free(out);
    }
}

/* ---- avgpool, upsample, concat ------------------------------------------------------- */

typedef struct {
    const float *inp, *b;
    int B, C, C2, H, W, op; /* op 0 pool, 1 upsample, 2 concat */
} rs_ctx;

static void rs_fwd(void *p, float *out) {
    rs_ctx *c = p;
    if (c->op == 0)
        tf_avgpool2x2_forward(out, c->inp, c->B, c->C, c->H, c->W);
    else if (c->op == 1)
        tf_upsample2x_forward(out, c->inp, c->B, c->C, c->H, c->W);
    else
        tf_concat_forward(out, c->inp, c->b, c->B, c->C, c->C2, c->H, c->W);
}

static void check_resample_case(const char *cs, int op) {
    char nm[64], what[96];
    int any4[4] = {-1, -1, -1, -1};
    const ref_tensor *ti;
    snprintf(nm, sizeof nm, op == 2 ? "%s.a" : "%s.inp", cs);
    if (!(ti = ref_get(nm, 4, any4))) return;
    int B = ti->dims[0], C = ti->dims[1], H = ti->dims[2], W = ti->dims[3], C2 = 0;
    float *inp = ref_copy(nm, 4, ti->dims), *b = NULL, *db_ref = NULL, *db = NULL;
    if (op == 2) {
        int bd[4] = {B, -1, H, W};
        const ref_tensor *tb = ref_get("cat.b", 4, bd);
        if (!tb) return free(inp);
        C2 = tb->dims[1];
        b = ref_copy("cat.b", 4, tb->dims);
        db_ref = ref_copy("cat.db", 4, tb->dims);
        db = zeros(tb->n);
    }
    int od[4] = {B, op == 2 ? C + C2 : C,
                 op == 0   ? H / 2
                 : op == 1 ? 2 * H
                           : H,
                 op == 0   ? W / 2
                 : op == 1 ? 2 * W
                           : W};
    size_t n_out = (size_t)od[0] * od[1] * od[2] * od[3], n_in = ti->n;
    snprintf(nm, sizeof nm, "%s.dout", cs);
    float *dout = ref_copy(nm, 4, od);
    snprintf(nm, sizeof nm, "%s.out", cs);
    float *out_ref = ref_copy(nm, 4, od);
    snprintf(nm, sizeof nm, op == 2 ? "%s.da" : "%s.dinp", cs);
    float *dinp_ref = ref_copy(nm, 4, ti->dims);
    float *out = zeros(n_out), *dinp = zeros(n_in);
    if (inp && dout && (op != 2 || b)) {
        rs_ctx c = {inp, b, B, C, C2, H, W, op};
        rs_fwd(&c, out);
        if (op == 0)
            tf_avgpool2x2_backward(dinp, dout, B, C, H, W);
        else if (op == 1)
            tf_upsample2x_backward(dinp, dout, B, C, H, W);
        else
            tf_concat_backward(dinp, db, dout, B, C, C2, H, W);
    }
    snprintf(what, sizeof what, "%s out", cs);
    CHECK_REL(what, out, out_ref, n_out, 1e-5);
    snprintf(what, sizeof what, "%s dinp", cs);
    CHECK_REL(what, dinp, dinp_ref, n_in, 1e-4);
    if (op == 2) CHECK_REL("cat db", db, db_ref, (size_t)B * C2 * H * W, 1e-4);
    free(inp), free(b), free(db_ref), free(db), free(dout), free(out_ref), free(dinp_ref);
    free(out), free(dinp);
}

static void test_avgpool_matches_pytorch(void) {
    check_resample_case("pool", 0);
}
static void test_upsample_matches_pytorch(void) {
    check_resample_case("up", 1);
    check_resample_case("up1", 1); /* a single input row: both neighbours clamp to it */
}
static void test_concat_matches_pytorch(void) {
    check_resample_case("cat", 2);
}

/* Finite differences and accumulation for pool, upsample (also odd and 1-wide sizes)
 * and concat (both inputs). */
static void test_resample_finite_difference_and_accumulate(void) {
    const int cases[5][5] = {/* op, B, C, H, W */
                             {0, 2, 2, 4, 6},
                             {1, 2, 2, 3, 5},
                             {1, 1, 1, 1, 4},
                             {1, 1, 2, 2, 1},
                             {2, 2, 2, 3, 4}};
    for (int k = 0; k < 5; k++) {
        int op = cases[k][0], B = cases[k][1], C = cases[k][2], H = cases[k][3], W = cases[k][4];
        int C2 = 3;
        size_t n_in = (size_t)B * C * H * W, n_b = (size_t)B * C2 * H * W;
        size_t n_out = op == 0 ? n_in / 4 : op == 1 ? 4 * n_in : n_in + n_b;
        float *inp = randn(n_in, 51 + k, 1, 0), *b = randn(n_b, 61 + k, 1, 0);
        float *dout = randn(n_out, 71 + k, 1, 0), *out = zeros(n_out);
        float *g1 = zeros(n_in), *gb1 = zeros(n_b), *g2 = randn(n_in, 81, 1, 0);
        float *gb2 = randn(n_b, 82, 1, 0), *e = zeros(n_in), *eb = zeros(n_b);
        for (int r = 0; r < 3; r++) {
            float *g = r ? g2 : g1, *gb = r ? gb2 : gb1;
            if (op == 0)
                tf_avgpool2x2_backward(g, dout, B, C, H, W);
            else if (op == 1)
                tf_upsample2x_backward(g, dout, B, C, H, W);
            else
                tf_concat_backward(g, gb, dout, B, C, C2, H, W);
            if (r == 0) {
                for (size_t i = 0; i < n_in; i++) e[i] = g2[i] + 2 * g1[i];
                for (size_t i = 0; i < n_b; i++) eb[i] = gb2[i] + 2 * gb1[i];
            }
        }
        rs_ctx c = {inp, b, B, C, C2, H, W, op};
        double err = fd_relerr(rs_fwd, &c, out, dout, n_out, inp, n_in, g1, FD_EPS);
        CHECKF(err < FD_TOL, "op %d (%dx%d) finite differences: %.3g", op, H, W, err);
        CHECK_REL("resample accumulates", g2, e, n_in, 1e-6);
        if (op == 2) {
            err = fd_relerr(rs_fwd, &c, out, dout, n_out, b, n_b, gb1, FD_EPS);
            CHECKF(err < FD_TOL, "concat b finite differences: %.3g", err);
            CHECK_REL("concat b accumulates", gb2, eb, n_b, 1e-6);
        }
        free(inp), free(b), free(dout), free(out), free(g1), free(gb1), free(g2), free(gb2);
        free(e), free(eb);
    }
}

static void test_reference_available(void) {
    CHECKF(g_nref > 0, "%s", g_referr);
}

int main(void) {
    if (ref_load() != 0) fprintf(stderr, "  PyTorch reference: %s\n", g_referr);
    RUN(test_reference_available);
    RUN(test_conv_matches_pytorch);
    RUN(test_conv_tiling_consistent);
    RUN(test_conv_finite_difference);
    RUN(test_conv_backward_accumulates);
    RUN(test_conv_workspace_and_flops);
    RUN(test_bn_train_matches_pytorch);
    RUN(test_bn_eval_matches_pytorch);
    RUN(test_bn_running_var_unbiased);
    RUN(test_bn_finite_difference);
    RUN(test_bn_backward_accumulates);
    RUN(test_avgpool_matches_pytorch);
    RUN(test_upsample_matches_pytorch);
    RUN(test_concat_matches_pytorch);
    RUN(test_resample_finite_difference_and_accumulate);
    free(g_refbuf);
    return TEST_END();
}
