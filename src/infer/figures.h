/* Figures of an evaluation, drawn pixel by pixel and written as PNG (util/image.h).
 *
 * Spectrogram figure (TF_FIG_SPEC_W x TF_FIG_SPEC_H): three panels stacked, each the
 * log-magnitude STFT of one signal (channels averaged), log-frequency axis from 30 Hz to
 * Nyquist (ticks at 100 Hz, 1 kHz, 10 kHz), time axis in seconds, viridis colormap over a
 * FIXED range of -80..0 dB, where 0 dB is a full-scale sine (|X| scaled by 4 / n_fft for the
 * periodic Hann window), so panels and figures compare directly.
 *
 * Bar chart (TF_FIG_BARS_W x TF_FIG_BARS_H): one group per track (numbered from 1), one bar
 * per series (e.g. mixture / model / oracle) from 0 dB to the value; a missing (NaN) value
 * draws no bar; y axis with grid lines every 5 or 10 dB; legend at the top. */
#ifndef TFSWA_FIGURES_H
#define TFSWA_FIGURES_H
#include <stdint.h>

#include "util/err.h"

#define TF_FIG_SPEC_W 688
#define TF_FIG_SPEC_H 616
#define TF_FIG_BARS_W 688
#define TF_FIG_BARS_H 320
#define TF_FIG_DB_MIN -80.0
#define TF_FIG_DB_MAX 0.0

typedef struct {
    int n_fft, hop, rate; /* STFT (that of the model) and sample rate */
    const float *sig[3];  /* (2, n) planar, rows `stride` floats apart */
    int64_t stride, n;    /* n >= 1 frames shown */
    const char *title[3]; /* drawn above each panel */
} tf_fig_spec;

tf_status tf_fig_spectrogram(const char *path, const tf_fig_spec *f);

#define TF_FIG_MAX_SERIES 4
typedef struct {
    const char *title;
    const char *ylabel; /* e.g. "CSDR (DB)" */
    int n_groups;       /* tracks, >= 1 */
    int n_series;       /* 1..TF_FIG_MAX_SERIES */
    const char *series[TF_FIG_MAX_SERIES];
    uint32_t color[TF_FIG_MAX_SERIES];       /* TF_RGB */
    const double *values[TF_FIG_MAX_SERIES]; /* (n_groups,) each; NaN: no bar */
} tf_fig_bars;

tf_status tf_fig_bar_chart(const char *path, const tf_fig_bars *b);

#endif
