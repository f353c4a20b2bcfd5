/* The DEVICE memory plan of a training run on CUDA (`tfswa plan --device cuda`): the bytes
 * of every device allocation the device trainer makes (src/model/model_cuda.c,
 * src/train/step_cuda.c, fft.cu: one cudaMalloc per role), from the device model's own layout
 * functions (model/dlayout.h: tf_dlayout, tf_dlay_trainer), computed before allocating anything, in
 * every build (a CPU build too: no GPU is needed for the plan).
 *
 * Device roles (bytes), each equal to the cudaMalloc of that role:
 *   parameters, gradients, bn buffers: the CPU model's parameter table (n_params and
 *     n_buffers floats, tf_param_map);
 *   saved activations, workspace: tf_dlayout's act_floats and work_floats; of the
 *     workspace, the convolutions' share (n_convws) is sized by a cuDNN kernels object: on
 *     a GPU (a CUDA build with the device opened) the workspace of the algorithms cuDNN
 *     chooses under TF_KERN_CUDA_WS_LIMIT per shape; without one the upper bound
 *     TF_KERN_CUDA_WS_LIMIT (one buffer shared by every shape, so 256 MiB in all, not per
 *     shape); ws_chosen says which. The transformer block's backward workspace (with the
 *     cuBLAS attention's extra sums) is inside the workspace (tbws);
 *   trainer: tf_dlay_trainer's one block, split for printing by its offsets into
 *     optimizer (Adam m, v, + EMA weights), batches (mixture (B, 2, N) + targets
 *     (B, S, 2, N)) and loss (BN copy, output and its gradient (B, S, 2, N), the mrstft
 *     spectra, the reductions' doubles); the three add up to the block exactly;
 *   cufft: the cuFFT STFT objects (cuda/fft.h): the model's (the STFT of the 2B mixture
 *     channels and the ISTFT of the 2BS output signals, n_fft / hop of the config) and,
 *     with loss mrstft, one per resolution (windows 512, 1024, 2048, hop window/4) for
 *     2BS signals; each: frame and spectrum buffers, window and envelope exactly as
 *     fft.cu allocates them, plus the r2c and c2r plan work areas, ASSUMED at most one
 *     spectrum buffer each (cufftGetSize needs a GPU);
 *   cublas: the handle's workspace, ASSUMED TF_DEVPLAN_CUBLAS_WS (32 MiB, NVIDIA's
 *     recommended size on Hopper; 4 MiB on older cards).
 * Activations fp32 or bf16 storage (use_amp), checkpointing off or blocks (with blocks the
 * saved activations are the block inputs and the workspace holds the recompute scratch):
 * tf_dlayout's sizes (model/dlayout.h).
 * Host roles: the loader's batch slots (page-locked when pin_memory), validation's
 * overlap-add buffers, checkpoint staging (parameters, bn buffers and optimizer state m, v
 * (+ EMA, raw) copied back to save), and the inference model the trainer keeps on the host
 * (the weights of checkpoints: tf_model_plan_mode(..., TF_MODEL_INFER); validation runs on
 * the device, its overlap-add buffers on the host).
 * Not counted: the CUDA context and the code of cuDNN/cuBLAS/cuFFT (hundreds of MiB);
 * a training run compares the plan against the card's free memory after creating those. */
#ifndef TFSWA_DEVICE_PLAN_H
#define TFSWA_DEVICE_PLAN_H
#include <stdint.h>
#include <stdio.h>

#include "train/train.h"
#include "util/config.h"
#include "util/device.h"
#include "util/err.h"

/* The chunks per model call of `tfswa separate` (its --batch_size default) the plan prints
 * the separation's device bytes for. */
#define TF_DEVPLAN_SEP_BATCH 1

/* The assumed cuBLAS handle workspace (bytes). */
#define TF_DEVPLAN_CUBLAS_WS ((size_t)32 << 20)

typedef struct tf_device_plan {
    int64_t frames;             /* N, samples per channel of the segment */
    size_t n_params, n_buffers; /* floats */
    /* ---- device (bytes) ---- */
    size_t params, grads, buffers; /* n_params*4, n_params*4, n_buffers*4 */
    size_t activations, workspace; /* tf_dlayout act_floats*4, work_floats*4 */
    size_t conv_workspace;         /* of workspace: n_convws*4 (bf16: the operand copies too) */
    tf_dtype conv_dtype; /* the convolutions' and GEMMs' arithmetic (--use_amp: bf16 or fp16) */
    size_t trainer;      /* tf_dlay_trainer floats*4 = optimizer + batches + loss */
    size_t optimizer;    /* of trainer: Adam m, v (+ EMA weights) */
    size_t batches;      /* of trainer: mixture + targets */
    size_t loss;         /* of trainer: BN copy, output, gradient, spectra, doubles */
    size_t cufft;        /* cufft_model + cufft_loss */
    size_t cufft_model, cufft_loss; /* the model's STFT object; the mrstft ones (0 for l1) */
    size_t cufft_plans;             /* of cufft: the plans' work areas (assumed bound) */
    size_t cublas;                  /* handle workspace (assumed) */
    size_t total;                   /* device bytes: the sum of the roles above */
    /* separation of a checkpoint of this config (`tfswa separate --device cuda`, src/infer/
     * sep_model_cuda.c) with TF_DEVPLAN_SEP_BATCH chunks of the segment per call: parameters,
     * BN buffers, tf_dlayout_infer's workspace (fp32, checkpointing off, convolutions forward
     * only), the chunks (B, 2, N) and stems (B, S, 2, N), the cuFFT object and the cuBLAS
     * workspace (assumed, as above) */
    size_t sep_workspace; /* tf_dlayout_infer work_floats*4 */
    size_t sep_total;
    /* ---- host (bytes) ---- */
    size_t host_loader; /* loader batch slots */
    int host_pinned;    /* the slots are page-locked (pin_memory) */
    size_t host_validation;
    size_t host_staging; /* checkpoint staging: params, buffers, m, v (+ EMA, raw) */
    size_t host_model;   /* the host inference model (validation, checkpoints) */
    size_t host_total;
    int ws_chosen;       /* 1: cuDNN chose the conv workspace on the device; 0: upper bound */
    char ws_source[160]; /* "chosen on cuda:0" | "upper bound (no GPU: 256 MiB per shape limit)" */
    tf_device dev;       /* the device planned for */
    char dev_name[256];  /* the card's name when it was opened, else "" */
    size_t dev_free_bytes; /* free memory of the opened card, else 0 */
} tf_device_plan;

/* The segment (frames) of the host model and host trainer of a device run, created for batch
 * 1: they hold the weights, BN buffers and optimizer state for checkpoints only (the step and
 * validation run on the device), so their activation buffers are as small as a model
 * allows. */
int64_t tf_device_host_frames(const tf_config *cfg);

/* The device plan of cfg on dev. info: the device as opened by tf_device_open (its CUDA
 * device current), or NULL when it is not opened (no GPU, or a build without CUDA): then
 * the convolutions' workspace is the upper bound. TF_EUSER (tf_dlayout's message) for a
 * configuration the device model does not implement. Allocates small host
 * tables only (the parameter table) and, on an opened GPU, cuDNN's handle, descriptors and
 * algorithm choice. */
tf_status tf_device_plan_bytes(tf_device_plan *p, const tf_config *cfg, const tf_device *dev,
                               const tf_device_info *info);
/* The largest batch_size in [1, 4096] whose device plan (cfg with that batch_size, the
 * same dev and info) fits budget bytes; 0 when not even 1 fits. The plan's error (TF_EUSER
 * for a variant not implemented) when cfg cannot be planned at batch_size 1. */
tf_status tf_device_plan_max_batch(const tf_config *cfg, const tf_device *dev,
                                   const tf_device_info *info, size_t budget, int *out);

/* The largest batch of each precision x checkpointing variant of cfg, in the order
 * v = 2 * bf16 + blocks (fp32/off, fp32/blocks, bf16/off, bf16/blocks; bf16 = --use_amp:
 * bf16 activations and bf16 arithmetic, whose operand copies the workspace holds): mb[v] >= 0,
 * or -1 where the device model does not implement the variant (why[v]: the reason, else
 * ""). Other errors are returned. */
#define TF_DEVPLAN_VARIANTS 4
tf_status tf_device_plan_variants(const tf_config *cfg, const tf_device *dev,
                                  const tf_device_info *info, size_t budget,
                                  int mb[TF_DEVPLAN_VARIANTS], char why[TF_DEVPLAN_VARIANTS][256]);
/* Apply variant v (see tf_device_plan_variants) to c. */
void tf_device_plan_variant(tf_config *c, int v);

/* The plan as text into f (like tf_train_plan_print). */
void tf_device_plan_print(FILE *f, const tf_device_plan *p, const tf_config *cfg);
/* The variants' table as text: "  fp32 activations, checkpointing off   : batch_size 12",
 * "not implemented on cuda yet" for mb[v] < 0. */
void tf_device_plan_print_variants(FILE *f, const tf_config *cfg,
                                   const int mb[TF_DEVPLAN_VARIANTS]);

#endif
