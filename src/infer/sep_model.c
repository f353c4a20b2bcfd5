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

/* (Re)create the model for (batch, frames, threads) and load the weights into it: an
 * inference model (no gradients, no saved activations). */
static tf_status create(ckpt_model *c, int batch, int64_t frames, int threads) {
    tf_model_free(c->m);
    c->m = NULL;
    tf_model_config run = c->info.model; /* run options: defaults, and these threads */
    run.threads = threads;
    TF_TRY(tf_model_from_checkpoint(&c->m, &c->info, c->dir, &run, batch, frames, TF_MODEL_INFER));
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

static void ck_close(void *ctx) {
    ckpt_model *c = ctx;
    if (!c) return;
    tf_model_free(c->m);
    free(c);
}

tf_status tf_sep_model_checkpoint(tf_sep_model *m, const char *path, int threads) {
    memset(m, 0, sizeof *m);
    ckpt_model *c = tf_calloc(1, sizeof *c, "checkpoint model");
    if (!c) return TF_EINTERNAL;
    tf_status st = tf_ckpt_resolve(path, c->dir, sizeof c->dir);
    if (!st) st = tf_ckpt_read_info(c->dir, &c->info);
    const int rate = c->info.sample_rate;
    const int64_t frames = (int64_t)(c->info.segment_seconds * rate + 0.5);
    if (!st) st = create(c, 1, frames, threads);
    if (st) {
        ck_close(c);
        return st;
    }
    snprintf(m->name, sizeof m->name, "%s", path);
    m->n_targets = c->info.model.n_targets;
    for (int i = 0; i < m->n_targets; i++)
        snprintf(m->targets[i], TF_NAME_MAX, "%s", c->info.targets[i]);
    m->sample_rate = rate;
    m->segment_seconds = c->info.segment_seconds;
    m->min_frames = c->info.model.n_fft;
    m->prepare = ck_prepare, m->forward = ck_forward, m->close = ck_close, m->ctx = c;
    return TF_OK;
}
