/* The vocabulary the configuration (util/config.h) and the model (model/model.h) share:
 * size limits and the model's enumerations. It lives at the bottom (util) so that the
 * config can name these values while the model never sees the config. */
#ifndef TFSWA_MODEL_TYPES_H
#define TFSWA_MODEL_TYPES_H

#define TF_MAX_TARGETS 8
#define TF_MAX_LEVELS  8
#define TF_NAME_MAX    32
#define TF_PATH_MAX    1024

typedef enum { TF_OUT_MAGNITUDE = 0, TF_OUT_MASK = 1 } tf_output_mode;
/* TF_DT_FP16: CUDA arithmetic only (amp_dtype fp16), never a key's value */
typedef enum { TF_DT_FP32 = 0, TF_DT_BF16 = 1, TF_DT_FP16 = 2 } tf_dtype;
/* "fp32", "bf16", "fp16" */
static inline const char *tf_dtype_name(tf_dtype d) {
    return d == TF_DT_BF16 ? "bf16" : d == TF_DT_FP16 ? "fp16" : "fp32";
}
typedef enum { TF_CKPT_OFF = 0, TF_CKPT_BLOCKS = 1 } tf_ckpt_mode;
/* Which implementation runs the heavy kernels (nn/kernels.h): oneDNN (the default) or the
 * reference OpenMP + OpenBLAS kernels on the CPU, or cuDNN on a CUDA device (CUDA builds). */
typedef enum { TF_BACKEND_DNNL = 0, TF_BACKEND_REF = 1, TF_BACKEND_CUDA = 2 } tf_backend;

#endif
