/* The checkpoint format (shared/DESIGN.md "Files on disk"), owned by the model (as llm.c's
 * gpt2_build_from_checkpoint): a checkpoint directory holds
 *   model.safetensors  the weights to use + BN buffers, tensor names shared with the
 *                      PyTorch reference
 *   model.json         architecture, STFT settings, targets, sample rate, segment length,
 *                      version: enough to rebuild the model with no config file
 * and whatever the writer adds (train/ adds train_state.bin). A checkpoint is written
 * into "<dir>.tmp-<pid>/" (every file fsync'd), then swapped in with renames; a crash at
 * any point leaves the previous checkpoint loadable (a crash between the two renames
 * leaves it as "<dir>.old-<pid>", which tf_ckpt_find also finds); the next write removes
 * what a killed writer left ("<dir>.tmp-<pid>", "<dir>.old-<pid>" of a PID that no longer
 * runs). `tfswa bench faults` kills training at each of these stages (util/fault.h). */
#ifndef TFSWA_CHECKPOINT_H
#define TFSWA_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

/* What model.json holds. model: the architecture fields (run options are not stored:
 * reading leaves them as the caller set them). */
typedef struct {
    tf_model_config model;
    int sample_rate;
    double segment_seconds; /* the training segment: the natural chunk for separation */
    char targets[TF_MAX_TARGETS][TF_NAME_MAX]; /* model.n_targets stem names */
} tf_ckpt_info;

/* Writes extra files into the temporary directory before the swap (e.g. train_state.bin). */
typedef tf_status (*tf_ckpt_extra_fn)(void *ctx, const char *tmp_dir);

/* Write the checkpoint directory `dir` atomically: model.safetensors (m's weights, with
 * metadata format=tfswa, step), model.json (info), then extra(ctx, tmp) if non-NULL. */
tf_status tf_ckpt_write(const char *dir, const tf_model *m, const tf_ckpt_info *info, int64_t step,
                        tf_ckpt_extra_fn extra, void *extra_ctx);
/* Resolve a checkpoint path: a checkpoint dir, or a run dir (uses checkpoints/last). */
tf_status tf_ckpt_resolve(const char *path, char *out, size_t n);
/* The directory holding dir's files: dir itself, or the "<dir>.old-*" a crash left. */
tf_status tf_ckpt_find(const char *dir, char *out, size_t n);
/* Read and check model.json (TF_EUSER naming the file and the key). info->model's run
 * options are kept. */
tf_status tf_ckpt_read_info(const char *dir, tf_ckpt_info *info);
/* Load weights (model.safetensors) into m: every tensor of m by name, with m's shape, and
 * nothing else (F32 or BF16; offsets, sizes and dtypes checked by tf_st_open). Any
 * disagreement is TF_EUSER naming the file and the tensor. */
tf_status tf_ckpt_load_weights(const char *dir, tf_model *m);
/* Build a model from a checkpoint: model.json's architecture with the run options of
 * `run` (NULL: defaults: fp32, no checkpointing, threads 0, seed 0), for batches up to
 * batch x frames (frames <= 0: the checkpoint's segment), mode TF_MODEL_TRAIN or
 * TF_MODEL_INFER, weights loaded. info (optional) receives model.json. */
tf_status tf_model_from_checkpoint(tf_model **out, tf_ckpt_info *info, const char *dir,
                                   const tf_model_config *run, int batch, int64_t frames,
                                   tf_model_mode mode);

/* Test hook: when nonzero, tf_ckpt_write fails just before swapping the new directory in
 * (simulates a crash during the write). */
extern int tf_ckpt_fail_before_swap;

#endif
