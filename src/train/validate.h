/* Full-track validation: every track of a split is separated whole with the streaming
 * overlap-add engine (bounded memory, never segmented) and scored with uSDR per target;
 * tracks are spread over MPI ranks (track i on rank i % W) and the scores reduced. */
#ifndef TFSWA_VALIDATE_H
#define TFSWA_VALIDATE_H
#include "data/index.h"
#include "dsp/ola.h"
#include "model/model.h"
#include "train/dist.h"
#include "util/config.h"

#define TF_VAL_OVERLAP 0.25 /* fraction of a chunk shared with the next */

typedef struct {
    int n_targets, tracks;
    double usdr[TF_MAX_TARGETS];         /* mean over tracks, per target */
    double usdr_mixture[TF_MAX_TARGETS]; /* the mixture-as-estimate baseline */
    double mean;                         /* mean over targets */
} tf_val_result;

/* The overlap-add configuration validation uses for cfg (chunk = the training segment). */
tf_ola_cfg tf_val_ola_cfg(const tf_config *cfg);
/* Bytes one validation track holds (engine + FIFOs + read blocks), n_sources stems. */
size_t tf_val_plan_bytes(const tf_config *cfg, int n_sources);
/* The same buffers carved from one block (64-byte aligned pieces): what the idle part of
 * a training model's arena (tf_model_spare) must hold for validation to run there. */
size_t tf_val_arena_bytes(const tf_config *cfg, int n_sources);

/* cfg: the model config (targets); ix indexed with the data config (sources). The model
 * must have been created for at least cfg->batch_size x segment frames. It may be the
 * training model itself (what the trainer passes): its eval forward streams through the
 * training model's own activation + workspace allocation, and the track's buffers
 * (overlap-add engine, reference FIFOs, read blocks) go to the part of it the eval forward
 * leaves idle (tf_model_spare) when they fit: validation then costs no memory beyond the
 * training plan. It scores exactly what an inference model (tfswa separate) would output
 * for these weights. */
tf_status tf_validate(tf_model *m, const tf_config *cfg, const tf_index *ix, tf_split split,
                      const tf_dist *d, tf_val_result *r);

/* The same with any model: forward(ctx, mix (nb, 2, L), nb, L, out (nb, S, 2, L)) called
 * with nb <= cfg->batch_size, L = the segment; spare (spare_bytes; NULL: none) idle memory
 * the track's buffers may use (else they are allocated). The device trainer's eval forward
 * (train/step_cuda.h) validates a CUDA run this way. */
typedef struct {
    tf_status (*forward)(void *ctx, const float *mix, int nb, int64_t L, float *out);
    void *ctx;
    unsigned char *spare;
    size_t spare_bytes;
} tf_val_model;
tf_status tf_validate_with(const tf_val_model *vm, const tf_config *cfg, const tf_index *ix,
                           tf_split split, const tf_dist *d, tf_val_result *r);

#endif
