/* Separation on the device against the CPU:
 *  - the device model's eval forward (model/model_cuda.h: BatchNorm on the running
 *    statistics, nothing updated) against the CPU model's eval forward
 *    (tf_model_forward(training = 0)), with running statistics far from (0, 1), on an
 *    inference device model (no gradients; its own layout, model/dlayout.h
 *    tf_dlayout_infer) and on a training one; a smaller batch than planned; three RCMs per
 *    block with the mask output; the running statistics stay as they were;
 *  - an inference device model refuses a training forward and a backward;
 *  - validation through the device trainer (train/step_cuda.h): eval_begin with EMA scores
 *    the EMA weights, without it the raw ones, and eval_end restores the raw weights
 *    bitwise; a step between the two is refused;
 *  - a whole song through the streaming separator (infer/separate.h) with a checkpoint on
 *    the device (tf_sep_model_checkpoint_cuda) and on the CPU (tf_sep_model_checkpoint,
 *    ref kernels): the same stems within fp32 rounding.
 * On a GPU (make CUDA=1 gpu-tests; tools/gpu_check.sh) the convolutions are cuDNN's; in the
 * CPU emulation (tests/gpu/run_emulated.sh build test_cuda_separate) the ref kernels. */
#include "model/model_cuda.h"
#include "dsp/stft.h"
#include "train/step_cuda.h"
#include "fixtures.h"
#include "gpu_test.h"
#include "infer/separate.h"
#include "model_ref.h"
#include "test.h"

#include <unistd.h>

#ifdef TFSWA_GPU_EMU
#define CONV_BACKEND TF_BACKEND_REF
#else
#define CONV_BACKEND TF_BACKEND_CUDA
#endif

/* running means in [-0.3, 0.3), variances in [0.3, 3): BatchNorm in eval mode then differs
 * from batch statistics and from the identity */
static void random_stats(tf_model *m) {
    float *b = tf_model_buffers(m);
    for (size_t i = 0; i < tf_model_n_tensors(m); i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        if (!p->is_buffer) continue;
        const int var = strstr(p->name, "running_var") != NULL;
        const int mean = strstr(p->name, "running_mean") != NULL;
        for (size_t k = 0; k < p->numel; k++)
            if (var || mean) b[p->offset + k] = var ? urand(0.3f, 3.f) : urand(-0.3f, 0.3f);
    }
}

static void eval_case(int targets, int B_plan, int B, int64_t N, int rcms, int mask) {
    tf_config c = preset_config("tiny");
    c.n_targets = targets;
    if (rcms) c.rcms_per_block = rcms;
    if (mask) c.output = TF_OUT_MASK;
    printf("  %d target(s), batch %d of %d, %lld samples, %d RCMs per block, output %s\n", targets,
           B, B_plan, (long long)N, c.rcms_per_block, mask ? "mask" : "magnitude");
    const tf_model_config mc = tf_train_model_config(&c);
    tf_model *m = NULL;
    CHECKF(tf_model_create(&m, &mc, B_plan, N, 2) == TF_OK, "%s", tf_errmsg());
    if (!m) return;
    random_stats(m);
    tf_arch a;
    CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
    tf_kernels *k = NULL, *k2 = NULL;
    CHECKF(tf_kernels_create(&k, CONV_BACKEND, TF_DT_FP32, 2) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_kernels_create(&k2, CONV_BACKEND, TF_DT_FP32, 2) == TF_OK, "%s", tf_errmsg());
    tf_stft *st = NULL;
    CHECK(tf_stft_create(&st, a.n_fft, a.hop) == TF_OK);
    tf_dmodel *di = NULL, *dt = NULL;
    CHECKF(tf_dmodel_create_infer(&di, &a, B_plan, N, k, st) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dmodel_create(&dt, &a, B_plan, N, k2, st) == TF_OK, "%s", tf_errmsg());
    if (!di || !dt) goto out;
    CHECK(tf_dmodel_grads(di) == NULL && tf_dmodel_grads(dt) != NULL);
    const size_t np = tf_dmodel_n_params(di), nb = tf_dmodel_n_buffers(di);
    tf_dmodel *both[2] = {di, dt};
    for (int q = 0; q < 2; q++) {
        CU(cudaMemcpy(tf_dmodel_params(both[q]), tf_model_params(m), np * 4,
                      cudaMemcpyHostToDevice));
        CU(cudaMemcpy(tf_dmodel_buffers(both[q]), tf_model_buffers(m), nb * 4,
                      cudaMemcpyHostToDevice));
    }
    const size_t nmix = (size_t)B * 2 * N, nout = (size_t)B * a.S * 2 * N;
    float *mix = host(nmix, -0.5f, 0.5f), *y = host(nout, 0, 0), *gbuf = host(nb, 0, 0);
    float *dmix = dev_copy(mix, nmix), *dy = dev_copy(y, nout), *dz = dev_copy(y, nout);
    CHECKF(tf_model_forward(m, y, mix, B, N, 0) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dmodel_forward_eval(di, dy, dmix, B) == TF_OK, "%s", tf_errmsg());
    CHECK(dclose("eval output (inference model)", dy, y, nout, 1e-4));
    CHECKF(tf_dmodel_forward_eval(dt, dz, dmix, B) == TF_OK, "%s", tf_errmsg());
    CHECK(dclose("eval output (training model)", dz, y, nout, 1e-4));
    /* nothing updated the running statistics */
    down(gbuf, tf_dmodel_buffers(di), nb);
    CHECK(memcmp(gbuf, tf_model_buffers(m), nb * 4) == 0);
    down(gbuf, tf_dmodel_buffers(dt), nb);
    CHECK(memcmp(gbuf, tf_model_buffers(m), nb * 4) == 0);
    /* the training forward (batch statistics) is another function: the comparison above
     * would catch a device eval forward that used them */
    CHECKF(tf_dmodel_forward(dt, dz, dmix, B) == TF_OK, "%s", tf_errmsg());
    float *t = host(nout, 0, 0);
    down(t, dz, nout);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < nout; i++)
        diff = fmax(diff, fabs((double)t[i] - y[i])), scale = fmax(scale, fabs(y[i]));
    printf("  training forward vs eval forward: max difference %.3g of max %.3g\n", diff, scale);
    CHECK(diff > 1e-2 * scale);
    free(t);
    /* an inference model has no backward */
    CHECK(tf_dmodel_forward(di, dz, dmix, B) == TF_EINTERNAL);
    CHECK(tf_dmodel_backward(di, dz) == TF_EINTERNAL);
    CHECK(tf_dmodel_zero_grad(di) == TF_EINTERNAL);
    free(mix);
    free(y);
    free(gbuf);
    cudaFree(dmix);
    cudaFree(dy);
    cudaFree(dz);
out:
    tf_dmodel_free(di);
    tf_dmodel_free(dt);
    tf_kernels_free(k);
    tf_kernels_free(k2);
    tf_stft_destroy(st);
    tf_model_free(m);
}

static void test_eval_forward(void) {
    eval_case(2, 2, 2, 11025, 0, 0);
}

static void test_eval_forward_smaller_batch(void) {
    eval_case(1, 3, 2, 9000, 0, 0);
}

/* the inference layout's other paths: three RCMs (their insides alternate between two
 * buffers) and the mask output (the head multiplies by the block input x0, kept apart) */
static void test_eval_forward_mask_rcm3(void) {
    eval_case(2, 2, 2, 9000, 3, 1);
}

static void test_trainer_eval_ema(void) {
    tf_config c = preset_config("tiny");
    c.n_targets = 2;
    c.batch_size = 2;
    c.ema_decay = 0.9;
    const int64_t N = 9000;
    const int B = 2;
    const tf_model_config mc = tf_train_model_config(&c);
    const tf_dist one = TF_DIST_SINGLE;
    tf_model *m = NULL;
    tf_dtrainer *dt = NULL;
    tf_kernels *k = NULL;
    tf_stft *st = NULL;
    tf_arch a;
    CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
    CHECKF(tf_model_create(&m, &mc, B, N, 2) == TF_OK, "%s", tf_errmsg());
    CHECK(tf_kernels_create(&k, CONV_BACKEND, TF_DT_FP32, 2) == TF_OK);
    CHECK(tf_stft_create(&st, a.n_fft, a.hop) == TF_OK);
    if (!m || !k || !st) goto out;
    random_stats(m);
    CHECKF(tf_dtrainer_open(&dt, &c, &one, &a, N, k, st, tf_model_params(m), tf_model_buffers(m)) ==
               TF_OK,
           "%s", tf_errmsg());
    if (!dt) goto out;
    const size_t np = tf_model_get_plan(m)->n_params, nmix = (size_t)B * 2 * N;
    const size_t nout = nmix * 2;
    float *raw = hcopy(tf_model_params(m), np), *ema = hcopy(raw, np);
    for (size_t i = 0; i < np; i++) ema[i] += urand(-0.05f, 0.05f);
    CHECKF(tf_dtrainer_push(dt, raw, NULL, NULL, NULL, ema) == TF_OK, "%s", tf_errmsg());
    float *mix = host(nmix, -0.5f, 0.5f), *yc = host(nout, 0, 0), *yd = host(nout, 0, 0);
    /* with EMA: the EMA weights are scored */
    memcpy(tf_model_params(m), ema, np * 4);
    CHECKF(tf_model_forward(m, yc, mix, B, N, 0) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dtrainer_eval_begin(dt, 1) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dtrainer_eval_forward(dt, mix, B, N, yd) == TF_OK, "%s", tf_errmsg());
    CHECK(close_to("eval with the EMA weights", yd, yc, nout, 1e-4));
    tf_step_result r;
    int64_t upd = 0;
    CHECK(tf_dtrainer_step(dt, 0, &upd, NULL, NULL, &r) == TF_EINTERNAL); /* refused */
    CHECK(tf_dtrainer_eval_end(dt) == TF_OK);
    float *back = host(np, 0, 0), *eback = host(np, 0, 0);
    CHECK(tf_dtrainer_pull(dt, back, NULL, NULL, NULL, eback) == TF_OK);
    CHECK(memcmp(back, raw, np * 4) == 0 && memcmp(eback, ema, np * 4) == 0);
    /* without: the raw ones */
    memcpy(tf_model_params(m), raw, np * 4);
    CHECKF(tf_model_forward(m, yc, mix, B, N, 0) == TF_OK, "%s", tf_errmsg());
    CHECK(tf_dtrainer_eval_begin(dt, 0) == TF_OK);
    CHECKF(tf_dtrainer_eval_forward(dt, mix, 1, N, yd) == TF_OK, "%s", tf_errmsg());
    CHECK(close_to("eval with the raw weights (1 item)", yd, yc, nout / 2, 1e-4));
    CHECK(tf_dtrainer_eval_forward(dt, mix, 1, N - 1, yd) == TF_EINTERNAL); /* not the segment */
    CHECK(tf_dtrainer_eval_end(dt) == TF_OK);
    free(raw);
    free(ema);
    free(mix);
    free(yc);
    free(yd);
    free(back);
    free(eback);
out:
    tf_dtrainer_close(dt);
    tf_kernels_free(k);
    tf_stft_destroy(st);
    tf_model_free(m);
}

/* a 1.7 s stereo song (8 kHz) through the streaming separator, 2 chunks per model call,
 * 0.5 s chunks with the default overlap: device vs CPU model of the same checkpoint */
static void test_separate_song(void) {
    char dir[] = "/tmp/tfswa_gpu_sep_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char ck[sizeof dir + 16];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 7, NULL));
    tf_sep_model cm, gm;
    CHECKF(tf_sep_model_checkpoint(&cm, ck, 2, TF_BACKEND_REF, TF_DT_FP32) == TF_OK, "%s",
           tf_errmsg());
    int okc = tf_sep_model_checkpoint_cuda(&gm, ck, 0) == TF_OK;
    CHECKF(okc, "%s", tf_errmsg());
    if (!okc) {
        cm.close(cm.ctx);
        return;
    }
    CHECK(gm.n_targets == 2 && !strcmp(gm.targets[1], "drums") && gm.sample_rate == 8000);
    tf_separator *sc = NULL, *sg = NULL;
    CHECKF(tf_separator_create(&sc, &cm, 1, 2) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_separator_create(&sg, &gm, 1, 2) == TF_OK, "%s", tf_errmsg());
    if (!sc || !sg) goto out;
    const int64_t n = 13600;
    float *in = host(2 * (size_t)n, -0.4f, 0.4f);
    float *oc = host(2 * 2 * (size_t)n, 0, 0), *og = host(2 * 2 * (size_t)n, 0, 0);
    tf_sep_params p;
    tf_sep_params_default(&p);
    p.batch_size = 2;
    tf_sep_summary sum;
    CHECKF(tf_separate_buffer(sc, in, 2, n, 8000, oc, &p, &sum) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_separate_buffer(sg, in, 2, n, 8000, og, &p, &sum) == TF_OK, "%s", tf_errmsg());
    CHECK(close_to("separated stems", og, oc, 2 * 2 * (size_t)n, 1e-4));
    double energy = 0;
    for (size_t i = 0; i < 4 * (size_t)n; i++) energy += (double)oc[i] * oc[i];
    CHECK(energy > 1e-6); /* the stems are not silence */
    free(in);
    free(oc);
    free(og);
out:
    tf_separator_free(sc);
    tf_separator_free(sg);
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void) {
    if (!gpu_present("test_cuda_separate")) return 1;
    RUN(test_eval_forward);
    RUN(test_eval_forward_smaller_batch);
    RUN(test_eval_forward_mask_rcm3);
    RUN(test_trainer_eval_ema);
    RUN(test_separate_song);
    return TEST_END();
}
