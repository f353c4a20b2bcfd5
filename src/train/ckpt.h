/* Training checkpoints: the model's checkpoint directory (model/checkpoint.h: model.json +
 * model.safetensors, written atomically) plus train/'s own file
 *   train_state.bin    optimizer moments, step counters, best metric (and the raw weights
 *                      when EMA is on), with a versioned header and a checksum
 * written into the same temporary directory before the swap, so a crash never leaves a
 * checkpoint whose files disagree. */
#ifndef TFSWA_TRAIN_CKPT_H
#define TFSWA_TRAIN_CKPT_H
#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint.h"
#include "model/model.h"
#include "optim/optim.h"
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
    double loss_scale;       /* the device trainer's loss scale (fp16), 0: none */
    int64_t loss_scale_good; /* its finite steps since the last change */
} tf_train_progress;

/* model.json's content for cfg (architecture, targets, sample rate, segment). */
void tf_ckpt_info_from_config(tf_ckpt_info *info, const tf_config *cfg);
/* Write a checkpoint directory (model.safetensors, model.json, train_state.bin). st->raw:
 * when non-NULL, the model currently holds the EMA weights and st->raw the raw ones. */
tf_status tf_ckpt_save(const char *dir, const tf_model *m, const tf_config *cfg,
                       const tf_train_progress *p, const tf_opt_state *st);
/* Read model.json into the model/STFT/target keys of cfg (other keys untouched). */
tf_status tf_ckpt_read_config(const char *dir, tf_config *cfg);
/* Load train_state.bin; st->n must equal the file's; st->raw must be non-NULL iff the
 * file holds raw weights (EMA on) — a mismatch is TF_EUSER naming the file. */
tf_status tf_ckpt_load_state(const char *dir, tf_train_progress *p, tf_opt_state *st);

#endif
