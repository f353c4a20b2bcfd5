/* The one training step (step.h). */
#include "train/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t tf_train_inject_nan_step = -1;

tf_status tf_trainer_open(tf_trainer **out, const tf_config *c, const tf_dist *d, tf_model *m,
                          int64_t frames) {
    *out = NULL;
    tf_trainer *t = tf_calloc(1, sizeof *t, "trainer");
    if (!t) return TF_EINTERNAL;
    t->cfg = c, t->dist = d, t->model = m;
    const tf_model_sizes *plan = tf_model_get_plan(m);
    const size_t n = plan->n_params;
    const size_t io = (size_t)c->n_targets * 2 * (size_t)frames * (size_t)c->batch_size;
    tf_status st = TF_OK;
    t->opt.n = n;
    t->opt.m = tf_calloc(n, sizeof(float), "Adam m");
    t->opt.v = tf_calloc(n, sizeof(float), "Adam v");
    if (c->ema_decay > 0) {
        t->opt.raw = tf_calloc(n, sizeof(float), "raw weights");
        t->ema = tf_malloc(sizeof(float) * n, "EMA weights");
        if (t->ema) memcpy(t->ema, tf_model_params(m), sizeof(float) * n);
    }
    t->bufsave = tf_malloc(sizeof(float) * (plan->n_buffers + 1), "BN buffer copy");
    t->out = tf_malloc(sizeof(float) * io, "model output");
    /* l1 writes the gradient over the output (tf_loss_eval); mrstft still reads it */
    t->dout = c->loss == TF_LOSS_L1 ? t->out : tf_malloc(sizeof(float) * io, "output gradient");
    if (t->dout) st = tf_loss_create(&t->loss, c->loss, frames);
    if (!st && (!t->opt.m || !t->opt.v || !t->bufsave || !t->out || !t->dout ||
                (c->ema_decay > 0 && (!t->opt.raw || !t->ema))))
        st = TF_EINTERNAL;
    if (st) {
        tf_trainer_close(t);
        return st;
    }
    *out = t;
    return TF_OK;
}

void tf_trainer_close(tf_trainer *t) {
    if (!t) return;
    free(t->opt.m), free(t->opt.v), free(t->opt.raw), free(t->ema), free(t->bufsave);
    if (t->dout != t->out) free(t->dout);
    free(t->out);
    tf_loss_free(t->loss);
    free(t);
}

tf_status tf_train_step(tf_trainer *t, int64_t step, int64_t *updates, tf_micro_batch_fn next,
                        void *next_ctx, tf_step_result *r) {
    const tf_config *c = t->cfg;
    const int A = c->gradient_accumulation_steps, W = t->dist->size, T = c->n_targets;
    const size_t n = t->opt.n, nbuf = tf_model_get_plan(t->model)->n_buffers;
    float *params = tf_model_params(t->model), *grads = tf_model_grads(t->model);
    float *bufs = tf_model_buffers(t->model);
    tf_adam_cfg ac = tf_adam_default(c->optimizer == TF_OPT_ADAMW);
    ac.weight_decay = (float)c->weight_decay;
    memset(r, 0, sizeof *r);
    if (nbuf) memcpy(t->bufsave, bufs, sizeof(float) * nbuf);
    tf_model_zero_grad(t->model);
    double loss = 0;
    for (int a = 0; a < A; a++) { /* forward, loss on the waveform, backward (accumulates) */
        tf_micro_batch mb;
        double l;
        TF_TRY(next(next_ctx, &mb));
        TF_TRY(tf_model_forward(t->model, t->out, mb.mix, mb.B, mb.N, 1));
        TF_TRY(tf_loss_eval(t->loss, t->out, mb.target, mb.B * T * 2, mb.N, 1.0 / A, t->dout, &l));
        TF_TRY(tf_model_backward(t->model, t->dout));
        loss += l / A;
        r->samples += (int64_t)mb.B * W;
    }
    if (step == tf_train_inject_nan_step) loss = NAN;
    /* one allreduce over the flat gradient block (+ the loss) */
    double lsum = loss;
    TF_TRY(tf_dist_sum_f32(t->dist, grads, n));
    TF_TRY(tf_dist_sum_f64(t->dist, &lsum, 1));
    loss = lsum / W;
    if (W > 1) {
        const float inv = 1.f / (float)W;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) grads[i] *= inv;
    }
    const double gnorm = tf_global_norm(grads, n);
    const double lr =
        tf_lr_at(c->learning_rate, c->lr_decay, c->lr_decay_epochs, c->steps_per_epoch, step);
    r->loss = loss, r->grad_norm = gnorm, r->lr = lr;
    if (!isfinite(loss) || !isfinite(gnorm)) {
        if (nbuf) memcpy(bufs, t->bufsave, sizeof(float) * nbuf); /* untouched */
        return TF_OK;
    }
    if (c->grad_clip > 0) tf_clip_by_norm(grads, n, gnorm, c->grad_clip);
    ++*updates;
    tf_adam_step(&ac, params, grads, t->opt.m, t->opt.v, n, *updates, (float)lr);
    if (t->ema) tf_ema_update(t->ema, params, n, (float)c->ema_decay);
    if (W > 1 && nbuf) {                  /* keep BN running statistics identical on every rank */
        const float inv = 1.f / (float)W; /* as the gradients (and the device step) */
        TF_TRY(tf_dist_sum_f32(t->dist, bufs, nbuf));
        for (size_t i = 0; i < nbuf; i++) bufs[i] *= inv;
    }
    r->applied = 1;
    return TF_OK;
}
