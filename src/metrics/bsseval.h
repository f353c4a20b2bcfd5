/* BSS Eval v4 ("images" variant, time-invariant filters), the cSDR of MUSDB18 / SiSEC 2018.
 *
 * tf_bss_eval computes what museval.metrics.bss_eval(references, estimates,
 * window, hop, compute_permutation=False, filters_len, framewise_filters=False,
 * bsseval_sources_version=False) returns (museval 0.4.1):
 *   - the distortion filters (filters_len taps, every reference channel to every estimate
 *     channel) are computed ONCE over the whole track: least-squares projection of each
 *     estimate on the delayed references, solving (G + eps I) C = D (G: Gram matrix of the
 *     delayed references, eps = DBL_EPSILON), and for each source j alone on its own
 *     reference (G_jj + eps I) Cj = Dj;
 *   - frames: museval's Framing: nwin = floor((N - window + hop) / hop) when window < N,
 *     else 1; frame t covers samples [t hop, min(t hop + window, N)) (the tail after the
 *     last full frame is not scored);
 *   - in each frame the windowed references are filtered (full convolution, length
 *     frame + filters_len - 1) and the estimate is split into s_true, e_spat, e_interf,
 *     e_artif; SDR, ISR, SIR, SAR = 10 log10(num / den), +inf where den == 0 (museval's
 *     _safe_db);
 *   - NaN for every source in a frame where ANY reference or ANY estimate is "silent" in
 *     that frame: museval's _any_source_silent, i.e. the sum over channels is exactly 0 at
 *     every sample of the frame (note: a stereo signal with right == -left counts as silent).
 *   - A source silent over the whole track (same test) is a user error (museval raises).
 *
 * Data layout: planar float32, (nsrc, nchan, nsampl): source-major, then channel, then
 * sample. Everything is computed in double precision.
 *
 * Solver: museval uses LU (numpy.linalg.solve) on the dense (nsrc nchan L)^2 system, with
 * numpy.linalg.lstsq as fallback when it is exactly singular. G is symmetric positive
 * (semi)definite and block Toeplitz, so TF_BSS_SOLVER_AUTO first solves it with the block
 * Levinson recursion (O(L^2 p^3) instead of O(L^3 p^3)) followed by iterative refinement,
 * and accepts the result only when the normwise backward error of the refined solution is
 * at the level of a backward-stable dense solve; otherwise (ill-conditioned or singular G,
 * e.g. dual-mono stems) it falls back to museval's exact path: LU of G + eps I (LAPACK
 * dgesv), then least squares (dgelsd, rcond = eps n) when the LU is singular.
 *
 * Threads: OpenMP (correlation blocks, frames); the results do not depend on the number of
 * threads. FFTW (double) plans are made inside tf_bss_eval: do not call it while another
 * thread makes fftw3 double plans (the tfswa STFT uses fftw3f, a separate planner).
 *
 * Memory: about 8 L (nsrc nchan)^2 * 3 bytes for the filters, plus the filter spectra,
 * 16 (nsrc nchan)^2 (window + L) / 2 bytes (29 MB for 4 stereo sources, 1 s at 44.1 kHz),
 * and 8 (L nsrc nchan)^2 bytes more only when the dense fallback runs (134 MB). */
#ifndef TFSWA_BSSEVAL_H
#define TFSWA_BSSEVAL_H
#include <stdint.h>

#include "util/err.h"

typedef enum {
    TF_BSS_SOLVER_AUTO = 0,  /* block Levinson + refinement, dense fallback */
    TF_BSS_SOLVER_DENSE = 1, /* always museval's dense LU (slow, for checks) */
} tf_bss_solver;

typedef struct {
    int window;      /* frame length in samples (museval's evaluate: 1 s = rate) */
    int hop;         /* frame hop in samples (museval's evaluate: 1 s = rate) */
    int filters_len; /* distortion filter taps (512) */
    tf_bss_solver solver;
} tf_bss_params;

/* museval's MUSDB18 settings for a sample rate: window = hop = rate, filters_len = 512. */
tf_bss_params tf_bss_default_params(int rate);

/* Number of frames museval's Framing yields for nsampl samples (>= 1). */
int64_t tf_bss_nwin(int64_t nsampl, int window, int hop);

/* What the solver did (optional output). */
typedef struct {
    int dense_fallbacks;   /* systems solved by the dense path (0 when Levinson sufficed) */
    int lstsq_fallbacks;   /* of those, systems where the LU was singular (dgelsd used) */
    double backward_error; /* largest normwise backward error of an accepted solution */
} tf_bss_info;

/* Frame-wise metrics. ref, est: (nsrc, nchan, nsampl) planar float32. Outputs sdr, isr,
 * sir, sar: (nsrc, nwin) each, nwin = tf_bss_nwin(nsampl, window, hop); NaN where museval
 * gives NaN, +inf / -inf where museval gives them. info may be NULL.
 * TF_EUSER for bad parameters or a source that is silent over the whole track. */
tf_status tf_bss_eval(const tf_bss_params *p, const float *ref, const float *est, int nsrc,
                      int nchan, int64_t nsampl, double *sdr, double *isr, double *sir, double *sar,
                      tf_bss_info *info);

/* museval's per-track aggregate of one metric of one source: the median over frames of
 * the finite values (museval's TrackStore turns +-inf into NaN, then np.nanmedian); NaN
 * when no frame is finite. x is not modified. */
double tf_bss_median(const double *x, int64_t n);

#endif
