/* Per-element math of dsp/ shared with the CUDA kernels (src/cuda/elem.cu), as nn/elem.h
 * is for nn/: static inline, TF_HD (util/hd.h), C11 and CUDA C++. */
#ifndef TFSWA_DSP_ELEM_H
#define TFSWA_DSP_ELEM_H
#include <math.h>

#include "util/hd.h"

/* One bin of tf_magphase (dsp/stft.h): returns |X| and writes the phase X / |X| into
 * *pr, *pi (1 + 0i where |X| == 0); in double, as the CPU kernel computes it. */
static inline TF_HD float tf_magphase_elem(float re, float im, float *pr, float *pi) {
    double a = re, b = im, m = sqrt(a * a + b * b);
    if (m > 0) {
        *pr = (float)(a / m);
        *pi = (float)(b / m);
    } else {
        *pr = 1.f;
        *pi = 0.f;
    }
    return (float)m;
}

#endif
