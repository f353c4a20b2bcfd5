/* Subband split/merge of spectrogram magnitudes and their adjoints (see stft.h).
 * Full band (B, C, F, T) <-> subbands (B, C*K, Fs, T), Fs = (F-1)/K, channel c*K + k =
 * bins [k Fs, (k+1) Fs) of audio channel c. With this channel order, subband channel
 * c*K + k starts at bin k*Fs of channel c, so the subband tensor is the full band without
 * its Nyquist rows and every transform here is one contiguous copy per (b, c). */
#include "dsp/stft.h"

#include <string.h>

static tf_status check(const char *fn, int B, int C, int F, int T, int K) {
    if (B < 0 || C < 0 || T < 0 || F < 2)
        return tf_err(TF_EUSER, "%s: bad shape (B %d, C %d, F %d, T %d)", fn, B, C, F, T);
    if (K < 1 || (F - 1) % K != 0)
        return tf_err(TF_EUSER, "%s: %d subbands do not divide the %d bins below Nyquist", fn, K,
                      F - 1);
    return TF_OK;
}

tf_status tf_subband_split(float *out, const float *inp, int B, int C, int F, int T, int K) {
    TF_TRY(check("subband split", B, C, F, T, K));
    const size_t full = (size_t)F * T, band = (size_t)(F - 1) * T, BC = (size_t)B * C;
#pragma omp parallel for schedule(static) if (BC * band > 65536)
    for (size_t i = 0; i < BC; i++) memcpy(out + i * band, inp + i * full, band * sizeof(float));
    return TF_OK;
}

tf_status tf_subband_split_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                    int K) {
    TF_TRY(check("subband split backward", B, C, F, T, K));
    const size_t full = (size_t)F * T, band = (size_t)(F - 1) * T, BC = (size_t)B * C;
#pragma omp parallel for schedule(static) if (BC * band > 65536)
    for (size_t i = 0; i < BC; i++) {
        float *d = dinp + i * full;
        const float *g = dout + i * band;
        for (size_t j = 0; j < band; j++) d[j] += g[j];
    }
    return TF_OK;
}

tf_status tf_subband_merge(float *out, const float *inp, int B, int C, int F, int T, int K) {
    TF_TRY(check("subband merge", B, C, F, T, K));
    const size_t full = (size_t)F * T, band = (size_t)(F - 1) * T, BC = (size_t)B * C;
#pragma omp parallel for schedule(static) if (BC * band > 65536)
    for (size_t i = 0; i < BC; i++) {
        memcpy(out + i * full, inp + i * band, band * sizeof(float));
        memset(out + i * full + band, 0, (size_t)T * sizeof(float)); /* Nyquist row */
    }
    return TF_OK;
}

tf_status tf_subband_merge_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                    int K) {
    TF_TRY(check("subband merge backward", B, C, F, T, K));
    const size_t full = (size_t)F * T, band = (size_t)(F - 1) * T, BC = (size_t)B * C;
#pragma omp parallel for schedule(static) if (BC * band > 65536)
    for (size_t i = 0; i < BC; i++) {
        float *d = dinp + i * band;
        const float *g = dout + i * full;
        for (size_t j = 0; j < band; j++) d[j] += g[j];
    }
    return TF_OK;
}
