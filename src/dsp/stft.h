/* STFT / ISTFT with exact adjoints, magnitude/phase helpers and subband split/merge.
 *
 * Conventions (those of torch.stft / torch.istft with their defaults):
 *   window  periodic Hann, w[n] = 0.5 - 0.5 cos(2 pi n / n_fft)   (torch.hann_window)
 *   center  True: the signal is padded by pad = n_fft/2 on both sides, frame t covers
 *           padded samples [t*hop, t*hop + n_fft), i.e. signal samples starting at t*hop - pad
 *   padding reflect (x[-i] = x[i], x[N-1+i] = x[N-1-i]) when N > n_fft/2, as torch's
 *           pad_mode='reflect'. Torch cannot reflect-pad a signal of N <= n_fft/2 samples
 *           (it raises); here such SHORT signals are zero-padded instead. Everything else
 *           (frame count, ISTFT, round trip, adjoints) is the same in both modes.
 *   bins    onesided, F = n_fft/2 + 1; frames T = 1 + floor(N / hop)
 *   scale   unnormalised forward DFT (normalized=False); the ISTFT is torch.istft(X,
 *           n_fft, hop, window=hann, center=True, length=N): irfft (1/n_fft, imaginary
 *           parts of the DC and Nyquist bins ignored), times the window, overlap-add,
 *           divided by the overlap-added squared window, trimmed by pad, exactly N samples.
 *   layout  complex spectrograms are two separate real planes re (S, F, T) and im (S, F, T),
 *           row-major, so a magnitude of a stereo batch (B, 2, N) is (B, 2, F, T) with S = 2B.
 *   limits  n_fft even, 4 <= n_fft <= 65536; 1 <= hop <= n_fft/2 (guarantees the window
 *           envelope of the ISTFT is nonzero at every output sample); N >= 1.
 *
 * Backward functions ADD into their gradient outputs (+=): zero them once per step.
 * The adjoints are exact (of the float computation's mathematical operator): the STFT
 * backward includes the reflect padding (gradient of the mirrored samples folds back onto
 * the signal); the ISTFT backward includes the envelope division and the onesided weights
 * (DC and Nyquist counted once, the other bins twice).
 *
 * Threads: OpenMP over (signal, frame). Results are bitwise independent of the number of
 * threads (every output sample is summed in a fixed order). One tf_stft may be used by any
 * number of threads at once: FFTW plans are made once at creation and executed with the
 * new-array functions; per-thread scratch comes from a pool inside the object that grows
 * on first use and is then reused (no allocation in steady state).
 * fftwf_cleanup() is never called (other FFTW users may hold plans); destroy frees the
 * object's plans and scratch.
 *
 * Usage:
 *     tf_stft *st;
 *     TF_TRY(tf_stft_create(&st, 2048, 441));
 *     int F = tf_stft_bins(st); int64_t T = tf_stft_frames(st, N);
 *     // re, im: S*F*T floats each
 *     TF_TRY(tf_stft_forward(st, re, im, x, S, N));     // x (S, N)
 *     TF_TRY(tf_istft_forward(st, y, re, im, S, N));    // y (S, N) ~= x
 *     tf_stft_destroy(st);
 */
#ifndef TFSWA_DSP_STFT_H
#define TFSWA_DSP_STFT_H
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct tf_stft tf_stft;

/* Plans the FFTs (FFTW_ESTIMATE: deterministic plans, no timing at creation) and the
 * window. TF_EUSER naming the value for a bad n_fft or hop. */
tf_status tf_stft_create(tf_stft **out, int n_fft, int hop);
/* Frees plans, window and scratch pool. NULL is fine. Must not race with calls on st. */
void tf_stft_destroy(tf_stft *st);

int tf_stft_n_fft(const tf_stft *st);
int tf_stft_hop(const tf_stft *st);
/* F = n_fft/2 + 1 */
int tf_stft_bins(const tf_stft *st);
/* T = 1 + floor(n / hop) */
int64_t tf_stft_frames(const tf_stft *st, int64_t n);
/* The window (n_fft,) */
const float *tf_stft_window(const tf_stft *st);

/* ie (N,): ie[i] = 1 / (sum over the frames t of the N-sample signal of w[i + pad - t*hop]^2),
 * the factor tf_istft_forward multiplies output sample i by (and tf_istft_backward its
 * gradient), 0 where no frame has weight (never for hop <= n_fft/2). For other
 * implementations of the same ISTFT (src/cuda/fft.cu). */
void tf_stft_inv_envelope(const tf_stft *st, float *ie, int64_t N);

/* re, im (S, F, T) = STFT(x (S, N)) */
tf_status tf_stft_forward(tf_stft *st, float *re, float *im, const float *x, int S, int64_t N);
/* dx (S, N) += STFT^T(dre, dim (S, F, T)): gradient of sum(dre*re + dim*im) wrt x */
tf_status tf_stft_backward(tf_stft *st, float *dx, const float *dre, const float *dim, int S,
                           int64_t N);
/* y (S, N) = ISTFT(re, im (S, F, T)), T = tf_stft_frames(st, N) */
tf_status tf_istft_forward(tf_stft *st, float *y, const float *re, const float *im, int S,
                           int64_t N);
/* dre, dim (S, F, T) += ISTFT^T(dy (S, N)): gradient of sum(dy*y) wrt (re, im) */
tf_status tf_istft_backward(tf_stft *st, float *dre, float *dim, const float *dy, int S, int64_t N);

/* FFTW's planner is not thread safe: every plan creation/destruction in the process must
 * hold this lock (tf_stft does). Other FFTW users in tfswa call these around theirs. */
void tf_fftw_plan_lock(void);
void tf_fftw_plan_unlock(void);

/* ---- elementwise helpers, all arrays (n,) ---- */

/* mag = |X|, (pr, pi) = X / |X|; the phase is 1 + 0i where |X| == 0. Any output may be
 * NULL to skip it; pr, pi may be re, im (in place). */
void tf_magphase(float *mag, float *pr, float *pi, const float *re, const float *im, size_t n);
/* dre += dmag * re/|X|, dim += dmag * im/|X| (0 where |X| == 0, like torch's abs). */
void tf_mag_backward(float *dre, float *dim, const float *dmag, const float *re, const float *im,
                     size_t n);
/* Y = M * P: yr = mag * pr, yi = mag * pi */
void tf_combine_forward(float *yr, float *yi, const float *mag, const float *pr, const float *pi,
                        size_t n);
/* dmag += Re(conj(P) * dY) = pr * dyr + pi * dyi (the phase is a constant) */
void tf_combine_backward(float *dmag, const float *dyr, const float *dyi, const float *pr,
                         const float *pi, size_t n);

/* ---- subbands (src/dsp/subband.c) ----
 * Full band (B, C, F, T), F = n_fft/2 + 1, <-> subbands (B, C*K, Fs, T), Fs = (F-1)/K.
 * The Nyquist bin (f = F-1) is dropped by the split. Subband k of audio channel c holds
 * bins [k*Fs, (k+1)*Fs) and is channel c*K + k. (In memory the subband tensor is the full
 * band with the Nyquist row of each channel removed.) The merge writes 0 into the Nyquist
 * row. TF_EUSER when K < 1 or (F-1) % K != 0. */
tf_status tf_subband_split(float *out, const float *inp, int B, int C, int F, int T, int K);
/* dinp (B, C, F, T) += split^T(dout (B, C*K, Fs, T)); the Nyquist row gets nothing */
tf_status tf_subband_split_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                    int K);
/* out (B, C, F, T) = merge(inp (B, C*K, Fs, T)), Nyquist row = 0 */
tf_status tf_subband_merge(float *out, const float *inp, int B, int C, int F, int T, int K);
/* dinp (B, C*K, Fs, T) += merge^T(dout (B, C, F, T)); the Nyquist row of dout is ignored */
tf_status tf_subband_merge_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                    int K);

#endif
