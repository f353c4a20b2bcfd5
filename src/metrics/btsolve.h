/* Symmetric positive (semi)definite block Toeplitz systems, for the BSS Eval filters.
 *
 * T has L x L blocks of size p x p; block (i, j) = R(j - i) with R(-m) = R(m)^T, plus
 * `shift` on the diagonal. R: (L, p, p), R[m] for lags m = 0..L-1 (row-major blocks).
 * Right-hand sides and solution: (L, p, mc) (block row k, then p, then the mc columns).
 * In the unknown order of museval (signal a, then lag k) the same T is G[(a,k1),(b,k2)]. */
#ifndef TFSWA_BTSOLVE_H
#define TFSWA_BTSOLVE_H

#include "util/err.h"

typedef struct {
    int dense;             /* 1 when the dense path produced X */
    int lstsq;             /* 1 when the dense LU was singular and dgelsd produced X */
    int refinements;       /* Levinson refinement steps done */
    double backward_error; /* normwise backward error of X (max over columns) */
} tf_bt_stats;

/* Solve (T + shift I) X = B. dense_only: skip the Levinson path (museval's exact
 * algorithm: LU with partial pivoting, dgesv; if exactly singular, least squares without
 * the shift, dgelsd with rcond = DBL_EPSILON * L p). TF_EINTERNAL on allocation or LAPACK
 * failure. */
tf_status tf_bt_solve(int L, int p, int mc, const double *R, double shift, const double *B,
                      double *X, int dense_only, tf_bt_stats *st);

/* Y = B - (T + shift I) X, all (L, p, mc); returns 0, or -1 when out of memory. */
int tf_bt_residual(int L, int p, int mc, const double *R, double shift, const double *B,
                   const double *X, double *Y);

/* Normwise backward error max_col |r| / (|T|_F |x| + |b|) of X. -1 when out of memory. */
double tf_bt_backward_error(int L, int p, int mc, const double *R, double shift, const double *B,
                            const double *X);

#endif
