#include "util/bf16.h"

void tf_bf16_from_f32(tf_bf16 *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = tf_f32_to_bf16(src[i]);
}

void tf_bf16_to_f32_array(float *dst, const tf_bf16 *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = tf_bf16_to_f32(src[i]);
}
