/* Signal-level metrics on planar signals (C, N) (all channels pooled):
 * uSDR, the MDX "new SDR": 10 log10((sum s^2 + d) / (sum (s - e)^2 + d)), d = 1e-7;
 * SI-SDR: 10 log10(|a s|^2 / |e - a s|^2) with a = <e, s> / <s, s>, pooled over channels. */
#ifndef TFSWA_SDR_H
#define TFSWA_SDR_H
#include <stdint.h>

/* Running sums so a track can be scored block by block. */
typedef struct {
    double ss, ee, se, dd; /* sum s^2, sum e^2, sum s*e, sum (s-e)^2 */
} tf_sdr_acc;

void tf_sdr_acc_add(tf_sdr_acc *a, const float *ref, const float *est, int64_t n);
double tf_sdr_usdr(const tf_sdr_acc *a);
double tf_sdr_sisdr(const tf_sdr_acc *a);

#endif
