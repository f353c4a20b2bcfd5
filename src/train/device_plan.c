/* The device memory plan (train/device_plan.h). */
#include "train/device_plan.h"

#include <math.h>
#include <string.h>

#include "data/loader.h"
#include "nn/kernels.h"
#include "train/loss.h"
#include "train/validate.h"

static size_t zmax(size_t a, size_t b) {
    return a > b ? a : b;
}

/* The cuFFT STFT object for S signals of N samples (cuda/fft.cu's create): frames
 * (S*T, n_fft) fp32, spectra (S*T, F) complex, window (n_fft), envelope (N); *plans: the
 * r2c and c2r work areas, assumed at most one spectrum buffer each. */
static size_t cufft_bytes(int n_fft, int hop, size_t S, int64_t N, size_t *plans) {
    const size_t T = (size_t)(1 + N / hop), F = (size_t)n_fft / 2 + 1, nfr = S * T;
    const size_t spectra = nfr * F * 2 * sizeof(float);
    *plans = 2 * spectra;
    return nfr * (size_t)n_fft * sizeof(float) + spectra +
           ((size_t)n_fft + (size_t)N) * sizeof(float) + *plans;
}

tf_status tf_device_plan_bytes(tf_device_plan *p, const tf_config *cfg, const tf_device *dev,
                               const tf_device_info *info) {
    memset(p, 0, sizeof *p);
    p->dev = *dev;
    TF_TRY(tf_train_plan_bytes(&p->cpu, cfg, cfg->num_threads));
    const int64_t N = p->cpu.segment_frames;
    tf_model_config mc = tf_train_model_config(cfg);
    mc.backend = TF_BACKEND_CUDA;
    mc.compute_dtype = TF_DT_FP32; /* bf16 arithmetic is not implemented on cuda */
    tf_kernels *k = NULL;
    const int on_gpu =
        info && info->dev.kind == TF_DEVICE_CUDA && info->count > 0 && tf_device_cuda_built();
    if (on_gpu) {
        TF_TRY(tf_kernels_create(&k, TF_BACKEND_CUDA, TF_DT_FP32, 1));
        p->ws_chosen = 1;
        snprintf(p->ws_source, sizeof p->ws_source, "chosen on cuda:%d", info->dev.index);
        snprintf(p->dev_name, sizeof p->dev_name, "%s", info->name);
        p->dev_free_bytes = info->free_bytes;
    } else {
        TF_TRY(tf_kernels_create_bound(&k, TF_BACKEND_CUDA, TF_KERN_CUDA_WS_LIMIT,
                                       "cuda (plan only: cuDNN workspace upper bound), fp32"));
        snprintf(p->ws_source, sizeof p->ws_source, "upper bound (no GPU: %zu MiB per shape limit)",
                 TF_KERN_CUDA_WS_LIMIT >> 20);
    }
    tf_status st = tf_model_plan_kern(&p->model, &mc, cfg->batch_size, N, 1, TF_MODEL_TRAIN, k);
    tf_kernels_free(k);
    TF_TRY(st);
    const size_t B = (size_t)cfg->batch_size, S = (size_t)cfg->n_targets;
    const size_t n = p->model.n_params;
    p->optimizer = sizeof(float) * n * (cfg->ema_decay > 0 ? 4 : 2);
    p->cufft =
        cufft_bytes(cfg->stft_window_size, cfg->stft_hop_length, 2 * B * S, N, &p->cufft_plans);
    /* the cuBLAS attention backward: one more (heads, L, L) per call than the CPU's */
    size_t attn = 0;
    if (cfg->tfswa_blocks > 0) {
        const int L = cfg->n_levels;
        const size_t Hb = (size_t)(p->model.fpad >> L), Wb = (size_t)(p->model.tpad >> L);
        const size_t Ls = (size_t)cfg->window_t * (size_t)cfg->window_f;
        const size_t Lmax = zmax(zmax(Hb, Wb), Ls);
        attn = sizeof(float) * (size_t)cfg->heads * Lmax * Lmax;
    }
    p->cublas = TF_DEVPLAN_CUBLAS_WS + attn;
    const size_t io = sizeof(float) * B * S * 2 * (size_t)N; /* (B, S, 2, N) */
    const size_t mix = sizeof(float) * B * 2 * (size_t)N;    /* (B, 2, N) */
    p->batches = 2 * (mix + io);
    p->loss = 2 * io + tf_loss_plan_bytes(cfg->loss, N) + sizeof(float) * (p->model.n_buffers + 1);
    p->total = p->model.total + p->optimizer + p->cufft + p->cublas + p->batches + p->loss;
    p->host_loader = tf_loader_plan_bytes(cfg, cfg->n_sources, N);
    p->host_pinned = cfg->pin_memory != 0;
    p->host_validation = tf_val_plan_bytes(cfg, cfg->n_sources);
    p->host_staging = p->model.params + p->model.buffers + p->optimizer;
    p->host_total = p->host_loader + p->host_validation + p->host_staging;
    return TF_OK;
}

tf_status tf_device_plan_max_batch(const tf_config *cfg, const tf_device *dev,
                                   const tf_device_info *info, size_t budget, int *out) {
    tf_config c = *cfg;
    tf_device_plan p;
    int lo = 0, hi = 4096;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        c.batch_size = mid;
        TF_TRY(tf_device_plan_bytes(&p, &c, dev, info));
        if (p.total <= budget)
            lo = mid;
        else
            hi = mid - 1;
    }
    *out = lo;
    return TF_OK;
}

static void mib(FILE *f, const char *what, size_t b) {
    tf_plan_line(f, 30, what, b);
}

void tf_device_plan_print(FILE *f, const tf_device_plan *p, const tf_config *cfg) {
    char dn[32];
    tf_device_name(&p->dev, dn, sizeof dn);
    fprintf(f,
            "device memory plan (%s%s%s): batch %d x %.2f s (%lld frames), %s activations, "
            "checkpointing %s\n",
            dn, p->dev_name[0] ? " " : "", p->dev_name, cfg->batch_size, cfg->segment_seconds,
            (long long)p->cpu.segment_frames, cfg->activation_dtype == TF_DT_BF16 ? "bf16" : "fp32",
            cfg->checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off");
    fprintf(f, "  plan only: training on CUDA is not implemented yet (the model's forward and "
               "backward run on the CPU only)\n");
    fprintf(f, "  cuDNN workspace: %s\n", p->ws_source);
    fprintf(f, "  parameters: %zu (trainable), %zu buffers\n", p->model.n_params,
            p->model.n_buffers);
    fprintf(f, "device (one cudaMalloc per role):\n");
    tf_plan_model_lines(f, 30, &p->model, p->optimizer, cfg->ema_decay > 0);
    mib(f, p->ws_chosen ? "  of which cuDNN (chosen)" : "  of which cuDNN (upper bound)",
        p->model.conv_workspace);
    mib(f, "cuFFT (STFT/ISTFT)", p->cufft);
    mib(f, "  of which plan work (assumed)", p->cufft_plans);
    mib(f, "cuBLAS (handle ws, attention)", p->cublas);
    mib(f, "batches (current + prefetch)", p->batches);
    mib(f, "loss (output, gradient)", p->loss);
    mib(f, "total (device)", p->total);
    if (p->dev_free_bytes)
        fprintf(f, "  %s has %.1f MiB free now: the plan %s\n", dn,
                (double)p->dev_free_bytes / 1048576.0,
                p->total <= p->dev_free_bytes ? "fits" : "does NOT fit");
    fprintf(f, "  not counted: the CUDA context and the cuDNN/cuBLAS/cuFFT code (hundreds of "
               "MiB)\n");
    fprintf(f, "host:\n");
    mib(f, p->host_pinned ? "loader batches (pinned)" : "loader batches (pageable)",
        p->host_loader);
    mib(f, "validation", p->host_validation);
    mib(f, "checkpoint staging", p->host_staging);
    mib(f, "total (host)", p->host_total);
}
