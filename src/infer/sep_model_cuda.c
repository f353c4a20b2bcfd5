/* The TFSWA-ResUNet of a checkpoint as a separation model on a CUDA device (infer/separate.h,
 * tf_sep_model_checkpoint_cuda): the device model's eval forward (model/model_cuda.h). Only
 * the chunks cross: mix (nb, 2, L) to the device, the stems (nb, S, 2, L) back. CUDA builds
 * only (make CUDA=1). */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/stft.h"
#include "infer/separate.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/model_cuda.h"
#include "util/device.h"

/* tests/gpu/run_emulated.sh compiles this file against the CPU emulation of the CUDA runtime
 * and a CPU build of the library (TFSWA_GPU_EMU): the convolutions are the ref kernels on host
 * memory there, and no device is opened */
#ifdef TFSWA_GPU_EMU
#define SEP_CONV_BACKEND TF_BACKEND_REF
#else
#define SEP_CONV_BACKEND TF_BACKEND_CUDA
#endif

typedef struct {
    tf_device dev;
    tf_arch a;
    float *params, *buffers; /* host copies of the checkpoint's weights */
    size_t n_params, n_buffers;
    tf_kernels *k;
    tf_stft *st;
    tf_dmodel *d;
    float *dmix, *dout; /* device (batch, 2, frames), (batch, S, 2, frames) */
    int batch;
    int64_t frames;
    char desc[320];
} cuda_model;

static tf_status cuda_err(const char *what, cudaError_t e) {
    return tf_err(TF_EINTERNAL, "cuda separation: %s failed (%s)", what, cudaGetErrorString(e));
}

static void release(cuda_model *c) {
    tf_dmodel_free(c->d);
    tf_kernels_free(c->k);
    cudaFree(c->dmix);
    cudaFree(c->dout);
    c->d = NULL, c->k = NULL, c->dmix = NULL, c->dout = NULL;
    c->batch = 0, c->frames = 0;
}

/* The device model for (batch, frames), its weights copied in */
static tf_status create(cuda_model *c, int batch, int64_t frames) {
    release(c);
#ifndef TFSWA_GPU_EMU
    TF_TRY(tf_device_open(&c->dev, "--device", NULL, NULL)); /* this thread's device */
#endif
    TF_TRY(tf_kernels_create(&c->k, SEP_CONV_BACKEND, TF_DT_FP32, 1));
    tf_status s = tf_dmodel_create_infer(&c->d, &c->a, batch, frames, c->k, c->st);
    cudaError_t e = cudaSuccess;
    const size_t nmix = (size_t)batch * 2 * (size_t)frames, nout = nmix * (size_t)c->a.S;
    if (!s && (e = cudaMalloc((void **)&c->dmix, nmix * sizeof(float))) != cudaSuccess)
        s = cuda_err("cudaMalloc (chunks)", e);
    if (!s && (e = cudaMalloc((void **)&c->dout, nout * sizeof(float))) != cudaSuccess)
        s = cuda_err("cudaMalloc (stems)", e);
    if (!s && (e = cudaMemcpy(tf_dmodel_params(c->d), c->params, c->n_params * sizeof(float),
                              cudaMemcpyHostToDevice)) != cudaSuccess)
        s = cuda_err("cudaMemcpy (weights)", e);
    if (!s && c->n_buffers &&
        (e = cudaMemcpy(tf_dmodel_buffers(c->d), c->buffers, c->n_buffers * sizeof(float),
                        cudaMemcpyHostToDevice)) != cudaSuccess)
        s = cuda_err("cudaMemcpy (BatchNorm buffers)", e);
    if (s) {
        release(c);
        return s;
    }
    c->batch = batch, c->frames = frames;
    return TF_OK;
}

static tf_status cu_prepare(void *ctx, int batch, int64_t frames, int threads) {
    cuda_model *c = ctx;
    (void)threads; /* the host side is copies only */
    if (c->d && batch == c->batch && frames == c->frames) return TF_OK;
    return create(c, batch, frames);
}

static tf_status cu_forward(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    cuda_model *c = ctx;
    if (!c->d || nb < 1 || nb > c->batch || L != c->frames)
        return tf_err(TF_EINTERNAL,
                      "cuda separation: %d chunks of %lld frames (prepared %d x %lld)", nb,
                      (long long)L, c->batch, (long long)c->frames);
    return tf_dmodel_forward_eval_host(c->d, out, mix, nb, c->dout, c->dmix, "cuda separation");
}

static const char *cu_describe(void *ctx) {
    cuda_model *c = ctx;
    if (!c->k) return NULL;
    snprintf(c->desc, sizeof c->desc, "%s", tf_kernels_describe(c->k));
    return c->desc;
}

static void cu_close(void *ctx) {
    cuda_model *c = ctx;
    if (!c) return;
    release(c);
    tf_stft_destroy(c->st);
    free(c->params);
    free(c->buffers);
    free(c);
}

tf_status tf_sep_model_checkpoint_cuda(tf_sep_model *m, const char *path, int device_index) {
    memset(m, 0, sizeof *m);
    cuda_model *c = tf_calloc(1, sizeof *c, "cuda separation model");
    if (!c) return TF_EINTERNAL;
    c->dev.kind = TF_DEVICE_CUDA, c->dev.index = device_index;
    char dir[TF_PATH_MAX];
    tf_ckpt_info info;
    tf_model *hm = NULL;
    tf_status st = tf_ckpt_resolve(path, dir, sizeof dir);
    if (!st) st = tf_ckpt_read_info(dir, &info);
    if (!st) {
        /* the weights through a small host inference model (batch 1, a few STFT windows) */
        tf_model_config run;
        memset(&run, 0, sizeof run);
        run.threads = 1;
        run.backend = TF_BACKEND_REF;
        run.compute_dtype = TF_DT_FP32;
        st = tf_model_from_checkpoint(&hm, &info, dir, &run, 1, 4 * (int64_t)info.model.n_fft,
                                      TF_MODEL_INFER);
    }
    if (!st) {
        /* the device model is fp32 without checkpointing whatever the training used (an
         * inference forward saves nothing for a backward) */
        tf_model_config mc = info.model;
        mc.activation_dtype = TF_DT_FP32;
        mc.checkpointing = TF_CKPT_OFF;
        mc.backend = TF_BACKEND_CUDA;
        mc.compute_dtype = TF_DT_FP32;
        st = tf_arch_from_config(&c->a, &mc);
    }
    if (!st) {
        const tf_model_sizes *p = tf_model_get_plan(hm);
        c->n_params = p->n_params, c->n_buffers = p->n_buffers;
        c->params = tf_malloc(c->n_params * sizeof(float), "checkpoint weights");
        c->buffers = tf_malloc((c->n_buffers ? c->n_buffers : 1) * sizeof(float),
                               "checkpoint BatchNorm buffers");
        if (!c->params || !c->buffers) st = TF_EINTERNAL;
    }
    if (!st) {
        memcpy(c->params, tf_model_params(hm), c->n_params * sizeof(float));
        memcpy(c->buffers, tf_model_buffers(hm), c->n_buffers * sizeof(float));
        st = tf_stft_create(&c->st, c->a.n_fft, c->a.hop);
    }
    tf_model_free(hm);
    /* the device model now, for (batch 1, the training segment): a device that cannot hold
     * it fails here, before any song is read */
    const int64_t seg = st ? 0 : (int64_t)llround(info.segment_seconds * info.sample_rate);
    if (!st) st = create(c, 1, seg);
    if (st) {
        cu_close(c);
        return st;
    }
    snprintf(m->name, sizeof m->name, "%s", path);
    m->n_targets = info.model.n_targets;
    for (int i = 0; i < m->n_targets; i++)
        snprintf(m->targets[i], TF_NAME_MAX, "%s", info.targets[i]);
    m->sample_rate = info.sample_rate;
    m->segment_seconds = info.segment_seconds;
    m->min_frames = info.model.n_fft;
    m->prepare = cu_prepare, m->forward = cu_forward, m->close = cu_close;
    m->describe = cu_describe, m->ctx = c;
    return TF_OK;
}
