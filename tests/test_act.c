/* GELU against the erf formula in double (dense sweep, absolute and relative error) and a
 * central finite difference of the double formula for the backward. */
#include "nn/act.h"
#include "test.h"

/* erfc form: no cancellation in the negative tail */
static double gelu_ref(double x) {
    return 0.5 * x * erfc(-x / sqrt(2.0));
}
static double dgelu_ref(double x) {
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
}

static void test_gelu_forward_matches_erf_form(void) {
    enum { N = 40001 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -20.f + 40.f * (float)i / (N - 1);
    tf_gelu_forward(y, x, N);
    double worst_abs = 0, worst_rel = 0;
    for (int i = 0; i < N; i++) {
        double r = gelu_ref(x[i]), e = fabs(y[i] - r);
        worst_abs = fmax(worst_abs, e);
        if (fabs(r) > 1e-30) worst_rel = fmax(worst_rel, e / fabs(r));
    }
    /* relative accuracy also in the negative tail, where 1 + erf would cancel (float
     * rounding of the exponent's argument, |q| up to ~80, limits it to ~1e-5 there) */
    CHECKF(worst_abs < 1e-6 && worst_rel < 3e-5, "abs %g rel %g", worst_abs, worst_rel);
}

static void test_gelu_backward_finite_difference(void) {
    float x[7] = {-4.f, -1.3f, -0.2f, 0.f, 0.4f, 1.7f, 3.f}, dout[7], dx[7];
    for (int i = 0; i < 7; i++) dout[i] = 0.5f + 0.25f * (float)i, dx[i] = 1.f; /* accumulates */
    tf_gelu_backward(dx, dout, x, 7);
    for (int i = 0; i < 7; i++) {
        double h = 1e-5, g = (gelu_ref(x[i] + h) - gelu_ref(x[i] - h)) / (2 * h);
        CHECK_NEAR(dx[i], 1.0 + dout[i] * g, 1e-5);
    }
    enum { N = 20001 };
    static float xs[N], ds[N], ones[N];
    for (int i = 0; i < N; i++)
        xs[i] = -15.f + 30.f * (float)i / (N - 1), ones[i] = 1.f, ds[i] = 0.f;
    tf_gelu_backward(ds, ones, xs, N);
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(ds[i] - dgelu_ref(xs[i])));
    CHECKF(worst < 2e-6, "worst derivative error %g", worst);
}

int main(void) {
    RUN(test_gelu_forward_matches_erf_form);
    RUN(test_gelu_backward_finite_difference);
    return TEST_END();
}
