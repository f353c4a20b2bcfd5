/* The TFSWA-ResUNet of a checkpoint as a separation model (infer/separate.h). */
#include <stdlib.h>
#include <string.h>

#include "infer/separate.h"
#include "model/checkpoint.h"
#include "model/model.h"

typedef struct {
    char dir[TF_PATH_MAX]; /* resolved checkpoint directory */
    tf_ckpt_info info;     /* its model.json */
    tf_model *m;
    int batch, threads;
    int64_t frames;
} ckpt_model;

/* Recreate the model for (batch, frames, threads) from the model.json read at open and
 * load the weights into it: an inference model (no gradients, no saved activations). */
static tf_status create(ckpt_model *c, int batch, int64_t frames, int threads) {
    tf_model_free(c->m);
    c->m = NULL;
    tf_model_config run = c->info.model; /* run options: as opened, and these threads */
    run.threads = threads;
    TF_TRY(tf_model_create_mode(&c->m, &run, batch, frames, threads, TF_MODEL_INFER));
    tf_status st = tf_ckpt_load_weights(c->dir, c->m);
    if (st) {
        tf_model_free(c->m);
        c->m = NULL;
        return st;
    }
    c->batch = batch, c->frames = frames, c->threads = threads;
    return TF_OK;
}

static tf_status ck_prepare(void *ctx, int batch, int64_t frames, int threads) {
    ckpt_model *c = ctx;
    if (c->m && batch == c->batch && frames == c->frames && threads == c->threads) return TF_OK;
    return create(c, batch, frames, threads);
}

static tf_status ck_forward(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    ckpt_model *c = ctx;
    return tf_model_forward(c->m, out, mix, nb, L, 0);
}

static const char *ck_describe(void *ctx) {
    ckpt_model *c = ctx;
    return c->m ? tf_model_kernels_describe(c->m) : NULL;
}

static void ck_close(void *ctx) {
    ckpt_model *c = ctx;
    if (!c) return;
    tf_model_free(c->m);
    free(c);
}

tf_status tf_sep_model_checkpoint(tf_sep_model *m, const char *path, int threads,
                                  tf_backend backend, tf_dtype compute) {
    memset(m, 0, sizeof *m);
    ckpt_model *c = tf_calloc(1, sizeof *c, "checkpoint model");
    if (!c) return TF_EINTERNAL;
    /* batch 1 x the training segment (frames 0); run options at their defaults but the
     * backend and compute dtype (kept in c->info.model for every re-creation) */
    tf_model_config run;
    memset(&run, 0, sizeof run);
    run.threads = threads;
    run.backend = backend;
    run.compute_dtype = compute;
    tf_status st = tf_ckpt_resolve(path, c->dir, sizeof c->dir);
    if (!st) st = tf_model_from_checkpoint(&c->m, &c->info, c->dir, &run, 1, 0, TF_MODEL_INFER);
    if (!st) c->batch = 1, c->frames = tf_model_get_plan(c->m)->frames, c->threads = threads;
    if (st) {
        ck_close(c);
        return st;
    }
    snprintf(m->name, sizeof m->name, "%s", path);
    m->n_targets = c->info.model.n_targets;
    for (int i = 0; i < m->n_targets; i++)
        snprintf(m->targets[i], TF_NAME_MAX, "%s", c->info.targets[i]);
    m->sample_rate = c->info.sample_rate;
    m->segment_seconds = c->info.segment_seconds;
    m->min_frames = c->info.model.n_fft;
    m->prepare = ck_prepare, m->forward = ck_forward, m->close = ck_close;
    m->describe = ck_describe, m->ctx = c;
    return TF_OK;
}
