/* The device model (src/model/model_cuda.c) against the CPU model (src/model/forward.c): the
 * tiny preset's training forward (output waveforms, BatchNorm running statistics) and
 * backward (every parameter's gradient), fp32, magnitude and mask outputs, 1 and 4 targets,
 * a batch smaller than planned. Both models get the same parameters and inputs.
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

static float *dev_copy(const float *h, size_t n) {
    void *d = NULL;
    CU(cudaMalloc(&d, (n ? n : 1) * sizeof(float)));
    CU(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

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

static void model_case(int targets, int output_mask, int B_plan, int B, int64_t N) {
    tf_config c = preset_config("tiny");
    c.n_targets = targets;
    if (output_mask) c.output = TF_OUT_MASK;
    printf("  %d target(s), %s output, batch %d of %d, %lld samples\n", targets,
           output_mask ? "mask" : "magnitude", B, B_plan, (long long)N);
    const tf_model_config mc = tf_train_model_config(&c);
    tf_model *m = NULL;
    CHECKF(tf_model_create(&m, &mc, B_plan, N, 2) == TF_OK, "%s", tf_errmsg());
    if (!m) return;
    tf_arch a;
    CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
    tf_kernels *k = NULL;
    CHECKF(tf_kernels_create(&k, CONV_BACKEND, TF_DT_FP32, 2) == TF_OK, "%s", tf_errmsg());
    tf_stft *st = NULL;
    CHECK(tf_stft_create(&st, a.n_fft, a.hop) == TF_OK);
    tf_dmodel *d = NULL;
    CHECKF(tf_dmodel_create(&d, &a, B_plan, N, k, st) == TF_OK, "%s", tf_errmsg());
    if (!d || !k || !st) goto out;
    const size_t np = tf_dmodel_n_params(d), nb = tf_dmodel_n_buffers(d);
    CHECK(np == tf_model_get_plan(m)->n_params && nb == tf_model_get_plan(m)->n_buffers);
    CU(cudaMemcpy(tf_dmodel_params(d), tf_model_params(m), np * 4, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(tf_dmodel_buffers(d), tf_model_buffers(m), nb * 4, cudaMemcpyHostToDevice));
    const int S = a.S;
    const size_t nmix = (size_t)B * 2 * N, nout = (size_t)B * S * 2 * N;
    float *mix = host(nmix, -0.5f, 0.5f), *dout = host(nout, -1e-3f, 1e-3f);
    float *y = host(nout, 0, 0), *cbuf = host(nb, 0, 0), *gbuf = host(nb, 0, 0);
    float *dmix = dev_copy(mix, nmix), *ddout = dev_copy(dout, nout), *dy = dev_copy(y, nout);
    /* forward */
    CHECKF(tf_model_forward(m, y, mix, B, N, 1) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dmodel_forward(d, dy, dmix, B) == TF_OK, "%s", tf_errmsg());
    CHECK(dclose("output", dy, y, nout, 1e-4));
    down(gbuf, tf_dmodel_buffers(d), nb);
    memcpy(cbuf, tf_model_buffers(m), nb * 4);
    CHECK(tensors_close(m, gbuf, cbuf, 1, 1e-5, "running statistic"));
    /* backward */
    tf_model_zero_grad(m);
    CHECK(tf_dmodel_zero_grad(d) == TF_OK);
    CHECKF(tf_model_backward(m, dout) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dmodel_backward(d, ddout) == TF_OK, "%s", tf_errmsg());
    float *g = host(np, 0, 0);
    down(g, tf_dmodel_grads(d), np);
    CHECK(tensors_close(m, g, tf_model_grads(m), 0, 1e-3, "gradient"));
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
    tf_dmodel_free(d);
    tf_kernels_free(k);
    tf_stft_destroy(st);
    tf_model_free(m);
}

static void test_magnitude_four_targets(void) {
    model_case(4, 0, 2, 2, 11025);
}

static void test_mask_one_target(void) {
    model_case(1, 1, 2, 2, 11025);
}

static void test_smaller_batch(void) {
    model_case(2, 0, 3, 2, 9000);
}

int main(void) {
    if (!gpu_present("test_cuda_model")) return 1;
    RUN(test_magnitude_four_targets);
    RUN(test_mask_one_target);
    RUN(test_smaller_batch);
    return TEST_END();
}
