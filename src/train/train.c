#include "train/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "data/index.h"
#include "data/loader.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/loss.h"
#include "train/step.h"
#include "train/device_plan.h"
#include "train/validate.h"
#include "util/device.h"
#if TFSWA_CUDA
#include <cuda_runtime_api.h>

#include "cuda/cuda_backend.h"
#include "train/step_cuda.h"
#include "dsp/stft.h"
#endif
#include "util/clock.h"
#include "util/fault.h"
#include "util/fsutil.h"
#include "util/sysmem.h"

int64_t tf_train_stop_after = 0;

tf_model_config tf_train_model_config(const tf_config *c) {
    tf_model_config m;
    memset(&m, 0, sizeof m);
    m.n_levels = c->n_levels;
    memcpy(m.channels, c->channels, sizeof m.channels);
    m.rcms_per_block = c->rcms_per_block;
    m.tfswa_blocks = c->tfswa_blocks;
    m.heads = c->heads;
    m.window_t = c->window_t, m.window_f = c->window_f;
    m.mlp_ratio = c->mlp_ratio;
    m.subbands = c->subbands;
    m.n_targets = c->n_targets;
    m.n_fft = c->stft_window_size, m.hop = c->stft_hop_length;
    m.output = c->output;
    m.activation_dtype = c->activation_dtype;
    m.checkpointing = c->checkpointing;
    m.backend = c->backend;
    m.compute_dtype = c->compute_dtype;
    m.threads = c->num_threads;
    m.seed = (uint64_t)c->seed;
    return m;
}

int tf_train_targets_are_sources(const tf_config *cfg) {
    if (cfg->n_targets != cfg->n_sources) return 0;
    for (int t = 0; t < cfg->n_targets; t++)
        if (strcmp(cfg->targets[t], cfg->sources[t])) return 0;
    return 1;
}

tf_status tf_train_plan_bytes(tf_train_plan *p, const tf_config *cfg, int threads) {
    memset(p, 0, sizeof *p);
    p->segment_frames = (int64_t)llround(cfg->segment_seconds * cfg->sample_rate);
    const tf_model_config mc = tf_train_model_config(cfg);
    TF_TRY(tf_model_plan(&p->model, &mc, cfg->batch_size, p->segment_frames, threads));
    size_t n = p->model.n_params;
    /* m and v; with EMA also the EMA weights and a copy of the raw ones */
    p->optimizer = sizeof(float) * n * (cfg->ema_decay > 0 ? 4 : 2);
    p->loader = tf_loader_plan_bytes(cfg, cfg->n_sources, p->segment_frames);
    /* validation's buffers live in the model's idle arena when they fit there */
    p->validation = tf_val_arena_bytes(cfg, cfg->n_sources) <= tf_model_spare_bytes(&p->model)
                        ? 0
                        : tf_val_plan_bytes(cfg, cfg->n_sources);
    /* trainer buffers (B, T, 2, N): the gathered targets (none when the targets are the
     * sources in order: the batch holds them as they are), the output, and for mrstft its
     * gradient (l1 writes it over the output) + loss scratch */
    const size_t nbuf =
        (size_t)!tf_train_targets_are_sources(cfg) + 1 + (size_t)(cfg->loss == TF_LOSS_MRSTFT);
    p->trainer = sizeof(float) * nbuf * (size_t)cfg->batch_size * (size_t)cfg->n_targets * 2 *
                     (size_t)p->segment_frames +
                 tf_loss_plan_bytes(cfg->loss, p->segment_frames) +
                 sizeof(float) * (p->model.n_buffers + 1); /* BN buffers before a step */
    p->total = p->model.total + p->optimizer + p->loader + p->validation + p->trainer;
    return TF_OK;
}

void tf_plan_line(FILE *f, int width, const char *what, size_t b) {
    fprintf(f, "  %-*s %12zu bytes  %10.1f MiB\n", width, what, b, (double)b / 1048576.0);
}

void tf_plan_model_lines(FILE *f, int width, const tf_model_sizes *m, size_t optimizer, int ema) {
    tf_plan_line(f, width, "parameters", m->params);
    tf_plan_line(f, width, "gradients", m->grads);
    tf_plan_line(f, width, "bn buffers", m->buffers);
    tf_plan_line(f, width, ema ? "optimizer (m, v, ema, raw)" : "optimizer (m, v)", optimizer);
    tf_plan_line(f, width, "saved activations", m->activations);
    tf_plan_line(f, width, "workspace", m->workspace);
}

static void mib(FILE *f, const char *what, size_t b) {
    tf_plan_line(f, 22, what, b);
}

void tf_train_plan_print(FILE *f, const tf_train_plan *p, const tf_config *cfg) {
    fprintf(f, "memory plan: batch %d x %.2f s (%lld frames), %s activations, checkpointing %s\n",
            cfg->batch_size, cfg->segment_seconds, (long long)p->segment_frames,
            cfg->activation_dtype == TF_DT_BF16 ? "bf16" : "fp32",
            cfg->checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off");
    fprintf(f, "  arithmetic: %s\n", p->model.arithmetic);
    fprintf(f, "  parameters: %zu (trainable), %zu buffers\n", p->model.n_params,
            p->model.n_buffers);
    tf_plan_model_lines(f, 22, &p->model, p->optimizer, cfg->ema_decay > 0);
    mib(f, "  of which conv kernels", p->model.conv_workspace);
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
    tf_trainer *tr; /* optimizer state, EMA, output buffers, loss: the step's state */
    /* --device cuda: the step runs on the device (src/train/step_cuda.c); model and tr hold the
     * host copies that checkpoints and validation use (model is an inference model) */
    void *dt; /* tf_dtrainer */
    void *dkern, *dstft;
    int host_stale;    /* the device has weights the host copies lack */
    double loss_scale; /* the last step's loss scale (device fp16 training), 0: none */
    size_t dev_peak;   /* the most device memory in use at a log (cudaMemGetInfo) */
    float *target;     /* (B, T, 2, N) the target stems of a micro-batch */
    int tmap[TF_MAX_TARGETS];
    tf_train_progress p;
    FILE *metrics;
    int lock_fd; /* output_dir/.lock, flock'ed while the run writes the folder (-1: none) */
    tf_train_event_fn on_event;
    void *user;
} run;

static void free_run(run *r) {
    if (r->lock_fd >= 0) close(r->lock_fd); /* releases the flock */
#if TFSWA_CUDA
    tf_dtrainer_close(r->dt);
    tf_kernels_free(r->dkern);
    if (r->dstft) tf_stft_destroy(r->dstft);
#endif
    tf_loader_close(r->loader);
    tf_trainer_close(r->tr);
    tf_model_free(r->model);
    tf_index_close(r->ix);
    free(r->target);
    if (r->metrics) fclose(r->metrics);
}

/* Lock the run folder dir for this process: an exclusive flock on dir/.lock, which holds
 * the PID of the holder. Another live tfswa train on the folder makes it TF_EUSER naming
 * that PID; a lock left by a killed process is released by the kernel, so it is simply
 * taken over. The lock lives until *fd is closed. */
static tf_status lock_run_dir(const char *dir, int *fd) {
    char path[TF_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) return tf_err(TF_EUSER, "%s: cannot open: %s", path, strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(f, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(f);
        if (e == EWOULDBLOCK)
            return tf_err(TF_EUSER,
                          "%s is being written by another tfswa train (PID %s): wait for it to "
                          "finish or stop it, or choose another --output_dir",
                          dir, pid[0] ? pid : "unknown");
        return tf_err(TF_EUSER, "%s: cannot lock: %s", path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)len, 0) != len) {
        int e = errno;
        close(f);
        return tf_err(TF_EUSER, "%s: cannot write: %s", path, strerror(e));
    }
    *fd = f;
    return TF_OK;
}

/* An event of kind k with the run's context filled in; the caller adds the rest. */
static tf_train_event event(const run *r, tf_train_event_kind k) {
    tf_train_event e;
    memset(&e, 0, sizeof e);
    e.kind = k, e.cfg = &r->cfg, e.plan = &r->plan, e.step = r->p.step;
    e.skipped = r->p.skipped, e.bad_in_row = r->p.bad_in_row;
    return e;
}

static void report(const run *r, const tf_train_event *e) {
    if (r->on_event && r->d->rank == 0) r->on_event(r->user, e);
}

static int64_t total_steps(const tf_config *c) {
    return c->max_steps > 0 ? c->max_steps : (int64_t)c->max_epochs * c->steps_per_epoch;
}

/* --device cuda: the device's weights, BN buffers, Adam moments and EMA into the host
 * copies (before a checkpoint or a validation) */
static tf_status pull_device(run *r) {
#if TFSWA_CUDA
    if (!r->dt || !r->host_stale) return TF_OK;
    TF_TRY(tf_dtrainer_pull(r->dt, tf_model_params(r->model), tf_model_buffers(r->model),
                            r->tr->opt.m, r->tr->opt.v, r->tr->ema));
    r->host_stale = 0;
#else
    (void)r;
#endif
    return TF_OK;
}

/* With EMA on: on = 1 puts the EMA weights (the ones to deploy) into the model and keeps
 * the raw ones in opt.raw; on = 0 puts the raw ones back. Nothing without EMA. */
static void use_ema_weights(run *r, int on) {
    const float *ema = r->tr->ema;
    tf_opt_state *opt = &r->tr->opt;
    float *params = tf_model_params(r->model);
    if (!ema) return;
    if (on) memcpy(opt->raw, params, sizeof(float) * opt->n);
    memcpy(params, on ? ema : opt->raw, sizeof(float) * opt->n);
}

static tf_status save_ckpt(run *r, const char *which) {
    if (r->d->rank != 0) return TF_OK;
    char dir[TF_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/checkpoints/%s", r->cfg.output_dir, which);
    TF_TRY(pull_device(r));
#if TFSWA_CUDA
    if (r->dt) tf_dtrainer_loss_scale(r->dt, &r->p.loss_scale, &r->p.loss_scale_good);
#endif
    use_ema_weights(r, 1); /* model.safetensors holds the EMA weights; train_state the raw */
    tf_status st = tf_ckpt_save(dir, r->model, &r->cfg, &r->p, &r->tr->opt);
    use_ema_weights(r, 0);
    return st;
}

/* 1 when `path` is a run folder that never finished a checkpoint (killed before its first
 * one): it has config.yaml, and checkpoints/ holds no "last" nor a "last.old-<pid>" (what
 * a writer killed between its two renames leaves). A checkpoint that exists but does not
 * load is an error later, never a fresh start. */
static int never_checkpointed(const char *path) {
    char f[TF_PATH_MAX + 64];
    snprintf(f, sizeof f, "%s/config.yaml", path);
    if (!tf_path_exists(f)) return 0;
    snprintf(f, sizeof f, "%s/checkpoints", path);
    DIR *dir = opendir(f);
    if (!dir) return errno == ENOENT;
    int any = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        any |= !strcmp(e->d_name, "last") || !strncmp(e->d_name, "last.old", 8);
    closedir(dir);
    return !any;
}

static tf_status resume(run *r) {
    char dir[TF_PATH_MAX + 64];
    TF_TRY(tf_ckpt_resolve(r->cfg.resume, dir, sizeof dir));
    TF_TRY(tf_ckpt_load_weights(dir, r->model));
    tf_opt_state *opt = &r->tr->opt;
    TF_TRY(tf_ckpt_load_state(dir, &r->p, opt));
    if (r->tr->ema) { /* the file's weights are the EMA ones */
        memcpy(r->tr->ema, tf_model_params(r->model), sizeof(float) * opt->n);
        memcpy(tf_model_params(r->model), opt->raw, sizeof(float) * opt->n);
    }
#if TFSWA_CUDA
    if (r->dt) {
        TF_TRY(tf_dtrainer_push(r->dt, tf_model_params(r->model), tf_model_buffers(r->model),
                                opt->m, opt->v, r->tr->ema));
        /* fp16 on both sides: the saved loss scale goes on (else the trainer's own start) */
        double s0 = 0;
        int64_t g0 = 0;
        tf_dtrainer_loss_scale(r->dt, &s0, &g0);
        if (s0 > 0 && r->p.loss_scale > 0)
            TF_TRY(tf_dtrainer_set_loss_scale(r->dt, r->p.loss_scale, r->p.loss_scale_good,
                                              TF_LOSS_SCALE_INTERVAL));
    }
#endif
    tf_train_event e = event(r, TF_TRAIN_EV_RESUMED);
    e.path = dir;
    report(r, &e);
    return TF_OK;
}

/* Validation with the weights to deploy (EMA when on); best checkpoint by mean uSDR. On a
 * CUDA device the device model validates (its eval forward, the weights where they are);
 * only the chunks and the stems cross. */
static tf_status validate(run *r) {
    if (tf_index_count(r->ix, TF_SPLIT_VALID) == 0) return TF_OK;
    tf_fault_point("validate", "begin", r->p.step, NULL); /* test hook: util/fault.h */
    tf_val_result v;
    tf_status st;
#if TFSWA_CUDA
    if (r->dt) {
        st = tf_dtrainer_eval_begin(r->dt, 1);
        tf_val_model vm = {tf_dtrainer_eval_forward, r->dt, NULL, 0};
        if (!st) st = tf_validate_with(&vm, &r->cfg, r->ix, TF_SPLIT_VALID, r->d, &v);
        tf_status se = tf_dtrainer_eval_end(r->dt);
        if (!st) st = se;
    } else
#endif
    {
        use_ema_weights(r, 1);
        st = tf_validate(r->model, &r->cfg, r->ix, TF_SPLIT_VALID, r->d, &v);
        use_ema_weights(r, 0);
    }
    tf_fault_point("validate", "end", r->p.step, NULL);
    TF_TRY(st);
    int best = v.mean > r->p.best_metric;
    if (best) r->p.best_metric = v.mean, r->p.best_step = r->p.step;
    if (r->d->rank == 0) {
        tf_train_event e = event(r, TF_TRAIN_EV_VALID);
        e.valid = &v, e.best = best;
        report(r, &e);
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
    tf_train_event e = event(r, TF_TRAIN_EV_LOG);
    e.total_steps = total_steps(&r->cfg), e.epoch = epoch, e.loss = loss, e.lr = lr;
    e.grad_norm = gnorm, e.samples_per_s = sps, e.rss_bytes = rss, e.last = final;
#if TFSWA_CUDA
    if (r->dt) {
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) == cudaSuccess) {
            e.dev_used_bytes = tot - fr;
            if (e.dev_used_bytes > r->dev_peak) r->dev_peak = e.dev_used_bytes;
        }
        e.on_device = 1;
        e.dev_peak_bytes = r->dev_peak;
        e.dev_plan_bytes = tf_dtrainer_device_bytes(r->dt);
    }
#endif
    report(r, &e);
    fprintf(r->metrics,
            "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
            "\"skipped_steps\": %lld, \"samples_per_s\": %.4g, \"rss_bytes\": %zu, "
            "\"plan_bytes\": %zu",
            (long long)r->p.step, (long long)epoch, loss, lr, gnorm, (long long)r->p.skipped, sps,
            rss, r->plan.total);
    if (r->loss_scale > 0) fprintf(r->metrics, ", \"loss_scale\": %.9g", r->loss_scale);
    if (e.on_device)
        fprintf(r->metrics,
                ", \"device_bytes_used\": %zu, \"device_bytes_peak\": %zu, "
                "\"device_plan_bytes\": %zu",
                e.dev_used_bytes, e.dev_peak_bytes, e.dev_plan_bytes);
    fputs("}\n", r->metrics);
    fflush(r->metrics);
}

/* The next micro-batch from the loader, its target stems gathered into r->target (or,
 * with the targets the sources in order, the batch's stems themselves). */
static tf_status next_batch(void *ctx, tf_micro_batch *mb) {
    run *r = ctx;
    const tf_batch *b;
    TF_TRY(tf_loader_next(r->loader, &b));
    const int B = b->B, T = r->cfg.n_targets;
    const size_t per = 2 * (size_t)b->N;
    if (!r->target) {
        mb->mix = b->mixture, mb->target = b->stems, mb->B = B, mb->N = b->N;
        return TF_OK;
    }
    for (int i = 0; i < B; i++)
        for (int t = 0; t < T; t++)
            memcpy(r->target + ((size_t)i * T + t) * per,
                   b->stems + ((size_t)i * b->S + r->tmap[t]) * per, sizeof(float) * per);
    mb->mix = b->mixture, mb->target = r->target, mb->B = B, mb->N = b->N;
    return TF_OK;
}

static tf_status train_loop(run *r) {
    const tf_config *c = &r->cfg;
    const int A = c->gradient_accumulation_steps;
    const int64_t steps = total_steps(c);
    double t0 = tf_now_s(), loss_acc = 0, gnorm_last = 0;
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
        tf_fault_point("step", "begin", r->p.step, NULL); /* test hook: util/fault.h */
        tf_step_result sr;
#if TFSWA_CUDA
        if (r->dt) {
            TF_TRY(tf_dtrainer_step(r->dt, r->p.step, &r->p.updates, next_batch, r, &sr));
            r->host_stale = 1;
        } else
#endif
            TF_TRY(tf_train_step(r->tr, r->p.step, &r->p.updates, next_batch, r, &sr));
        samples += sr.samples;
        r->loss_scale = sr.loss_scale;
        /* fp16 loss scaling: a finite loss with overflowing gradients halves the scale; it
         * is skipped like any non-finite step but is not a bad step in a row (while the
         * scale is >= 1), as PyTorch's GradScaler does not stop a run for it */
        const int scaler_skip = !sr.applied && sr.loss_scale >= 1 && isfinite(sr.loss);
        if (!sr.applied) {
            r->p.skipped++, r->p.bad_in_row += !scaler_skip;
            tf_train_event e = event(r, TF_TRAIN_EV_SKIPPED);
            e.loss = sr.loss, e.grad_norm = sr.grad_norm, e.loss_finite = isfinite(sr.loss);
            report(r, &e);
            if (r->p.bad_in_row >= c->max_bad_steps)
                return tf_err(TF_EUSER,
                              "stopping: %lld non-finite steps in a row (max_bad_steps %d); lower "
                              "learning_rate or check the data",
                              (long long)r->p.bad_in_row, c->max_bad_steps);
        } else {
            r->p.bad_in_row = 0;
            loss_acc += sr.loss, logged++;
        }
        gnorm_last = sr.grad_norm;
        r->p.step++;
        int last = r->p.step == steps;
        if (r->d->rank == 0 && (r->p.step % c->log_every == 0 || last)) {
            double t1 = tf_now_s();
            log_step(r, logged ? loss_acc / logged : NAN, sr.lr, gnorm_last, samples / (t1 - t0),
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

/* With several ranks on CUDA, this rank's own GPU: the given device + the node-local rank
 * (tf_dist_device; one line when the node has too few). One rank: *dev unchanged. */
static tf_status rank_device(const tf_dist *d, tf_device *dev, const char *given) {
    if (dev->kind != TF_DEVICE_CUDA || d->size <= 1) return TF_OK;
    int count = 0;
#if TFSWA_CUDA
    char why[256];
    if (tf_cuda_device_count(&count, why, sizeof why)) count = 0; /* tf_device_open says why */
#endif
    return tf_dist_device(d, dev, count, "--device", given, dev);
}

/* --device cuda: open the device and the device trainer with the host model's initial
 * weights */
static tf_status open_device(run *r, const tf_device *dev, const tf_model_config *mc) {
#if TFSWA_CUDA
    const tf_config *c = &r->cfg;
    tf_device_info info;
    TF_TRY(tf_device_open(dev, "device", c->device, &info));
    tf_arch a;
    TF_TRY(tf_arch_from_config(&a, mc));
    tf_kernels *k = NULL;
    /* --use_amp: bf16 (amp_dtype fp16: fp16) convolutions and GEMMs where the card has
     * their tensor cores */
    TF_TRY(tf_kernels_create(&k, TF_BACKEND_CUDA, tf_config_device_compute(c), 1));
    r->dkern = k;
    tf_stft *st = NULL;
    TF_TRY(tf_stft_create(&st, a.n_fft, a.hop));
    r->dstft = st;
    tf_dtrainer *t = NULL;
    TF_TRY(tf_dtrainer_open(&t, c, r->d, &a, r->plan.segment_frames, k, st,
                            tf_model_params(r->model), tf_model_buffers(r->model)));
    r->dt = t;
    if (c->pin_memory && r->loader) { /* the batch slots, page-locked for the driver too */
        size_t nb = 0;
        void *blk = tf_loader_block(r->loader, &nb);
        char why[256];
        if (!tf_dtrainer_pin_host(t, blk, nb, why, sizeof why) && r->d->rank == 0)
            fprintf(stderr, "tfswa: pin_memory: the batches stay pageable for cuda: %s\n", why);
    }
    return TF_OK;
#else
    (void)r, (void)mc;
    return tf_device_open(dev, "device", r->cfg.device, NULL);
#endif
}

tf_status tf_train_run(const tf_config *cfg_in, const tf_dist *d, tf_train_event_fn on_event,
                       void *user) {
    run r;
    memset(&r, 0, sizeof r);
    r.lock_fd = -1;
    r.cfg = *cfg_in;
    r.d = d;
    r.p.best_metric = -INFINITY;
    r.p.best_step = -1;
    r.p.seed = (uint64_t)cfg_in->seed;
    r.on_event = on_event, r.user = user;
    const tf_config *c = &r.cfg;
    for (int t = 0; t < c->n_targets; t++)
        for (int s = 0; s < c->n_sources; s++)
            if (!strcmp(c->targets[t], c->sources[s])) r.tmap[t] = s;
    if (c->num_threads > 0) omp_set_num_threads(c->num_threads);

    /* 1. the plan, before allocating anything; on a CUDA device its own plan, against the
     * card's free memory */
    TF_TRY(tf_config_check_amp(c));
    TF_TRY(tf_train_plan_bytes(&r.plan, c, c->num_threads));
    tf_device dev = {TF_DEVICE_CPU, 0};
    TF_TRY(tf_device_from_string("device", c->device, &dev));
    TF_TRY(rank_device(d, &dev, c->device));
    tf_device_plan dp;
    tf_train_event pe = event(&r, TF_TRAIN_EV_PLAN);
    size_t avail = tf_mem_available();
    if (dev.kind == TF_DEVICE_CUDA) {
        tf_device_info info;
        TF_TRY(tf_device_open(&dev, "device", c->device, &info));
        TF_TRY(tf_device_plan_bytes(&dp, c, &dev, &info));
        pe.dplan = &dp;
        report(&r, &pe);
        if (dp.total > info.free_bytes)
            return tf_err(TF_EUSER,
                          "the device memory plan needs %.1f MiB but %s has only %.1f MiB free: "
                          "lower --batch_size or --segment_seconds (see `tfswa plan --device %s`)",
                          (double)dp.total / 1048576.0, c->device,
                          (double)info.free_bytes / 1048576.0, c->device);
        if (avail && dp.host_total > avail)
            return tf_err(TF_EUSER,
                          "the host side of the device plan needs %.1f MiB but only %.1f MiB are "
                          "available",
                          (double)dp.host_total / 1048576.0, (double)avail / 1048576.0);
    } else {
        report(&r, &pe);
    }
    if (dev.kind == TF_DEVICE_CPU && avail && r.plan.total > avail)
        return tf_err(TF_EUSER,
                      "the memory plan needs %.1f MiB but only %.1f MiB are available: lower "
                      "--batch_size or --segment_seconds, or add --use_checkpointing / --use_amp "
                      "(see `tfswa plan`)",
                      (double)r.plan.total / 1048576.0, (double)avail / 1048576.0);

    /* 2. the data, checked before anything is written: a dataset error leaves no run
     * folder behind */
    tf_status st = tf_index_open(&r.ix, c, NULL);
    if (!st && tf_index_count(r.ix, TF_SPLIT_TRAIN) == 0)
        st = tf_err(TF_EUSER, "%s: no training tracks", c->root);
    if (!st) st = tf_loader_open(&r.loader, c, r.ix, (uint64_t)c->seed);
    if (!st) tf_loader_set_shard(r.loader, d->size, d->rank);
    if (!st && r.cfg.resume[0] && never_checkpointed(r.cfg.resume)) {
        /* killed before its first checkpoint: nothing to resume, the run starts over (its
         * metrics.jsonl is rewritten) */
        tf_train_event e = event(&r, TF_TRAIN_EV_RESUMED);
        e.path = NULL, e.step = 0;
        report(&r, &e);
        r.cfg.resume[0] = 0;
    }

    /* 3. output directory (locked while this run writes it), resolved config, metrics */
    if (!st && d->rank == 0) {
        char path[TF_PATH_MAX + 64];
        st = tf_mkdirs(c->output_dir);
        if (!st) st = lock_run_dir(c->output_dir, &r.lock_fd);
        tf_atomic_file af;
        snprintf(path, sizeof path, "%s/config.yaml", c->output_dir);
        if (!st) st = tf_atomic_open(&af, path);
        if (!st) {
            st = tf_config_write_yaml(c, af.f);
            if (st)
                tf_atomic_abort(&af);
            else
                st = tf_atomic_commit(&af);
        }
        snprintf(path, sizeof path, "%s/metrics.jsonl", c->output_dir);
        if (!st && !(r.metrics = fopen(path, c->resume[0] ? "a" : "w")))
            st = tf_err(TF_EUSER, "%s: cannot write", path);
    }

    /* 4. model, optimizer state */
    const size_t T = (size_t)c->n_targets,
                 per = 2 * (size_t)r.plan.segment_frames * (size_t)c->batch_size;
    const tf_model_config mc = tf_train_model_config(c);
    /* on a device the host keeps a small inference model and trainer: the weights, BN
     * buffers and optimizer state that checkpoints save (the step and validation run there) */
    const int on_dev = dev.kind == TF_DEVICE_CUDA;
    const int64_t host_frames = on_dev ? tf_device_host_frames(c) : r.plan.segment_frames;
    if (!st && on_dev)
        st = tf_model_create_mode(&r.model, &mc, 1, host_frames, c->num_threads, TF_MODEL_INFER);
    else if (!st)
        st = tf_model_create(&r.model, &mc, c->batch_size, r.plan.segment_frames, c->num_threads);
    if (!st) st = tf_trainer_open(&r.tr, c, d, r.model, host_frames);
    if (!st && dev.kind == TF_DEVICE_CUDA) st = open_device(&r, &dev, &mc);
    if (!st && !tf_train_targets_are_sources(c)) {
        r.target = tf_malloc(sizeof(float) * T * per, "targets");
        if (!r.target) st = TF_EINTERNAL;
    }
    if (!st && c->resume[0]) st = resume(&r);
    if (!st) st = train_loop(&r);
    if (!st) {
        tf_train_event e = event(&r, TF_TRAIN_EV_DONE);
        e.best_metric = r.p.best_metric, e.best_step = r.p.best_step;
        e.peak_rss_bytes = tf_peak_rss_bytes();
        report(&r, &e);
    }
    free_run(&r);
    return st;
}
