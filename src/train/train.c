#include "train/train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "data/index.h"
#include "data/loader.h"
#include "infer/ola.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/loss.h"
#include "train/validate.h"
#include "util/fsutil.h"
#include "util/sysmem.h"

int64_t tf_train_inject_nan_step = -1;
int64_t tf_train_stop_after = 0;

static double now_s(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

tf_status tf_train_plan_bytes(tf_train_plan *p, const tf_config *cfg, int threads) {
    memset(p, 0, sizeof *p);
    p->segment_frames = (int64_t)llround(cfg->segment_seconds * cfg->sample_rate);
    TF_TRY(tf_model_plan(&p->model, cfg, cfg->batch_size, p->segment_frames, threads));
    size_t n = p->model.n_params;
    /* m and v; with EMA also the EMA weights and a copy of the raw ones */
    p->optimizer = sizeof(float) * n * (cfg->ema_decay > 0 ? 4 : 2);
    p->loader = tf_loader_plan_bytes(cfg, cfg->n_sources, p->segment_frames);
    p->validation = tf_val_plan_bytes(cfg, cfg->n_sources);
    /* trainer buffers: targets, output, output gradient (B, T, 2, N) + loss scratch */
    p->trainer = sizeof(float) * 3 * (size_t)cfg->batch_size * (size_t)cfg->n_targets * 2 *
                     (size_t)p->segment_frames +
                 tf_loss_plan_bytes(cfg->loss, p->segment_frames) +
                 sizeof(float) * (p->model.n_buffers + 1); /* BN buffers before a step */
    p->total = p->model.total + p->optimizer + p->loader + p->validation + p->trainer;
    return TF_OK;
}

static void mib(FILE *f, const char *what, size_t b) {
    fprintf(f, "  %-22s %12zu bytes  %10.1f MiB\n", what, b, (double)b / 1048576.0);
}

void tf_train_plan_print(FILE *f, const tf_train_plan *p, const tf_config *cfg) {
    fprintf(f, "memory plan: batch %d x %.2f s (%lld frames), %s activations, checkpointing %s\n",
            cfg->batch_size, cfg->segment_seconds, (long long)p->segment_frames,
            cfg->activation_dtype == TF_DT_BF16 ? "bf16" : "fp32",
            cfg->checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off");
    fprintf(f, "  parameters: %zu (trainable), %zu buffers\n", p->model.n_params,
            p->model.n_buffers);
    mib(f, "parameters", p->model.params);
    mib(f, "gradients", p->model.grads);
    mib(f, "bn buffers", p->model.buffers);
    mib(f, cfg->ema_decay > 0 ? "optimizer (m, v, ema, raw)" : "optimizer (m, v)", p->optimizer);
    mib(f, "saved activations", p->model.activations);
    mib(f, "workspace", p->model.workspace);
    mib(f, "loader batches", p->loader);
    mib(f, "validation", p->validation);
    mib(f, "trainer (targets, loss)", p->trainer);
    mib(f, "total", p->total);
}

/* ---- the run ---- */

typedef struct {
    tf_config cfg;
    const tf_dist *d;
    tf_train_plan plan;
    tf_index *ix;
    tf_loader *loader;
    tf_model *model;
    tf_opt_state opt;
    float *ema;     /* EMA weights (n) or NULL */
    float *bufsave; /* BN buffers before a step (restored when the step is skipped) */
    float *target;  /* (B, T, 2, N) the target stems of a micro-batch */
    float *out;     /* (B, T, 2, N) model output */
    float *dout;    /* (B, T, 2, N) */
    tf_loss_ctx *loss;
    int tmap[TF_MAX_TARGETS];
    tf_train_progress p;
    FILE *metrics;
    int tty;
} run;

static void free_run(run *r) {
    tf_loader_close(r->loader);
    tf_model_free(r->model);
    tf_index_close(r->ix);
    free(r->opt.m), free(r->opt.v), free(r->opt.raw), free(r->ema), free(r->bufsave);
    free(r->target), free(r->out), free(r->dout);
    tf_loss_free(r->loss);
    if (r->metrics) fclose(r->metrics);
}

static int64_t total_steps(const tf_config *c) {
    return c->max_steps > 0 ? c->max_steps : (int64_t)c->max_epochs * c->steps_per_epoch;
}

static tf_status save_ckpt(run *r, const char *which) {
    if (r->d->rank != 0) return TF_OK;
    char dir[TF_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/checkpoints/%s", r->cfg.output_dir, which);
    float *params = tf_model_params(r->model);
    size_t n = r->opt.n;
    if (r->ema) { /* model.safetensors holds the EMA weights; train_state the raw ones */
        memcpy(r->opt.raw, params, sizeof(float) * n);
        memcpy(params, r->ema, sizeof(float) * n);
    }
    tf_status st = tf_ckpt_save(dir, r->model, &r->cfg, &r->p, &r->opt);
    if (r->ema) memcpy(params, r->opt.raw, sizeof(float) * n);
    return st;
}

static tf_status resume(run *r) {
    char dir[TF_PATH_MAX + 64];
    TF_TRY(tf_ckpt_resolve(r->cfg.resume, dir, sizeof dir));
    TF_TRY(tf_ckpt_load_weights(dir, r->model));
    TF_TRY(tf_ckpt_load_state(dir, &r->p, &r->opt));
    if (r->ema) { /* the file's weights are the EMA ones */
        memcpy(r->ema, tf_model_params(r->model), sizeof(float) * r->opt.n);
        memcpy(tf_model_params(r->model), r->opt.raw, sizeof(float) * r->opt.n);
    }
    if (r->d->rank == 0)
        fprintf(stderr, "resumed from %s at step %lld\n", dir, (long long)r->p.step);
    return TF_OK;
}

/* Validation with the weights to deploy (EMA when on); best checkpoint by mean uSDR. */
static tf_status validate(run *r) {
    if (tf_index_count(r->ix, TF_SPLIT_VALID) == 0) return TF_OK;
    float *params = tf_model_params(r->model);
    if (r->ema) {
        memcpy(r->opt.raw, params, sizeof(float) * r->opt.n);
        memcpy(params, r->ema, sizeof(float) * r->opt.n);
    }
    tf_val_result v;
    tf_status st = tf_validate(r->model, &r->cfg, r->ix, TF_SPLIT_VALID, r->d, &v);
    if (r->ema) memcpy(params, r->opt.raw, sizeof(float) * r->opt.n);
    TF_TRY(st);
    int best = v.mean > r->p.best_metric;
    if (best) r->p.best_metric = v.mean, r->p.best_step = r->p.step;
    if (r->d->rank == 0) {
        if (r->tty) fputc('\n', stderr);
        fprintf(stderr, "validation step %lld (%d tracks): uSDR", (long long)r->p.step, v.tracks);
        for (int t = 0; t < r->cfg.n_targets; t++)
            fprintf(stderr, " %s %.2f (mix %.2f)", r->cfg.targets[t], v.usdr[t], v.usdr_mixture[t]);
        fprintf(stderr, " | mean %.3f dB%s\n", v.mean, best ? " (best)" : "");
        cJSON *j = cJSON_CreateObject(), *u = cJSON_CreateObject(), *um = cJSON_CreateObject();
        if (j && u && um) {
            cJSON_AddNumberToObject(j, "step", (double)r->p.step);
            for (int t = 0; t < r->cfg.n_targets; t++) {
                cJSON_AddNumberToObject(u, r->cfg.targets[t], v.usdr[t]);
                cJSON_AddNumberToObject(um, r->cfg.targets[t], v.usdr_mixture[t]);
            }
            cJSON_AddItemToObject(j, "usdr", u);
            cJSON_AddItemToObject(j, "usdr_mixture", um);
            u = um = NULL;
            cJSON_AddNumberToObject(j, "usdr_mean", v.mean);
            cJSON_AddNumberToObject(j, "tracks", v.tracks);
            char *s = cJSON_PrintUnformatted(j);
            if (s) fprintf(r->metrics, "%s\n", s), fflush(r->metrics), free(s);
        }
        cJSON_Delete(j), cJSON_Delete(u), cJSON_Delete(um);
    }
    if (best) TF_TRY(save_ckpt(r, "best"));
    return TF_OK;
}

static void log_step(run *r, double loss, double lr, double gnorm, double sps, int final) {
    size_t rss = tf_rss_bytes();
    int64_t epoch = r->p.step / r->cfg.steps_per_epoch;
    char line[512];
    snprintf(line, sizeof line,
             "step %lld/%lld | epoch %lld | loss %.5f | lr %.3g | %.1f samples/s | grad %.3g | "
             "skipped %lld | rss %.0f MiB / plan %.0f MiB",
             (long long)r->p.step, (long long)total_steps(&r->cfg), (long long)epoch, loss, lr, sps,
             gnorm, (long long)r->p.skipped, (double)rss / 1048576.0,
             (double)r->plan.total / 1048576.0);
    if (r->tty)
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    else
        fprintf(stderr, "%s\n", line);
    fflush(stderr);
    fprintf(r->metrics,
            "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
            "\"skipped_steps\": %lld, \"samples_per_s\": %.4g, \"rss_bytes\": %zu, "
            "\"plan_bytes\": %zu}\n",
            (long long)r->p.step, (long long)epoch, loss, lr, gnorm, (long long)r->p.skipped, sps,
            rss, r->plan.total);
    fflush(r->metrics);
}

/* One micro-batch: forward, loss on the waveform, backward (gradients accumulate). */
static tf_status micro_step(run *r, const tf_batch *b, double scale, double *loss) {
    const int B = b->B, T = r->cfg.n_targets;
    const int64_t N = b->N;
    const size_t per = 2 * (size_t)N;
    for (int i = 0; i < B; i++)
        for (int t = 0; t < T; t++)
            memcpy(r->target + ((size_t)i * T + t) * per,
                   b->stems + ((size_t)i * b->S + r->tmap[t]) * per, sizeof(float) * per);
    TF_TRY(tf_model_forward(r->model, r->out, b->mixture, B, N, 1));
    TF_TRY(tf_loss_eval(r->loss, r->out, r->target, B * T * 2, N, scale, r->dout, loss));
    return tf_model_backward(r->model, r->dout);
}

static tf_status train_loop(run *r) {
    const tf_config *c = &r->cfg;
    const int A = c->gradient_accumulation_steps, W = r->d->size;
    const int64_t steps = total_steps(c);
    const size_t n = r->opt.n, nbuf = r->plan.model.n_buffers;
    float *params = tf_model_params(r->model), *grads = tf_model_grads(r->model);
    float *bufs = tf_model_buffers(r->model);
    tf_adam_cfg ac = tf_adam_default(c->optimizer == TF_OPT_ADAMW);
    ac.weight_decay = (float)c->weight_decay;
    double t0 = now_s(), loss_acc = 0, gnorm_last = 0;
    int64_t samples = 0, logged = 0;
    int64_t epoch_started = -1;
    while (r->p.step < steps) {
        const int64_t epoch = r->p.step / c->steps_per_epoch;
        if (epoch != epoch_started) { /* (re)start the loader at this step's micro-batches */
            int64_t end = (epoch + 1) * c->steps_per_epoch;
            if (end > steps) end = steps;
            TF_TRY(
                tf_loader_start_epoch(r->loader, (int)epoch, r->p.step * A, (end - r->p.step) * A));
            epoch_started = epoch;
        }
        if (nbuf) memcpy(r->bufsave, bufs, sizeof(float) * nbuf);
        tf_model_zero_grad(r->model);
        double loss = 0;
        for (int a = 0; a < A; a++) {
            const tf_batch *b;
            double l;
            TF_TRY(tf_loader_next(r->loader, &b));
            TF_TRY(micro_step(r, b, 1.0 / A, &l));
            loss += l / A;
            samples += (int64_t)b->B * W;
        }
        if (r->p.step == tf_train_inject_nan_step) loss = NAN;
        /* one allreduce over the flat gradient block (+ the loss) */
        double lsum = loss;
        TF_TRY(tf_dist_sum_f32(r->d, grads, n));
        TF_TRY(tf_dist_sum_f64(r->d, &lsum, 1));
        loss = lsum / W;
        if (W > 1) {
            const float inv = 1.f / (float)W;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) grads[i] *= inv;
        }
        double gnorm = tf_global_norm(grads, n);
        double lr = tf_lr_at(c->learning_rate, c->lr_decay, c->lr_decay_epochs, c->steps_per_epoch,
                             r->p.step);
        if (!isfinite(loss) || !isfinite(gnorm)) {
            if (nbuf) memcpy(bufs, r->bufsave, sizeof(float) * nbuf); /* untouched */
            r->p.skipped++, r->p.bad_in_row++;
            if (r->d->rank == 0)
                fprintf(stderr, "%sstep %lld: non-finite %s, step skipped (%lld in a row)\n",
                        r->tty ? "\n" : "", (long long)r->p.step,
                        isfinite(loss) ? "gradient" : "loss", (long long)r->p.bad_in_row);
            if (r->p.bad_in_row >= c->max_bad_steps)
                return tf_err(TF_EUSER,
                              "stopping: %lld non-finite steps in a row (max_bad_steps %d); lower "
                              "learning_rate or check the data",
                              (long long)r->p.bad_in_row, c->max_bad_steps);
        } else {
            r->p.bad_in_row = 0;
            if (c->grad_clip > 0) tf_clip_by_norm(grads, n, gnorm, c->grad_clip);
            r->p.updates++;
            tf_adam_step(&ac, params, grads, r->opt.m, r->opt.v, n, r->p.updates, (float)lr);
            if (r->ema) tf_ema_update(r->ema, params, n, (float)c->ema_decay);
            if (W > 1 && nbuf) { /* keep BN running statistics identical on every rank */
                TF_TRY(tf_dist_sum_f32(r->d, bufs, nbuf));
                for (size_t i = 0; i < nbuf; i++) bufs[i] /= (float)W;
            }
            loss_acc += loss, logged++;
        }
        gnorm_last = gnorm;
        r->p.step++;
        int last = r->p.step == steps;
        if (r->d->rank == 0 && (r->p.step % c->log_every == 0 || last)) {
            double t1 = now_s();
            log_step(r, logged ? loss_acc / logged : NAN, lr, gnorm_last, samples / (t1 - t0),
                     last);
            t0 = t1, samples = 0, loss_acc = 0, logged = 0;
        }
        if ((c->val_every > 0 && r->p.step % c->val_every == 0) || last) TF_TRY(validate(r));
        if ((c->ckpt_every > 0 && r->p.step % c->ckpt_every == 0) || last)
            TF_TRY(save_ckpt(r, "last"));
        if (tf_train_stop_after > 0 && r->p.step >= tf_train_stop_after) break;
    }
    return TF_OK;
}

tf_status tf_train_run(const tf_config *cfg_in, const tf_dist *d) {
    run r;
    memset(&r, 0, sizeof r);
    r.cfg = *cfg_in;
    r.d = d;
    r.p.best_metric = -INFINITY;
    r.p.best_step = -1;
    r.p.seed = (uint64_t)cfg_in->seed;
    r.tty = isatty(2);
    const tf_config *c = &r.cfg;
    for (int t = 0; t < c->n_targets; t++)
        for (int s = 0; s < c->n_sources; s++)
            if (!strcmp(c->targets[t], c->sources[s])) r.tmap[t] = s;
    if (c->num_threads > 0) omp_set_num_threads(c->num_threads);

    /* 1. the plan, before allocating anything */
    TF_TRY(tf_train_plan_bytes(&r.plan, c, c->num_threads));
    if (d->rank == 0) tf_train_plan_print(stderr, &r.plan, c);
    size_t avail = tf_mem_available();
    if (avail && r.plan.total > avail)
        return tf_err(TF_EUSER,
                      "the memory plan needs %.1f MiB but only %.1f MiB are available: lower "
                      "--batch_size or --segment_seconds, or add --use_checkpointing / --use_amp "
                      "(see `tfswa plan`)",
                      (double)r.plan.total / 1048576.0, (double)avail / 1048576.0);

    /* 2. output directory, resolved config, metrics */
    tf_status st = TF_OK;
    if (d->rank == 0) {
        char path[TF_PATH_MAX + 64];
        TF_TRY(tf_mkdirs(c->output_dir));
        snprintf(path, sizeof path, "%s/config.yaml", c->output_dir);
        tf_atomic_file af;
        TF_TRY(tf_atomic_open(&af, path));
        st = tf_config_write_yaml(c, af.f);
        if (st) {
            tf_atomic_abort(&af);
            return st;
        }
        TF_TRY(tf_atomic_commit(&af));
        snprintf(path, sizeof path, "%s/metrics.jsonl", c->output_dir);
        r.metrics = fopen(path, c->resume[0] ? "a" : "w");
        if (!r.metrics) return tf_err(TF_EUSER, "%s: cannot write", path);
    }

    /* 3. data, model, optimizer state */
    const size_t T = (size_t)c->n_targets,
                 per = 2 * (size_t)r.plan.segment_frames * (size_t)c->batch_size;
    st = tf_index_open(&r.ix, c, NULL);
    if (!st && tf_index_count(r.ix, TF_SPLIT_TRAIN) == 0)
        st = tf_err(TF_EUSER, "%s: no training tracks", c->root);
    if (!st) st = tf_loader_open(&r.loader, c, r.ix, (uint64_t)c->seed);
    if (!st) tf_loader_set_shard(r.loader, d->size, d->rank);
    if (!st)
        st = tf_model_create(&r.model, c, c->batch_size, r.plan.segment_frames, c->num_threads);
    if (!st) {
        r.opt.n = r.plan.model.n_params;
        r.opt.m = tf_calloc(r.opt.n, sizeof(float), "Adam m");
        r.opt.v = tf_calloc(r.opt.n, sizeof(float), "Adam v");
        if (c->ema_decay > 0) {
            r.opt.raw = tf_calloc(r.opt.n, sizeof(float), "raw weights");
            r.ema = tf_malloc(sizeof(float) * r.opt.n, "EMA weights");
            if (r.ema) memcpy(r.ema, tf_model_params(r.model), sizeof(float) * r.opt.n);
        }
        r.bufsave = tf_malloc(sizeof(float) * (r.plan.model.n_buffers + 1), "BN buffer copy");
        r.target = tf_malloc(sizeof(float) * T * per, "targets");
        r.out = tf_malloc(sizeof(float) * T * per, "model output");
        r.dout = tf_malloc(sizeof(float) * T * per, "output gradient");
        if (r.dout) st = tf_loss_create(&r.loss, c->loss, r.plan.segment_frames);
        if (!st && (!r.opt.m || !r.opt.v || !r.bufsave || !r.target || !r.out || !r.dout ||
                    (c->ema_decay > 0 && (!r.opt.raw || !r.ema))))
            st = TF_EINTERNAL;
    }
    if (!st && c->resume[0]) st = resume(&r);
    if (!st) st = train_loop(&r);
    if (!st && d->rank == 0)
        fprintf(stderr,
                "done: %lld steps, %lld skipped, best mean uSDR %.3f dB at step %lld; peak RSS "
                "%.1f MiB\n",
                (long long)r.p.step, (long long)r.p.skipped, r.p.best_metric,
                (long long)r.p.best_step, (double)tf_peak_rss_bytes() / 1048576.0);
    free_run(&r);
    return st;
}
