/* GELU against the erf formula in double and a central finite difference. */
#include "nn/act.h"
#include "test.h"

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

static void test_gelu_forward_matches_erf_form(void) {
    float x[9] = {-6.f, -3.f, -1.f, -0.5f, 0.f, 0.3f, 1.f, 2.5f, 7.f}, y[9];
    gelu_forward(y, x, 9);
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], gelu_ref(x[i]), 1e-6);
}

static void test_gelu_backward_finite_difference(void) {
    float x[7] = {-4.f, -1.3f, -0.2f, 0.f, 0.4f, 1.7f, 3.f}, dout[7], dx[7];
    for (int i = 0; i < 7; i++) dout[i] = 0.5f + 0.25f * (float)i, dx[i] = 1.f; /* accumulates */
    gelu_backward(dx, dout, x, 7);
    for (int i = 0; i < 7; i++) {
        double h = 1e-5, g = (gelu_ref(x[i] + h) - gelu_ref(x[i] - h)) / (2 * h);
        CHECK_NEAR(dx[i], 1.0 + dout[i] * g, 1e-5);
    }
}

int main(void) {
    RUN(test_gelu_forward_matches_erf_form);
    RUN(test_gelu_backward_finite_difference);
    return TEST_END();
}
