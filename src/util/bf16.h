/* bfloat16 storage: the upper 16 bits of an IEEE float32. Conversion to bf16 rounds to
 * nearest, ties to even; NaN stays NaN (quiet); widening is exact. */
#ifndef TFSWA_BF16_H
#define TFSWA_BF16_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/hd.h"

typedef uint16_t tf_bf16;

/* (the rounding is util/hd.h's, shared with the CUDA kernels) */
static inline tf_bf16 tf_f32_to_bf16(float f) {
    return tf_elem_f32_to_bf16(f);
}

static inline float tf_bf16_to_f32(tf_bf16 h) {
    return tf_elem_bits_to_f32((uint32_t)h << 16);
}

/* dst (n,) = bf16(src (n,)) */
void tf_bf16_from_f32(tf_bf16 *dst, const float *src, size_t n);
/* dst (n,) = float(src (n,)) */
void tf_bf16_to_f32_array(float *dst, const tf_bf16 *src, size_t n);

#endif
