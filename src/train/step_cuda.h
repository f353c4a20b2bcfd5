/* The training step of train/step.h on a CUDA device (src/train/step_cuda.c): the device model
 * (model/model_cuda.h), the loss (l1 or mrstft), the gradient norm, clipping, Adam/AdamW, EMA and
 * the non-finite skip, every tensor on the device. Only the micro-batches cross from the
 * host (mix and targets), and the loss and the norm come back (two doubles). With several
 * ranks (one per GPU) the gradient block and the BN running statistics are averaged on the
 * devices with NCCL (one ncclAllReduce each per step; the communicator is bootstrapped over
 * MPI, tf_dist, by tf_dtrainer_open); the loss's sum stays on MPI.
 *
 * The host keeps what checkpoints and validation need: tf_dtrainer_pull copies the
 * device's parameters, BN buffers, Adam moments and EMA weights into host arrays of the
 * CPU layout, tf_dtrainer_push the other way (resume). */
#ifndef TFSWA_TRAIN_STEP_CUDA_H
#define TFSWA_TRAIN_STEP_CUDA_H
#include <stddef.h>
#include <stdint.h>

#include "model/model_cuda.h"
#include "train/step.h"

typedef struct tf_dtrainer tf_dtrainer;

/* A device trainer for cfg's run (batch_size x frames per micro-batch): the device model
 * of a (tf_arch_from_config of cfg's model), Adam moments (zero), the EMA weights (with
 * ema_decay > 0), output, target and gradient buffers and the loss's. kern, stft: as
 * tf_dmodel_create. params, buffers: the host model's (copied to the device). dist (may be
 * NULL: one rank): with dist->size > 1 every rank calls this (collective: it creates the NCCL
 * communicator of the ranks) with its own device current (cudaSetDevice: tf_device_open). */
tf_status tf_dtrainer_open(tf_dtrainer **out, const tf_config *cfg, const tf_dist *dist,
                           const tf_arch *a, int64_t frames, tf_kernels *kern, const void *stft,
                           const float *params, const float *buffers);
void tf_dtrainer_close(tf_dtrainer *t);
/* Page-lock host memory the batches come from (the loader's slots: pin_memory) for the
 * CUDA driver, so their copies to the device are DMA transfers without a staging copy;
 * unregistered by tf_dtrainer_close. 1: registered; 0: not registered (the batches stay
 * pageable, the copies still work; *why holds the driver's reason). */
int tf_dtrainer_pin_host(tf_dtrainer *t, void *p, size_t bytes, char *why, size_t why_n);
tf_dmodel *tf_dtrainer_model(tf_dtrainer *t);
/* device bytes this trainer allocated: the model's roles, the trainer block and the cuFFT
 * objects' buffers and plans */
size_t tf_dtrainer_device_bytes(const tf_dtrainer *t);

/* tf_train_step on the device (the same arguments and results). */
tf_status tf_dtrainer_step(tf_dtrainer *t, int64_t step, int64_t *updates, tf_micro_batch_fn next,
                           void *next_ctx, tf_step_result *r);

/* Dynamic loss scaling (on when the kernels compute in fp16: amp_dtype fp16), PyTorch's
 * GradScaler: the loss gradient is multiplied by the scale (initially
 * TF_LOSS_SCALE_INIT), the gradients divided by it before clipping and Adam (a power of
 * two: exact); a step whose gradients are not finite is skipped and halves the scale,
 * `interval` (TF_LOSS_SCALE_INTERVAL) finite steps in a row double it. The step result's
 * grad_norm is of the unscaled gradients, loss_scale the scale the step used (0: off).
 * The state, for checkpoints (train_state.bin) and tests: scale (0 when off) and the finite
 * steps since its last change; set: scale 0 (off) or a power of two, interval >= 1. */
#define TF_LOSS_SCALE_INIT     65536.0
#define TF_LOSS_SCALE_INTERVAL 2000
void tf_dtrainer_loss_scale(const tf_dtrainer *t, double *scale, int64_t *good);
tf_status tf_dtrainer_set_loss_scale(tf_dtrainer *t, double scale, int64_t good, int64_t interval);

/* Validation on the device, between steps: tf_dtrainer_eval_begin puts the weights to score
 * in place (ema 1 and EMA on: the EMA weights, the raw ones kept in the gradient block,
 * which is free between steps; else nothing to do); tf_dtrainer_eval_forward (a
 * train/validate.h forward: ctx = the trainer) copies mix (nb, 2, L) in, runs the device
 * model's eval forward (BatchNorm on the running statistics) and copies the stems (nb, S,
 * 2, L) out, nb <= batch_size, L = the segment; tf_dtrainer_eval_end restores the raw
 * weights. No device memory beyond the trainer's: the batch and output buffers and the
 * model's own. */
tf_status tf_dtrainer_eval_begin(tf_dtrainer *t, int ema);
tf_status tf_dtrainer_eval_forward(void *t, const float *mix, int nb, int64_t L, float *out);
tf_status tf_dtrainer_eval_end(tf_dtrainer *t);

/* Host copies (n_params floats, n_buffers floats; any may be NULL to skip it): params,
 * buffers, Adam m and v, the EMA weights (only with EMA on). */
tf_status tf_dtrainer_pull(tf_dtrainer *t, float *params, float *buffers, float *m, float *v,
                           float *ema);
tf_status tf_dtrainer_push(tf_dtrainer *t, const float *params, const float *buffers,
                           const float *m, const float *v, const float *ema);

#endif
