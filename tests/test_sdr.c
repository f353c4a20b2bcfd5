/* uSDR and SI-SDR against direct numpy-style formulas in double, block accumulation. */
#include "metrics/sdr.h"
#include "test.h"
#include "util/rng.h"

static void test_usdr_and_sisdr_formulas(void) {
    enum { N = 5000 };
    static float s[N], e[N];
    tf_rng r;
    tf_rng_seed(&r, 3, 0, 0, 0);
    for (int i = 0; i < N; i++) {
        s[i] = (float)tf_rng_normal(&r);
        e[i] = 0.8f * s[i] + 0.1f * (float)tf_rng_normal(&r);
    }
    double ss = 0, dd = 0, se = 0;
    for (int i = 0; i < N; i++)
        ss += (double)s[i] * s[i], dd += ((double)s[i] - e[i]) * ((double)s[i] - e[i]),
            se += (double)s[i] * e[i];
    tf_sdr_acc a = {0};
    tf_sdr_acc_add(&a, s, e, 1234); /* in two blocks */
    tf_sdr_acc_add(&a, s + 1234, e + 1234, N - 1234);
    CHECK_NEAR(tf_sdr_usdr(&a), 10 * log10((ss + 1e-7) / (dd + 1e-7)), 1e-9);
    double alpha = se / ss, num = 0, den = 0;
    for (int i = 0; i < N; i++) {
        double t = alpha * s[i];
        num += t * t, den += (e[i] - t) * (e[i] - t);
    }
    CHECK_NEAR(tf_sdr_sisdr(&a), 10 * log10(num / den), 1e-6);
    /* SI-SDR ignores scale, uSDR does not */
    tf_sdr_acc b = {0};
    for (int i = 0; i < N; i++) e[i] *= 3.f;
    tf_sdr_acc_add(&b, s, e, N);
    CHECK_NEAR(tf_sdr_sisdr(&b), tf_sdr_sisdr(&a), 1e-6);
    CHECK(tf_sdr_usdr(&b) < tf_sdr_usdr(&a) - 3.0);
}

static void test_perfect_and_silent(void) {
    float s[4] = {0.5f, -0.25f, 0.f, 1.f}, z[4] = {0};
    tf_sdr_acc a = {0}, b = {0};
    tf_sdr_acc_add(&a, s, s, 4);
    CHECK(tf_sdr_usdr(&a) > 60);
    tf_sdr_acc_add(&b, s, z, 4); /* silent estimate: 0 dB */
    CHECK_NEAR(tf_sdr_usdr(&b), 0.0, 1e-6);
}

int main(void) {
    RUN(test_usdr_and_sisdr_formulas);
    RUN(test_perfect_and_silent);
    return TEST_END();
}
