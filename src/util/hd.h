/* TF_HD marks the `static inline` per-element functions shared by the CPU code (C11) and
 * the CUDA kernels (the .cu files of src/cuda, CUDA C++): __host__ __device__ under nvcc, nothing
 * otherwise. Here also the bit casts and the bf16 rounding such functions use. Nothing
 * from libc. */
#ifndef TFSWA_UTIL_HD_H
#define TFSWA_UTIL_HD_H
#include <stdint.h>

#ifdef __CUDACC__
#define TF_HD __host__ __device__
#else
#define TF_HD
#endif

/* the float whose IEEE bits are u, and back */
static inline TF_HD float tf_elem_bits_to_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
#endif
}

static inline TF_HD uint32_t tf_elem_f32_to_bits(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    __builtin_memcpy(&u, &f, sizeof u);
    return u;
#endif
}

/* f rounded to bfloat16 (nearest, ties to even; NaN stays a quiet NaN), returned as the 16
 * bits (util/bf16.h's tf_f32_to_bf16) and as the float it stands for */
static inline TF_HD uint16_t tf_elem_f32_to_bf16(float f) {
    uint32_t u = tf_elem_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline TF_HD float tf_elem_bf16_round(float f) {
    return tf_elem_bits_to_f32((uint32_t)tf_elem_f32_to_bf16(f) << 16);
}

#endif
