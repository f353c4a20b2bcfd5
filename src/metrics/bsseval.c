/* BSS Eval v4 images (museval.metrics.bss_eval with time-invariant filters). See bsseval.h.
 *
 * 1. Correlations over the whole track (museval: one FFT of the whole padded signal per
 *    channel, then one inverse FFT per pair). Here the track is cut into blocks of B
 *    samples and the products of the block spectra are SUMMED in the frequency domain, so
 *    one inverse FFT per pair at the end gives the same linear correlations:
 *      R(m)[a][b] = sum_n x_a(n + m) x_b(n)   |m| < L   (references a, b)
 *      D[k][a][q] = sum_n x_a(n - k) e_q(n)   0 <= k < L (reference a, estimate channel q)
 *    Block b: "short" segment x(bB + t), t < B, and "long" segment x(bB - (L-1) + t),
 *    t < B + 2(L-1) = M (the FFT size); conj(S_b) * L_a summed over blocks, inverse FFT,
 *    lag m at index m + L - 1.
 * 2. Filters: (G + eps I) C = D for all estimates at once and (G_jj + eps I) Cj = D_jj per
 *    source (btsolve.h).
 * 3. Frames: the windowed references are convolved with the filters by FFT (size
 *    >= frame + L - 1, spectra of the filters computed once) and the four energies of
 *    museval's _bss_crit are summed. */
#include "metrics/bsseval.h"

#include <fftw3.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/btsolve.h"

#define MAX_SOURCES 100 /* museval.metrics.MAX_SOURCES */
#define MAX_GROUPS  8   /* correlation partial sums: fixed, so results ignore thread count */

/* Hot loops are compiled twice (AVX2+FMA and baseline x86-64) and picked at run time. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define BSS_SIMD __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef BSS_SIMD
#define BSS_SIMD
#endif

/* o += conj(u) v over n interleaved complex values */
BSS_SIMD static void cmac_conj(size_t n, const double *restrict u, const double *restrict v,
                               double *restrict o) {
    for (size_t f = 0; f < n; f++) {
        double ur = u[2 * f], ui = u[2 * f + 1], vr = v[2 * f], vi = v[2 * f + 1];
        o[2 * f] += ur * vr + ui * vi;
        o[2 * f + 1] += ur * vi - ui * vr;
    }
}

/* o += h x over n interleaved complex values */
BSS_SIMD static void cmac(size_t n, const double *restrict h, const double *restrict x,
                          double *restrict o) {
    for (size_t f = 0; f < n; f++) {
        double hr = h[2 * f], hi = h[2 * f + 1], xr = x[2 * f], xi = x[2 * f + 1];
        o[2 * f] += hr * xr - hi * xi;
        o[2 * f + 1] += hr * xi + hi * xr;
    }
}

tf_bss_params tf_bss_default_params(int rate) {
    tf_bss_params p = {rate, rate, 512, TF_BSS_SOLVER_AUTO};
    return p;
}

int64_t tf_bss_nwin(int64_t nsampl, int window, int hop) {
    if (window < nsampl) return (nsampl - window + hop) / hop;
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tf_bss_median(const double *x, int64_t n) {
    double *v = n > 0 ? malloc((size_t)n * sizeof(double)) : NULL;
    int64_t k = 0;
    if (!v) return NAN;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) v[k++] = x[i];
    double m = NAN;
    if (k > 0) {
        qsort(v, (size_t)k, sizeof(double), cmp_double);
        m = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
    }
    free(v);
    return m;
}

/* museval's _any_source_silent on samples [s0, s1): some source whose sum over channels
 * (in float64, channel 0 first) is exactly 0 at every sample. */
static int any_silent(const float *x, int nsrc, int nchan, int64_t N, int64_t s0, int64_t s1) {
    for (int j = 0; j < nsrc; j++) {
        const float *xj = x + (size_t)j * nchan * N;
        int silent = 1;
        for (int64_t n = s0; n < s1 && silent; n++) {
            double s = 0;
            for (int c = 0; c < nchan; c++) s += (double)xj[(size_t)c * N + n];
            if (s != 0) silent = 0;
        }
        if (silent) return 1;
    }
    return 0;
}

static int64_t next_pow2(int64_t n) {
    int64_t m = 1;
    while (m < n) m *= 2;
    return m;
}

/* smallest n' >= n, a multiple of 8 (so that buffers placed n' doubles apart keep the
 * alignment of fftw_malloc) whose prime factors are 2, 3, 5, 7 (fast FFTW sizes) */
static int64_t good_size(int64_t n) {
    for (int64_t m = (n + 7) / 8 * 8;; m += 8) {
        int64_t r = m;
        while (r % 2 == 0) r /= 2;
        while (r % 3 == 0) r /= 3;
        while (r % 5 == 0) r /= 5;
        while (r % 7 == 0) r /= 7;
        if (r == 1) return m;
    }
}

/* Spectra are stored with a stride rounded to 4 complex values (64 bytes) so that every
 * one keeps the alignment of fftw_malloc. */
static size_t spec_stride(int64_t nfft) {
    return (size_t)((nfft / 2 + 1 + 3) / 4 * 4);
}

/* Load x[s0 .. s0 + len) (zero outside [0, N)) into buf[0 .. len), zero buf[len .. nfft). */
static void load_segment(double *buf, const float *x, int64_t N, int64_t s0, int64_t len,
                         int64_t nfft) {
    for (int64_t t = 0; t < len; t++) {
        int64_t n = s0 + t;
        buf[t] = (n >= 0 && n < N) ? (double)x[n] : 0.0;
    }
    memset(buf + len, 0, (size_t)(nfft - len) * sizeof(double));
}

/* Step 1: R (L, p, p) and D (L, p, p): D[k][a][q], q = estimate channel. */
static tf_status correlations(const float *ref, const float *est, int p, int64_t N, int L,
                              double *R, double *D) {
    int64_t M = next_pow2(16 * (int64_t)L);
    if (M < 256) M = 256;
    int64_t Mmin = next_pow2(N + 2 * (int64_t)(L - 1));
    if (Mmin < M) M = Mmin;
    int64_t B = M - 2 * (int64_t)(L - 1);
    int64_t nblocks = (N + B - 1) / B;
    int ng = nblocks < MAX_GROUPS ? (int)nblocks : MAX_GROUPS;
    size_t sst = spec_stride(M), nbin = (size_t)(M / 2 + 1);
    size_t npair = (size_t)p * (p + 1) / 2, nacc = npair + (size_t)p * p;
    tf_status ret = TF_OK;

    fftw_complex *acc = fftw_malloc((size_t)ng * nacc * sst * sizeof(fftw_complex));
    double *tbuf = fftw_malloc((size_t)M * sizeof(double));
    fftw_complex *cbuf = fftw_malloc(sst * sizeof(fftw_complex));
    fftw_plan fwd = NULL, inv = NULL;
    if (!acc || !tbuf || !cbuf) {
        ret = tf_err(TF_EINTERNAL, "bsseval: out of memory for the correlations");
        goto done;
    }
    fwd = fftw_plan_dft_r2c_1d((int)M, tbuf, cbuf, FFTW_ESTIMATE);
    inv = fftw_plan_dft_c2r_1d((int)M, cbuf, tbuf, FFTW_ESTIMATE);
    if (!fwd || !inv) {
        ret = tf_err(TF_EINTERNAL, "bsseval: FFTW could not plan a transform of size %lld",
                     (long long)M);
        goto done;
    }
    memset(acc, 0, (size_t)ng * nacc * sst * sizeof(fftw_complex));

    int oom = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int g = 0; g < ng; g++) {
        /* per group: long ref spectra (p), short ref spectra (p), short est spectra (p) */
        fftw_complex *sp = fftw_malloc(3 * (size_t)p * sst * sizeof(fftw_complex));
        double *buf = fftw_malloc((size_t)M * sizeof(double));
        if (!sp || !buf) {
#pragma omp atomic write
            oom = 1;
            fftw_free(sp), fftw_free(buf);
            continue;
        }
        fftw_complex *Xl = sp, *Xs = sp + (size_t)p * sst, *Es = sp + 2 * (size_t)p * sst;
        fftw_complex *A = acc + (size_t)g * nacc * sst;
        int64_t b0 = nblocks * g / ng, b1 = nblocks * (g + 1) / ng;
        for (int64_t blk = b0; blk < b1; blk++) {
            int64_t s0 = blk * B, len = N - s0 < B ? N - s0 : B;
            for (int a = 0; a < p; a++) {
                const float *x = ref + (size_t)a * N;
                load_segment(buf, x, N, s0 - (L - 1), M, M);
                fftw_execute_dft_r2c(fwd, buf, Xl + (size_t)a * sst);
                load_segment(buf, x, N, s0, len, M);
                fftw_execute_dft_r2c(fwd, buf, Xs + (size_t)a * sst);
                load_segment(buf, est + (size_t)a * N, N, s0, len, M);
                fftw_execute_dft_r2c(fwd, buf, Es + (size_t)a * sst);
            }
            size_t k = 0;
            for (int a = 0; a < p; a++)
                for (int b = a; b < p; b++, k++) { /* conj(Xs_b) Xl_a */
                    cmac_conj(nbin, (const double *)(Xs + (size_t)b * sst),
                              (const double *)(Xl + (size_t)a * sst), (double *)(A + k * sst));
                }
            for (int q = 0; q < p; q++)
                for (int a = 0; a < p; a++) { /* conj(Es_q) Xl_a */
                    cmac_conj(nbin, (const double *)(Es + (size_t)q * sst),
                              (const double *)(Xl + (size_t)a * sst),
                              (double *)(A + (npair + (size_t)q * p + a) * sst));
                }
        }
        fftw_free(sp), fftw_free(buf);
    }
    if (oom) {
        ret = tf_err(TF_EINTERNAL, "bsseval: out of memory for the correlation blocks");
        goto done;
    }

    /* sum the groups in a fixed order, inverse FFT, pick the lags */
    double scale = 1.0 / (double)M;
    for (size_t k = 0; k < nacc; k++) {
        for (size_t f = 0; f < nbin; f++) {
            double re = 0, im = 0;
            for (int g = 0; g < ng; g++) {
                const fftw_complex *o = acc + ((size_t)g * nacc + k) * sst;
                re += o[f][0], im += o[f][1];
            }
            cbuf[f][0] = re, cbuf[f][1] = im;
        }
        fftw_execute(inv); /* cbuf -> tbuf, c[m'] at tbuf[m'] */
        if (k < npair) {
            /* recover (a, b) from k */
            int a = 0;
            size_t kk = k;
            while (kk >= (size_t)(p - a)) kk -= (size_t)(p - a), a++;
            int b = a + (int)kk;
            for (int m = 0; m < L; m++) {
                R[((size_t)m * p + a) * p + b] = tbuf[L - 1 + m] * scale;
                R[((size_t)m * p + b) * p + a] = tbuf[L - 1 - m] * scale;
            }
        } else {
            int q = (int)((k - npair) / (size_t)p), a = (int)((k - npair) % (size_t)p);
            for (int kk = 0; kk < L; kk++)
                D[((size_t)kk * p + a) * p + q] = tbuf[L - 1 - kk] * scale;
        }
    }
done:
    if (fwd) fftw_destroy_plan(fwd);
    if (inv) fftw_destroy_plan(inv);
    fftw_free(acc), fftw_free(tbuf), fftw_free(cbuf);
    return ret;
}

static double safe_db(double num, double den) {
    if (den == 0) return INFINITY;
    return 10.0 * log10(num / den);
}

tf_status tf_bss_eval(const tf_bss_params *prm, const float *ref, const float *est, int nsrc,
                      int nchan, int64_t nsampl, double *sdr, double *isr, double *sir, double *sar,
                      tf_bss_info *info) {
    const int L = prm->filters_len;
    if (nsrc < 1 || nchan < 1 || nsampl < 1)
        return tf_err(TF_EUSER, "bsseval: empty input (%d sources, %d channels, %lld samples)",
                      nsrc, nchan, (long long)nsampl);
    if (nsrc > MAX_SOURCES)
        return tf_err(TF_EUSER, "bsseval: %d sources, at most %d", nsrc, MAX_SOURCES);
    if (prm->window < 1 || prm->hop < 1 || L < 1 || L > (1 << 20))
        return tf_err(TF_EUSER, "bsseval: window (%d), hop (%d) and filters_len (%d) must be >= 1",
                      prm->window, prm->hop, L);
    if ((prm->window < nsampl ? prm->window : nsampl) + (int64_t)L > (1 << 30))
        return tf_err(TF_EUSER,
                      "bsseval: frames of %lld samples with %d-tap filters are too long (use "
                      "a window below 2^30 samples)",
                      (long long)(prm->window < nsampl ? prm->window : nsampl), L);
    for (int j = 0; j < nsrc; j++) {
        if (any_silent(ref + (size_t)j * nchan * nsampl, 1, nchan, nsampl, 0, nsampl))
            return tf_err(TF_EUSER,
                          "bsseval: reference source %d is silent over the whole track (museval "
                          "rejects it: the evaluation would be ambiguous)",
                          j);
        if (any_silent(est + (size_t)j * nchan * nsampl, 1, nchan, nsampl, 0, nsampl))
            return tf_err(TF_EUSER,
                          "bsseval: estimated source %d is silent over the whole track (museval "
                          "rejects it: the system would be underdetermined)",
                          j);
    }
    if (info) memset(info, 0, sizeof *info);

    const int p = nsrc * nchan;
    const int64_t N = nsampl, nwin = tf_bss_nwin(N, prm->window, prm->hop);
    const size_t pp = (size_t)p * p, cc = (size_t)nchan * nchan;
    const int dense = prm->solver == TF_BSS_SOLVER_DENSE;
    tf_status ret = TF_OK;

    double *R = malloc((size_t)L * pp * sizeof(double));
    double *D = malloc((size_t)L * pp * sizeof(double));
    double *C = malloc((size_t)L * pp * sizeof(double)); /* (L, p, p): C[k][a][q] */
    double *Rj = malloc((size_t)L * cc * sizeof(double));
    double *Dj = malloc((size_t)L * cc * sizeof(double));
    double *Cj = malloc((size_t)nsrc * L * cc * sizeof(double)); /* (nsrc, L, nchan, nchan) */
    const int64_t wmax = prm->window < N ? prm->window : N;
    const int64_t nfw = good_size(wmax + L - 1);
    const size_t sst = spec_stride(nfw), nbin = (size_t)(nfw / 2 + 1);
    /* filter spectra: Cs[q][a] (estimate channel q <- reference a), Cjs[j][c][cj] */
    fftw_complex *Cs =
        fftw_malloc(((size_t)p * p + (size_t)nsrc * cc) * sst * sizeof(fftw_complex));
    fftw_complex *Cjs = Cs ? Cs + (size_t)p * p * sst : NULL;
    double *tb = fftw_malloc((size_t)nfw * sizeof(double));
    fftw_complex *cb = fftw_malloc(sst * sizeof(fftw_complex));
    fftw_plan fwd = NULL, inv = NULL;
    if (!R || !D || !C || !Rj || !Dj || !Cj || !Cs || !tb || !cb) {
        ret = tf_err(TF_EINTERNAL, "bsseval: out of memory (%d sources, %d channels, L=%d)", nsrc,
                     nchan, L);
        goto done;
    }

    /* 1. correlations */
    if ((ret = correlations(ref, est, p, N, L, R, D)) != TF_OK) goto done;

    /* 2. filters: all estimates against all references, then each source alone */
    tf_bt_stats st;
    if ((ret = tf_bt_solve(L, p, p, R, DBL_EPSILON, D, C, dense, &st)) != TF_OK) goto done;
    if (info) {
        info->dense_fallbacks += st.dense, info->lstsq_fallbacks += st.lstsq;
        info->backward_error = fmax(info->backward_error, st.backward_error);
    }
    for (int j = 0; j < nsrc; j++) {
        for (int m = 0; m < L; m++)
            for (int a = 0; a < nchan; a++)
                for (int b = 0; b < nchan; b++) {
                    size_t i = ((size_t)m * nchan + a) * nchan + b;
                    size_t o = ((size_t)m * p + j * nchan + a) * p + j * nchan + b;
                    Rj[i] = R[o], Dj[i] = D[o];
                }
        if ((ret = tf_bt_solve(L, nchan, nchan, Rj, DBL_EPSILON, Dj, Cj + (size_t)j * L * cc, dense,
                               &st)) != TF_OK)
            goto done;
        if (info) {
            info->dense_fallbacks += st.dense, info->lstsq_fallbacks += st.lstsq;
            info->backward_error = fmax(info->backward_error, st.backward_error);
        }
    }

    /* 3. filter spectra */
    fwd = fftw_plan_dft_r2c_1d((int)nfw, tb, cb, FFTW_ESTIMATE);
    inv = fftw_plan_dft_c2r_1d((int)nfw, cb, tb, FFTW_ESTIMATE);
    if (!fwd || !inv) {
        ret = tf_err(TF_EINTERNAL, "bsseval: FFTW could not plan a transform of size %lld",
                     (long long)nfw);
        goto done;
    }
    for (int q = 0; q < p; q++)
        for (int a = 0; a < p; a++) {
            memset(tb, 0, (size_t)nfw * sizeof(double));
            for (int k = 0; k < L; k++) tb[k] = C[((size_t)k * p + a) * p + q];
            fftw_execute_dft_r2c(fwd, tb, Cs + ((size_t)q * p + a) * sst);
        }
    for (int j = 0; j < nsrc; j++)
        for (int c = 0; c < nchan; c++)
            for (int cj = 0; cj < nchan; cj++) {
                memset(tb, 0, (size_t)nfw * sizeof(double));
                const double *f = Cj + (size_t)j * L * cc;
                for (int k = 0; k < L; k++) tb[k] = f[((size_t)k * nchan + cj) * nchan + c];
                fftw_execute_dft_r2c(fwd, tb, Cjs + (((size_t)j * nchan + c) * nchan + cj) * sst);
            }

    /* 4. frames */
    int oom = 0;
#pragma omp parallel
    {
        fftw_complex *Xw = fftw_malloc(((size_t)p + 1) * sst * sizeof(fftw_complex));
        double *pa = fftw_malloc(2 * (size_t)nfw * sizeof(double));
        if (!Xw || !pa) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < nwin; t++) {
            if (!Xw || !pa) continue;
            int64_t s0 = t * prm->hop, s1 = s0 + prm->window < N ? s0 + prm->window : N;
            int64_t wl = s1 - s0, olen = wl + L - 1;
            if (any_silent(ref, nsrc, nchan, N, s0, s1) ||
                any_silent(est, nsrc, nchan, N, s0, s1)) {
                for (int j = 0; j < nsrc; j++) {
                    size_t o = (size_t)j * nwin + t;
                    sdr[o] = isr[o] = sir[o] = sar[o] = NAN;
                }
                continue;
            }
            fftw_complex *Y = Xw + (size_t)p * sst;
            double *pall = pa, *pj = pa + nfw;
            for (int a = 0; a < p; a++) {
                load_segment(pall, ref + (size_t)a * N, N, s0, wl, nfw);
                fftw_execute_dft_r2c(fwd, pall, Xw + (size_t)a * sst);
            }
            const double scale = 1.0 / (double)nfw;
            for (int j = 0; j < nsrc; j++) {
                double e_s = 0, d_sdr = 0, d_isr = 0, n_sir = 0, d_sir = 0, n_sar = 0, d_sar = 0;
                for (int c = 0; c < nchan; c++) {
                    int q = j * nchan + c;
                    /* projection on all references: sum_a C[q][a] * x_a */
                    memset(Y, 0, nbin * sizeof(fftw_complex));
                    for (int a = 0; a < p; a++) {
                        cmac(nbin, (const double *)(Cs + ((size_t)q * p + a) * sst),
                             (const double *)(Xw + (size_t)a * sst), (double *)Y);
                    }
                    fftw_execute_dft_c2r(inv, Y, pall);
                    /* projection on the source's own reference */
                    memset(Y, 0, nbin * sizeof(fftw_complex));
                    for (int cj = 0; cj < nchan; cj++) {
                        cmac(nbin,
                             (const double *)(Cjs + (((size_t)j * nchan + c) * nchan + cj) * sst),
                             (const double *)(Xw + ((size_t)j * nchan + cj) * sst), (double *)Y);
                    }
                    fftw_execute_dft_c2r(inv, Y, pj);
                    const float *sr = ref + (size_t)q * N + s0, *se = est + (size_t)q * N + s0;
                    for (int64_t n = 0; n < olen; n++) {
                        /* museval's _bss_decomp_mtifilt and _bss_crit, in its order */
                        double s = n < wl ? (double)sr[n] : 0.0, e = n < wl ? (double)se[n] : 0.0;
                        double e_spat = pj[n] * scale - s;
                        double e_interf = pall[n] * scale - s - e_spat;
                        double e_artif = -s - e_spat - e_interf;
                        e_artif += e;
                        double dist = e_spat + e_interf + e_artif, s_img = s + e_spat;
                        double s_all = s + e_spat + e_interf;
                        e_s += s * s, d_sdr += dist * dist, d_isr += e_spat * e_spat;
                        n_sir += s_img * s_img, d_sir += e_interf * e_interf;
                        n_sar += s_all * s_all, d_sar += e_artif * e_artif;
                    }
                }
                size_t o = (size_t)j * nwin + t;
                sdr[o] = safe_db(e_s, d_sdr);
                isr[o] = safe_db(e_s, d_isr);
                sir[o] = safe_db(n_sir, d_sir);
                sar[o] = safe_db(n_sar, d_sar);
            }
        }
        fftw_free(Xw), fftw_free(pa);
    }
    if (oom) ret = tf_err(TF_EINTERNAL, "bsseval: out of memory for the frame buffers");

done:
    if (fwd) fftw_destroy_plan(fwd);
    if (inv) fftw_destroy_plan(inv);
    free(R), free(D), free(C), free(Rj), free(Dj), free(Cj);
    fftw_free(Cs), fftw_free(tb), fftw_free(cb);
    return ret;
}
