/* The training step on a CUDA device (see step_cuda.h). */
#include "train/step_cuda.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/elem.h"
#include "cuda/fft.h"
#include "dsp/stft.h"
#include "model/dlayout.h"

#define N_RES 3
static const int RES_WIN[N_RES] = {512, 1024, 2048}; /* train/loss.c */

struct tf_dtrainer {
    const tf_config *cfg;
    const tf_dist *dist;
    tf_dmodel *model;
    tf_dtrl o;
    float *mem; /* the trainer block (tf_dlay_trainer) */
    size_t n, nbuf;
    int B, S;
    int64_t N;
    tf_stft *cpu_st[N_RES];
    tf_cuda_stft *st[N_RES]; /* mrstft only */
    ncclComm_t nccl;         /* the ranks' communicator (several ranks only; else NULL) */
    int step_failed;         /* a step returned an error: its collectives may be unfinished */
    void *pinned;            /* host memory registered with the driver (the loader's slots) */
    int ema_swapped;         /* eval_begin put the EMA weights in, the raw ones in grads */
    /* dynamic loss scaling (fp16 arithmetic: amp_dtype fp16), as PyTorch's GradScaler:
     * the loss gradient times scale, the gradients unscaled before clipping and Adam; a
     * step with non-finite gradients is skipped and halves the scale; `interval` finite
     * steps in a row double it */
    double scale;     /* 0: off */
    int64_t good;     /* finite steps since the last change */
    int64_t interval; /* TF_LOSS_SCALE_INTERVAL */
};

static tf_status cuda_fail(const char *what, int code) {
    return tf_err(TF_EINTERNAL, "cuda trainer: %s failed (%s)", what,
                  cudaGetErrorString((cudaError_t)code));
}
static tf_status nccl_fail(const char *what, ncclResult_t r) {
    return tf_err(TF_EINTERNAL, "cuda trainer: %s failed (NCCL: %s)", what, ncclGetErrorString(r));
}
#define CK(what, call)                                                                             \
    do {                                                                                           \
        int rc_ = (int)(call);                                                                     \
        if (rc_) return cuda_fail(what, rc_);                                                      \
    } while (0)

static float *F(tf_dtrainer *t, size_t off) {
    return t->mem + off;
}
static double *DBL(tf_dtrainer *t) {
    return (double *)(void *)(t->mem + t->o.dbl);
}

/* The NCCL communicator of the job's ranks on their current devices, bootstrapped over MPI
 * (as karpathy/llm.c does): rank 0's unique id broadcast to every rank, then
 * ncclCommInitRank (collective: every rank calls it; a rank that fails before has the job
 * ended by the caller, cli/cmd_train.c). */
static tf_status nccl_open(tf_dtrainer *t) {
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t r;
    if (t->dist->rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess)
        return nccl_fail("ncclGetUniqueId", r);
    TF_TRY(tf_dist_bcast(t->dist, &id, sizeof id));
    if ((r = ncclCommInitRank(&t->nccl, t->dist->size, id, t->dist->rank)) != ncclSuccess) {
        t->nccl = NULL;
        return nccl_fail("ncclCommInitRank", r);
    }
    return TF_OK;
}

/* x (n floats on this rank's device) = the mean over the ranks of x: one in-place
 * ncclAllReduce (sum) on the legacy default stream, the model's, then the scale by 1/W, the
 * CPU step's arithmetic (train/step.c: MPI sum, then times 1/W) */
static tf_status mean_over_ranks(tf_dtrainer *t, float *x, size_t n, const char *what) {
    const int W = t->dist->size;
    ncclResult_t r = ncclAllReduce(x, x, n, ncclFloat32, ncclSum, t->nccl, NULL);
    if (r != ncclSuccess) return nccl_fail(what, r);
    CK("scale", tf_cuda_scale(x, n, 1.f / (float)W, NULL));
    return TF_OK;
}

tf_status tf_dtrainer_open(tf_dtrainer **out, const tf_config *c, const tf_dist *dist,
                           const tf_arch *a, int64_t frames, tf_kernels *kern, const void *stft,
                           const float *params, const float *buffers) {
    *out = NULL;
    tf_dtrainer *t = tf_calloc(1, sizeof *t, "cuda trainer");
    if (!t) return TF_EINTERNAL;
    t->cfg = c, t->dist = dist;
    t->B = c->batch_size, t->S = a->S, t->N = frames;
    if (tf_kernels_compute(kern) == TF_DT_FP16) /* fp16 operands: small gradients flush */
        t->scale = TF_LOSS_SCALE_INIT, t->interval = TF_LOSS_SCALE_INTERVAL;
    tf_status s = tf_dmodel_create(&t->model, a, t->B, frames, kern, stft);
    if (s != TF_OK) goto fail;
    t->n = tf_dmodel_n_params(t->model);
    t->nbuf = tf_dmodel_n_buffers(t->model);
    const int mr = c->loss == TF_LOSS_MRSTFT;
    tf_dlay_trainer(&t->o, t->n, t->nbuf, c->ema_decay > 0, t->B, t->S, frames,
                    mr ? tf_dlay_mrstft_bins_frames(frames) : 0);
    if (tf_cuda_loss_workspace_doubles() > TF_DLAY_LOSS_WS_DOUBLES) {
        s = tf_err(TF_EINTERNAL, "cuda trainer: the loss needs more workspace than planned");
        goto fail;
    }
    cudaError_t e = cudaMalloc((void **)&t->mem, t->o.floats * sizeof(float));
    if (e != cudaSuccess) {
        t->mem = NULL;
        s = tf_err(TF_EUSER,
                   "cuda trainer: cudaMalloc of %zu bytes (optimizer state and batch "
                   "buffers) failed: %s",
                   t->o.floats * sizeof(float), cudaGetErrorString(e));
        goto fail;
    }
    if (cudaMemset(t->mem, 0, t->o.floats * sizeof(float)) != cudaSuccess) {
        s = tf_err(TF_EINTERNAL, "cuda trainer: cudaMemset failed");
        goto fail;
    }
    if (mr) {
        const int nsig = t->B * t->S * 2;
        for (int r = 0; r < N_RES; r++) {
            char err[256] = "";
            if ((s = tf_stft_create(&t->cpu_st[r], RES_WIN[r], RES_WIN[r] / 4)) != TF_OK) goto fail;
            if (tf_cuda_stft_create(&t->st[r], t->cpu_st[r], nsig, frames, NULL, err, sizeof err)) {
                s = tf_err(TF_EINTERNAL, "cuda trainer: %s", err);
                goto fail;
            }
        }
    }
    if (dist && dist->size > 1 && (s = nccl_open(t)) != TF_OK) goto fail;
    if ((s = tf_dtrainer_push(t, params, buffers, NULL, NULL, c->ema_decay > 0 ? params : NULL)) !=
        TF_OK)
        goto fail;
    *out = t;
    return TF_OK;
fail:
    tf_dtrainer_close(t);
    return s;
}

void tf_dtrainer_close(tf_dtrainer *t) {
    if (!t) return;
    for (int r = 0; r < N_RES; r++) {
        tf_cuda_stft_destroy(t->st[r]);
        if (t->cpu_st[r]) tf_stft_destroy(t->cpu_st[r]);
    }
    /* ncclCommDestroy waits for the operations queued on the communicator, which never end
     * when a step failed half-way (a peer waits elsewhere): then ncclCommAbort, so this rank
     * gets to end the job (cli/cmd_train.c: MPI_Abort) */
    if (t->nccl) (t->step_failed ? ncclCommAbort : ncclCommDestroy)(t->nccl);
    if (t->pinned) cudaHostUnregister(t->pinned);
    cudaFree(t->mem);
    tf_dmodel_free(t->model);
    free(t);
}

int tf_dtrainer_pin_host(tf_dtrainer *t, void *p, size_t bytes, char *why, size_t why_n) {
    if (t->pinned || !p || !bytes) {
        snprintf(why, why_n, "%s", t->pinned ? "already registered" : "nothing to register");
        return 0;
    }
    cudaError_t e = cudaHostRegister(p, bytes, cudaHostRegisterDefault);
    if (e != cudaSuccess) {
        snprintf(why, why_n, "cudaHostRegister of %zu bytes: %s", bytes, cudaGetErrorString(e));
        cudaGetLastError(); /* reset the last-error state this call left */
        return 0;
    }
    t->pinned = p;
    return 1;
}

tf_dmodel *tf_dtrainer_model(tf_dtrainer *t) {
    return t->model;
}

size_t tf_dtrainer_device_bytes(const tf_dtrainer *t) {
    size_t p = 0, a = 0, w = 0, f = 0;
    tf_dmodel_bytes(t->model, &p, &a, &w, &f);
    size_t total = p + a + w + f + t->o.floats * sizeof(float);
    for (int r = 0; r < N_RES; r++)
        if (t->st[r]) {
            size_t pb = 0, bb = 0;
            tf_cuda_stft_sizes(t->st[r], &pb, &bb);
            total += pb + bb;
        }
    return total;
}

static tf_status copy(void *dst, const void *src, size_t floats, int kind) {
    if (!dst || !src || !floats) return TF_OK;
    CK("cudaMemcpy", cudaMemcpy(dst, src, floats * sizeof(float), kind));
    return TF_OK;
}

tf_status tf_dtrainer_pull(tf_dtrainer *t, float *params, float *buffers, float *m, float *v,
                           float *ema) {
    const int k = cudaMemcpyDeviceToHost;
    TF_TRY(copy(params, tf_dmodel_params(t->model), t->n, k));
    TF_TRY(copy(buffers, tf_dmodel_buffers(t->model), t->nbuf, k));
    TF_TRY(copy(m, F(t, t->o.m), t->n, k));
    TF_TRY(copy(v, F(t, t->o.v), t->n, k));
    if (t->cfg->ema_decay > 0) TF_TRY(copy(ema, F(t, t->o.ema), t->n, k));
    return TF_OK;
}

tf_status tf_dtrainer_push(tf_dtrainer *t, const float *params, const float *buffers,
                           const float *m, const float *v, const float *ema) {
    const int k = cudaMemcpyHostToDevice;
    TF_TRY(copy(tf_dmodel_params(t->model), params, t->n, k));
    TF_TRY(copy(tf_dmodel_buffers(t->model), buffers, t->nbuf, k));
    TF_TRY(copy(F(t, t->o.m), m, t->n, k));
    TF_TRY(copy(F(t, t->o.v), v, t->n, k));
    if (t->cfg->ema_decay > 0) TF_TRY(copy(F(t, t->o.ema), ema, t->n, k));
    return TF_OK;
}

/* loss of tf_loss_eval on the device: *loss (host) = the loss of y against tg (n_sig, N);
 * dy (n_sig, N) = scale * d loss / d y */
static tf_status loss_eval(tf_dtrainer *t, const float *y, const float *tg, int n_sig, double scale,
                           float *dy, double *loss) {
    const int64_t N = t->N;
    const size_t n = (size_t)n_sig * (size_t)N;
    double *res = DBL(t), *ws = res + 8;
    CK("loss", tf_cuda_loss_l1(y, tg, n, scale, dy, &res[0], ws, NULL));
    double h[2] = {0, 0};
    CK("cudaMemcpy", cudaMemcpy(h, res, sizeof(double), cudaMemcpyDeviceToHost));
    double total = h[0];
    if (t->cfg->loss == TF_LOSS_MRSTFT) {
        for (int r = 0; r < N_RES; r++) {
            const size_t m =
                (size_t)tf_stft_bins(t->cpu_st[r]) * (size_t)tf_stft_frames(t->cpu_st[r], N);
            const size_t all = m * (size_t)n_sig;
            float *yr = F(t, t->o.spec), *yi = yr + all, *tr = yi + all, *ti = tr + all,
                  *dr = ti + all, *di = dr + all;
            const double w = 1.0 / N_RES, gm = scale * w / ((double)m * n_sig);
            if (tf_cuda_stft_forward(t->st[r], yr, yi, y, n_sig, N) ||
                tf_cuda_stft_forward(t->st[r], tr, ti, tg, n_sig, N))
                return tf_err(TF_EINTERNAL, "cuda trainer: %s", tf_cuda_stft_error(t->st[r]));
            CK("stft loss",
               tf_cuda_loss_mag_l1(yr, yi, tr, ti, all, (float)gm, dr, di, &res[1], ws, NULL));
            if (tf_cuda_stft_backward(t->st[r], dy, dr, di, n_sig, N))
                return tf_err(TF_EINTERNAL, "cuda trainer: %s", tf_cuda_stft_error(t->st[r]));
            CK("cudaMemcpy", cudaMemcpy(&h[1], &res[1], sizeof(double), cudaMemcpyDeviceToHost));
            total += w * h[1] / ((double)m * n_sig);
        }
    }
    *loss = total;
    return TF_OK;
}

static tf_status step_impl(tf_dtrainer *t, int64_t step, int64_t *updates, tf_micro_batch_fn next,
                           void *next_ctx, tf_step_result *r) {
    const tf_config *c = t->cfg;
    const int A = c->gradient_accumulation_steps, W = t->dist ? t->dist->size : 1, S = t->S;
    const size_t n = t->n, nbuf = t->nbuf;
    float *params = tf_dmodel_params(t->model), *grads = tf_dmodel_grads(t->model);
    float *bufs = tf_dmodel_buffers(t->model);
    tf_adam_cfg ac = tf_adam_default(c->optimizer == TF_OPT_ADAMW);
    ac.weight_decay = (float)c->weight_decay;
    memset(r, 0, sizeof *r);
    if (t->ema_swapped)
        return tf_err(TF_EINTERNAL, "cuda trainer: a step between eval_begin and eval_end");
    if (nbuf)
        CK("cudaMemcpy",
           cudaMemcpy(F(t, t->o.bufsave), bufs, nbuf * sizeof(float), cudaMemcpyDeviceToDevice));
    TF_TRY(tf_dmodel_zero_grad(t->model));
    double loss = 0;
    const double ls = t->scale > 0 ? t->scale : 1.0; /* loss scale (1: off) */
    for (int a = 0; a < A; a++) {
        tf_micro_batch mb;
        double l = 0;
        TF_TRY(next(next_ctx, &mb));
        if (mb.B < 1 || mb.B > t->B || mb.N != t->N)
            return tf_err(TF_EINTERNAL, "cuda trainer: micro-batch %d x %lld (planned %d x %lld)",
                          mb.B, (long long)mb.N, t->B, (long long)t->N);
        const size_t nio = (size_t)mb.B * S * 2 * (size_t)mb.N;
        CK("batch copy",
           cudaMemcpy(F(t, t->o.mix), mb.mix, (size_t)mb.B * 2 * (size_t)mb.N * sizeof(float),
                      cudaMemcpyHostToDevice));
        CK("batch copy",
           cudaMemcpy(F(t, t->o.tgt), mb.target, nio * sizeof(float), cudaMemcpyHostToDevice));
        TF_TRY(tf_dmodel_forward(t->model, F(t, t->o.out), F(t, t->o.mix), mb.B));
        TF_TRY(loss_eval(t, F(t, t->o.out), F(t, t->o.tgt), mb.B * S * 2, ls / A, F(t, t->o.dout),
                         &l));
        TF_TRY(tf_dmodel_backward(t->model, F(t, t->o.dout)));
        loss += l / A;
        r->samples += (int64_t)mb.B * W;
    }
    if (step == tf_train_inject_nan_step) loss = NAN;
    double lsum = loss;
    /* the gradient block averaged over the ranks on the devices: one allreduce, after the
     * last micro-batch (the micro-batches accumulated locally) */
    if (W > 1) TF_TRY(mean_over_ranks(t, grads, n, "ncclAllReduce of the gradients"));
    if (t->dist) TF_TRY(tf_dist_sum_f64(t->dist, &lsum, 1));
    loss = lsum / W;
    double *res = DBL(t), gnorm = 0;
    CK("gradient norm", tf_cuda_global_norm(grads, n, &res[2], res + 8, NULL));
    CK("cudaMemcpy", cudaMemcpy(&gnorm, &res[2], sizeof(double), cudaMemcpyDeviceToHost));
    gnorm /= ls; /* of the unscaled gradients */
    const double lr =
        tf_lr_at(c->learning_rate, c->lr_decay, c->lr_decay_epochs, c->steps_per_epoch, step);
    r->loss = loss, r->grad_norm = gnorm, r->lr = lr, r->loss_scale = t->scale;
    if (!isfinite(loss) || !isfinite(gnorm)) {
        if (nbuf)
            CK("cudaMemcpy", cudaMemcpy(bufs, F(t, t->o.bufsave), nbuf * sizeof(float),
                                        cudaMemcpyDeviceToDevice));
        if (t->scale > 0) t->scale *= 0.5, t->good = 0; /* every rank alike: the sums are */
        return TF_OK;
    }
    if (t->scale > 0) { /* unscale (a power of two: exact) and maybe grow */
        CK("unscale", tf_cuda_scale(grads, n, (float)(1.0 / ls), NULL));
        if (++t->good >= t->interval) t->scale *= 2, t->good = 0;
    }
    if (c->grad_clip > 0 && gnorm > c->grad_clip) /* tf_clip_by_norm's scale */
        CK("clip", tf_cuda_scale(grads, n, (float)(c->grad_clip / (gnorm + 1e-6)), NULL));
    ++*updates;
    CK("adam", tf_cuda_adam_step(ac.adamw, ac.beta1, ac.beta2, ac.eps, ac.weight_decay, params,
                                 grads, F(t, t->o.m), F(t, t->o.v), n, *updates, (float)lr, NULL));
    if (c->ema_decay > 0)
        CK("ema", tf_cuda_ema_update(F(t, t->o.ema), params, n, (float)c->ema_decay, NULL));
    if (W > 1 && nbuf) /* BN running statistics identical on every rank: their mean */
        TF_TRY(mean_over_ranks(t, bufs, nbuf, "ncclAllReduce of the BN running statistics"));
    CK("step", cudaDeviceSynchronize());
    r->applied = 1;
    return TF_OK;
}

tf_status tf_dtrainer_step(tf_dtrainer *t, int64_t s, int64_t *updates, tf_micro_batch_fn next,
                           void *next_ctx, tf_step_result *r) {
    tf_status st = step_impl(t, s, updates, next, next_ctx, r);
    if (st != TF_OK) t->step_failed = 1;
    return st;
}

void tf_dtrainer_loss_scale(const tf_dtrainer *t, double *scale, int64_t *good) {
    *scale = t->scale, *good = t->good;
}

tf_status tf_dtrainer_set_loss_scale(tf_dtrainer *t, double scale, int64_t good, int64_t interval) {
    if (!(scale >= 0) || !isfinite(scale) || good < 0 || interval < 1 ||
        (scale > 0 && (frexp(scale, &(int){0}) != 0.5)))
        return tf_err(TF_EINTERNAL,
                      "loss scale %g (%lld of %lld good steps): expected 0 or a "
                      "power of two",
                      scale, (long long)good, (long long)interval);
    t->scale = scale, t->good = good, t->interval = interval;
    return TF_OK;
}

tf_status tf_dtrainer_eval_begin(tf_dtrainer *t, int ema) {
    if (t->ema_swapped) return tf_err(TF_EINTERNAL, "cuda trainer: eval_begin twice");
    if (!ema || t->cfg->ema_decay <= 0) return TF_OK;
    float *params = tf_dmodel_params(t->model), *grads = tf_dmodel_grads(t->model);
    TF_TRY(copy(grads, params, t->n, cudaMemcpyDeviceToDevice));
    TF_TRY(copy(params, F(t, t->o.ema), t->n, cudaMemcpyDeviceToDevice));
    t->ema_swapped = 1;
    return TF_OK;
}

tf_status tf_dtrainer_eval_forward(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    tf_dtrainer *t = ctx;
    if (nb < 1 || nb > t->B || L != t->N)
        return tf_err(TF_EINTERNAL, "cuda trainer: eval of %d x %lld (planned %d x %lld)", nb,
                      (long long)L, t->B, (long long)t->N);
    return tf_dmodel_forward_eval_host(t->model, out, mix, nb, F(t, t->o.out), F(t, t->o.mix),
                                       "cuda trainer (validation)");
}

tf_status tf_dtrainer_eval_end(tf_dtrainer *t) {
    if (!t->ema_swapped) return TF_OK;
    t->ema_swapped = 0;
    float *params = tf_dmodel_params(t->model), *grads = tf_dmodel_grads(t->model);
    return copy(params, grads, t->n, cudaMemcpyDeviceToDevice);
}
