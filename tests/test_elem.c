/* The per-element math shared by the CPU and CUDA kernels (nn/elem.h, optim/optim_elem.h,
 * util/hd.h) against references in double: derivatives against central finite differences
 * of the double formulas (GELU', BatchNorm and LayerNorm backward on tiny vectors, the loss
 * gradients), Adam/AdamW against a two-step update written out by hand, bf16 rounding
 * against the nearest representable value; and the CPU kernels now built on these
 * functions against plain double references (BatchNorm, LayerNorm, Adam, upsampling,
 * Swin window partition). */
#include <stdint.h>

#include "nn/act.h"
#include "nn/attn.h"
#include "nn/conv.h"
#include "nn/elem.h"
#include "optim/optim.h"
#include "optim/optim_elem.h"
#include "test.h"
#include "util/hd.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
/* uniform in [lo, hi) */
static double urand(double lo, double hi) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static double gelu_ref(double x) {
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

/* ------------------------------------------------------------------------ GELU */
static void test_gelu_and_derivative(void) {
    double worst_f = 0, worst_g = 0, worst_exp = 0;
    for (int i = 0; i <= 4000; i++) {
        float x = -10.f + 20.f * (float)i / 4000;
        worst_f = fmax(worst_f, fabs(tf_gelu(x) - gelu_ref(x)));
        double h = 1e-4, fd = (gelu_ref(x + h) - gelu_ref(x - h)) / (2 * h);
        worst_g = fmax(worst_g, fabs(tf_gelu_grad(x) - fd));
    }
    for (int i = 0; i <= 1000; i++) { /* e^a on [-80, 80]: relative error */
        float a = -80.f + 160.f * (float)i / 1000;
        worst_exp = fmax(worst_exp, fabs(tf_exp_approx(a) / exp(a) - 1));
    }
    CHECKF(worst_f < 1e-6, "gelu abs error %g", worst_f);
    CHECKF(worst_g < 2e-6, "gelu' vs finite difference %g", worst_g);
    CHECKF(worst_exp < 1e-6, "exp relative error %g", worst_exp);
    CHECK(tf_exp_approx(-200.f) > 0.f && tf_exp_approx(-200.f) < 1e-37f); /* clamped */
    CHECK_NEAR(tf_normal_cdf(0.f), 0.5, 1e-7);
    CHECK_NEAR(tf_normal_cdf(-40.f), 0.0, 1e-30);
    CHECK_NEAR(tf_normal_cdf(40.f), 1.0, 1e-7);
}

/* ------------------------------------------------------------------- BatchNorm */
enum { BN_N = 6 };

/* loss = sum_i dout_i * bn(x)_i for one channel of n values, in double */
static double bn_loss(const double *x, const double *dout, double w, double b, double eps) {
    double m = 0, v = 0, l = 0;
    for (int i = 0; i < BN_N; i++) m += x[i];
    m /= BN_N;
    for (int i = 0; i < BN_N; i++) v += (x[i] - m) * (x[i] - m);
    v /= BN_N;
    for (int i = 0; i < BN_N; i++) l += dout[i] * ((x[i] - m) / sqrt(v + eps) * w + b);
    return l;
}

static void test_batchnorm_backward_finite_difference(void) {
    const float eps = 1e-5f, w = 1.3f, b = -0.4f;
    float x[BN_N], d[BN_N];
    for (int i = 0; i < BN_N; i++) x[i] = (float)urand(-2, 2), d[i] = (float)urand(-1, 1);
    /* statistics and backward through the elem.h functions, as bn.c does */
    double s = 0, v = 0;
    for (int i = 0; i < BN_N; i++) s += x[i];
    double m = s / BN_N;
    for (int i = 0; i < BN_N; i++) v += (x[i] - m) * (x[i] - m);
    const float r = tf_bn_rstd(v / BN_N, eps), mf = (float)m;
    double sd = 0, sdx = 0;
    for (int i = 0; i < BN_N; i++) sd += d[i], sdx += tf_bn_dxhat(d[i], x[i], mf, r);
    const float mg = tf_bn_mean_grad(w, sd, BN_N), mgx = tf_bn_mean_grad(w, sdx, BN_N);
    /* finite differences of the double loss */
    double xd[BN_N], dd[BN_N], h = 1e-6;
    for (int i = 0; i < BN_N; i++) xd[i] = x[i], dd[i] = d[i];
    for (int i = 0; i < BN_N; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double lp = bn_loss(xd, dd, w, b, eps);
        xd[i] = keep - h;
        double lm = bn_loss(xd, dd, w, b, eps);
        xd[i] = keep;
        CHECK_NEAR(tf_bn_backward_dx(d[i], x[i], mf, r, w, mg, mgx), (lp - lm) / (2 * h), 1e-5);
    }
    double fdw = (bn_loss(xd, dd, w + h, b, eps) - bn_loss(xd, dd, w - h, b, eps)) / (2 * h);
    double fdb = (bn_loss(xd, dd, w, b + h, eps) - bn_loss(xd, dd, w, b - h, eps)) / (2 * h);
    CHECK_NEAR(sdx, fdw, 1e-5); /* dweight = sum dout * xhat */
    CHECK_NEAR(sd, fdb, 1e-5);  /* dbias = sum dout */
    /* the affine map and the running update */
    CHECK_NEAR(tf_bn_affine(x[0], mf, w * r, b), (x[0] - m) / sqrt(v / BN_N + eps) * w + b, 1e-5);
    CHECK_NEAR(tf_bn_running(2.f, 0.1f, 7.0), 0.9 * 2 + 0.1 * 7, 1e-6);
}

/* the CPU kernel against a plain double reference: forward, statistics, running update */
static void test_batchnorm_kernel_matches_reference(void) {
    enum { B = 2, C = 3, H = 5, W = 7, HW = H * W, NB = B * C * HW };
    static float x[NB], y[NB], yg[NB];
    float w[C], b[C], mean[C], rstd[C], rm[C], rv[C];
    for (int i = 0; i < NB; i++) x[i] = (float)urand(-2, 3);
    for (int c = 0; c < C; c++)
        w[c] = (float)urand(0.5, 1.5), b[c] = (float)urand(-1, 1), rm[c] = 0.2f, rv[c] = 1.5f;
    tf_batchnorm2d_forward(y, mean, rstd, rm, rv, x, w, b, B, C, H, W, 0.1f, 1e-5f);
    tf_batchnorm2d_gelu_forward(yg, mean, rstd, NULL, NULL, x, w, b, B, C, H, W, 0.1f, 1e-5f);
    double worst = 0, worst_g = 0;
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int k = 0; k < B; k++)
            for (int i = 0; i < HW; i++) m += x[(k * C + c) * HW + i];
        m /= B * HW;
        for (int k = 0; k < B; k++)
            for (int i = 0; i < HW; i++) v += pow(x[(k * C + c) * HW + i] - m, 2);
        CHECK_NEAR(mean[c], m, 1e-6);
        CHECK_NEAR(rstd[c], 1 / sqrt(v / (B * HW) + 1e-5), 1e-6);
        CHECK_NEAR(rm[c], 0.9 * 0.2 + 0.1 * m, 1e-6);
        CHECK_NEAR(rv[c], 0.9 * 1.5 + 0.1 * v / (B * HW - 1), 1e-6);
        for (int k = 0; k < B; k++)
            for (int i = 0; i < HW; i++) {
                int j = (k * C + c) * HW + i;
                double ref = (x[j] - m) / sqrt(v / (B * HW) + 1e-5) * w[c] + b[c];
                worst = fmax(worst, fabs(y[j] - ref));
                worst_g = fmax(worst_g, fabs(yg[j] - gelu_ref(ref)));
            }
    }
    CHECKF(worst < 1e-5, "batchnorm forward error %g", worst);
    CHECKF(worst_g < 1e-5, "batchnorm+gelu forward error %g", worst_g);
}

/* ------------------------------------------------------------------- LayerNorm */
enum { LN_C = 5 };

/* loss = sum_c dout_c * ln(x)_c for one row, in double */
static double ln_loss(const double *x, const double *dout, const double *w, const double *b) {
    double m = 0, v = 0, l = 0;
    for (int c = 0; c < LN_C; c++) m += x[c];
    m /= LN_C;
    for (int c = 0; c < LN_C; c++) v += (x[c] - m) * (x[c] - m);
    v /= LN_C;
    for (int c = 0; c < LN_C; c++)
        l += dout[c] * ((x[c] - m) / sqrt(v + LAYERNORM_EPS) * w[c] + b[c]);
    return l;
}

static void test_layernorm_backward_finite_difference(void) {
    float x[LN_C], d[LN_C], w[LN_C], b[LN_C];
    double xd[LN_C], dd[LN_C], wd[LN_C], bd[LN_C], h = 1e-6;
    for (int c = 0; c < LN_C; c++) {
        x[c] = (float)urand(-2, 2), d[c] = (float)urand(-1, 1);
        w[c] = (float)urand(0.5, 1.5), b[c] = (float)urand(-1, 1);
        xd[c] = x[c], dd[c] = d[c], wd[c] = w[c], bd[c] = b[c];
    }
    /* the row statistics and sums as layernorm.c forms them, the per-element parts from
     * elem.h */
    double m = 0, v = 0;
    for (int c = 0; c < LN_C; c++) m += x[c];
    m /= LN_C;
    for (int c = 0; c < LN_C; c++) v += (x[c] - m) * (x[c] - m);
    const float s = tf_bn_rstd(v / LN_C, LAYERNORM_EPS), mf = (float)m;
    float sum_g = 0, sum_gx = 0;
    for (int c = 0; c < LN_C; c++) {
        float g = w[c] * d[c];
        sum_g += g;
        sum_gx += g * (x[c] - mf) * s;
    }
    sum_g /= LN_C, sum_gx /= LN_C;
    for (int c = 0; c < LN_C; c++) {
        double keep = xd[c];
        xd[c] = keep + h;
        double lp = ln_loss(xd, dd, wd, bd);
        xd[c] = keep - h;
        double lm = ln_loss(xd, dd, wd, bd);
        xd[c] = keep;
        CHECK_NEAR(tf_ln_backward_dx(d[c], x[c], mf, s, w[c], sum_g, sum_gx), (lp - lm) / (2 * h),
                   1e-5);
        keep = wd[c];
        wd[c] = keep + h;
        lp = ln_loss(xd, dd, wd, bd);
        wd[c] = keep - h;
        lm = ln_loss(xd, dd, wd, bd);
        wd[c] = keep;
        CHECK_NEAR(tf_ln_dweight(d[c], x[c], mf, s), (lp - lm) / (2 * h), 1e-5);
        CHECK_NEAR(tf_ln_forward(x[c], mf, s, w[c], b[c]),
                   (x[c] - m) / sqrt(v / LN_C + LAYERNORM_EPS) * w[c] + b[c], 1e-6);
    }
}

/* the CPU kernels (forward and backward over several rows) against double references */
static void test_layernorm_kernel_matches_reference(void) {
    enum { N = 4, C = 9 };
    float x[N * C], d[N * C], w[C], b[C], y[N * C], mean[N], rstd[N], dx[N * C] = {0}, dw[C] = {0},
                                                                             db[C] = {0};
    for (int i = 0; i < N * C; i++) x[i] = (float)urand(-2, 2), d[i] = (float)urand(-1, 1);
    for (int c = 0; c < C; c++) w[c] = (float)urand(0.5, 1.5), b[c] = (float)urand(-1, 1);
    tf_layernorm_forward(y, mean, rstd, x, w, b, N, C);
    tf_layernorm_backward(dx, dw, db, d, x, w, mean, rstd, N, C);
    double rdw[C] = {0}, rdb[C] = {0};
    for (int n = 0; n < N; n++) {
        const float *xr = x + n * C, *dr = d + n * C;
        double m = 0, v = 0, sg = 0, sgx = 0;
        for (int c = 0; c < C; c++) m += xr[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        double rs = 1 / sqrt(v / C + LAYERNORM_EPS);
        for (int c = 0; c < C; c++) {
            double xh = (xr[c] - m) * rs;
            CHECK_NEAR(y[n * C + c], xh * w[c] + b[c], 1e-5);
            sg += w[c] * dr[c], sgx += w[c] * dr[c] * xh;
            rdw[c] += dr[c] * xh, rdb[c] += dr[c];
        }
        for (int c = 0; c < C; c++) { /* the textbook LayerNorm input gradient */
            double xh = (xr[c] - m) * rs;
            CHECK_NEAR(dx[n * C + c], rs * (w[c] * dr[c] - sg / C - xh * sgx / C), 1e-5);
        }
    }
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(dw[c], rdw[c], 1e-5);
        CHECK_NEAR(db[c], rdb[c], 1e-5);
    }
}

/* -------------------------------------------------------------------------- Adam */
/* Two steps written out in double from the PyTorch algorithm statement. */
static void adam_two_steps_ref(int adamw, double p, const double g[2], double lr, double b1,
                               double b2, double eps, double wd, double *out) {
    double m = 0, v = 0;
    for (int t = 1; t <= 2; t++) {
        double gt = g[t - 1];
        if (adamw)
            p *= 1 - lr * wd;
        else
            gt += wd * p;
        m = b1 * m + (1 - b1) * gt;
        v = b2 * v + (1 - b2) * gt * gt;
        double mh = m / (1 - pow(b1, t)), vh = v / (1 - pow(b2, t));
        p -= lr * mh / (sqrt(vh) + eps);
    }
    *out = p;
}

static void test_adam_two_steps(void) {
    const double g[2] = {0.3, -0.05};
    for (int adamw = 0; adamw < 2; adamw++) {
        const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
        float p = 0.75f, m = 0.f, v = 0.f;
        for (int t = 1; t <= 2; t++) {
            tf_adam_coefs k = tf_adam_coefs_at(adamw, b1, b2, eps, wd, t, lr);
            tf_adam_update(&p, &m, &v, (float)g[t - 1], &k);
        }
        double ref;
        adam_two_steps_ref(adamw, 0.75, g, lr, b1, b2, eps, wd, &ref);
        CHECKF(fabs(p - ref) < 1e-6, "%s: %.9g vs %.9g", adamw ? "adamw" : "adam", p, ref);
        /* the hand value of the first step: m1 = 0.1 g, v1 = 0.001 g^2, so the step is
         * lr * sign(g1) (plus decay); g1 = 0.3 (Adam: + 0.1 * 0.75) */
        float p1 = 0.75f, m1 = 0.f, v1 = 0.f;
        tf_adam_coefs k1 = tf_adam_coefs_at(adamw, b1, b2, eps, wd, 1, lr);
        tf_adam_update(&p1, &m1, &v1, 0.3f, &k1);
        double want = adamw ? 0.75 * (1 - 1e-2 * 0.1) - 1e-2 : 0.75 - 1e-2;
        CHECK_NEAR(p1, want, 1e-6);
        CHECK_NEAR(m1, 0.1 * (adamw ? 0.3 : 0.375), 1e-7);
    }
}

/* tf_adam_step over an array against the double reference, element by element */
static void test_adam_step_kernel_matches_reference(void) {
    enum { N = 257 };
    float p[N], m[N] = {0}, v[N] = {0}, g1[N], g2[N];
    double p0[N];
    for (int i = 0; i < N; i++)
        p0[i] = p[i] = (float)urand(-1, 1), g1[i] = (float)urand(-1, 1),
        g2[i] = (float)urand(-1, 1);
    for (int adamw = 0; adamw < 2; adamw++) {
        tf_adam_cfg c = tf_adam_default(adamw);
        c.weight_decay = 0.02f;
        for (int i = 0; i < N; i++) p[i] = (float)p0[i], m[i] = v[i] = 0.f;
        tf_adam_step(&c, p, g1, m, v, N, 1, 3e-3f);
        tf_adam_step(&c, p, g2, m, v, N, 2, 3e-3f);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double ref, g[2] = {g1[i], g2[i]};
            adam_two_steps_ref(adamw, p0[i], g, 3e-3f, c.beta1, c.beta2, c.eps, c.weight_decay,
                               &ref);
            worst = fmax(worst, fabs(p[i] - ref));
        }
        CHECKF(worst < 1e-6, "%s step: worst %g", adamw ? "adamw" : "adam", worst);
    }
}

/* -------------------------------------------------------------------------- loss */
static void test_loss_gradients_finite_difference(void) {
    const float g = 0.25f;
    CHECK(tf_l1_grad(0.3f, g) == g && tf_l1_grad(-1e-30f, g) == -g && tf_l1_grad(0.f, g) == 0.f);
    for (int k = 0; k < 20; k++) {
        float yr = (float)urand(-1, 1), yi = (float)urand(-1, 1), tr = (float)urand(-1, 1),
              ti = (float)urand(-1, 1), dr, di;
        const float gm = 0.5f;
        float val = tf_mag_l1(yr, yi, tr, ti, gm, &dr, &di);
        double h = 1e-6, mt = hypot(tr, ti);
#define MAGL(a, b) fabs(hypot((a), (b)) - mt)
        CHECK_NEAR(val, MAGL((double)yr, (double)yi), 1e-6);
        if (fabs(hypot(yr, yi) - mt) < 1e-3) continue; /* |.| kinks at |Y| = |T| */
        CHECK_NEAR(dr, gm * (MAGL(yr + h, (double)yi) - MAGL(yr - h, (double)yi)) / (2 * h), 1e-5);
        CHECK_NEAR(di, gm * (MAGL((double)yr, yi + h) - MAGL((double)yr, yi - h)) / (2 * h), 1e-5);
#undef MAGL
    }
    float dr = 1, di = 1; /* |Y| = 0: zero gradient, not NaN */
    CHECK_NEAR(tf_mag_l1(0.f, 0.f, 0.6f, 0.8f, 1.f, &dr, &di), 1.0, 1e-7);
    CHECK(dr == 0.f && di == 0.f);
}

/* ------------------------------------------------------------ resampling, windows */
static void test_upsample_and_windows_match_reference(void) {
    /* bilinear x2 (align_corners=False) from PyTorch's source-coordinate formula */
    enum { H = 3, W = 4 };
    float x[H * W], y[4 * H * W];
    for (int i = 0; i < H * W; i++) x[i] = (float)urand(-1, 1);
    tf_upsample2x_forward(y, x, 1, 1, H, W);
    double worst = 0;
    for (int oy = 0; oy < 2 * H; oy++)
        for (int ox = 0; ox < 2 * W; ox++) {
            double sy = fmax(0, (oy + 0.5) / 2 - 0.5), sx = fmax(0, (ox + 0.5) / 2 - 0.5);
            int y0 = (int)sy, x0 = (int)sx, y1 = y0 + 1 < H ? y0 + 1 : H - 1,
                x1 = x0 + 1 < W ? x0 + 1 : W - 1;
            double ly = sy - y0, lx = sx - x0;
            double ref = (1 - ly) * ((1 - lx) * x[y0 * W + x0] + lx * x[y0 * W + x1]) +
                         ly * ((1 - lx) * x[y1 * W + x0] + lx * x[y1 * W + x1]);
            worst = fmax(worst, fabs(y[oy * 2 * W + ox] - ref));
        }
    CHECKF(worst < 1e-6, "upsample error %g", worst);
    CHECK(tf_avg4(1.f, 2.f, 3.f, 4.f) == 2.5f);
    /* window partition with shift against torch.roll + window_partition by index */
    enum { B = 2, T = 6, F = 4, C = 3, WT = 3, WF = 2, ST = 1, SF = 1, NX = B * T * F * C };
    float xs[NX], win[NX];
    for (int i = 0; i < NX; i++) xs[i] = (float)i;
    tf_window_partition_forward(win, xs, B, T, F, C, WT, WF, ST, SF);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int wi = 0; wi < T / WT; wi++)
            for (int wj = 0; wj < F / WF; wj++)
                for (int a = 0; a < WT * WF; a++)
                    for (int c = 0; c < C; c++) {
                        /* rolled[t][f] = x[(t + ST) % T][(f + SF) % F] */
                        int t = (wi * WT + a / WF + ST) % T, f = (wj * WF + a % WF + SF) % F;
                        int w = (b * (T / WT) + wi) * (F / WF) + wj;
                        bad += win[(w * WT * WF + a) * C + c] != xs[((b * T + t) * F + f) * C + c];
                    }
    CHECKF(bad == 0, "%d window elements misplaced", bad);
}

/* ------------------------------------------------------------------------- bf16 */
/* nearest bf16 by brute force: the two neighbours of f (truncated and next up in
 * magnitude), the closer, ties to the even mantissa */
static float bf16_ref(float f) {
    uint32_t u = tf_elem_f32_to_bits(f) & 0xffff0000u;
    float lo = tf_elem_bits_to_f32(u), hi = tf_elem_bits_to_f32(u + 0x10000u);
    double dl = fabs((double)f - lo), dh = fabs((double)hi - f);
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (u >> 16) & 1 ? hi : lo;
}

static void test_bf16_rounding(void) {
    int bad = 0;
    for (int k = 0; k < 100000; k++) {
        float f = (float)(urand(-1, 1) * pow(2.0, (int)urand(-30, 30)));
        bad += tf_elem_bf16_round(f) != bf16_ref(f);
    }
    /* exact ties: 1 + 2^-8 rounds to 1 (even), 1 + 3 * 2^-8 up to 1 + 2^-6 */
    bad += tf_elem_bf16_round(1.00390625f) != 1.f;
    bad += tf_elem_bf16_round(1.01171875f) != 1.015625f;
    CHECKF(bad == 0, "%d values rounded wrong", bad);
    CHECK(isnan(tf_elem_bf16_round(NAN)));
    CHECK(tf_elem_bf16_round(INFINITY) == INFINITY);
}

/* ------------------------------------------------------------------------- fp16 */
/* util/hd.h's binary16 rounding against the compiler's _Float16 conversion (GCC on x86-64:
 * round to nearest even, subnormals, overflow to Inf): every float with one of 2^16
 * patterns of its top bits, spread over every exponent, and random bits below; and every
 * one of the 65536 halves back to float */
static void test_f16_rounding(void) {
    uint64_t r = 0x9e3779b97f4a7c15ull;
    size_t bad = 0, n = 0;
    for (uint32_t top = 0; top < 65536; top++)
        for (int k = 0; k < 8; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            /* k 0: exactly the pattern (ties and exact values), 1: + half an f16 ulp at
             * normal scale, else random low bits */
            uint32_t low = k == 0 ? 0 : k == 1 ? 0x1000u : (uint32_t)(r >> 48);
            uint32_t u = (top << 16) | low;
            float f;
            memcpy(&f, &u, 4);
            const uint16_t got = tf_elem_f32_to_f16(f);
            const _Float16 want = (_Float16)f;
            uint16_t wb;
            memcpy(&wb, &want, 2);
            n++;
            if (isnan(f) ? !((got & 0x7c00u) == 0x7c00u && (got & 0x3ffu)) : got != wb) {
                if (bad < 5) fprintf(stderr, "  f16(%a) = %04x, want %04x\n", f, got, wb);
                bad++;
            }
        }
    CHECKF(bad == 0, "%zu of %zu conversions differ", bad, n);
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 v;
        const uint16_t b = (uint16_t)h;
        memcpy(&v, &b, 2);
        const float want = (float)v, got = tf_elem_f16_to_f32(b);
        if (isnan(want) ? !isnan(got) : memcmp(&got, &want, 4) != 0) bad++;
    }
    CHECKF(bad == 0, "%zu of 65536 halves widen differently", bad);
    /* the edges written out */
    CHECK(tf_elem_f32_to_f16(65504.f) == 0x7bffu && tf_elem_f32_to_f16(65520.f) == 0x7c00u);
    CHECK(tf_elem_f32_to_f16(65519.99f) == 0x7bffu && tf_elem_f32_to_f16(-1e9f) == 0xfc00u);
    CHECK(tf_elem_f32_to_f16(5.9604644775390625e-8f) == 1u);  /* 2^-24 */
    CHECK(tf_elem_f32_to_f16(2.98023223876953125e-8f) == 0u); /* 2^-25: tie to 0 */
    CHECK(tf_elem_f32_to_f16(2.9802326e-8f) == 1u);           /* just above */
    CHECK(tf_elem_f32_to_f16(1.f + 1.f / 2048) == 0x3c00u);   /* tie to even */
    CHECK(tf_elem_f32_to_f16(1.f + 3.f / 2048) == 0x3c02u);
}

int main(void) {
    RUN(test_gelu_and_derivative);
    RUN(test_batchnorm_backward_finite_difference);
    RUN(test_batchnorm_kernel_matches_reference);
    RUN(test_layernorm_backward_finite_difference);
    RUN(test_layernorm_kernel_matches_reference);
    RUN(test_adam_two_steps);
    RUN(test_adam_step_kernel_matches_reference);
    RUN(test_loss_gradients_finite_difference);
    RUN(test_upsample_and_windows_match_reference);
    RUN(test_bf16_rounding);
    RUN(test_f16_rounding);
    return TEST_END();
}
