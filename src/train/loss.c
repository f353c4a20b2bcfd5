#include "train/loss.h"

#include <math.h>
#include <stdlib.h>

#include "dsp/stft.h"
#include "nn/elem.h"

#define N_RES 3
static const int RES_WIN[N_RES] = {512, 1024, 2048};

struct tf_loss_ctx {
    tf_loss kind;
    int64_t N;
    tf_stft *st[N_RES];
    float *buf; /* per resolution reused: yr, yi, tr, ti, dr, di of (F, T) each */
};

static size_t spec_floats(int win, int64_t N) {
    return (size_t)(win / 2 + 1) * (size_t)(1 + N / (win / 4));
}

size_t tf_loss_plan_bytes(tf_loss kind, int64_t N) {
    if (kind != TF_LOSS_MRSTFT) return 0;
    size_t m = 0;
    for (int r = 0; r < N_RES; r++)
        m = spec_floats(RES_WIN[r], N) > m ? spec_floats(RES_WIN[r], N) : m;
    return sizeof(float) * 6 * m;
}

tf_status tf_loss_create(tf_loss_ctx **out, tf_loss kind, int64_t N) {
    *out = NULL;
    tf_loss_ctx *l = tf_calloc(1, sizeof *l, "loss");
    if (!l) return TF_EINTERNAL;
    l->kind = kind, l->N = N;
    tf_status s = TF_OK;
    if (kind == TF_LOSS_MRSTFT) {
        for (int r = 0; r < N_RES && !s; r++)
            s = tf_stft_create(&l->st[r], RES_WIN[r], RES_WIN[r] / 4);
        if (!s) {
            l->buf = tf_malloc(tf_loss_plan_bytes(kind, N), "STFT loss buffers");
            if (!l->buf) s = TF_EINTERNAL;
        }
    }
    if (s) {
        tf_loss_free(l);
        return s;
    }
    *out = l;
    return TF_OK;
}

void tf_loss_free(tf_loss_ctx *l) {
    if (!l) return;
    for (int r = 0; r < N_RES; r++)
        if (l->st[r]) tf_stft_destroy(l->st[r]);
    free(l->buf);
    free(l);
}

tf_status tf_loss_eval(tf_loss_ctx *l, const float *y, const float *t, int n_sig, int64_t N,
                       double scale, float *dy, double *loss) {
    const size_t n = (size_t)n_sig * (size_t)N;
    const int mr = l->kind == TF_LOSS_MRSTFT;
    if (N > l->N)
        return tf_err(TF_EINTERNAL, "loss: %lld samples > planned %lld", (long long)N,
                      (long long)l->N);
    double s = 0;
    const float g = (float)(scale / (double)n);
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float d = y[i] - t[i];
        s += fabsf(d);
        dy[i] = tf_l1_grad(d, g);
    }
    double total = s / (double)n;
    if (!mr) {
        *loss = total;
        return TF_OK;
    }
    for (int r = 0; r < N_RES; r++) {
        tf_stft *st = l->st[r];
        const size_t m = (size_t)tf_stft_bins(st) * (size_t)tf_stft_frames(st, N);
        float *yr = l->buf, *yi = yr + m, *tr = yi + m, *ti = tr + m, *dr = ti + m, *di = dr + m;
        const double w = 1.0 / N_RES, gm = scale * w / ((double)m * n_sig);
        double lr = 0;
        for (int k = 0; k < n_sig; k++) {
            const float *ys = y + (size_t)k * N, *ts = t + (size_t)k * N;
            TF_TRY(tf_stft_forward(st, yr, yi, ys, 1, N));
            TF_TRY(tf_stft_forward(st, tr, ti, ts, 1, N));
            double a = 0;
#pragma omp parallel for reduction(+ : a) schedule(static)
            for (size_t i = 0; i < m; i++) /* d|Y|/dY = Y / |Y|, times sign(|Y| - |T|) */
                a += tf_mag_l1(yr[i], yi[i], tr[i], ti[i], (float)gm, &dr[i], &di[i]);
            lr += a;
            TF_TRY(tf_stft_backward(st, dy + (size_t)k * N, dr, di, 1, N));
        }
        total += w * lr / ((double)m * n_sig);
    }
    *loss = total;
    return TF_OK;
}
