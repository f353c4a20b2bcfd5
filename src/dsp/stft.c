/* STFT / ISTFT (torch.stft / torch.istft conventions) and their exact adjoints, on FFTW
 * single precision. See stft.h for the conventions and layouts.
 *
 * Parallel scheme: frames are independent in the STFT forward and the ISTFT backward
 * (each (signal, frame) writes its own column), so OpenMP runs over signal x frame. The
 * ISTFT forward and the STFT backward overlap-add frames into a signal: frames are
 * coloured by t mod m with m = ceil(n_fft / hop), so frames of one colour never touch the
 * same sample and run in parallel; colours run one after another. Every output sample is
 * therefore summed in the same order whatever the number of threads. In the STFT backward
 * the frames that reach into the reflect padding fold back onto samples that interior frames
 * also touch, so they run last, one signal per thread, in frame order. */
#include "dsp/stft.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Per-thread scratch: one real frame and one onesided spectrum, aligned like the arrays the
 * plans were made with (both at offsets that are multiples of 64 bytes in an fftwf_malloc
 * block), as the new-array execute functions require. */
typedef struct slot {
    struct slot *next;
    float *frame;        /* (n_fft,) */
    fftwf_complex *spec; /* (F,) */
} slot;

struct tf_stft {
    int n_fft, hop, nbins, pad;
    float *window;      /* (n_fft,) periodic Hann */
    float *inv_env_per; /* (hop,) 1 / sum_k w[r + k hop]^2: the interior ISTFT envelope */
    fftwf_plan r2c, c2r;
    pthread_mutex_t pool_lock;
    slot *pool; /* free scratch slots */
};

static pthread_mutex_t g_plan_lock = PTHREAD_MUTEX_INITIALIZER;
void tf_fftw_plan_lock(void) {
    pthread_mutex_lock(&g_plan_lock);
}
void tf_fftw_plan_unlock(void) {
    pthread_mutex_unlock(&g_plan_lock);
}

static size_t frame_floats(int n_fft) {
    return ((size_t)n_fft + 15) / 16 * 16; /* keep spec at a 64-byte offset */
}

static slot *slot_new(int n_fft) {
    slot *sl = malloc(sizeof *sl);
    if (!sl) return NULL;
    size_t nf = frame_floats(n_fft), nc = (size_t)n_fft / 2 + 1;
    float *buf = fftwf_malloc((nf + 2 * nc) * sizeof(float));
    if (!buf) {
        free(sl);
        return NULL;
    }
    sl->next = NULL;
    sl->frame = buf;
    sl->spec = (fftwf_complex *)(buf + nf);
    return sl;
}

static void slot_free(slot *sl) {
    if (!sl) return;
    fftwf_free(sl->frame);
    free(sl);
}

/* A slot from the pool, or a new one; NULL when out of memory. Thread safe. */
static slot *slot_get(tf_stft *st) {
    pthread_mutex_lock(&st->pool_lock);
    slot *sl = st->pool;
    if (sl) st->pool = sl->next;
    pthread_mutex_unlock(&st->pool_lock);
    return sl ? sl : slot_new(st->n_fft);
}

static void slot_put(tf_stft *st, slot *sl) {
    if (!sl) return;
    pthread_mutex_lock(&st->pool_lock);
    sl->next = st->pool;
    st->pool = sl;
    pthread_mutex_unlock(&st->pool_lock);
}

tf_status tf_stft_create(tf_stft **out, int n_fft, int hop) {
    *out = NULL;
    if (n_fft < 4 || n_fft > 65536 || n_fft % 2 != 0)
        return tf_err(TF_EUSER, "stft: window size (n_fft) %d must be even and in [4, 65536]",
                      n_fft);
    if (hop < 1 || hop > n_fft / 2)
        return tf_err(TF_EUSER, "stft: hop length %d must be in [1, n_fft/2 = %d]", hop, n_fft / 2);
    tf_stft *st = tf_calloc(1, sizeof *st, "stft object");
    if (!st) return TF_EINTERNAL;
    st->n_fft = n_fft;
    st->hop = hop;
    st->nbins = n_fft / 2 + 1;
    st->pad = n_fft / 2;
    if (pthread_mutex_init(&st->pool_lock, NULL) != 0) {
        free(st);
        return tf_err(TF_EINTERNAL, "stft: pthread_mutex_init failed");
    }
    st->window = tf_malloc((size_t)n_fft * sizeof(float), "stft window");
    st->inv_env_per = tf_malloc((size_t)hop * sizeof(float), "stft envelope");
    if (!st->window || !st->inv_env_per) {
        tf_stft_destroy(st);
        return TF_EINTERNAL;
    }
    for (int n = 0; n < n_fft; n++)
        st->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * (double)n / (double)n_fft));
    for (int r = 0; r < hop; r++) {
        double e = 0.0;
        for (int o = r; o < n_fft; o += hop) e += (double)st->window[o] * st->window[o];
        st->inv_env_per[r] = (float)(1.0 / e); /* e >= w[n_fft/4..]^2 > 0 since hop <= n_fft/2 */
    }
    slot *sl = slot_new(n_fft);
    if (!sl) {
        tf_stft_destroy(st);
        return tf_err(TF_EINTERNAL, "stft: out of memory for scratch (n_fft %d)", n_fft);
    }
    tf_fftw_plan_lock();
    st->r2c = fftwf_plan_dft_r2c_1d(n_fft, sl->frame, sl->spec, FFTW_ESTIMATE);
    st->c2r = fftwf_plan_dft_c2r_1d(n_fft, sl->spec, sl->frame, FFTW_ESTIMATE);
    tf_fftw_plan_unlock();
    slot_put(st, sl);
    if (!st->r2c || !st->c2r) {
        tf_stft_destroy(st);
        return tf_err(TF_EINTERNAL, "stft: FFTW could not plan a transform of size %d", n_fft);
    }
    *out = st;
    return TF_OK;
}

void tf_stft_destroy(tf_stft *st) {
    if (!st) return;
    tf_fftw_plan_lock();
    if (st->r2c) fftwf_destroy_plan(st->r2c);
    if (st->c2r) fftwf_destroy_plan(st->c2r);
    tf_fftw_plan_unlock();
    while (st->pool) {
        slot *n = st->pool->next;
        slot_free(st->pool);
        st->pool = n;
    }
    pthread_mutex_destroy(&st->pool_lock);
    free(st->window);
    free(st->inv_env_per);
    free(st);
}

int tf_stft_n_fft(const tf_stft *st) {
    return st->n_fft;
}
int tf_stft_hop(const tf_stft *st) {
    return st->hop;
}
int tf_stft_bins(const tf_stft *st) {
    return st->nbins;
}
int64_t tf_stft_frames(const tf_stft *st, int64_t n) {
    return 1 + n / st->hop;
}
const float *tf_stft_window(const tf_stft *st) {
    return st->window;
}

static tf_status check_args(const char *fn, int S, int64_t N) {
    if (S < 0) return tf_err(TF_EUSER, "%s: number of signals %d < 0", fn, S);
    if (N < 1) return tf_err(TF_EUSER, "%s: signal length %lld must be >= 1", fn, (long long)N);
    return TF_OK;
}

static tf_status scratch_fail(const char *fn) {
    return tf_err(TF_EINTERNAL, "%s: out of memory for per-thread FFT scratch", fn);
}

/* Signal index of padded-domain sample i (signal coordinates, i.e. already minus pad):
 * reflect for i outside [0, N) when reflect, else -1 (a zero-padded sample). */
static inline int64_t src_index(int64_t i, int64_t N, int reflect) {
    if (i >= 0 && i < N) return i;
    if (!reflect) return -1;
    return i < 0 ? -i : 2 * (N - 1) - i;
}

/* 1 / (overlap-added squared window) at padded position p for T frames; 0 where no frame
 * has weight (cannot happen for p in [pad, pad + N) given hop <= n_fft/2). */
static float inv_env_at(const tf_stft *st, int64_t p, int64_t T) {
    const int64_t hop = st->hop, n = st->n_fft;
    if (p >= n - hop && p / hop <= T - 1) return st->inv_env_per[p % hop];
    int64_t tlo = p >= n ? (p - n) / hop + 1 : 0, thi = p / hop < T - 1 ? p / hop : T - 1;
    double e = 0.0;
    for (int64_t t = tlo; t <= thi; t++) {
        double w = st->window[p - t * hop];
        e += w * w;
    }
    return e > 1e-11 ? (float)(1.0 / e) : 0.f;
}

/* sl->spec = rfft(window * frame t of xs (N,)) */
static void stft_frame(const tf_stft *st, slot *sl, const float *xs, int64_t N, int64_t t) {
    const int n_fft = st->n_fft;
    const float *w = st->window;
    float *fr = sl->frame;
    int64_t i0 = t * st->hop - st->pad;
    if (i0 >= 0 && i0 + n_fft <= N) {
        for (int n = 0; n < n_fft; n++) fr[n] = w[n] * xs[i0 + n];
    } else {
        int reflect = N > st->pad;
        for (int n = 0; n < n_fft; n++) {
            int64_t j = src_index(i0 + n, N, reflect);
            fr[n] = j >= 0 ? w[n] * xs[j] : 0.f;
        }
    }
    fftwf_execute_dft_r2c(st->r2c, fr, sl->spec);
}

tf_status tf_stft_forward(tf_stft *st, float *re, float *im, const float *x, int S, int64_t N) {
    TF_TRY(check_args("stft", S, N));
    const int F = st->nbins;
    const int64_t T = tf_stft_frames(st, N), ST = (int64_t)S * T;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_get(st);
        if (!sl) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int64_t j = 0; j < ST; j++) {
            if (!sl) continue;
            int64_t s = j / T, t = j % T;
            stft_frame(st, sl, x + s * N, N, t);
            float *r = re + (size_t)s * F * T + t, *i = im + (size_t)s * F * T + t;
            for (int f = 0; f < F; f++) {
                r[(size_t)f * T] = sl->spec[f][0];
                i[(size_t)f * T] = sl->spec[f][1];
            }
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("stft") : TF_OK;
}

/* sl->frame = window * c2r(onesided spectrum of column t, with bin f scaled by scale(f)).
 * edge_scale applies to DC and Nyquist, mid_scale to the others; their imaginary parts are
 * zeroed (c2r treats them as zero; they do not reach the output). */
static void c2r_column(const tf_stft *st, slot *sl, const float *re, const float *im, int64_t T,
                       int64_t t, float edge_scale, float mid_scale) {
    const int F = st->nbins;
    fftwf_complex *sp = sl->spec;
    for (int f = 0; f < F; f++) {
        float c = (f == 0 || f == F - 1) ? edge_scale : mid_scale;
        sp[f][0] = c * re[(size_t)f * T + t];
        sp[f][1] = c * im[(size_t)f * T + t];
    }
    sp[0][1] = 0.f;
    sp[F - 1][1] = 0.f;
    fftwf_execute_dft_c2r(st->c2r, sp, sl->frame);
    for (int n = 0; n < st->n_fft; n++) sl->frame[n] *= st->window[n];
}

/* Number of frames t = t0 + c + m k in [t0, t1) */
static int64_t colour_count(int64_t t0, int64_t t1, int64_t c, int64_t m) {
    int64_t n = t1 - t0 - c;
    return n > 0 ? (n + m - 1) / m : 0;
}

tf_status tf_istft_forward(tf_stft *st, float *y, const float *re, const float *im, int S,
                           int64_t N) {
    TF_TRY(check_args("istft", S, N));
    const int F = st->nbins, n_fft = st->n_fft;
    const int64_t T = tf_stft_frames(st, N), m = (n_fft + st->hop - 1) / st->hop;
    const float inv_n = 1.0f / (float)n_fft;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_get(st);
        if (!sl) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int s = 0; s < S; s++) memset(y + (size_t)s * N, 0, (size_t)N * sizeof(float));
        for (int64_t c = 0; c < m; c++) {
            const int64_t K = colour_count(0, T, c, m), SK = (int64_t)S * K;
#pragma omp for schedule(static)
            for (int64_t j = 0; j < SK; j++) {
                if (!sl) continue;
                int64_t s = j / K, t = c + m * (j % K);
                c2r_column(st, sl, re + (size_t)s * F * T, im + (size_t)s * F * T, T, t, inv_n,
                           inv_n);
                float *ys = y + (size_t)s * N;
                int64_t i0 = t * st->hop - st->pad;
                int n0 = i0 < 0 ? (int)-i0 : 0, n1 = i0 + n_fft > N ? (int)(N - i0) : n_fft;
                for (int n = n0; n < n1; n++) ys[i0 + n] += sl->frame[n];
            }
        }
#pragma omp for schedule(static)
        for (int64_t i = 0; i < N; i++) {
            float ie = inv_env_at(st, i + st->pad, T);
            for (int s = 0; s < S; s++) y[(size_t)s * N + i] *= ie;
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("istft") : TF_OK;
}

tf_status tf_istft_backward(tf_stft *st, float *dre, float *dim, const float *dy, int S,
                            int64_t N) {
    TF_TRY(check_args("istft backward", S, N));
    const int F = st->nbins, n_fft = st->n_fft, hop = st->hop;
    const int64_t T = tf_stft_frames(st, N), ST = (int64_t)S * T;
    const float inv_n = 1.0f / (float)n_fft;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_get(st);
        if (!sl) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int64_t j = 0; j < ST; j++) {
            if (!sl) continue;
            int64_t s = j / T, t = j % T;
            const float *g = dy + (size_t)s * N;
            float *fr = sl->frame;
            const float *w = st->window;
            int64_t p0 = t * hop, i0 = p0 - st->pad;
            /* the frame's samples all see the periodic interior envelope? */
            int fast = p0 >= n_fft - hop && (p0 + n_fft - 1) / hop <= T - 1;
            for (int n = 0, r = 0; n < n_fft; n++) {
                int64_t i = i0 + n;
                float ie = 0.f;
                if (i >= 0 && i < N) ie = fast ? st->inv_env_per[r] : inv_env_at(st, p0 + n, T);
                fr[n] = i >= 0 && i < N ? g[i] * ie * w[n] * inv_n : 0.f;
                if (++r == hop) r = 0;
            }
            fftwf_execute_dft_r2c(st->r2c, fr, sl->spec);
            /* adjoint of the onesided c2r: bins 1..F-2 appear twice in the full spectrum */
            float *r = dre + (size_t)s * F * T + t, *im_ = dim + (size_t)s * F * T + t;
            r[0] += sl->spec[0][0];
            for (int f = 1; f < F - 1; f++) {
                r[(size_t)f * T] += 2.f * sl->spec[f][0];
                im_[(size_t)f * T] += 2.f * sl->spec[f][1];
            }
            r[(size_t)(F - 1) * T] += sl->spec[F - 1][0];
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("istft backward") : TF_OK;
}

tf_status tf_stft_backward(tf_stft *st, float *dx, const float *dre, const float *dim, int S,
                           int64_t N) {
    TF_TRY(check_args("stft backward", S, N));
    const int F = st->nbins, n_fft = st->n_fft, hop = st->hop, pad = st->pad;
    const int64_t T = tf_stft_frames(st, N), m = (n_fft + hop - 1) / hop;
    const int reflect = N > pad;
    /* interior frames [ta, tb): all their samples inside the signal, no padding */
    int64_t ta = (pad + hop - 1) / hop, tb = N + pad - n_fft >= 0 ? (N + pad - n_fft) / hop + 1 : 0;
    if (ta > T) ta = T;
    if (tb > T) tb = T;
    if (tb < ta) tb = ta;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_get(st);
        if (!sl) {
#pragma omp atomic write
            fail = 1;
        }
        for (int64_t c = 0; c < m; c++) {
            const int64_t K = colour_count(ta, tb, c, m), SK = (int64_t)S * K;
#pragma omp for schedule(static)
            for (int64_t j = 0; j < SK; j++) {
                if (!sl) continue;
                int64_t s = j / K, t = ta + c + m * (j % K);
                /* d(rfft)/d(frame) is c2r with the middle bins halved (they occur once in
                 * the onesided spectrum but twice in c2r's hermitian sum) */
                c2r_column(st, sl, dre + (size_t)s * F * T, dim + (size_t)s * F * T, T, t, 1.f,
                           0.5f);
                float *d = dx + (size_t)s * N + (t * hop - pad);
                for (int n = 0; n < n_fft; n++) d[n] += sl->frame[n];
            }
        }
        /* frames reaching into the padding, in frame order, one signal per thread */
#pragma omp for schedule(static)
        for (int s = 0; s < S; s++) {
            if (!sl) continue;
            for (int64_t t = 0; t < T; t++) {
                if (t == ta) t = tb;
                if (t >= T) break;
                c2r_column(st, sl, dre + (size_t)s * F * T, dim + (size_t)s * F * T, T, t, 1.f,
                           0.5f);
                float *d = dx + (size_t)s * N;
                int64_t i0 = t * hop - pad;
                for (int n = 0; n < n_fft; n++) {
                    int64_t j = src_index(i0 + n, N, reflect);
                    if (j >= 0) d[j] += sl->frame[n];
                }
            }
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("stft backward") : TF_OK;
}

/* ---- elementwise ---- */

#define PAR_MIN 65536

void tf_magphase(float *mag, float *pr, float *pi, const float *re, const float *im, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) {
        double a = re[k], b = im[k], m = sqrt(a * a + b * b);
        if (mag) mag[k] = (float)m;
        if (m > 0) {
            if (pr) pr[k] = (float)(a / m);
            if (pi) pi[k] = (float)(b / m);
        } else {
            if (pr) pr[k] = 1.f;
            if (pi) pi[k] = 0.f;
        }
    }
}

void tf_mag_backward(float *dre, float *dim, const float *dmag, const float *re, const float *im,
                     size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) {
        double a = re[k], b = im[k], m = sqrt(a * a + b * b);
        if (m > 0) {
            dre[k] += (float)(dmag[k] * a / m);
            dim[k] += (float)(dmag[k] * b / m);
        }
    }
}

void tf_combine_forward(float *yr, float *yi, const float *mag, const float *pr, const float *pi,
                        size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) {
        yr[k] = mag[k] * pr[k];
        yi[k] = mag[k] * pi[k];
    }
}

void tf_combine_backward(float *dmag, const float *dyr, const float *dyi, const float *pr,
                         const float *pi, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) dmag[k] += pr[k] * dyr[k] + pi[k] * dyi[k];
}
