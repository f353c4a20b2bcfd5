/* TFSWA-ResUNet training forward and backward on a CUDA device (src/model/model_cuda.c): the
 * graph of model/forward.c, the whole batch at once, every tensor in device memory, the
 * arithmetic of src/cuda (cuDNN through nn/kernels.h, cuBLAS, cuFFT, own kernels).
 *
 * Memory: one cudaMalloc per role (parameters, gradients, BN buffers, saved activations,
 * workspace) of exactly the sizes tf_dlayout (model/dlayout.h) plans, plus the cuBLAS
 * handle's and the cuFFT STFT object's own. Parameters, gradients and buffers have the
 * CPU model's flat layout (tf_model_params etc.): checkpoints and optimizer state copy
 * over as they are. fp32 activations, or bf16 storage (activation_dtype bf16, use_amp:
 * the CPU model's roundings at the same points, fp32 arithmetic; an inference model is
 * always fp32; see model/dlayout.h); checkpointing off or
 * blocks: with blocks only the block inputs are saved and backward re-runs each Conv and
 * TFSWA block's forward into one workspace scratch just before its backward (BatchNorm on
 * batch statistics, the running statistics not updated again), as the CPU model does.
 *
 * Everything runs on one stream, the legacy default stream (NULL) for now: cuDNN, cuBLAS,
 * cuFFT and the own kernels are ordered by it. Errors: TF_EINTERNAL with the failing
 * call's message (a CUDA failure is not the user's doing). Not thread safe. */
#ifndef TFSWA_MODEL_CUDA_H
#define TFSWA_MODEL_CUDA_H
#include <stddef.h>
#include <stdint.h>

#include "model/dlayout.h"
#include "model/model.h"
#include "nn/kernels.h"
#include "util/err.h"

typedef struct tf_dmodel tf_dmodel;

/* A device model for a (tf_arch_from_config) and batches of up to B segments of exactly N
 * samples. kern: the convolutions' kernels (backend cuda on a GPU; the emulated tests pass
 * the ref backend, whose "device" memory is host memory); it must outlive the model, and
 * is committed here. stft: the CPU STFT object of (n_fft, hop) (window, sizes); copied.
 * Parameters are zero until set (tf_dmodel_params: copy a CPU model's in). */
tf_status tf_dmodel_create(tf_dmodel **out, const tf_arch *a, int B, int64_t N, tf_kernels *kern,
                           const void *stft);
/* The same for separation: no gradient block (tf_dmodel_grads is NULL), only the eval
 * forward (a training forward, zero_grad or backward is refused). The layout is
 * tf_dlayout_infer's (model/dlayout.h): what the eval forward has live at once, in the
 * workspace block alone (no saved-activation block: tf_dmodel_bytes' acts is 0). */
tf_status tf_dmodel_create_infer(tf_dmodel **out, const tf_arch *a, int B, int64_t N,
                                 tf_kernels *kern, const void *stft);
void tf_dmodel_free(tf_dmodel *d);

const tf_dlay *tf_dmodel_layout(const tf_dmodel *d);
/* device blocks in the CPU model's layout: n_params floats (params, grads), n_buffers */
float *tf_dmodel_params(tf_dmodel *d);
float *tf_dmodel_grads(tf_dmodel *d);
float *tf_dmodel_buffers(tf_dmodel *d);
size_t tf_dmodel_n_params(const tf_dmodel *d);
size_t tf_dmodel_n_buffers(const tf_dmodel *d);
/* device bytes allocated by role, and by the cuBLAS handle / cuFFT object */
void tf_dmodel_bytes(const tf_dmodel *d, size_t *params, size_t *acts, size_t *work, size_t *fft);

tf_status tf_dmodel_zero_grad(tf_dmodel *d);
/* Training forward: mix (B, 2, N) -> out (B, S, 2, N), both DEVICE pointers; batch
 * statistics, the running statistics updated, what backward needs saved (with
 * checkpointing: the block inputs only). */
tf_status tf_dmodel_forward(tf_dmodel *d, float *out, const float *mix, int B);
/* Eval forward (separation, validation): the same graph with BatchNorm on the running
 * statistics; nothing updated. On a training model it runs through the training forward's
 * buffers (their saved activations are overwritten: a backward needs a training forward
 * again); on an inference model through tf_dlayout_infer's. B <= the planned batch. The CPU model's
 * tf_model_forward(training = 0) computes the same. */
tf_status tf_dmodel_forward_eval(tf_dmodel *d, float *out, const float *mix, int B);
/* The eval forward of host chunks (separation, validation): mix (B, 2, N) HOST is copied
 * into dmix, the eval forward runs from it into dout, and dout is copied back into out
 * (B, S, 2, N) HOST; dmix (>= B*2*N floats) and dout (>= B*S*2*N) are the caller's device
 * buffers. who names the caller in a copy's error ("cuda separation: cudaMemcpy (chunks)
 * failed (...)"); the forward's own errors are its own. */
tf_status tf_dmodel_forward_eval_host(tf_dmodel *d, float *out, const float *mix, int B,
                                      float *dout, float *dmix, const char *who);
/* grads += d loss / d params of the last forward, dout (B, S, 2, N) device */
tf_status tf_dmodel_backward(tf_dmodel *d, const float *dout);

#endif
