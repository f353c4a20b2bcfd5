/* The device memory plan (train/device_plan.h). */
#include "train/device_plan.h"

#include <math.h>
#include <string.h>

#include "data/loader.h"
#include "model/dlayout.h"
#include "model/model_internal.h"
#include "nn/kernels.h"
#include "train/validate.h"

/* One cuFFT STFT object for S signals of N samples (cuda/fft.cu's create): frames
 * (S*T, n_fft) fp32, spectra (S*T, F) complex, window (n_fft), envelope (N), T = 1 + N/hop
 * (tf_stft_frames), F = n_fft/2 + 1; plus the r2c and c2r work areas, assumed at most one
 * spectrum buffer each (added to *plans). */
static size_t cufft_bytes(int n_fft, int hop, size_t S, int64_t N, size_t *plans) {
    const size_t T = (size_t)(1 + N / hop), F = (size_t)n_fft / 2 + 1, nfr = S * T;
    const size_t spectra = nfr * F * 2 * sizeof(float);
    *plans += 2 * spectra;
    return nfr * (size_t)n_fft * sizeof(float) + spectra +
           ((size_t)n_fft + (size_t)N) * sizeof(float) + 2 * spectra;
}

/* the mrstft loss's resolutions (src/train/step_cuda.c RES_WIN, hop = window / 4) */
static const int MRSTFT_WIN[3] = {512, 1024, 2048};

tf_status tf_device_plan_bytes(tf_device_plan *p, const tf_config *cfg, const tf_device *dev,
                               const tf_device_info *info) {
    memset(p, 0, sizeof *p);
    p->dev = *dev;
    const int64_t N = (int64_t)llround(cfg->segment_seconds * cfg->sample_rate);
    p->frames = N;
    /* the device model's architecture, as train.c's open_device builds it */
    const tf_model_config mc = tf_train_model_config(cfg);
    tf_arch a;
    TF_TRY(tf_arch_from_config(&a, &mc));
    tf_param_map pm;
    TF_TRY(tf_param_map_create(&pm, &a));
    p->n_params = pm.n_params, p->n_buffers = pm.n_buffers;
    tf_param_map_free(&pm);
    /* the convolutions' workspace: cuDNN's choice on the opened GPU, else the bound */
    tf_kernels *k = NULL;
    const int on_gpu =
        info && info->dev.kind == TF_DEVICE_CUDA && info->count > 0 && tf_device_cuda_built();
    const tf_dtype cd = tf_config_device_compute(cfg); /* --use_amp: bf16, or fp16 */
    if (on_gpu) {
        TF_TRY(tf_kernels_create(&k, TF_BACKEND_CUDA, cd, 1));
        p->ws_chosen = 1;
        snprintf(p->ws_source, sizeof p->ws_source, "chosen on cuda:%d", info->dev.index);
        snprintf(p->dev_name, sizeof p->dev_name, "%s", info->name);
        p->dev_free_bytes = info->free_bytes;
    } else {
        TF_TRY(tf_kernels_create_bound(
            &k, TF_BACKEND_CUDA, cd, TF_KERN_CUDA_WS_LIMIT,
            cd == TF_DT_BF16   ? "cuda (plan only: cuDNN workspace upper bound), bf16 arithmetic "
                                 "(compute capability 8.0+)"
            : cd == TF_DT_FP16 ? "cuda (plan only: cuDNN workspace upper bound), fp16 arithmetic "
                                 "(compute capability 7.0+)"
                               : "cuda (plan only: cuDNN workspace upper bound), fp32"));
        snprintf(p->ws_source, sizeof p->ws_source, "upper bound (no GPU: %zu MiB per shape limit)",
                 TF_KERN_CUDA_WS_LIMIT >> 20);
    }
    tf_dlay y, yi;
    tf_status st = tf_dlayout(&y, &a, cfg->batch_size, N, k);
    /* separation: the device model of src/infer/sep_model_cuda.c, fp32 (storage and
     * arithmetic) without checkpointing whatever the training uses */
    tf_arch ai = a;
    ai.act_dtype = TF_DT_FP32;
    ai.ckpt = TF_CKPT_OFF;
    tf_kernels *k32 = NULL;
    p->conv_dtype = tf_kernels_compute(k);
    if (!st && p->conv_dtype != TF_DT_FP32)
        st = on_gpu ? tf_kernels_create(&k32, TF_BACKEND_CUDA, TF_DT_FP32, 1)
                    : tf_kernels_create_bound(&k32, TF_BACKEND_CUDA, TF_DT_FP32,
                                              TF_KERN_CUDA_WS_LIMIT, "");
    if (!st) st = tf_dlayout_infer(&yi, &ai, TF_DEVPLAN_SEP_BATCH, N, k32 ? k32 : k);
    tf_kernels_free(k32);
    tf_kernels_free(k);
    TF_TRY(st);
    const size_t f = sizeof(float);
    p->params = p->grads = p->n_params * f;
    p->buffers = p->n_buffers * f;
    p->activations = y.act_floats * f;
    p->workspace = y.work_floats * f;
    p->conv_workspace = y.n_convws * f;
    /* the trainer block (src/train/step_cuda.c), split by its offsets:
     * [m, v, ema][bufsave][mix, tgt][out, dout, spec, dbl] */
    const int B = cfg->batch_size, S = a.S, mr = cfg->loss == TF_LOSS_MRSTFT;
    tf_dtrl o;
    tf_dlay_trainer(&o, p->n_params, p->n_buffers, cfg->ema_decay > 0, B, S, N,
                    mr ? tf_dlay_mrstft_bins_frames(N) : 0);
    p->trainer = o.floats * f;
    p->optimizer = (o.bufsave - o.m) * f;
    p->batches = (o.out - o.mix) * f;
    p->loss = (o.mix - o.bufsave) * f + (o.floats - o.out) * f;
    /* cuFFT: the model's object (src/model/model_cuda.c: max(2BS, 2B) signals) and the loss's */
    const size_t sig = 2 * (size_t)B * (size_t)(S > 1 ? S : 1);
    p->cufft_model = cufft_bytes(a.n_fft, a.hop, sig, N, &p->cufft_plans);
    if (mr)
        for (int r = 0; r < 3; r++)
            p->cufft_loss += cufft_bytes(MRSTFT_WIN[r], MRSTFT_WIN[r] / 4, (size_t)B * S * 2, N,
                                         &p->cufft_plans);
    p->cufft = p->cufft_model + p->cufft_loss;
    p->cublas = TF_DEVPLAN_CUBLAS_WS;
    p->total = p->params + p->grads + p->buffers + p->activations + p->workspace + p->trainer +
               p->cufft + p->cublas;
    {
        const size_t sb = TF_DEVPLAN_SEP_BATCH, nmix = sb * 2 * (size_t)N, sig = sb * 2 * S;
        size_t plans = 0;
        p->sep_workspace = yi.work_floats * f;
        p->sep_total = p->params + p->buffers + p->sep_workspace + (nmix + nmix * S) * f +
                       cufft_bytes(a.n_fft, a.hop, sig > 2 * sb ? sig : 2 * sb, N, &plans) +
                       p->cublas;
    }
    /* host */
    p->host_loader = tf_loader_plan_bytes(cfg, cfg->n_sources, N);
    p->host_pinned = cfg->pin_memory != 0;
    p->host_validation = tf_val_plan_bytes(cfg, cfg->n_sources);
    p->host_staging = p->params + p->buffers + f * p->n_params * (cfg->ema_decay > 0 ? 4 : 2);
    tf_model_sizes hm;
    TF_TRY(tf_model_plan_mode(&hm, &mc, 1, tf_device_host_frames(cfg), cfg->num_threads,
                              TF_MODEL_INFER));
    p->host_model = hm.total;
    p->host_total = p->host_loader + p->host_validation + p->host_staging + p->host_model;
    return TF_OK;
}

tf_status tf_device_plan_max_batch(const tf_config *cfg, const tf_device *dev,
                                   const tf_device_info *info, size_t budget, int *out) {
    *out = 0;
    tf_config c = *cfg;
    tf_device_plan p;
    c.batch_size = 1;
    TF_TRY(tf_device_plan_bytes(&p, &c, dev, info));
    if (p.total > budget) return TF_OK;
    int lo = 1, hi = 4096;
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

void tf_device_plan_variant(tf_config *c, int v) {
    c->activation_dtype = c->compute_dtype = v & 2 ? TF_DT_BF16 : TF_DT_FP32;
    c->checkpointing = v & 1 ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
}

tf_status tf_device_plan_variants(const tf_config *cfg, const tf_device *dev,
                                  const tf_device_info *info, size_t budget,
                                  int mb[TF_DEVPLAN_VARIANTS], char why[TF_DEVPLAN_VARIANTS][256]) {
    for (int v = 0; v < TF_DEVPLAN_VARIANTS; v++) {
        tf_config k = *cfg;
        tf_device_plan_variant(&k, v);
        why[v][0] = 0;
        const tf_status st = tf_device_plan_max_batch(&k, dev, info, budget, &mb[v]);
        /* fp32 / off is the device model's own: its errors are the config's */
        if (st == TF_EUSER && v > 0) {
            mb[v] = -1;
            snprintf(why[v], 256, "%s", tf_errmsg());
            tf_err_clear();
        } else if (st) {
            return st;
        }
    }
    return TF_OK;
}

static void mib(FILE *f, const char *what, size_t b) {
    tf_plan_line(f, 48, what, b); /* the longest: the host model's */
}

void tf_device_plan_print(FILE *f, const tf_device_plan *p, const tf_config *cfg) {
    char dn[32];
    tf_device_name(&p->dev, dn, sizeof dn);
    const int ema = cfg->ema_decay > 0, mr = cfg->loss == TF_LOSS_MRSTFT;
    fprintf(f,
            "device memory plan (%s%s%s): batch %d x %.2f s (%lld frames), %s activations, "
            "%s arithmetic, checkpointing %s\n",
            dn, p->dev_name[0] ? " " : "", p->dev_name, cfg->batch_size, cfg->segment_seconds,
            (long long)p->frames, cfg->activation_dtype == TF_DT_BF16 ? "bf16" : "fp32",
            tf_dtype_name(p->conv_dtype), cfg->checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off");
    fprintf(f, "  cuDNN workspace: %s\n", p->ws_source);
    fprintf(f, "  parameters: %zu (trainable), %zu buffers\n", p->n_params, p->n_buffers);
    fprintf(f, "device (one cudaMalloc per role):\n");
    mib(f, "parameters", p->params);
    mib(f, "gradients", p->grads);
    mib(f, "bn buffers", p->buffers);
    mib(f, "saved activations", p->activations);
    mib(f, "workspace", p->workspace);
    mib(f,
        p->conv_dtype != TF_DT_FP32
            ? (p->ws_chosen ? "  of which cuDNN + 16-bit copies (chosen)"
                            : "  of which cuDNN + 16-bit copies (upper bound)")
            : (p->ws_chosen ? "  of which cuDNN (chosen)" : "  of which cuDNN (upper bound)"),
        p->conv_workspace);
    mib(f, "trainer (one block)", p->trainer);
    mib(f, ema ? "  optimizer (m, v, ema)" : "  optimizer (m, v)", p->optimizer);
    mib(f, "  batches (mixture, targets)", p->batches);
    mib(f, mr ? "  loss (output, grad, spectra)" : "  loss (output, gradient)", p->loss);
    mib(f, mr ? "cuFFT (STFT/ISTFT, mrstft)" : "cuFFT (STFT/ISTFT)", p->cufft);
    if (mr) mib(f, "  of which mrstft loss (3)", p->cufft_loss);
    mib(f, "  of which plan work (assumed)", p->cufft_plans);
    mib(f, "cuBLAS handle ws (assumed)", p->cublas);
    mib(f, "total (device)", p->total);
    char sl[64];
    snprintf(sl, sizeof sl, "separate --batch_size %d (device)", TF_DEVPLAN_SEP_BATCH);
    mib(f, sl, p->sep_total);
    if (p->dev_free_bytes)
        fprintf(f, "  %s has %.1f MiB free now: the plan %s\n", dn,
                (double)p->dev_free_bytes / 1048576.0,
                p->total <= p->dev_free_bytes ? "fits" : "does NOT fit");
    fprintf(f, "  not counted: the CUDA context and the cuDNN/cuBLAS/cuFFT code (hundreds of "
               "MiB); with several ranks NCCL's buffers\n");
    fprintf(f, "host:\n");
    mib(f, p->host_pinned ? "loader batches (pinned)" : "loader batches (pageable)",
        p->host_loader);
    mib(f, "validation", p->host_validation);
    mib(f, "checkpoint staging", p->host_staging);
    mib(f, "host model (inference; checkpoints)", p->host_model);
    mib(f, "total (host)", p->host_total);
}

void tf_device_plan_print_variants(FILE *f, const tf_config *cfg,
                                   const int mb[TF_DEVPLAN_VARIANTS]) {
    fprintf(f, "largest batch_size within the budget on the device (segment %.2f s):\n",
            cfg->segment_seconds);
    for (int v = 0; v < TF_DEVPLAN_VARIANTS; v++) {
        fprintf(f, "  %-4s activations, checkpointing %-6s: ", v & 2 ? "bf16" : "fp32",
                v & 1 ? "blocks" : "off");
        if (mb[v] < 0)
            fprintf(f, "not implemented on cuda yet\n");
        else
            fprintf(f, "batch_size %d%s\n", mb[v], mb[v] ? "" : " (does not fit even at 1)");
    }
}

int64_t tf_device_host_frames(const tf_config *cfg) {
    return 4 * (int64_t)cfg->stft_window_size; /* a few STFT frames: the smallest useful model */
}
