/* The device training step (src/train/step_cuda.c) against the CPU one (train/step.c): the
 * tiny preset, the same initial weights and micro-batches, optimizer steps (2 with l1, 1
 * with mrstft: the emulation is slow) with gradient accumulation 2, gradient clipping active, EMA
 * on, l1 and mrstft losses: the loss and the gradient norm of every step, then the weights, the
 * Adam moments, the EMA weights and the BN running statistics. Also the non-finite skip (a NaN loss
 * restores the running statistics and leaves the weights) and pull/push round trips. Loss
 * scaling (amp_dtype fp16's), forced on over fp32 kernels: a power-of-two scale is exact, so
 * the steps still match the CPU's; the scale doubles after `interval` finite steps and halves
 * at a non-finite one, which is skipped. On a GPU (make
 * CUDA=1 gpu-tests) the convolutions are cuDNN's; in the CPU emulation (tests/gpu/run_emulated.sh
 * build test_cuda_step, TFSWA_GPU_EMU) the ref kernels. */
#include "train/step_cuda.h"
#include "dsp/stft.h"
#include "gpu_test.h"
#include "model_ref.h"
#include "test.h"
#include "util/rng.h"

#ifdef TFSWA_GPU_EMU
#define CONV_BACKEND TF_BACKEND_REF
#else
#define CONV_BACKEND TF_BACKEND_CUDA
#endif

typedef struct {
    float *mix, *tgt;
    int B, k;
    int64_t N;
    int S;
} batches;

/* micro-batch k of a fixed random sequence */
static tf_status next_batch(void *ctx, tf_micro_batch *mb) {
    batches *b = ctx;
    const size_t nin = (size_t)b->B * 2 * b->N, nout = (size_t)b->B * b->S * 2 * b->N;
    tf_rng r;
    tf_rng_seed(&r, 0x5eed, 1, (uint64_t)b->k, 0);
    for (size_t i = 0; i < nin; i++) b->mix[i] = (float)tf_rng_range(&r, -0.25, 0.25);
    for (size_t i = 0; i < nout; i++)
        b->tgt[i] = 0.3f * b->mix[i % nin] + (float)tf_rng_range(&r, -0.05, 0.05);
    b->k++;
    *mb = (tf_micro_batch){b->mix, b->tgt, b->B, b->N};
    return TF_OK;
}

/* scale > 0: loss scaling on from that scale, doubling every 2 finite steps */
static void step_case(tf_loss loss, int steps, int nan_check, double scale) {
    tf_config c = preset_config("tiny");
    c.n_targets = 2;
    c.batch_size = 2;
    c.gradient_accumulation_steps = 2;
    c.grad_clip = 1e-4;
    c.learning_rate = 1e-3;
    c.ema_decay = 0.9;
    c.loss = loss;
    const int64_t N = 11025;
    const int B = c.batch_size, S = c.n_targets;
    const tf_model_config mc = tf_train_model_config(&c);
    const tf_dist one = TF_DIST_SINGLE;
    tf_model *m = NULL;
    tf_trainer *ct = NULL;
    tf_dtrainer *dt = NULL;
    tf_kernels *k = NULL;
    tf_stft *st = NULL;
    tf_arch a;
    CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
    CHECKF(tf_model_create(&m, &mc, B, N, 2) == TF_OK, "%s", tf_errmsg());
    CHECKF(m && tf_trainer_open(&ct, &c, &one, m, N) == TF_OK, "%s", tf_errmsg());
    CHECK(tf_kernels_create(&k, CONV_BACKEND, TF_DT_FP32, 2) == TF_OK);
    CHECK(tf_stft_create(&st, a.n_fft, a.hop) == TF_OK);
    if (!ct || !k || !st) goto out;
    CHECKF(tf_dtrainer_open(&dt, &c, &one, &a, N, k, st, tf_model_params(m), tf_model_buffers(m)) ==
               TF_OK,
           "%s", tf_errmsg());
    if (!dt) goto out;
    double ls = -1;
    int64_t lg = -1;
    tf_dtrainer_loss_scale(dt, &ls, &lg);
    CHECK(ls == 0 && lg == 0); /* fp32 kernels: off */
    if (scale > 0) {
        CHECK(tf_dtrainer_set_loss_scale(dt, 3.0, 0, 2) != TF_OK); /* not a power of two */
        CHECK(tf_dtrainer_set_loss_scale(dt, scale, 0, 2) == TF_OK);
    }
    const size_t np = tf_model_get_plan(m)->n_params, nb = tf_model_get_plan(m)->n_buffers;
    float *p0 = hcopy(tf_model_params(m), np);
    batches bc = {host((size_t)B * 2 * N, 0, 0), host((size_t)B * S * 2 * N, 0, 0), B, 0, N, S};
    batches bd = {host((size_t)B * 2 * N, 0, 0), host((size_t)B * S * 2 * N, 0, 0), B, 0, N, S};
    /* the device's batches come from page-locked memory, as the loader's (pin_memory) */
    char why[160];
    CHECKF(tf_dtrainer_pin_host(dt, bd.mix, (size_t)B * 2 * N * sizeof(float), why, sizeof why) ==
               1,
           "%s", why);
    CHECK(tf_dtrainer_pin_host(dt, bd.tgt, sizeof(float), why, sizeof why) == 0 &&
          strstr(why, "already"));
    int64_t uc = 0, ud = 0;
    for (int s = 0; s < steps; s++) {
        tf_step_result rc, rd;
        CHECKF(tf_train_step(ct, s, &uc, next_batch, &bc, &rc) == TF_OK, "%s", tf_errmsg());
        CHECKF(tf_dtrainer_step(dt, s, &ud, next_batch, &bd, &rd) == TF_OK, "%s", tf_errmsg());
        printf("  step %d: loss cpu %.9g device %.9g, norm cpu %.9g device %.9g\n", s, rc.loss,
               rd.loss, rc.grad_norm, rd.grad_norm);
        CHECK(rc.applied && rd.applied && uc == ud && rc.samples == rd.samples);
        CHECK(fabs(rd.loss - rc.loss) <= 1e-4 * rc.loss);
        CHECK(fabs(rd.grad_norm - rc.grad_norm) <= 1e-3 * rc.grad_norm);
        CHECK(rc.grad_norm > c.grad_clip); /* clipping is active */
        if (scale > 0) {                   /* 2 finite steps double it */
            CHECK(rd.loss_scale == (s < 2 ? scale : 2 * scale));
            tf_dtrainer_loss_scale(dt, &ls, &lg);
            CHECKF(ls == (s < 1 ? scale : 2 * scale) && lg == (s + 1) % 2, "step %d: %g %lld", s,
                   ls, (long long)lg);
        } else {
            CHECK(rd.loss_scale == 0);
        }
    }
    float *p = host(np, 0, 0), *bu = host(nb, 0, 0), *mm = host(np, 0, 0), *vv = host(np, 0, 0),
          *ema = host(np, 0, 0);
    CHECK(tf_dtrainer_pull(dt, p, bu, mm, vv, ema) == TF_OK);
    /* the weights' change (Adam steps of lr 1e-3) within 2 % of the CPU's where the first
     * moment is not noise: Adam moves a weight whose gradient is rounding noise on both
     * sides (e.g. a conv bias that a BatchNorm follows: zero in exact arithmetic) by about
     * lr in either direction. The moments relative to their largest values. */
    float *dp = host(np, 0, 0), *dc = host(np, 0, 0);
    for (size_t i = 0; i < np; i++) dp[i] = p[i] - p0[i], dc[i] = tf_model_params(m)[i] - p0[i];
    CHECK(near_where("weight change", dp, dc, np, 2e-2, ct->opt.m));
    CHECK(near_where("Adam m", mm, ct->opt.m, np, 5e-3, NULL));
    CHECK(near_where("Adam v", vv, ct->opt.v, np, 1e-2, NULL));
    CHECK(near_where("EMA weights", ema, ct->ema, np, 1e-4, NULL));
    CHECK(near_where("running statistics", bu, tf_model_buffers(m), nb, 1e-5, NULL));
    float *p2 = host(np, 0, 0), *bu2 = host(nb, 0, 0);
    if (nan_check) { /* a non-finite step: nothing changes, the running stats restored */
        tf_train_inject_nan_step = steps;
        tf_step_result rn;
        CHECK(tf_dtrainer_step(dt, steps, &ud, next_batch, &bd, &rn) == TF_OK);
        tf_train_inject_nan_step = -1;
        CHECK(tf_dtrainer_pull(dt, p2, bu2, NULL, NULL, NULL) == TF_OK);
        CHECK(!rn.applied && ud == steps && isnan(rn.loss));
        CHECK(!memcmp(p2, p, np * 4) && !memcmp(bu2, bu, nb * 4));
        if (scale > 0) { /* halved, the count restarted */
            double before = ls;
            tf_dtrainer_loss_scale(dt, &ls, &lg);
            CHECKF(ls == before / 2 && lg == 0, "after a non-finite step: %g %lld", ls,
                   (long long)lg);
        }
    }
    /* push then pull is the identity */
    for (size_t i = 0; i < np; i++) mm[i] = (float)i, vv[i] = 0.5f * (float)i;
    CHECK(tf_dtrainer_push(dt, NULL, NULL, mm, vv, NULL) == TF_OK);
    CHECK(tf_dtrainer_pull(dt, NULL, NULL, p2, NULL, NULL) == TF_OK);
    CHECK(!memcmp(p2, mm, np * 4));
    tf_dtrainer_close(dt); /* unregisters bd.mix: before it is freed */
    dt = NULL;
    free(p), free(bu), free(mm), free(vv), free(ema), free(dp), free(dc), free(p2), free(bu2);
    free(p0), free(bc.mix), free(bc.tgt), free(bd.mix), free(bd.tgt);
out:
    tf_dtrainer_close(dt);
    tf_trainer_close(ct);
    tf_model_free(m);
    tf_kernels_free(k);
    if (st) tf_stft_destroy(st);
}

static void test_step_l1(void) {
    step_case(TF_LOSS_L1, 2, 1, 0);
}

static void test_step_mrstft(void) {
    step_case(TF_LOSS_MRSTFT, 1, 0, 0);
}

/* loss scaling from 2^20: the loss gradient (about 1e-6 per element here) scaled up, the
 * gradients scaled back before clipping and Adam */
static void test_step_loss_scale(void) {
    step_case(TF_LOSS_L1, 2, 1, 1048576.0);
}

int main(void) {
    if (!gpu_present("test_cuda_step")) return 1;
    RUN(test_step_l1);
    RUN(test_step_mrstft);
    RUN(test_step_loss_scale);
    return TEST_END();
}
