/* TF_CLONES: compile a function for AVX2+FMA and for baseline x86-64; the dynamic loader
 * picks one at run time (never -march=native). Off under ASan and with other compilers. */
#ifndef TFSWA_NN_CLONES_H
#define TFSWA_NN_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define TF_CLONES __attribute__((target_clones("avx2,fma", "default")))
#else
#define TF_CLONES
#endif

#endif
