/* Precision and backend of inference: infer/precision.h. */
#include <string.h>

#include "infer/precision.h"
#include "nn/kernels.h"

tf_dtype tf_precision_resolve(tf_precision requested, tf_backend backend) {
    switch (requested) {
    case TF_PRECISION_BF16:
        return TF_DT_BF16;
    case TF_PRECISION_AUTO:
        return tf_kernels_native_bf16(backend) &&
                       TF_BF16_DEMO_MAX_CSDR_DELTA_DB <= TF_BF16_AUTO_MAX_CSDR_DELTA_DB
                   ? TF_DT_BF16
                   : TF_DT_FP32;
    default:
        return TF_DT_FP32;
    }
}

int tf_precision_bf16_fallback(tf_precision requested, tf_backend backend) {
    /* the ref backend emulates bf16 (rounded operands, fp32 sums): no fallback there */
    return requested == TF_PRECISION_BF16 && backend == TF_BACKEND_DNNL &&
           !tf_kernels_native_bf16(backend);
}

const char *tf_precision_name(tf_precision p) {
    switch (p) {
    case TF_PRECISION_AUTO:
        return "auto";
    case TF_PRECISION_FP32:
        return "fp32";
    case TF_PRECISION_BF16:
        return "bf16";
    }
    return "?";
}

const char *tf_backend_name(tf_backend b) {
    switch (b) {
    case TF_BACKEND_DNNL:
        return "dnnl";
    case TF_BACKEND_REF:
        return "ref";
    case TF_BACKEND_CUDA:
        return "cuda";
    }
    return "?";
}

int tf_precision_parse(const char *s, tf_precision *out) {
    for (int p = TF_PRECISION_AUTO; p <= TF_PRECISION_BF16; p++)
        if (s && !strcmp(s, tf_precision_name((tf_precision)p))) {
            *out = (tf_precision)p;
            return 1;
        }
    return 0;
}

/* dnnl | ref only: the cuda backend is chosen by the device (--device cuda), not by name */
int tf_backend_parse(const char *s, tf_backend *out) {
    for (int b = TF_BACKEND_DNNL; b <= TF_BACKEND_REF; b++)
        if (s && !strcmp(s, tf_backend_name((tf_backend)b))) {
            *out = (tf_backend)b;
            return 1;
        }
    return 0;
}

tf_status tf_precision_check(int precision, int backend) {
    if (precision < TF_PRECISION_AUTO || precision > TF_PRECISION_BF16)
        return tf_err(TF_EUSER, "precision %d is not auto (0), fp32 (1) or bf16 (2)", precision);
    if (backend < TF_BACKEND_DNNL || backend > TF_BACKEND_REF)
        return tf_err(TF_EUSER, "backend %d is not dnnl (0) or ref (1)", backend);
    return TF_OK;
}
