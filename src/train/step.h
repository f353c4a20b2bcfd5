/* The one training step of tfswa, used by the training loop (train.c) and by `tfswa bench
 * step`: zero the gradients, then per micro-batch (gradient_accumulation_steps of them)
 * train-mode forward, the configured loss on the waveform (scaled 1/A) and backward; one
 * allreduce of the flat gradient block (+ the loss) over MPI ranks, averaged; global
 * gradient norm; a non-finite loss or norm skips the update (BN running statistics are
 * restored to their state before the step); else clipping (grad_clip), Adam/AdamW at the
 * paper's schedule, EMA, and BN running statistics averaged over ranks. */
#ifndef TFSWA_STEP_H
#define TFSWA_STEP_H
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "optim/optim.h"
#include "train/dist.h"
#include "train/loss.h"
#include "util/config.h"
#include "util/err.h"

/* One micro-batch: mix (B, 2, N) and the target stems (B, T, 2, N), T = cfg->n_targets. */
typedef struct {
    const float *mix;
    const float *target;
    int B;
    int64_t N;
} tf_micro_batch;

/* Supplies the next micro-batch (pointers stay valid until the next call). */
typedef tf_status (*tf_micro_batch_fn)(void *ctx, tf_micro_batch *mb);

/* The state a step works on, besides the model. */
typedef struct {
    const tf_config *cfg;
    const tf_dist *dist; /* the ranks */
    tf_model *model;
    tf_opt_state opt;  /* Adam m, v (n = n_params); raw (n) with EMA on, for checkpoints */
    float *ema;        /* (n) EMA weights, NULL when ema_decay is 0 */
    float *bufsave;    /* (n_buffers + 1) BN buffers before the step */
    float *out, *dout; /* (B, T, 2, N) model output and its gradient */
    tf_loss_ctx *loss;
} tf_trainer;

/* Result of one step. */
typedef struct {
    double loss;       /* mean over micro-batches and ranks (NaN/Inf when non-finite) */
    double grad_norm;  /* before clipping */
    double lr;         /* of the schedule at this step */
    int applied;       /* 1: the update was applied; 0: skipped (non-finite) */
    double loss_scale; /* the step's loss scale (device fp16 training), 0: none */
    int64_t samples;   /* items consumed over all ranks */
} tf_step_result;

/* Allocate the optimizer state, EMA (a copy of the current weights), output buffers and
 * loss for micro-batches of up to cfg->batch_size x frames on model m (created for them).
 * The bytes are tf_train_plan's optimizer + trainer entries (less the loop's targets). */
tf_status tf_trainer_open(tf_trainer **t, const tf_config *cfg, const tf_dist *d, tf_model *m,
                          int64_t frames);
void tf_trainer_close(tf_trainer *t);

/* Optimizer step number `step` (0-based: the learning-rate schedule's position); *updates
 * (the Adam bias-correction count) grows by one when the update is applied. */
tf_status tf_train_step(tf_trainer *t, int64_t step, int64_t *updates, tf_micro_batch_fn next,
                        void *next_ctx, tf_step_result *r);

/* Test hook: force the loss of optimizer step `tf_train_inject_nan_step` (-1 = never) to
 * NaN. */
extern int64_t tf_train_inject_nan_step;

#endif
