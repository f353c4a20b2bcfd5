/* bfloat16 storage: the upper 16 bits of an IEEE float32. Conversion to bf16 rounds to
 * nearest, ties to even; NaN stays NaN (quiet); widening is exact. */
#ifndef TFSWA_BF16_H
#define TFSWA_BF16_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t tf_bf16;

static inline tf_bf16 tf_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (tf_bf16)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (tf_bf16)(u >> 16);
}

static inline float tf_bf16_to_f32(tf_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* dst (n,) = bf16(src (n,)) */
void tf_bf16_from_f32(tf_bf16 *dst, const float *src, size_t n);
/* dst (n,) = float(src (n,)) */
void tf_bf16_to_f32_array(float *dst, const tf_bf16 *src, size_t n);

#endif
