/* The DEVICE memory plan of a training run on CUDA (Issue 10 item 5): the bytes of every
 * device allocation (one cudaMalloc per role), from the same layout function as the CPU
 * training plan (tf_model_plan_kern: model/model.h), computed before allocating anything,
 * in every build (a CPU build too: no GPU is needed for the plan).
 *
 * Device roles (bytes):
 *   parameters, gradients, bn buffers, saved activations: equal to the CPU plan's;
 *   optimizer: Adam m and v (+ EMA weights and a copy of the raw ones): equal to the CPU's;
 *   workspace: the CPU layout with the convolutions' share sized for cuDNN: on a GPU (a
 *     CUDA build with the device opened) the workspace of the algorithms cuDNN chooses
 *     under TF_KERN_CUDA_WS_LIMIT per shape; without one the upper bound: every shape
 *     TF_KERN_CUDA_WS_LIMIT (one buffer shared by every shape, so 256 MiB in all, not per
 *     shape); ws_chosen says which;
 *   cufft: one cuFFT STFT object (cuda/fft.h) for 2 x batch x n_targets signals of the
 *     segment (the input STFT of the 2 x batch mixture channels and the ISTFT of every
 *     output stem, each in one call): its frame and spectrum buffers, window and envelope
 *     exactly as fft.cu allocates them, plus the r2c and c2r plan work areas, ASSUMED at
 *     most one spectrum buffer each (cufftGetSize needs a GPU);
 *   cublas: the handle's workspace, ASSUMED 32 MiB (NVIDIA's recommended size on Hopper;
 *     4 MiB on older cards), plus what the cuBLAS attention backward needs beyond the CPU
 *     one (cuda/blas.h: one more (heads, L, L) sum per chunk), bounded by heads x L^2 of
 *     the longest attention sequence;
 *   batches: the current micro-batch and one prefetched: mixture (B, 2, N) + target
 *     stems (B, n_targets, 2, N) each (the targets are read in place by the loss);
 *   loss: the model output and its gradient (B, n_targets, 2, N), the loss's scratch and
 *     the BN buffers' copy taken before a step (the CPU plan's trainer less the targets).
 * Host roles: the loader's batch slots (page-locked when pin_memory), validation's
 * overlap-add buffers (all of them: the model's arena is device memory now), checkpoint
 * staging (parameters, bn buffers and optimizer state copied back to save).
 * Not counted: the CUDA context and the code of cuDNN/cuBLAS/cuFFT (hundreds of MiB);
 * a training run compares the plan against the card's free memory after creating those. */
#ifndef TFSWA_DEVICE_PLAN_H
#define TFSWA_DEVICE_PLAN_H
#include <stdio.h>

#include "train/train.h"
#include "util/config.h"
#include "util/device.h"
#include "util/err.h"

/* The assumed cuBLAS handle workspace (bytes). */
#define TF_DEVPLAN_CUBLAS_WS ((size_t)32 << 20)

typedef struct {
    tf_train_plan cpu;    /* the CPU training plan of the same config, for comparison */
    tf_model_sizes model; /* the device model (backend cuda): params .. workspace */
    size_t optimizer;     /* Adam m, v (+ EMA, raw) */
    size_t cufft;         /* cuFFT plans (bound) + buffers */
    size_t cufft_plans;   /* of cufft: the plans' work areas (assumed bound) */
    size_t cublas;        /* handle workspace (assumed) + attention backward extra */
    size_t batches;       /* 2 x (mixture + targets) */
    size_t loss;          /* output, its gradient, loss scratch, BN copy */
    size_t total;         /* device bytes */
    size_t host_loader;   /* loader batch slots */
    int host_pinned;      /* the slots are page-locked (pin_memory) */
    size_t host_validation;
    size_t host_staging; /* checkpoint staging */
    size_t host_total;
    int ws_chosen;       /* 1: cuDNN chose the conv workspace on the device; 0: upper bound */
    char ws_source[160]; /* "chosen on cuda:0" | "upper bound (no GPU: 256 MiB per shape limit)" */
    tf_device dev;       /* the device planned for */
    char dev_name[256];  /* the card's name when it was opened, else "" */
    size_t dev_free_bytes; /* free memory of the opened card, else 0 */
} tf_device_plan;

/* The device plan of cfg on dev. info: the device as opened by tf_device_open (its CUDA
 * device current), or NULL when it is not opened (no GPU, or a build without CUDA): then
 * the convolutions' workspace is the upper bound. Allocates nothing on the host beyond
 * small descriptors; on an opened GPU, cuDNN descriptors and its algorithm choice. */
tf_status tf_device_plan_bytes(tf_device_plan *p, const tf_config *cfg, const tf_device *dev,
                               const tf_device_info *info);
/* The largest batch_size in [1, 4096] whose device plan (cfg with that batch_size, the
 * same dev and info) fits budget bytes; 0 when not even 1 fits. */
tf_status tf_device_plan_max_batch(const tf_config *cfg, const tf_device *dev,
                                   const tf_device_info *info, size_t budget, int *out);
/* The plan as text into f (like tf_train_plan_print). */
void tf_device_plan_print(FILE *f, const tf_device_plan *p, const tf_config *cfg);

#endif
