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
#include "train/step.h"
#include "train/validate.h"
#include "util/config.h"
#include "util/err.h"

/* The model's input (architecture + run options) from the config: the model keys,
 * stft.window_size / hop_length, the number of targets, activation_dtype, checkpointing,
 * num_threads and seed. */
tf_model_config tf_train_model_config(const tf_config *cfg);
/* 1 when the targets are the sources in the same order: the loader's batch (B, S, 2, N)
 * then is the target tensor, and training gathers nothing. */
int tf_train_targets_are_sources(const tf_config *cfg);

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
/* The plan as text into f (the CLI's stderr for `tfswa train`, stdout for `tfswa plan`). */
void tf_train_plan_print(FILE *f, const tf_train_plan *p, const tf_config *cfg);
/* One plan line: "  <what padded to width> <bytes> bytes <MiB> MiB". */
void tf_plan_line(FILE *f, int width, const char *what, size_t bytes);
/* The model's and optimizer's roles, as every plan prints them: parameters, gradients, bn
 * buffers, optimizer (with EMA when ema), saved activations, workspace. */
void tf_plan_model_lines(FILE *f, int width, const tf_model_sizes *m, size_t optimizer, int ema);

/* What a run reports. The library never prints: the caller's callback does (the CLI's
 * cmd_train.c prints each event as a line; metrics.jsonl is written by the run itself).
 * Events come from rank 0 only. */
typedef enum {
    TF_TRAIN_EV_PLAN,    /* the memory plan, before anything is allocated: plan, cfg */
    TF_TRAIN_EV_RESUMED, /* resumed: path (the checkpoint directory), step; path NULL: the
                            run named by cfg->resume never finished a checkpoint and starts
                            over from step 0 */
    TF_TRAIN_EV_LOG,     /* every log_every steps and the last: step .. rss_bytes, last */
    TF_TRAIN_EV_VALID,   /* after a validation: step, valid, best */
    TF_TRAIN_EV_SKIPPED, /* a non-finite step was skipped: step, loss_finite, bad_in_row */
    TF_TRAIN_EV_DONE     /* the end of a successful run: step, skipped, best_*, peak_rss */
} tf_train_event_kind;

struct tf_device_plan; /* train/device_plan.h */

typedef struct tf_train_event {
    tf_train_event_kind kind;
    const tf_config *cfg;               /* always: the run's config */
    const tf_train_plan *plan;          /* always: the run's plan (the CPU's) */
    const struct tf_device_plan *dplan; /* PLAN with --device cuda: the device plan, which the
                                           run follows (plan is then not allocated) */
    int64_t step; /* optimizer steps done (the step that was skipped: SKIPPED) */
    int64_t total_steps, epoch, skipped, bad_in_row;
    double loss; /* LOG: mean over the applied steps since the last log (NaN: none) */
    double lr, grad_norm, samples_per_s;
    size_t rss_bytes;
    /* LOG on a CUDA device (on_device 1): device memory in use now and at the most of any
     * log so far (cudaMemGetInfo: total - free, the CUDA context and libraries included),
     * and the bytes the device trainer allocated (its plan) */
    int on_device;
    size_t dev_used_bytes, dev_peak_bytes, dev_plan_bytes;
    int last;                   /* LOG: the run's last step */
    int loss_finite;            /* SKIPPED: 1 when the loss was finite (the gradient was not) */
    const tf_val_result *valid; /* VALID */
    int best;                   /* VALID: the best so far (checkpoints/best written) */
    double best_metric;         /* DONE: best mean validation uSDR (-inf: none) */
    int64_t best_step;          /* DONE (-1: none) */
    size_t peak_rss_bytes;      /* DONE */
    const char *path;           /* RESUMED */
} tf_train_event;

typedef void (*tf_train_event_fn)(void *user, const tf_train_event *e);

/* Train with cfg (already validated); output in cfg->output_dir. Reports the plan first
 * (on_event may be NULL: silent); returns TF_EUSER without allocating when the machine
 * cannot hold it. */
tf_status tf_train_run(const tf_config *cfg, const tf_dist *d, tf_train_event_fn on_event,
                       void *user);

/* Test hook: stop after tf_train_stop_after steps (0 = never) as if killed (no final
 * checkpoint). (tf_train_inject_nan_step: train/step.h.) */
extern int64_t tf_train_stop_after;

#endif
