/* STFT / ISTFT and their adjoints on the device with cuFFT (src/cuda/fft.cu): the same
 * operators as src/dsp/stft.c (see dsp/stft.h for the conventions: periodic Hann window,
 * centre padding by n_fft/2, reflect padding when N > n_fft/2 else zeros, onesided
 * F = n_fft/2 + 1 bins, T = 1 + N/hop frames, unnormalised forward, torch.istft's envelope
 * division, planes re/im (S, F, T)). No CUDA header here; every tensor pointer is a DEVICE
 * pointer, the stream (void * = cudaStream_t) is fixed at creation.
 *
 * An object is made for one (n_fft, hop, S_max signals, N samples): both cuFFT plans (r2c
 * and c2r, batches of S_max * T frames) and the frame and spectrum buffers are made once,
 * at creation; tf_cuda_stft_sizes gives their bytes (plans: cufftGetSize) for the memory
 * plan. A call transforms S <= S_max signals of exactly N samples (the plans still run
 * all S_max * T frames; the extra ones are ignored). One object must not be used by two
 * streams at once (its buffers are shared by its calls).
 *
 * Every output sample is a gather in a fixed order (no atomics): deterministic. Results
 * agree with the CPU to rounding. Backward functions ADD (+=) into their outputs, as the
 * CPU ones. Return value: 0 on success, else nonzero with a one-line message in
 * tf_cuda_stft_error. tests/gpu/test_cuda_blasfft.c checks each against the CPU.
 *
 * Usage:
 *     tf_stft *cpu; TF_TRY(tf_stft_create(&cpu, 2048, 441));
 *     tf_cuda_stft *g; char err[256];
 *     if (tf_cuda_stft_create(&g, cpu, 2 * B, N, stream, err, sizeof err)) fail(err);
 *     tf_cuda_stft_forward(g, re, im, x, 2 * B, N);   // device re, im (2B, F, T), x (2B, N)
 *     tf_cuda_stft_destroy(g);
 */
#ifndef TFSWA_CUDA_FFT_H
#define TFSWA_CUDA_FFT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tf_stft tf_stft; /* dsp/stft.h */
typedef struct tf_cuda_stft tf_cuda_stft;

/* For the n_fft, hop and window of cpu (which may be destroyed afterwards), S_max >= 1
 * signals of N >= 1 samples. 0 on success; else 1 with a message in err. */
int tf_cuda_stft_create(tf_cuda_stft **out, const tf_stft *cpu, int S_max, int64_t N, void *stream,
                        char *err, size_t err_n);
/* NULL is fine */
void tf_cuda_stft_destroy(tf_cuda_stft *g);
const char *tf_cuda_stft_error(const tf_cuda_stft *g);
/* device bytes: *plan_bytes of cuFFT work areas (cufftGetSize of both plans), *buffer_bytes
 * of the object's own buffers (frames, spectra, window, envelope); either may be NULL */
void tf_cuda_stft_sizes(const tf_cuda_stft *g, size_t *plan_bytes, size_t *buffer_bytes);

/* tf_stft_forward: re, im (S, F, T) = STFT(x (S, N)) */
int tf_cuda_stft_forward(tf_cuda_stft *g, float *re, float *im, const float *x, int S, int64_t N);
/* tf_stft_backward: dx (S, N) += STFT^T(dre, dim (S, F, T)) */
int tf_cuda_stft_backward(tf_cuda_stft *g, float *dx, const float *dre, const float *dim, int S,
                          int64_t N);
/* tf_istft_forward: y (S, N) = ISTFT(re, im (S, F, T)) */
int tf_cuda_istft_forward(tf_cuda_stft *g, float *y, const float *re, const float *im, int S,
                          int64_t N);
/* tf_istft_backward: dre, dim (S, F, T) += ISTFT^T(dy (S, N)) */
int tf_cuda_istft_backward(tf_cuda_stft *g, float *dre, float *dim, const float *dy, int S,
                           int64_t N);

#ifdef __cplusplus
}
#endif
#endif
