/* Training losses: the L1 value and gradient exactly, and the multi-resolution STFT loss
 * gradient against central finite differences of its value. */
#include <stdlib.h>

#include "test.h"
#include "train/loss.h"
#include "util/rng.h"

enum { S = 2, N = 3000 };

static void fill(float *y, float *t) {
    tf_rng r;
    tf_rng_seed(&r, 9, 0, 0, 0);
    for (int i = 0; i < S * N; i++) {
        t[i] = (float)(0.3 * sin(0.01 * i) + 0.1 * tf_rng_normal(&r));
        y[i] = t[i] + (float)(0.2 * tf_rng_normal(&r));
    }
}

static void test_l1_value_and_gradient(void) {
    static float y[S * N], t[S * N], dy[S * N];
    fill(y, t);
    tf_loss_ctx *l;
    CHECK(tf_loss_create(&l, TF_LOSS_L1, N) == TF_OK);
    double loss, ref = 0;
    CHECK(tf_loss_eval(l, y, t, S, N, 0.5, dy, &loss) == TF_OK);
    for (int i = 0; i < S * N; i++) ref += fabs((double)y[i] - t[i]);
    CHECK_NEAR(loss, ref / (S * N), 1e-9);
    for (int i = 0; i < S * N; i += 97) {
        double want = 0.5 / (S * N) * (y[i] > t[i] ? 1 : y[i] < t[i] ? -1 : 0);
        CHECK_NEAR(dy[i], want, 1e-12);
    }
    tf_loss_free(l);
}

static void test_mrstft_gradient_finite_difference(void) {
    static float y[S * N], t[S * N], dy[S * N], tmp[S * N];
    fill(y, t);
    tf_loss_ctx *l;
    CHECK(tf_loss_create(&l, TF_LOSS_MRSTFT, N) == TF_OK);
    double loss, l1only;
    CHECK(tf_loss_eval(l, y, t, S, N, 1.0, dy, &loss) == TF_OK);
    tf_loss_ctx *l1;
    CHECK(tf_loss_create(&l1, TF_LOSS_L1, N) == TF_OK);
    CHECK(tf_loss_eval(l1, y, t, S, N, 1.0, tmp, &l1only) == TF_OK);
    CHECK(loss > l1only); /* the spectral terms add to the waveform L1 */
    int bad = 0;
    const double eps = 1e-3;
    for (int k = 0; k < 12; k++) {
        int i = (k * 523 + 17) % (S * N);
        float keep = y[i];
        double lp, lm;
        y[i] = keep + (float)eps;
        tf_loss_eval(l, y, t, S, N, 1.0, tmp, &lp);
        y[i] = keep - (float)eps;
        tf_loss_eval(l, y, t, S, N, 1.0, tmp, &lm);
        y[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        if (fabs(fd - dy[i]) > 0.05 * fabs(dy[i]) + 1e-9) {
            bad++;
            fprintf(stderr, "  i=%d fd %.6g analytic %.6g\n", i, fd, dy[i]);
        }
    }
    CHECK(bad <= 1); /* L1 kinks may hit one coordinate */
    tf_loss_free(l), tf_loss_free(l1);
}

int main(void) {
    RUN(test_l1_value_and_gradient);
    RUN(test_mrstft_gradient_finite_difference);
    return TEST_END();
}
