#include "train/fit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "nn/kernels.h"
#include "train/dist.h"
#include "train/step.h"
#include "train/train.h"
#include "util/clock.h"
#include "util/rng.h"

void tf_fit_apply(tf_config *cfg, const tf_fit_candidate *c) {
    cfg->batch_size = c->micro_batch;
    cfg->gradient_accumulation_steps = c->accumulation;
    cfg->checkpointing = c->checkpointing;
    cfg->activation_dtype = c->amp ? TF_DT_BF16 : TF_DT_FP32;
    cfg->compute_dtype = c->amp ? TF_DT_BF16 : TF_DT_FP32;
    if (!c->amp) cfg->amp_dtype = 0; /* amp_dtype is --use_amp's; fp32 chosen (and said) */
}

void tf_fit_describe(const tf_fit_candidate *c, char *out, size_t n) {
    snprintf(out, n, "micro-batch %d x %d accumulation, checkpointing %s, %s", c->micro_batch,
             c->accumulation, c->checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off",
             c->amp ? "amp (bf16)" : "fp32");
}

static int by_cost(const void *a, const void *b) {
    const tf_fit_candidate *x = a, *y = b;
    return (x->cost > y->cost) - (x->cost < y->cost);
}

static int by_measured(const void *a, const void *b) {
    const tf_fit_candidate *x = a, *y = b;
    return (x->measured_s > y->measured_s) - (x->measured_s < y->measured_s);
}

static tf_status cost_of(const tf_config *cfg, tf_fit_candidate *c, int64_t frames) {
    tf_config k = *cfg;
    tf_fit_apply(&k, c);
    const tf_model_config mc = tf_train_model_config(&k);
    tf_arch a;
    TF_TRY(tf_arch_from_config(&a, &mc));
    size_t nparams = 0;
    TF_TRY(tf_model_param_count(&nparams, &mc));
    const double f = tf_model_train_flops(&a, c->micro_batch, frames, NULL);
    const int backend = cfg->backend;
    const double prec = c->amp ? (tf_kernels_native_bf16(backend) ? 0.6 : 1.2) : 1.0;
    c->cost = (double)c->accumulation * (f * prec + 20.0 * (double)nparams + 8e6);
    return TF_OK;
}

tf_status tf_fit_memory(const tf_config *cfg, size_t budget, tf_fit_candidate *out, int *n) {
    *n = 0;
    const int E = cfg->batch_size *
                  (cfg->gradient_accumulation_steps > 0 ? cfg->gradient_accumulation_steps : 1);
    if (E < 1) return tf_err(TF_EUSER, "batch_size: %d must be >= 1", cfg->batch_size);
    for (int ck = 0; ck < 2; ck++)
        for (int amp = 0; amp < 2; amp++) {
            tf_fit_candidate best = {0};
            for (int m = E; m >= 1; m--) {
                if (E % m) continue;
                tf_fit_candidate c = {m, E / m, ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF, amp, 0, 0, NAN};
                tf_config k = *cfg;
                tf_fit_apply(&k, &c);
                tf_train_plan p;
                TF_TRY(tf_train_plan_bytes(&p, &k, k.num_threads));
                if (p.total > budget) continue;
                c.plan_bytes = p.total;
                TF_TRY(cost_of(cfg, &c, p.segment_frames));
                best = c;
                break;
            }
            if (best.micro_batch) out[(*n)++] = best;
        }
    qsort(out, (size_t)*n, sizeof *out, by_cost);
    return TF_OK;
}

static tf_status fixed_batch(void *ctx, tf_micro_batch *mb) {
    *mb = *(const tf_micro_batch *)ctx;
    return TF_OK;
}

static tf_status time_one(const tf_config *cfg, tf_fit_candidate *c, int iters) {
    static const tf_dist one = TF_DIST_SINGLE;
    tf_config k = *cfg;
    tf_fit_apply(&k, c);
    k.gradient_accumulation_steps = 1; /* one micro-batch per timed step */
    tf_train_plan p;
    TF_TRY(tf_train_plan_bytes(&p, &k, k.num_threads));
    const int B = c->micro_batch, S = k.n_targets;
    const int64_t N = p.segment_frames;
    float *mix = tf_malloc(sizeof(float) * (size_t)B * 2 * (size_t)N, "fit batch");
    float *tgt = tf_malloc(sizeof(float) * (size_t)B * (size_t)S * 2 * (size_t)N, "fit batch");
    tf_model *m = NULL;
    tf_trainer *tr = NULL;
    double *t = tf_calloc((size_t)iters, sizeof(double), "fit times");
    tf_status st = mix && tgt && t ? TF_OK : TF_EINTERNAL;
    if (!st) {
        tf_rng r;
        tf_rng_seed(&r, 1, 0, 0, 0);
        for (size_t i = 0; i < (size_t)B * 2 * (size_t)N; i++)
            mix[i] = (float)(0.3 * (2 * tf_rng_uniform(&r) - 1));
        for (size_t i = 0; i < (size_t)B * (size_t)S * 2 * (size_t)N; i++)
            tgt[i] = (float)(0.1 * (2 * tf_rng_uniform(&r) - 1));
        const tf_model_config mc = tf_train_model_config(&k);
        st = tf_model_create(&m, &mc, B, N, k.num_threads);
    }
    if (!st) st = tf_trainer_open(&tr, &k, &one, m, N);
    tf_micro_batch mb = {.mix = mix, .target = tgt, .B = B, .N = N};
    int64_t updates = 0;
    tf_step_result res;
    for (int i = -1; i < iters && !st; i++) { /* i = -1: warm-up */
        const double t0 = tf_now_s();
        st = tf_train_step(tr, i + 1, &updates, fixed_batch, &mb, &res);
        if (i >= 0) t[i] = tf_now_s() - t0;
    }
    if (!st) {
        for (int i = 1; i < iters; i++) /* sort the few times, take the median */
            for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
                const double x = t[j];
                t[j] = t[j - 1], t[j - 1] = x;
            }
        const double med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
        c->measured_s = med * c->accumulation;
    }
    tf_trainer_close(tr);
    tf_model_free(m);
    free(mix), free(tgt), free(t);
    return st;
}

tf_status tf_fit_measure(const tf_config *cfg, tf_fit_candidate *c, int n, int iters) {
    if (iters < 1) return tf_err(TF_EUSER, "measure: %d iterations must be >= 1", iters);
    for (int i = 0; i < n; i++) TF_TRY(time_one(cfg, &c[i], iters));
    qsort(c, (size_t)n, sizeof *c, by_measured);
    return TF_OK;
}
