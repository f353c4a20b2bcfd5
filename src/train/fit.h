/* Fitting a training run into a memory budget (`tfswa plan --memory`, `tfswa train
 * --fit_memory`): the configurations that fit, ranked by speed.
 *
 * A candidate keeps everything of the config but four keys: batch_size (the micro-batch),
 * gradient_accumulation_steps, checkpointing and the precision (activation_dtype and
 * compute_dtype: fp32, or bf16 = --use_amp). The effective batch (micro-batch x
 * accumulation) stays the one asked for, so the run optimises the same objective: for
 * each checkpointing x precision, the largest micro-batch that divides the effective batch
 * and whose plan (tf_train_plan_bytes, exact) fits the budget.
 *
 * Ranking. A cost model (default): the counted FLOPs of the effective batch
 * (tf_model_train_flops: checkpointing adds its recompute) times a precision factor
 * (bf16 arithmetic where the CPU has it: 0.6; bf16 storage without it: 1.2, for the
 * rounding passes: measured 1.1-1.5 on the tiny preset on AVX2), plus per micro-batch the
 * optimizer-side work (20 flops per parameter: gradient zeroing, norm, clipping, Adam) and a fixed
 * 8 MFLOP-equivalent of per-call overhead. Measured (tf_fit_measure): one warm-up and `iters` timed
 * optimizer steps of each candidate on a fixed random batch, the median times accumulation steps.
 */
#ifndef TFSWA_FIT_H
#define TFSWA_FIT_H
#include <stddef.h>

#include "util/config.h"
#include "util/err.h"

#define TF_FIT_MAX 4

typedef struct {
    int micro_batch, accumulation;
    tf_ckpt_mode checkpointing;
    int amp;           /* 1: activation_dtype and compute_dtype bf16 */
    size_t plan_bytes; /* tf_train_plan_bytes total */
    double cost;       /* the cost model's units (relative: lower is faster) */
    double measured_s; /* seconds per effective batch, NaN until tf_fit_measure */
} tf_fit_candidate;

/* The candidates for cfg (its effective batch = batch_size x gradient_accumulation_steps)
 * within `budget` bytes, sorted by cost (fastest first); *n = 0 when nothing fits, not an
 * error. */
tf_status tf_fit_memory(const tf_config *cfg, size_t budget, tf_fit_candidate *out, int *n);

/* cfg with candidate c applied. */
void tf_fit_apply(tf_config *cfg, const tf_fit_candidate *c);

/* Time each candidate (see above) and sort them by measured_s. */
tf_status tf_fit_measure(const tf_config *cfg, tf_fit_candidate *c, int n, int iters);

/* "micro-batch 8 x 2 accumulation, checkpointing off, fp32" */
void tf_fit_describe(const tf_fit_candidate *c, char *out, size_t n);

#endif
