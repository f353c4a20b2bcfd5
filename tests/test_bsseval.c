/* BSS Eval v4 against museval 0.4.1 (through tools/pyenv.sh's venv), plus the parts that
 * need no Python: framing, aggregate, input errors, the block Toeplitz solver. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bss_check.h"
#include "metrics/bsseval.h"
#include "metrics/btsolve.h"
#include "test.h"
#include "util/rng.h"

#define MAX_CASES 16

/* every standard case, our AUTO solver and museval: <= 0.01 dB on every finite value,
 * NaN / inf exactly where museval has them */
static void test_museval_agreement(void) {
    char root[4096], py[4096];
    tf_status st = tf_bss_find_root(root, sizeof root);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st != TF_OK) return;
    st = tf_bss_pyenv(root, py, sizeof py);
    CHECKF(st == TF_OK, "cannot run the museval reference: %s", tf_errmsg());
    if (st != TF_OK) return;

    tf_bss_case cases[MAX_CASES];
    int n = tf_bss_std_cases(cases, MAX_CASES);
    CHECK(n >= 8);
    if (n < 1) return;
    char dir[] = "/tmp/tfswa_bssXXXXXX", in[64], out[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(in, sizeof in, "%s/in.bin", dir);
    snprintf(out, sizeof out, "%s/out.bin", dir);
    tf_bss_scores ref[MAX_CASES];
    st = tf_bss_write_cases(in, cases, n);
    if (st == TF_OK) st = tf_bss_run_museval(py, root, in, out, 2);
    if (st == TF_OK) st = tf_bss_read_scores(out, cases, n, ref);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st == TF_OK) {
        tf_bss_cmp all = {0};
        int64_t nan_museval = 0, dense_used = 0;
        for (int i = 0; i < n; i++) {
            tf_bss_scores ours;
            tf_bss_info info;
            st = tf_bss_eval_case(&cases[i], TF_BSS_SOLVER_AUTO, &ours, &info);
            CHECKF(st == TF_OK, "%s", tf_errmsg());
            if (st != TF_OK) continue;
            tf_bss_cmp c = {0};
            tf_bss_compare(&ref[i], &ours, &c);
            printf("  %-20s frames %3lld  max |diff| %.2e dB  medians %.2e dB  non-finite "
                   "mismatches %lld  dense %d  backward err %.1e\n",
                   cases[i].name, (long long)ours.nwin, c.max_abs_diff, c.max_median_diff,
                   (long long)c.nonfinite_mismatch, info.dense_fallbacks, info.backward_error);
            CHECKF(c.max_abs_diff <= 0.01, "%s: %g dB", cases[i].name, c.max_abs_diff);
            CHECKF(c.max_median_diff <= 0.01, "%s: medians %g dB", cases[i].name,
                   c.max_median_diff);
            CHECKF(c.nonfinite_mismatch == 0, "%s: %lld NaN/inf mismatches", cases[i].name,
                   (long long)c.nonfinite_mismatch);
            CHECK(c.compared > 0);
            for (int k = 0; k < 4; k++)
                for (int64_t v = 0; v < ref[i].nsrc * ref[i].nwin; v++)
                    nan_museval += isnan(ref[i].m[k][v]);
            if (!strncmp(cases[i].name, "dualmono", 8)) dense_used += info.dense_fallbacks;
            all.max_abs_diff = fmax(all.max_abs_diff, c.max_abs_diff);
            tf_bss_scores_free(&ours);
        }
        printf("  all cases: max |diff| %.2e dB\n", all.max_abs_diff);
        CHECK(nan_museval > 0); /* the silent frames were exercised */
        CHECK(dense_used > 0);  /* the dual-mono system needed museval's dense path */
        for (int i = 0; i < n; i++) tf_bss_scores_free(&ref[i]);
    }
    unlink(in), unlink(out), rmdir(dir);
    for (int i = 0; i < n; i++) tf_bss_case_free(&cases[i]);
}

/* museval's Framing: nwin = floor((N - window + hop) / hop) when window < N, else 1 */
static void test_nwin(void) {
    CHECK(tf_bss_nwin(110250, 44100, 44100) == 2); /* 2.5 windows: the tail is dropped */
    CHECK(tf_bss_nwin(30000, 44100, 44100) == 1);
    CHECK(tf_bss_nwin(44100, 44100, 44100) == 1);
    CHECK(tf_bss_nwin(44101, 44100, 44100) == 1);
    CHECK(tf_bss_nwin(88200, 44100, 44100) == 2);
    CHECK(tf_bss_nwin(23000, 6000, 4000) == 5);
}

/* museval's TrackStore aggregate: +-inf -> NaN, then nanmedian */
static void test_median(void) {
    double a[] = {3, NAN, 1, INFINITY, 2, -INFINITY};
    CHECK(tf_bss_median(a, 6) == 2);
    double b[] = {4, 1, NAN, 3, 2};
    CHECK(tf_bss_median(b, 5) == 2.5);
    double c[] = {NAN, INFINITY};
    CHECK(isnan(tf_bss_median(c, 2)));
    CHECK(isnan(tf_bss_median(c, 0)));
}

static void test_user_errors(void) {
    tf_bss_case c;
    CHECK(tf_bss_case_make(&c, "e", TF_BSS_CASE_GOOD, 2, 2, 3000, 1000, 1000, 16, 7) == TF_OK);
    tf_bss_params p = {1000, 1000, 16, TF_BSS_SOLVER_AUTO};
    double m[4][6];
    CHECK(tf_bss_eval(&p, c.ref, c.est, 2, 2, 3000, m[0], m[1], m[2], m[3], NULL) == TF_OK);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 6; i++) CHECK(isfinite(m[k][i]));
    /* an estimate whose channels cancel everywhere is "silent" for museval */
    float *e1 = c.est + 2 * 3000;
    for (int t = 0; t < 3000; t++) e1[3000 + t] = -e1[t];
    CHECK(tf_bss_eval(&p, c.ref, c.est, 2, 2, 3000, m[0], m[1], m[2], m[3], NULL) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "estimated source 1") != NULL);
    memset(c.ref, 0, 2 * 3000 * sizeof(float));
    CHECK(tf_bss_eval(&p, c.ref, c.est, 2, 2, 3000, m[0], m[1], m[2], m[3], NULL) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "reference source 0") != NULL);
    p.filters_len = 0;
    CHECK(tf_bss_eval(&p, c.ref, c.est, 2, 2, 3000, m[0], m[1], m[2], m[3], NULL) == TF_EUSER);
    tf_bss_case_free(&c);
}

/* (T + shift I) X = B for a Gram block Toeplitz matrix, checked with a naive dense
 * product; Levinson and the dense LU both. */
static void test_btsolve(void) {
    const int L = 24, p = 3, mc = 2, N = 400;
    double x[3][400], R[24 * 9], B[24 * 3 * 2], X[24 * 3 * 2];
    tf_rng r;
    tf_rng_seed(&r, 5, 0, 0, 0);
    for (int a = 0; a < p; a++) {
        double ar = 0;
        for (int n = 0; n < N; n++) x[a][n] = ar = 0.9 * ar + tf_rng_normal(&r);
    }
    for (int m = 0; m < L; m++)
        for (int a = 0; a < p; a++)
            for (int b = 0; b < p; b++) {
                double s = 0;
                for (int n = 0; n + m < N; n++) s += x[a][n + m] * x[b][n];
                R[(m * p + a) * p + b] = s;
            }
    for (int i = 0; i < L * p * mc; i++) B[i] = tf_rng_normal(&r);
    for (int dense = 0; dense < 2; dense++) {
        tf_bt_stats st;
        CHECK(tf_bt_solve(L, p, mc, R, 1e-3, B, X, dense, &st) == TF_OK);
        CHECK(st.dense == dense);
        double worst = 0;
        for (int k1 = 0; k1 < L; k1++)
            for (int a = 0; a < p; a++)
                for (int c = 0; c < mc; c++) {
                    double s = 1e-3 * X[(k1 * p + a) * mc + c];
                    for (int k2 = 0; k2 < L; k2++)
                        for (int b = 0; b < p; b++) {
                            int m = k2 - k1;
                            double t = m >= 0 ? R[(m * p + a) * p + b] : R[(-m * p + b) * p + a];
                            s += t * X[(k2 * p + b) * mc + c];
                        }
                    worst = fmax(worst, fabs(s - B[(k1 * p + a) * mc + c]));
                }
        CHECKF(worst < 1e-9, "dense=%d residual %g", dense, worst);
    }
}

int main(void) {
    RUN(test_nwin);
    RUN(test_median);
    RUN(test_user_errors);
    RUN(test_btsolve);
    RUN(test_museval_agreement);
    return TEST_END();
}
