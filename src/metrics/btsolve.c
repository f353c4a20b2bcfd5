/* Block Toeplitz solver: block Levinson recursion + iterative refinement, dense LAPACK
 * fallback (museval's algorithm). See btsolve.h. */
#include "metrics/btsolve.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Refinement steps tried before giving up on Levinson, and the backward error accepted.
 * LU with partial pivoting on these systems gives 1e-17..2e-16. Levinson alone gives
 * 1e-16..4e-15 on ill-conditioned G (cond ~1e10), which moved some museval metrics by
 * 0.02 dB; one refinement step brings it to ~3e-18 (0.0007 dB from museval, closer than
 * museval's own algorithm run on our G: 0.0015 dB), so one step is always taken. */
#define BT_MAX_REFINE 6
#define BT_ACCEPT     (2 * DBL_EPSILON)

/* Hot loops are compiled twice (AVX2+FMA and baseline x86-64) and picked at run time. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define BT_SIMD __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef BT_SIMD
#define BT_SIMD
#endif
#define BT_INLINE static inline __attribute__((always_inline))

/* C (p, q) += op(A) (p, p) * B (p, q), row-major, op = transpose when ta. */
BT_INLINE void mm_acc(int p, int q, const double *restrict A, int ta, const double *restrict B,
                      double *restrict C) {
    for (int i = 0; i < p; i++) {
        double *restrict c = C + (size_t)i * q;
        for (int k = 0; k < p; k++) {
            double a = ta ? A[(size_t)k * p + i] : A[(size_t)i * p + k];
            const double *restrict b = B + (size_t)k * q;
            for (int j = 0; j < q; j++) c[j] += a * b[j];
        }
    }
}

/* inv = M^{-1} for a p x p matrix by Gauss-Jordan with partial pivoting; M is destroyed.
 * Returns -1 when a pivot is zero or the result is not finite. */
static int small_inverse(int p, double *M, double *inv) {
    for (int i = 0; i < p; i++)
        for (int j = 0; j < p; j++) inv[i * p + j] = i == j;
    for (int c = 0; c < p; c++) {
        int piv = c;
        for (int r = c + 1; r < p; r++)
            if (fabs(M[r * p + c]) > fabs(M[piv * p + c])) piv = r;
        if (!(fabs(M[piv * p + c]) > 0)) return -1;
        if (piv != c)
            for (int j = 0; j < p; j++) {
                double t = M[c * p + j];
                M[c * p + j] = M[piv * p + j], M[piv * p + j] = t;
                t = inv[c * p + j];
                inv[c * p + j] = inv[piv * p + j], inv[piv * p + j] = t;
            }
        double d = 1.0 / M[c * p + c];
        for (int j = 0; j < p; j++) M[c * p + j] *= d, inv[c * p + j] *= d;
        for (int r = 0; r < p; r++) {
            if (r == c) continue;
            double f = M[r * p + c];
            if (f == 0) continue;
            for (int j = 0; j < p; j++)
                M[r * p + j] -= f * M[c * p + j], inv[r * p + j] -= f * inv[c * p + j];
        }
    }
    for (int i = 0; i < p * p; i++)
        if (!isfinite(inv[i])) return -1;
    return 0;
}

/* Block Levinson for (T + shift I) X = B, X (L, p, mc).
 *
 * Invariants after step n (T_n = leading (n+1) x (n+1) blocks):
 *   T_n Ef = [I; 0; ...; 0], T_n Eb = [0; ...; 0; I], T_n X = B[0..n].
 * Step n -> n+1, with ef = sum_i R(n+1-i)^T Ef[i] and eb = sum_i R(i+1) Eb[i]:
 *   Ef' = [Ef; 0] a + [0; Eb] (-ef a),   a = (I - eb ef)^-1,
 *   Eb' = [Ef; 0] (-eb d) + [0; Eb] d,   d = (I - ef eb)^-1,
 *   X'  = [X; 0] + Eb' (B[n+1] - sum_i R(n+1-i)^T X[i]).
 * The sums over i are taken in fixed chunks of LEV_CHUNK blocks and the chunk partials
 * added in order, so the result does not depend on the number of threads. */
#define LEV_CHUNK 16

/* partial sums over blocks [i0, i1) of ef, eb (p x p) and th (p x mc) into out */
BT_INLINE void lev_partial_body(int p, int mc, int n, int i0, int i1, const double *R,
                                const double *Ef, const double *Eb, const double *X,
                                double *restrict out) {
    size_t pp = (size_t)p * p, pm = (size_t)p * mc;
    double *ef = out, *eb = out + pp, *th = out + 2 * pp;
    memset(out, 0, (2 * pp + pm) * sizeof(double));
    for (int i = i0; i < i1; i++) {
        const double *Rf = R + (size_t)(n + 1 - i) * pp; /* R(n+1-i), used transposed */
        mm_acc(p, p, Rf, 1, Ef + i * pp, ef);
        mm_acc(p, mc, Rf, 1, X + i * pm, th);
        mm_acc(p, p, R + (size_t)(i + 1) * pp, 0, Eb + i * pp, eb);
    }
}

/* blocks [i0, i1) of Ef', Eb' (into Efn, Ebn) and X += Eb' rhs; co = {a, be, ga, d} */
BT_INLINE void lev_update_body(int p, int mc, int n, int i0, int i1, const double *Ef,
                               const double *Eb, const double *co, const double *rhs,
                               double *restrict Efn, double *restrict Ebn, double *restrict X) {
    size_t pp = (size_t)p * p, pm = (size_t)p * mc;
    const double *al = co, *be = co + pp, *ga = co + 2 * pp, *de = co + 3 * pp;
    for (int i = i0; i < i1; i++) {
        double *f = Efn + i * pp, *b = Ebn + i * pp;
        memset(f, 0, pp * sizeof(double));
        memset(b, 0, pp * sizeof(double));
        if (i <= n) { /* old Ef[n+1] is zero */
            mm_acc(p, p, Ef + i * pp, 0, al, f);
            mm_acc(p, p, Ef + i * pp, 0, ga, b);
        }
        if (i > 0) { /* old Eb[-1] is zero */
            mm_acc(p, p, Eb + (i - 1) * pp, 0, be, f);
            mm_acc(p, p, Eb + (i - 1) * pp, 0, de, b);
        }
        mm_acc(p, mc, b, 0, rhs, X + i * pm);
    }
}

#define LEV_DISPATCH(body, ...)                                                                    \
    do {                                                                                           \
        if (p == 2 && mc == 2)                                                                     \
            body(2, 2, __VA_ARGS__);                                                               \
        else if (p == 4 && mc == 4)                                                                \
            body(4, 4, __VA_ARGS__);                                                               \
        else if (p == 6 && mc == 6)                                                                \
            body(6, 6, __VA_ARGS__);                                                               \
        else if (p == 8 && mc == 8)                                                                \
            body(8, 8, __VA_ARGS__);                                                               \
        else                                                                                       \
            body(p, mc, __VA_ARGS__);                                                              \
    } while (0)

BT_SIMD static void lev_partial(int p, int mc, int n, int i0, int i1, const double *R,
                                const double *Ef, const double *Eb, const double *X, double *out) {
    LEV_DISPATCH(lev_partial_body, n, i0, i1, R, Ef, Eb, X, out);
}

BT_SIMD static void lev_update(int p, int mc, int n, int i0, int i1, const double *Ef,
                               const double *Eb, const double *co, const double *rhs, double *Efn,
                               double *Ebn, double *X) {
    LEV_DISPATCH(lev_update_body, n, i0, i1, Ef, Eb, co, rhs, Efn, Ebn, X);
}

/* workspace in doubles */
static size_t lev_work(int L, int p, int mc) {
    size_t pp = (size_t)p * p, pm = (size_t)p * mc, nch = (size_t)(L + LEV_CHUNK - 1) / LEV_CHUNK;
    return 4 * (size_t)L * pp + nch * (2 * pp + pm) + 12 * pp + 2 * pm;
}

/* Returns -1 on breakdown (a singular p x p pivot, non-finite values). */
static int levinson(int L, int p, int mc, const double *R, double shift, const double *B, double *X,
                    double *w) {
    size_t pp = (size_t)p * p, pm = (size_t)p * mc, np = 2 * pp + pm;
    int nch_max = (L + LEV_CHUNK - 1) / LEV_CHUNK;
    double *Ef = w, *Eb = Ef + (size_t)L * pp, *Efn = Eb + (size_t)L * pp;
    double *Ebn = Efn + (size_t)L * pp, *part = Ebn + (size_t)L * pp;
    double *sum = part + (size_t)nch_max * np; /* ef, eb, th */
    double *co = sum + np;                     /* a, be, ga, d */
    double *M1 = co + 4 * pp, *M2 = M1 + pp, *R0 = M2 + pp, *rhs = R0 + pp;
    int fail = 0;

    memcpy(R0, R, pp * sizeof(double));
    for (int i = 0; i < p; i++) R0[i * p + i] += shift;
    if (small_inverse(p, R0, Ef)) return -1;
    memcpy(Eb, Ef, pp * sizeof(double));
    memset(X, 0, (size_t)L * pm * sizeof(double));
    mm_acc(p, mc, Ef, 0, B, X);

    /* Serial on purpose: one step is too little work for a barrier per step to pay off
     * (measured: on a loaded 2-core machine, spinning threads made it 3x slower). */
    for (int n = 0; n + 1 < L; n++) {
        int nch = (n + LEV_CHUNK) / LEV_CHUNK; /* chunks covering blocks 0..n */
        for (int c = 0; c < nch; c++) {
            int i0 = c * LEV_CHUNK, i1 = i0 + LEV_CHUNK < n + 1 ? i0 + LEV_CHUNK : n + 1;
            lev_partial(p, mc, n, i0, i1, R, Ef, Eb, X, part + (size_t)c * np);
        }
        {
            memcpy(sum, part, np * sizeof(double));
            for (int c = 1; c < nch; c++)
                for (size_t k = 0; k < np; k++) sum[k] += part[(size_t)c * np + k];
            const double *ef = sum, *eb = sum + pp, *th = sum + 2 * pp;
            double *al = co, *be = co + pp, *ga = co + 2 * pp, *de = co + 3 * pp;
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++) {
                    double s1 = (i == j), s2 = (i == j);
                    for (int k = 0; k < p; k++) {
                        s1 -= eb[i * p + k] * ef[k * p + j];
                        s2 -= ef[i * p + k] * eb[k * p + j];
                    }
                    M1[i * p + j] = s1, M2[i * p + j] = s2;
                }
            if (small_inverse(p, M1, al) || small_inverse(p, M2, de)) {
                fail = 1;
            } else {
                memset(be, 0, 2 * pp * sizeof(double));
                mm_acc(p, p, ef, 0, al, be);
                mm_acc(p, p, eb, 0, de, ga);
                for (size_t i = 0; i < 2 * pp; i++) be[i] = -be[i];
                const double *bn = B + (size_t)(n + 1) * pm;
                for (size_t i = 0; i < pm; i++) rhs[i] = bn[i] - th[i];
            }
        }
        if (fail) break;
        int nc2 = (n + 1 + LEV_CHUNK) / LEV_CHUNK; /* chunks covering blocks 0..n+1 */
        for (int c = 0; c < nc2; c++) {
            int i0 = c * LEV_CHUNK, i1 = i0 + LEV_CHUNK < n + 2 ? i0 + LEV_CHUNK : n + 2;
            lev_update(p, mc, n, i0, i1, Ef, Eb, co, rhs, Efn, Ebn, X);
        }
        {
            double *t = Ef;
            Ef = Efn, Efn = t;
            t = Eb, Eb = Ebn, Ebn = t;
        }
    }
    if (fail) return -1;
    for (size_t i = 0; i < (size_t)L * pm; i++)
        if (!isfinite(X[i])) return -1;
    return 0;
}

int tf_bt_residual(int L, int p, int mc, const double *R, double shift, const double *B,
                   const double *X, double *Y) {
    /* In the layout (p, L, mc) every lag m is one GEMM: Yt[a][k1] += R(m) Xt[b][k1 + m]. */
    size_t n = (size_t)L * p * mc, ld = (size_t)L * mc;
    double *Xt = malloc(2 * n * sizeof(double));
    if (!Xt) return -1;
    double *Yt = Xt + n;
    for (int k = 0; k < L; k++)
        for (int a = 0; a < p; a++)
            for (int c = 0; c < mc; c++) {
                Xt[a * ld + (size_t)k * mc + c] = X[((size_t)k * p + a) * mc + c];
                Yt[a * ld + (size_t)k * mc + c] = -shift * X[((size_t)k * p + a) * mc + c];
            }
    for (int m = 0; m < L; m++) {
        int cols = (L - m) * mc;
        const double *Rm = R + (size_t)m * p * p;
        /* lag +m: block rows 0..L-1-m use X blocks m..L-1 */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, cols, p, -1.0, Rm, p,
                    Xt + (size_t)m * mc, (int)ld, 1.0, Yt, (int)ld);
        /* lag -m: block rows m..L-1 use R(m)^T and X blocks 0..L-1-m */
        if (m > 0)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, cols, p, -1.0, Rm, p, Xt,
                        (int)ld, 1.0, Yt + (size_t)m * mc, (int)ld);
    }
    for (int k = 0; k < L; k++)
        for (int a = 0; a < p; a++)
            for (int c = 0; c < mc; c++) {
                size_t i = ((size_t)k * p + a) * mc + c;
                Y[i] = B[i] + Yt[a * ld + (size_t)k * mc + c];
            }
    free(Xt);
    return 0;
}

/* |T + shift I|_F */
static double frob_T(int L, int p, const double *R, double shift) {
    double s = 0;
    for (int m = 0; m < L; m++) {
        const double *Rm = R + (size_t)m * p * p;
        double f = 0;
        for (int a = 0; a < p; a++)
            for (int b = 0; b < p; b++) {
                double v = Rm[a * p + b] + (m == 0 && a == b ? shift : 0);
                f += v * v;
            }
        s += (m == 0 ? L : 2.0 * (L - m)) * f;
    }
    return sqrt(s);
}

static double backward_error(int L, int p, int mc, double nT, const double *B, const double *X,
                             const double *Y) {
    double worst = 0;
    for (int c = 0; c < mc; c++) {
        double r = 0, x = 0, b = 0;
        for (size_t i = (size_t)c; i < (size_t)L * p * mc; i += mc)
            r += Y[i] * Y[i], x += X[i] * X[i], b += B[i] * B[i];
        double den = nT * sqrt(x) + sqrt(b);
        double e = den > 0 ? sqrt(r) / den : (r > 0 ? INFINITY : 0);
        if (!(e <= worst)) worst = e; /* NaN propagates */
    }
    return worst;
}

double tf_bt_backward_error(int L, int p, int mc, const double *R, double shift, const double *B,
                            const double *X) {
    size_t n = (size_t)L * p * mc;
    double *Y = malloc(n * sizeof(double));
    if (!Y || tf_bt_residual(L, p, mc, R, shift, B, X, Y)) {
        free(Y);
        return -1;
    }
    double e = backward_error(L, p, mc, frob_T(L, p, R, shift), B, X, Y);
    free(Y);
    return e;
}

/* museval: numpy.linalg.solve(G + eps I, D), on LinAlgError numpy.linalg.lstsq(G, D). The
 * dense G in museval's unknown order (a, k): G[(a,k1),(b,k2)] = R(k2-k1)[a][b]. */
static tf_status dense_solve(int L, int p, int mc, const double *R, double shift, const double *B,
                             double *X, tf_bt_stats *st) {
    size_t n = (size_t)L * p;
    double *G = malloc(n * n * sizeof(double));
    double *Bc = malloc(n * mc * sizeof(double));
    lapack_int *ipiv = malloc(n * sizeof(lapack_int));
    double *S = malloc(n * sizeof(double));
    tf_status ret = TF_OK;
    if (!G || !Bc || !ipiv || !S) {
        ret = tf_err(TF_EINTERNAL, "bsseval: out of memory for the dense %zu x %zu system", n, n);
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        /* G is symmetric, so row-major and column-major storage coincide. */
        for (int a = 0; a < p; a++)
            for (int k1 = 0; k1 < L; k1++) {
                double *row = G + ((size_t)a * L + k1) * n;
                for (int b = 0; b < p; b++)
                    for (int k2 = 0; k2 < L; k2++) {
                        int m = k2 - k1;
                        row[(size_t)b * L + k2] = m >= 0 ? R[((size_t)m * p + a) * p + b]
                                                         : R[((size_t)-m * p + b) * p + a];
                    }
                if (pass == 0) row[(size_t)a * L + k1] += shift;
            }
        for (int k = 0; k < L; k++)
            for (int a = 0; a < p; a++)
                for (int c = 0; c < mc; c++)
                    Bc[(size_t)c * n + (size_t)a * L + k] = B[((size_t)k * p + a) * mc + c];
        lapack_int info;
        if (pass == 0) {
            info = LAPACKE_dgesv(LAPACK_COL_MAJOR, (lapack_int)n, mc, G, (lapack_int)n, ipiv, Bc,
                                 (lapack_int)n);
            if (info > 0) continue; /* exactly singular: least squares */
        } else {
            lapack_int rank;
            st->lstsq = 1;
            info =
                LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)n, mc, G, (lapack_int)n,
                               Bc, (lapack_int)n, S, DBL_EPSILON * (double)n, &rank);
        }
        if (info != 0) {
            ret = tf_err(TF_EINTERNAL, "bsseval: LAPACK %s failed (info %d)",
                         pass ? "dgelsd" : "dgesv", (int)info);
            goto done;
        }
        break;
    }
    for (int k = 0; k < L; k++)
        for (int a = 0; a < p; a++)
            for (int c = 0; c < mc; c++)
                X[((size_t)k * p + a) * mc + c] = Bc[(size_t)c * n + (size_t)a * L + k];
    st->dense = 1;
done:
    free(G), free(Bc), free(ipiv), free(S);
    return ret;
}

tf_status tf_bt_solve(int L, int p, int mc, const double *R, double shift, const double *B,
                      double *X, int dense_only, tf_bt_stats *st) {
    tf_bt_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    size_t n = (size_t)L * p * mc;
    if (!dense_only) {
        double *w = malloc((lev_work(L, p, mc) + 3 * n) * sizeof(double));
        if (!w) return tf_err(TF_EINTERNAL, "bsseval: out of memory for the Levinson solver");
        double *Y = w + lev_work(L, p, mc), *D = Y + n, *Xb = D + n;
        double nT = frob_T(L, p, R, shift);
        int ok = levinson(L, p, mc, R, shift, B, X, w) == 0;
        double be = INFINITY;
        for (int it = 0; ok; it++) {
            if (tf_bt_residual(L, p, mc, R, shift, B, X, Y)) {
                free(w);
                return tf_err(TF_EINTERNAL, "bsseval: out of memory for the residual");
            }
            be = backward_error(L, p, mc, nT, B, X, Y);
            if (it > 0 && be <= BT_ACCEPT) break; /* always one refinement step */
            if (it == BT_MAX_REFINE) break;
            memcpy(Xb, X, n * sizeof(double));
            if (levinson(L, p, mc, R, shift, Y, D, w)) {
                ok = 0;
                break;
            }
            for (size_t i = 0; i < n; i++) X[i] = Xb[i] + D[i];
            st->refinements = it + 1;
        }
        free(w);
        if (ok && be <= BT_ACCEPT) {
            st->backward_error = be;
            return TF_OK;
        }
    }
    TF_TRY(dense_solve(L, p, mc, R, shift, B, X, st));
    double be = tf_bt_backward_error(L, p, mc, R, shift, B, X);
    if (be < 0) return tf_err(TF_EINTERNAL, "bsseval: out of memory for the residual");
    st->backward_error = be;
    return TF_OK;
}
