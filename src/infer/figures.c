#include "infer/figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/stft.h"
#include "util/image.h"

#define WHITE TF_RGB(255, 255, 255)
#define BLACK TF_RGB(0, 0, 0)
#define GRID  TF_RGB(220, 220, 220)

/* ---- spectrogram ---- */

enum { SP_LM = 40, SP_RM = 8, SP_TB = 14, SP_PH = 180, SP_GAP = 6, SP_BB = 16 };
#define SP_PW   (TF_FIG_SPEC_W - SP_LM - SP_RM)
#define SP_FMIN 30.0

/* Row r (0 = bottom) of the plot covers [f(r), f(r+1)), f(r) = fmin (fmax/fmin)^(r/PH). */
static double row_freq(double r, double fmax) {
    return SP_FMIN * pow(fmax / SP_FMIN, r / SP_PH);
}

/* dB image (SP_PH, SP_PW) of one signal. */
static tf_status spec_db(tf_stft *st, const tf_fig_spec *f, const float *x, float *mono, float *re,
                         float *im, float *db) {
    const int64_t n = f->n;
    for (int64_t i = 0; i < n; i++) mono[i] = 0.5f * (x[i] + x[f->stride + i]);
    TF_TRY(tf_stft_forward(st, re, im, mono, 1, n));
    const int F = tf_stft_bins(st);
    const int64_t T = tf_stft_frames(st, n);
    const double scale = 4.0 / f->n_fft, fnyq = 0.5 * f->rate, bin_hz = (double)f->rate / f->n_fft;
    for (int r = 0; r < SP_PH; r++) {
        double lo = row_freq(r, fnyq), hi = row_freq(r + 1, fnyq);
        int b0 = (int)ceil(lo / bin_hz), b1 = (int)ceil(hi / bin_hz); /* bins in [lo, hi) */
        if (b1 > F) b1 = F;
        double pos = sqrt(lo * hi) / bin_hz; /* no bin inside: interpolate at the centre */
        int i0 = (int)floor(pos);
        if (i0 > F - 2) i0 = F - 2;
        double w = pos - i0;
        for (int c = 0; c < SP_PW; c++) {
            int64_t t = (int64_t)(((double)c + 0.5) * (double)T / SP_PW);
            if (t >= T) t = T - 1;
            double mag = 0;
            if (b1 > b0) {
                for (int b = b0; b < b1; b++)
                    mag = fmax(mag, hypot(re[(size_t)b * T + t], im[(size_t)b * T + t]));
            } else {
                double m0 = hypot(re[(size_t)i0 * T + t], im[(size_t)i0 * T + t]);
                double m1 = hypot(re[(size_t)(i0 + 1) * T + t], im[(size_t)(i0 + 1) * T + t]);
                mag = (1 - w) * m0 + w * m1;
            }
            db[(size_t)(SP_PH - 1 - r) * SP_PW + c] = (float)(20.0 * log10(mag * scale + 1e-20));
        }
    }
    return TF_OK;
}

static void draw_spec_axes(tf_image *img, const tf_fig_spec *f, int top) {
    const double fmax = 0.5 * f->rate;
    static const double ticks[] = {100, 1000, 10000};
    static const char *labels[] = {"100", "1K", "10K"};
    for (int k = 0; k < 3; k++) {
        if (ticks[k] >= fmax) continue;
        double r = SP_PH * log(ticks[k] / SP_FMIN) / log(fmax / SP_FMIN);
        int y = top + SP_PH - 1 - (int)lround(r);
        tf_image_fill(img, SP_LM - 4, y, SP_LM, y + 1, BLACK);
        tf_image_text(img, SP_LM - 6 - tf_text_width(labels[k], 1), y - 3, labels[k], 1, BLACK);
    }
}

tf_status tf_fig_spectrogram(const char *path, const tf_fig_spec *f) {
    if (f->n < 1 || f->n_fft < 4 || f->hop < 1 || f->rate < 1)
        return tf_err(TF_EINTERNAL, "spectrogram figure: bad arguments");
    tf_stft *st = NULL;
    TF_TRY(tf_stft_create(&st, f->n_fft, f->hop));
    const size_t FT = (size_t)tf_stft_bins(st) * (size_t)tf_stft_frames(st, f->n);
    float *mono = tf_malloc(sizeof(float) * (size_t)f->n, "spectrogram signal");
    float *re = tf_malloc(sizeof(float) * FT, "spectrogram");
    float *im = tf_malloc(sizeof(float) * FT, "spectrogram");
    float *db = tf_malloc(sizeof(float) * SP_PH * SP_PW, "spectrogram image");
    tf_image img = {0, 0, NULL};
    tf_status s = (mono && re && im && db) ? TF_OK : TF_EINTERNAL;
    if (!s) s = tf_image_create(&img, TF_FIG_SPEC_W, TF_FIG_SPEC_H, WHITE);
    for (int p = 0; p < 3 && !s; p++) {
        s = spec_db(st, f, f->sig[p], mono, re, im, db);
        if (s) break;
        int top = p * (SP_TB + SP_PH + SP_GAP) + SP_TB;
        tf_image_text(&img, SP_LM, top - SP_TB + 3, f->title[p] ? f->title[p] : "", 1, BLACK);
        for (int y = 0; y < SP_PH; y++)
            for (int x = 0; x < SP_PW; x++) {
                double v = db[(size_t)y * SP_PW + x];
                double t = (v - TF_FIG_DB_MIN) / (TF_FIG_DB_MAX - TF_FIG_DB_MIN);
                tf_image_set(&img, SP_LM + x, top + y, tf_viridis(t));
            }
        draw_spec_axes(&img, f, top);
    }
    if (!s) { /* time axis under the last panel: a tick per second (per 0.5 s when short) */
        int y = 3 * (SP_TB + SP_PH + SP_GAP) - SP_GAP;
        double dur = (double)f->n / f->rate, step = dur >= 2 ? 1.0 : 0.5;
        for (double t = 0; t <= dur + 1e-9; t += step) {
            int x = SP_LM + (int)lround(t / dur * (SP_PW - 1));
            char lab[32];
            snprintf(lab, sizeof lab, step < 1 ? "%.1f S" : "%.0f S", t);
            tf_image_fill(&img, x, y, x + 1, y + 4, BLACK);
            int lx = x - tf_text_width(lab, 1) / 2, lw = tf_text_width(lab, 1);
            if (lx + lw > TF_FIG_SPEC_W) lx = TF_FIG_SPEC_W - lw;
            tf_image_text(&img, lx, y + 6, lab, 1, BLACK);
        }
        tf_image_text(&img, 2, 3, "HZ", 1, BLACK);
        s = tf_image_write_png(&img, path);
    }
    tf_image_free(&img);
    free(mono), free(re), free(im), free(db);
    tf_stft_destroy(st);
    return s;
}

/* ---- bar chart ---- */

enum { BC_LM = 44, BC_RM = 8, BC_TM = 24, BC_BM = 20 };
#define BC_PW (TF_FIG_BARS_W - BC_LM - BC_RM)
#define BC_PH (TF_FIG_BARS_H - BC_TM - BC_BM)

tf_status tf_fig_bar_chart(const char *path, const tf_fig_bars *b) {
    if (b->n_groups < 1 || b->n_series < 1 || b->n_series > TF_FIG_MAX_SERIES)
        return tf_err(TF_EINTERNAL, "bar chart: bad arguments");
    double lo = 0, hi = 0;
    for (int s = 0; s < b->n_series; s++)
        for (int g = 0; g < b->n_groups; g++) {
            double v = b->values[s][g];
            if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    double step = (hi - lo) > 60 ? 10 : 5;
    lo = step * floor(lo / step), hi = step * ceil(hi / step);
    if (hi - lo < step) hi = lo + step;
    tf_image img;
    TF_TRY(tf_image_create(&img, TF_FIG_BARS_W, TF_FIG_BARS_H, WHITE));
#define YPIX(v) (BC_TM + (int)lround((hi - (v)) / (hi - lo) * (BC_PH - 1)))
    for (double v = lo; v <= hi + 1e-9; v += step) { /* grid and y labels */
        int y = YPIX(v);
        tf_image_fill(&img, BC_LM, y, BC_LM + BC_PW, y + 1, fabs(v) < 1e-9 ? BLACK : GRID);
        char lab[32];
        snprintf(lab, sizeof lab, "%.0f", v);
        tf_image_text(&img, BC_LM - 4 - tf_text_width(lab, 1), y - 3, lab, 1, BLACK);
    }
    tf_image_fill(&img, BC_LM - 1, BC_TM, BC_LM, BC_TM + BC_PH, BLACK); /* y axis */
    const double gw = (double)BC_PW / b->n_groups;
    int bw = (int)(gw * 0.8 / b->n_series);
    if (bw < 1) bw = 1;
    int label_every = 1;
    while (gw * label_every < 4 * TF_FONT_W) label_every++;
    for (int g = 0; g < b->n_groups; g++) {
        int gx = BC_LM + (int)(g * gw + 0.1 * gw);
        for (int s = 0; s < b->n_series; s++) {
            double v = b->values[s][g];
            if (!isfinite(v)) continue;
            int x = gx + s * bw, y0 = YPIX(0), y1 = YPIX(v);
            if (y1 > y0)
                tf_image_fill(&img, x, y0 + 1, x + bw, y1 + 1, b->color[s]);
            else
                tf_image_fill(&img, x, y1, x + bw, y0, b->color[s]);
        }
        if ((g + 1) % label_every == 0 || b->n_groups == 1) {
            char lab[32];
            snprintf(lab, sizeof lab, "%d", g + 1);
            int cx = BC_LM + (int)((g + 0.5) * gw);
            tf_image_text(&img, cx - tf_text_width(lab, 1) / 2, BC_TM + BC_PH + 5, lab, 1, BLACK);
        }
    }
#undef YPIX
    tf_image_text(&img, BC_LM, 6, b->title ? b->title : "", 1, BLACK);
    if (b->ylabel) tf_image_text(&img, 2, BC_TM + BC_PH + 5, b->ylabel, 1, BLACK);
    int x = TF_FIG_BARS_W - BC_RM; /* legend, right-aligned */
    for (int s = b->n_series - 1; s >= 0; s--) {
        x -= tf_text_width(b->series[s], 1);
        tf_image_text(&img, x, 6, b->series[s], 1, BLACK);
        x -= 12;
        tf_image_fill(&img, x, 5, x + 9, 14, b->color[s]);
        x -= 12;
    }
    tf_status st = tf_image_write_png(&img, path);
    tf_image_free(&img);
    return st;
}
