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

/* f rounded to IEEE binary16 (--amp_dtype fp16 on CUDA: nearest, ties to even, subnormals
 * kept, |f| >= 65520 to +-Inf, NaN a quiet NaN), as its 16 bits */
static inline TF_HD uint16_t tf_elem_f32_to_f16(float f) {
    const uint32_t u = tf_elem_f32_to_bits(f), a = u & 0x7fffffffu;
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504: Inf */
    if (a >= 0x38800000u) {                                  /* normal: |f| >= 2^-14 */
        uint32_t r = a - 0x38000000u;                        /* exponent bias 127 -> 15 */
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) return sign; /* |f| <= 2^-25: 0 (2^-25 is a tie: to even, 0) */
    /* subnormal: |f| / 2^-24 rounded; the 24-bit significand shifted by 14..24 */
    const uint32_t m = (a & 0x7fffffu) | 0x800000u, sh = 126u - (a >> 23);
    const uint32_t half = 1u << (sh - 1), rem = m & ((half << 1) - 1u);
    uint32_t q = m >> sh;
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

/* the float an IEEE binary16 stands for (exact) */
static inline TF_HD float tf_elem_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return tf_elem_bits_to_f32(sign | 0x7f800000u | (m << 13)); /* Inf, NaN */
    if (e) return tf_elem_bits_to_f32(sign | ((e + 112u) << 23) | (m << 13));
    const float v = (float)m * 5.9604644775390625e-8f; /* m * 2^-24: subnormal or 0 */
    return sign ? -v : v;
}

#endif
