/* The device model (src/model/model_cuda.c) against the CPU model (src/model/forward.c): the
 * tiny preset's training forward (output waveforms, BatchNorm running statistics) and
 * backward (every parameter's gradient), fp32, magnitude and mask outputs, 1 and 4 targets,
 * a batch smaller than planned; checkpointing blocks (both models recompute the blocks in
 * backward: the running statistics after backward must still be the forward's, and the
 * device model's gradients must also match a device model without checkpointing, within
 * 1e-6 of each tensor's scale; with 3 RCMs per block too, where the nested recompute of
 * the middle RCM's conv1 output reads another RCM's output). Both models get the same
 * parameters and inputs.
 *
 * bf16 activations (use_amp's storage; the CPU model with compute_dtype fp32, the
 * arithmetic the device does) round at the same points, but a rounding is a step: where
 * the fp32 arithmetic differs by an ulp (cuDNN or the ref kernels vs oneDNN) a value near
 * a bf16 tie rounds the other way, and the change spreads, rounding after rounding. The
 * CPU model itself, run with its ref kernels instead of oneDNN, differs from itself by an
 * output max 1.2 % of the output's and a gradient relative L2 of 0.11 (tiny, 2 targets,
 * batch 2, 11025 samples; bf16 against fp32: 1.4 % and 0.13); with batch 1 and 3 RCMs
 * per block (checkpointing, 9000 samples, three inputs) by 3.5-4.7 % and 0.16-0.27
 * (bf16 against fp32: 0.24-0.31). So bf16 is checked like
 * tests/test_model_ref.c checks it against the float64 reference (TOL_BF16): the output
 * within 0.1 of its max, the running statistics within 1e-2 of each tensor's max,
 * gradients by relative L2 (0.5 over all, 1.0 per tensor of at least 1e-2 of the largest
 * tensor norm; measured here up to 0.32 and 0.65), which a map read from the wrong buffer
 * breaks (half 2 reading the RCM input instead of its conv1 output: 1.0 over all, 1.29 for
 * one tensor); that the rounding happens
 * at all by the output's difference from an fp32 device model's (> 1e-3 of its max); the
 * eval forward through the bf16 buffers (validation) against the CPU's fp32 one at 0.1; and,
 * with checkpointing, against the device model without it at 1e-6 (the same arithmetic
 * on the same rounded values: a recompute that stored or widened differently fails).
 *
 * On a GPU (make CUDA=1 gpu-tests; tools/gpu_check.sh) the convolutions are cuDNN's; in the
 * CPU emulation (tests/gpu/run_emulated.sh build test_cuda_model, TFSWA_GPU_EMU) they are
 * the ref kernels on host memory, and every other launch is the emulated CUDA kernel. */
#include "model/model_cuda.h"
#include "dsp/stft.h"
#include "gpu_test.h"
#include "model_ref.h"
#include "test.h"

#ifdef TFSWA_GPU_EMU
#define CONV_BACKEND TF_BACKEND_REF
#else
#define CONV_BACKEND TF_BACKEND_CUDA
#endif

/* every tensor of the table: max |g - c| <= tol * max |c| of that tensor + 1e-6 * max |c|
 * over all of them (a tensor whose true value is zero, e.g. the bias of a conv that a
 * BatchNorm follows, holds rounding noise on both sides); buffers (buffers = 1) or
 * parameters of the flat blocks */
static int tensors_close(tf_model *m, const float *flat_d, const float *flat_c, int buffers,
                         double tol, const char *what) {
    int ok = 1;
    double all = 0;
    for (size_t i = 0; i < tf_model_n_tensors(m); i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        if (p->is_buffer != buffers) continue;
        for (size_t k = 0; k < p->numel; k++) all = fmax(all, fabs(flat_c[p->offset + k]));
    }
    for (size_t i = 0; i < tf_model_n_tensors(m); i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        if (p->is_buffer != buffers) continue;
        const float *g = flat_d + p->offset, *c = flat_c + p->offset;
        double scale = 0, worst = 0;
        size_t at = 0;
        for (size_t k = 0; k < p->numel; k++) {
            scale = fmax(scale, fabs(c[k]));
            double e = fabs((double)g[k] - c[k]);
            if (!(e <= worst)) worst = e, at = k;
        }
        double allowed = tol * scale + 1e-6 * all;
        if (!(worst <= allowed)) {
            fprintf(stderr, "  %s %s: max error %g at %zu (device %.9g, cpu %.9g), allowed %g\n",
                    what, p->name, worst, at, g[at], c[at], allowed);
            ok = 0;
        }
    }
    return ok;
}

/* bf16: sqrt(sum (g - c)^2 / sum c^2) over all parameters <= all_tol, and per tensor whose
 * norm is at least 1e-2 of the largest tensor's <= each_tol */
static int grads_l2_close(tf_model *m, const float *g, const float *c, double all_tol,
                          double each_tol) {
    double d2 = 0, r2 = 0, big = 0, worst = 0;
    const char *wn = "";
    for (size_t i = 0; i < tf_model_n_tensors(m); i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        if (p->is_buffer) continue;
        double t = 0;
        for (size_t k = 0; k < p->numel; k++) t += (double)c[p->offset + k] * c[p->offset + k];
        big = fmax(big, sqrt(t));
    }
    for (size_t i = 0; i < tf_model_n_tensors(m); i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        if (p->is_buffer) continue;
        double td = 0, tr = 0;
        for (size_t k = 0; k < p->numel; k++) {
            const double d = (double)g[p->offset + k] - c[p->offset + k];
            td += d * d;
            tr += (double)c[p->offset + k] * c[p->offset + k];
        }
        d2 += td, r2 += tr;
        if (sqrt(tr) >= 1e-2 * big && sqrt(td / tr) > worst) worst = sqrt(td / tr), wn = p->name;
    }
    const double all = sqrt(d2 / r2);
    printf("    bf16 gradients: relative L2 %.3g over all, worst tensor %.3g (%s)\n", all, worst,
           wn);
    CHECKF(all <= all_tol && worst <= each_tol, "bf16 gradients: %g (<= %g), %s %g (<= %g)", all,
           all_tol, wn, worst, each_tol);
    return all <= all_tol && worst <= each_tol;
}

/* a device model of a, its parameters and buffers copied from m's */
static tf_dmodel *dmodel_of(tf_model *m, const tf_arch *a, int B_plan, int64_t N, tf_kernels *k,
                            const tf_stft *st) {
    tf_dmodel *d = NULL;
    CHECKF(tf_dmodel_create(&d, a, B_plan, N, k, st) == TF_OK, "%s", tf_errmsg());
    if (!d) return NULL;
    const size_t np = tf_dmodel_n_params(d), nb = tf_dmodel_n_buffers(d);
    CHECK(np == tf_model_get_plan(m)->n_params && nb == tf_model_get_plan(m)->n_buffers);
    CU(cudaMemcpy(tf_dmodel_params(d), tf_model_params(m), np * 4, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(tf_dmodel_buffers(d), tf_model_buffers(m), nb * 4, cudaMemcpyHostToDevice));
    return d;
}

/* ckpt: both models checkpoint blocks; then also a device model without checkpointing
 * (the same parameters, buffers and batch) against the checkpointing one. rcms: RCMs per
 * Conv block (0: the preset's 2; else also 1 TFSWA block, to keep the case short) */
static int narrow; /* the tiny preset with channels 32, 8, 24, 32 (test_narrowing_encoder) */

static void model_case(int targets, int output_mask, int B_plan, int B, int64_t N, int ckpt,
                       int rcms, int bf) {
    tf_config c = preset_config("tiny");
    if (narrow) c.channels[0] = 32, c.channels[1] = 8, c.channels[2] = 24, c.channels[3] = 32;
    /* bf 1: bf16 storage (compute_dtype stays fp32); 2: --use_amp, the device's convolutions
     * and GEMMs in bf16 too (the CPU model in bf16 where this CPU has it, else fp32) */
    c.activation_dtype = bf ? TF_DT_BF16 : TF_DT_FP32;
    if (bf == 2) c.compute_dtype = TF_DT_BF16;
    c.n_targets = targets;
    if (rcms) c.rcms_per_block = rcms, c.tfswa_blocks = 1;
    if (output_mask) c.output = TF_OUT_MASK;
    if (ckpt) c.checkpointing = TF_CKPT_BLOCKS;
    printf("  %d target(s), %s output, batch %d of %d, %lld samples, checkpointing %s, %d "
           "RCMs per block, %s activations\n",
           targets, output_mask ? "mask" : "magnitude", B, B_plan, (long long)N,
           ckpt ? "blocks" : "off", c.rcms_per_block,
           bf == 2 ? "bf16 (arithmetic too)"
           : bf    ? "bf16"
                   : "fp32");
    const tf_model_config mc = tf_train_model_config(&c);
    tf_model *m = NULL;
    CHECKF(tf_model_create(&m, &mc, B_plan, N, 2) == TF_OK, "%s", tf_errmsg());
    if (!m) return;
    tf_arch a;
    CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
    CHECK(a.ckpt == (ckpt ? TF_CKPT_BLOCKS : TF_CKPT_OFF));
    tf_kernels *k = NULL;
    CHECKF(tf_kernels_create(&k, CONV_BACKEND, bf == 2 ? TF_DT_BF16 : TF_DT_FP32, 2) == TF_OK, "%s",
           tf_errmsg());
    CHECK(!k || tf_kernels_compute(k) == (bf == 2 ? TF_DT_BF16 : TF_DT_FP32));
    tf_stft *st = NULL;
    CHECK(tf_stft_create(&st, a.n_fft, a.hop) == TF_OK);
    tf_dmodel *d = NULL, *d0 = NULL;
    if (k && st) d = dmodel_of(m, &a, B_plan, N, k, st);
    if (!d || !k || !st) goto out;
    CHECK(tf_dmodel_layout(d)->ckpt == ckpt && tf_dmodel_layout(d)->bf == (bf != 0));
    const size_t np = tf_dmodel_n_params(d), nb = tf_dmodel_n_buffers(d);
    const int S = a.S;
    const size_t nmix = (size_t)B * 2 * N, nout = (size_t)B * S * 2 * N;
    float *mix = host(nmix, -0.5f, 0.5f), *dout = host(nout, -1e-3f, 1e-3f);
    float *y = host(nout, 0, 0), *cbuf = host(nb, 0, 0), *gbuf = host(nb, 0, 0);
    float *dmix = dev_copy(mix, nmix), *ddout = dev_copy(dout, nout), *dy = dev_copy(y, nout);
    float *g = host(np, 0, 0), *buf0 = host(nb, 0, 0);
    memcpy(buf0, tf_model_buffers(m), nb * 4);
    /* forward */
    CHECKF(tf_model_forward(m, y, mix, B, N, 1) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dmodel_forward(d, dy, dmix, B) == TF_OK, "%s", tf_errmsg());
    CHECK(dclose("output", dy, y, nout, bf ? 0.1 : 1e-4));
    if (bf) { /* an fp32 device model's output differs by far more: the maps were rounded */
        tf_arch af = a;
        af.act_dtype = TF_DT_FP32;
        tf_dmodel *df = dmodel_of(m, &af, B_plan, N, k, st);
        if (df) {
            CU(cudaMemcpy(tf_dmodel_buffers(df), buf0, nb * 4, cudaMemcpyHostToDevice));
            float *yf = host(nout, 0, 0), *yb = host(nout, 0, 0), *dyf = dev_copy(yf, nout);
            CHECKF(tf_dmodel_forward(df, dyf, dmix, B) == TF_OK, "%s", tf_errmsg());
            down(yf, dyf, nout);
            down(yb, dy, nout);
            double sc = 0, e = 0;
            for (size_t i = 0; i < nout; i++) {
                sc = fmax(sc, fabs(yf[i]));
                e = fmax(e, fabs((double)yf[i] - yb[i]));
            }
            printf("    bf16 vs fp32 output: max difference %.3g of %.3g\n", e, sc);
            CHECKF(e > 1e-3 * sc, "bf16 output within %g of fp32's (scale %g): not rounded?", e,
                   sc);
            free(yf);
            free(yb);
            cudaFree(dyf);
            tf_dmodel_free(df);
        }
    }
    down(gbuf, tf_dmodel_buffers(d), nb);
    memcpy(cbuf, tf_model_buffers(m), nb * 4);
    CHECK(tensors_close(m, gbuf, cbuf, 1, bf ? 1e-2 : 1e-5, "running statistic"));
    float *fwdbuf = host(nb, 0, 0);
    memcpy(fwdbuf, gbuf, nb * 4);
    /* backward */
    tf_model_zero_grad(m);
    CHECK(tf_dmodel_zero_grad(d) == TF_OK);
    CHECKF(tf_model_backward(m, dout) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dmodel_backward(d, ddout) == TF_OK, "%s", tf_errmsg());
    down(g, tf_dmodel_grads(d), np);
    if (bf)
        grads_l2_close(m, g, tf_model_grads(m), 0.5, 1.0);
    else
        CHECK(tensors_close(m, g, tf_model_grads(m), 0, 1e-3, "gradient"));
    /* backward leaves the running statistics alone (a recompute must not update them) */
    down(gbuf, tf_dmodel_buffers(d), nb);
    CHECK(!memcmp(gbuf, fwdbuf, nb * 4));
    CHECK(!memcmp(cbuf, tf_model_buffers(m), nb * 4));
    free(fwdbuf);
    if (ckpt) {
        /* the same step on a device model without checkpointing, from the same parameters
         * and initial buffers: output, running statistics and gradients within 1e-6 */
        tf_arch a0 = a;
        a0.ckpt = TF_CKPT_OFF;
        d0 = dmodel_of(m, &a0, B_plan, N, k, st);
        if (d0) {
            CHECK(!tf_dmodel_layout(d0)->ckpt);
            CHECK(tf_dmodel_layout(d0)->act_floats > tf_dmodel_layout(d)->act_floats);
            CU(cudaMemcpy(tf_dmodel_buffers(d0), buf0, nb * 4, cudaMemcpyHostToDevice));
            float *y0 = host(nout, 0, 0), *y1 = host(nout, 0, 0), *g0 = host(np, 0, 0);
            float *dy0 = dev_copy(y0, nout);
            CHECKF(tf_dmodel_forward(d0, dy0, dmix, B) == TF_OK, "%s", tf_errmsg());
            down(y0, dy0, nout);
            down(y1, dy, nout);
            double sc = 0, e = 0;
            for (size_t i = 0; i < nout; i++) {
                sc = fmax(sc, fabs(y1[i]));
                e = fmax(e, fabs((double)y0[i] - y1[i]));
            }
            CHECKF(e <= 1e-6 * sc, "output without checkpointing: max error %g of %g", e, sc);
            float *b1 = host(nb, 0, 0);
            down(b1, tf_dmodel_buffers(d0), nb);
            CHECK(tensors_close(m, b1, gbuf, 1, 1e-6, "running statistic (off vs blocks)"));
            CHECK(tf_dmodel_zero_grad(d0) == TF_OK);
            CHECKF(tf_dmodel_backward(d0, ddout) == TF_OK, "%s", tf_errmsg());
            down(g0, tf_dmodel_grads(d0), np);
            CHECK(tensors_close(m, g, g0, 0, 1e-6, "gradient (blocks vs off)"));
            free(b1);
            free(y0);
            free(y1);
            free(g0);
            cudaFree(dy0);
        }
    }
    if (bf) { /* the eval forward (validation during training) through the bf16 buffers:
                 rounded like the training forward, against the CPU's fp32 eval forward */
        float *ye = host(nout, 0, 0), *dye = dev_copy(ye, nout);
        CHECKF(tf_dmodel_forward_eval(d, dye, dmix, B) == TF_OK, "%s", tf_errmsg());
        CHECKF(tf_model_forward(m, ye, mix, B, N, 0) == TF_OK, "%s", tf_errmsg());
        CHECK(dclose("eval output (bf16)", dye, ye, nout, 0.1));
        free(ye);
        cudaFree(dye);
    }
    free(buf0);
    free(g);
    free(mix);
    free(dout);
    free(y);
    free(cbuf);
    free(gbuf);
    cudaFree(dmix);
    cudaFree(ddout);
    cudaFree(dy);
out:
    tf_dmodel_free(d0);
    tf_dmodel_free(d);
    tf_kernels_free(k);
    tf_stft_destroy(st);
    tf_model_free(m);
}

static void test_magnitude_four_targets(void) {
    model_case(4, 0, 2, 2, 11025, 0, 0, 0);
}

static void test_mask_one_target(void) {
    model_case(1, 1, 2, 2, 11025, 0, 0, 0);
}

static void test_smaller_batch(void) {
    model_case(2, 0, 3, 2, 9000, 0, 0, 0);
}

static void test_checkpointing_magnitude(void) {
    model_case(2, 0, 2, 2, 11025, 1, 0, 0);
}

static void test_checkpointing_mask_smaller_batch(void) {
    model_case(1, 1, 3, 2, 9000, 1, 0, 0);
}

/* 3 RCMs per block: the middle RCM's conv1 output is recomputed (nested, just before its
 * backward) from the first RCM's output, not from the block input */
static void test_checkpointing_three_rcms(void) {
    model_case(1, 0, 1, 1, 9000, 1, 3, 0);
}

/* bf16 storage (use_amp): magnitude, 2 targets, without checkpointing */
static void test_bf16_magnitude(void) {
    model_case(2, 0, 2, 2, 11025, 0, 0, 1);
}

/* bf16 storage with checkpointing, mask output (x0 widened for the head), a smaller batch */
static void test_bf16_checkpointing_mask_smaller_batch(void) {
    model_case(1, 1, 3, 2, 9000, 1, 0, 1);
}

/* bf16 storage, checkpointing, 3 RCMs: the RCM outputs alternate between dG and XW */
static void test_bf16_checkpointing_three_rcms(void) {
    model_case(1, 0, 1, 1, 9000, 1, 3, 1);
}

/* --use_amp: bf16 storage and bf16 convolutions and GEMMs on the device, checkpointing, 2
 * targets (the same bounds: the arithmetic's rounding is smaller than the storage's ties) */
static void test_amp_checkpointing(void) {
    model_case(2, 0, 2, 2, 11025, 1, 0, 2);
}

/* an encoder that narrows (32 -> 8 channels at level 1), fp32 and bf16 storage without
 * checkpointing: that block's input gradient does not fit its insides (it goes into D1,
 * its RCM chain into E), nor do the decoders' (their chain in dout's two halves) */
static void test_narrowing_encoder(void) {
    narrow = 1;
    model_case(2, 0, 2, 2, 11025, 0, 0, 0);
    model_case(2, 0, 2, 2, 11025, 0, 0, 1);
    narrow = 0;
}

int main(void) {
    if (!gpu_present("test_cuda_model")) return 1;
    RUN(test_magnitude_four_targets);
    RUN(test_mask_one_target);
    RUN(test_smaller_batch);
    RUN(test_checkpointing_magnitude);
    RUN(test_checkpointing_mask_smaller_batch);
    RUN(test_checkpointing_three_rcms);
    RUN(test_bf16_magnitude);
    RUN(test_bf16_checkpointing_mask_smaller_batch);
    RUN(test_bf16_checkpointing_three_rcms);
    RUN(test_amp_checkpointing);
    RUN(test_narrowing_encoder);
    return TEST_END();
}
