#include "metrics/sdr.h"

#include <math.h>

void tf_sdr_acc_add(tf_sdr_acc *a, const float *ref, const float *est, int64_t n) {
    double ss = 0, ee = 0, se = 0, dd = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = ref[i], e = est[i], d = s - e;
        ss += s * s, ee += e * e, se += s * e, dd += d * d;
    }
    a->ss += ss, a->ee += ee, a->se += se, a->dd += dd;
}

double tf_sdr_usdr(const tf_sdr_acc *a) {
    const double delta = 1e-7;
    return 10.0 * log10((a->ss + delta) / (a->dd + delta));
}

double tf_sdr_sisdr(const tf_sdr_acc *a) {
    const double eps = 1e-12;
    double alpha = a->se / (a->ss + eps);
    double target = alpha * alpha * a->ss;
    /* |e - a s|^2 = ee - 2 a se + a^2 ss */
    double noise = a->ee - 2.0 * alpha * a->se + alpha * alpha * a->ss;
    if (noise < 0) noise = 0;
    return 10.0 * log10((target + eps) / (noise + eps));
}
