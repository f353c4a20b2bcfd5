/* The arithmetic precision and the kernel backend of inference (`tfswa separate`,
 * `tfswa evaluate`, tfswa_open_with): what the user asks for and what runs.
 *
 * An inference model stores no activations, so precision changes only the arithmetic of
 * the kernels (nn/kernels.h): TF_DT_BF16 = bf16 operands with fp32 accumulation where the
 * CPU has native bf16 (oneDNN on AVX512-BF16 or AMX), fp32 arithmetic elsewhere (the
 * kernels fall back by themselves). The ref backend emulates bf16 on any CPU (operands
 * rounded to bf16, fp32 sums: the numerics of bf16 at fp32 speed), for measurements.
 *
 * auto picks bf16 only where it is native AND the measured accuracy cost on the demo model
 * is within TF_BF16_AUTO_MAX_CSDR_DELTA_DB per stem: the one place that decides is
 * tf_precision_resolve. */
#ifndef TFSWA_PRECISION_H
#define TFSWA_PRECISION_H
#include <stddef.h>

#include "util/err.h"
#include "util/model_types.h"

/* The values of include/tfswa.h's TFSWA_PRECISION_* (api.c checks they agree). */
typedef enum { TF_PRECISION_AUTO = 0, TF_PRECISION_FP32 = 1, TF_PRECISION_BF16 = 2 } tf_precision;

/* The largest |cSDR(bf16) - cSDR(fp32)| in dB over the stems of the demo model: the
 * `tfswa demo` checkpoint (tiny preset, 300 steps) evaluated on its 3 test tracks with
 * `tfswa evaluate --backend ref --precision bf16` against `--precision fp32` (the ref
 * backend's bf16 emulation has the numerics of native bf16: operands rounded to nearest
 * even, fp32 sums). Measured 2026-12-02 on an AMD EPYC (AVX2): vocals -0.0084, drums
 * -0.0050, bass -0.0075, other +0.0009 dB (README, "Precision"). */
#define TF_BF16_DEMO_MAX_CSDR_DELTA_DB 0.0084
/* auto uses bf16 only when the demo model's worst per-stem cSDR moves by at most this. */
#define TF_BF16_AUTO_MAX_CSDR_DELTA_DB 0.05

/* The compute dtype of the model (tf_model_config.compute_dtype) for a requested
 * precision on a backend: fp32 -> TF_DT_FP32; bf16 -> TF_DT_BF16 (the kernels run fp32
 * arithmetic where bf16 is not native: see tf_precision_bf16_fallback); auto -> TF_DT_BF16
 * where tf_kernels_native_bf16(backend) and TF_BF16_DEMO_MAX_CSDR_DELTA_DB <=
 * TF_BF16_AUTO_MAX_CSDR_DELTA_DB, else TF_DT_FP32. */
tf_dtype tf_precision_resolve(tf_precision requested, tf_backend backend);
/* 1 when bf16 was asked for explicitly on the dnnl backend but this CPU has no native
 * bf16 (the model then computes in fp32). */
int tf_precision_bf16_fallback(tf_precision requested, tf_backend backend);

/* "auto" | "fp32" | "bf16"; "dnnl" | "ref" ("?" for a bad value). */
const char *tf_precision_name(tf_precision p);
const char *tf_backend_name(tf_backend b);
/* Parse the names above: 1 on success, 0 for an unknown name (*out unchanged). */
int tf_precision_parse(const char *s, tf_precision *out);
int tf_backend_parse(const char *s, tf_backend *out);
/* TF_EUSER naming the value when p / b is not one of the enumerators. */
tf_status tf_precision_check(int precision, int backend);

#endif
