/* The one training loop of tfswa (shared/DESIGN.md, REQUEST.md): silence-aware chunked
 * data -> TFSWA-ResUNet -> L1 on the waveform -> Adam/AdamW with the paper's schedule,
 * gradient accumulation, global-norm clipping, optional EMA, non-finite step skipping,
 * atomic checkpoints with exact resume, full-track validation (uSDR), MPI data parallel.
 *
 * Data-parallel semantics: every optimizer step consumes A x W micro-batches of
 * batch_size items (A = gradient_accumulation_steps, W = MPI ranks). Micro-batch slot
 * j = a * W + rank of step s draws its data from loader step s * A * W + j, so the data
 * of a step do not depend on how its slots are spread over ranks and accumulation:
 * 2 ranks x 1 accumulation step == 1 rank x 2 accumulation steps. BatchNorm uses the
 * statistics of each micro-batch (as PyTorch DDP without SyncBatchNorm); running
 * statistics are averaged over ranks after every step so all ranks stay identical. */
#ifndef TFSWA_TRAIN_H
#define TFSWA_TRAIN_H
#include <stdio.h>

#include "model/model.h"
#include "train/dist.h"
#include "util/config.h"
#include "util/err.h"

/* Bytes of every role of a training run, computed before allocating anything. */
typedef struct {
    tf_model_sizes model; /* parameters, gradients, buffers, activations, workspace */
    size_t optimizer;     /* Adam m and v (+ EMA weights) */
    size_t loader;        /* the loader's batch slots */
    size_t validation;    /* overlap-add buffers of full-track validation */
    size_t trainer;       /* targets, output and its gradient, loss scratch */
    size_t total;
    int64_t segment_frames;
} tf_train_plan;

tf_status tf_train_plan_bytes(tf_train_plan *p, const tf_config *cfg, int threads);
void tf_train_plan_print(FILE *f, const tf_train_plan *p, const tf_config *cfg);

/* Train with cfg (already validated); output in cfg->output_dir. Prints the plan first;
 * returns TF_EUSER without allocating when the machine cannot hold it. */
tf_status tf_train_run(const tf_config *cfg, const tf_dist *d);

/* Test hooks: force the loss of optimizer step `tf_train_inject_nan_step` (-1 = never)
 * to NaN; stop after tf_train_stop_after steps (0 = never) as if killed (no final
 * checkpoint). */
extern int64_t tf_train_inject_nan_step;
extern int64_t tf_train_stop_after;

#endif
