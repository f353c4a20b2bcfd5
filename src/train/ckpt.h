/* Checkpoint directories (shared/DESIGN.md "Files on disk"):
 *   model.safetensors  the weights to use (EMA weights when ema_decay > 0) + BN buffers,
 *                      tensor names shared with the PyTorch reference
 *   model.json         architecture, STFT settings, targets, sample rate, version: enough
 *                      to rebuild the model with no config file
 *   train_state.bin    optimizer moments, step counters, best metric (and the raw weights
 *                      when EMA is on), with a versioned header and a checksum
 * A checkpoint is written into "<dir>.tmp-<pid>/" (every file fsync'd), then swapped in
 * with renames; a crash at any point leaves the previous checkpoint loadable (a crash
 * between the two renames leaves it as "<dir>.old-<pid>", which the loader also finds). */
#ifndef TFSWA_CKPT_H
#define TFSWA_CKPT_H
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/config.h"
#include "util/err.h"

typedef struct {
    int64_t step;       /* optimizer steps taken (skipped ones included) */
    int64_t updates;    /* Adam updates applied (bias correction counter) */
    int64_t skipped;    /* non-finite steps skipped in total */
    int64_t bad_in_row; /* consecutive non-finite steps at save time */
    double best_metric; /* best mean validation uSDR so far (-inf: none yet) */
    int64_t best_step;
    uint64_t seed;
} tf_train_progress;

/* Optimizer state of n parameters; raw is the non-EMA weights (NULL when EMA is off). */
typedef struct {
    size_t n;
    float *m, *v, *raw;
} tf_opt_state;

/* Write a checkpoint directory. `weights_are_ema`: the model currently holds the EMA
 * weights and st->raw the raw ones. */
tf_status tf_ckpt_save(const char *dir, const tf_model *m, const tf_config *cfg,
                       const tf_train_progress *p, const tf_opt_state *st);
/* Resolve a checkpoint path: a checkpoint dir, or a run dir (uses checkpoints/last). */
tf_status tf_ckpt_resolve(const char *path, char *out, size_t n);
/* Read model.json into the model/STFT/target keys of cfg (other keys untouched). */
tf_status tf_ckpt_read_config(const char *dir, tf_config *cfg);
/* Load weights (model.safetensors) into m. */
tf_status tf_ckpt_load_weights(const char *dir, tf_model *m);
/* Load train_state.bin; st->n must equal the file's; st->raw must be non-NULL iff the
 * file holds raw weights (EMA on) — a mismatch is TF_EUSER naming the file. */
tf_status tf_ckpt_load_state(const char *dir, tf_train_progress *p, tf_opt_state *st);

/* Test hook: when nonzero, tf_ckpt_save fails just before swapping the new directory in
 * (simulates a crash during the write). */
extern int tf_ckpt_fail_before_swap;

#endif
