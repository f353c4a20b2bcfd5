/* CPU emulation of the few cuFFT calls src/cuda/fft.cu makes (tests/gpu/run_emulated.sh):
 * a plan is an FFTW plan_many of the same batched 1-D layout (contiguous, idist/odist as
 * given), executed with the new-array functions (planned FFTW_UNALIGNED: "device" buffers
 * are plain malloc). cuFFT and FFTW compute the same unnormalised transforms. */
#ifndef TFSWA_EMU_CUFFT_H
#define TFSWA_EMU_CUFFT_H
#include <fftw3.h>

#include "cuda_runtime_api.h"

typedef enum {
    CUFFT_SUCCESS = 0,
    CUFFT_INVALID_PLAN = 1,
    CUFFT_ALLOC_FAILED = 2,
    CUFFT_INVALID_TYPE = 3,
    CUFFT_INVALID_VALUE = 4,
    CUFFT_INTERNAL_ERROR = 5,
    CUFFT_EXEC_FAILED = 6,
    CUFFT_SETUP_FAILED = 7,
    CUFFT_INVALID_SIZE = 8
} cufftResult;
typedef enum { CUFFT_R2C = 0x2a, CUFFT_C2R = 0x2c } cufftType;
typedef float cufftReal;
typedef struct {
    float x, y;
} cufftComplex;
struct emu_fft {
    fftwf_plan p;
    cufftType type;
};
typedef emu_fft *cufftHandle;

static inline cufftResult cufftCreate(cufftHandle *h) {
    *h = new emu_fft{nullptr, CUFFT_R2C};
    return CUFFT_SUCCESS;
}
static inline cufftResult cufftDestroy(cufftHandle h) {
    if (h->p) fftwf_destroy_plan(h->p);
    delete h;
    return CUFFT_SUCCESS;
}
static inline cufftResult cufftSetStream(cufftHandle, cudaStream_t) {
    return CUFFT_SUCCESS;
}
static inline cufftResult cufftMakePlanMany(cufftHandle h, int rank, int *n, int *inembed,
                                            int istride, int idist, int *onembed, int ostride,
                                            int odist, cufftType type, int batch, size_t *ws) {
    if (rank != 1 || inembed || onembed || istride != 1 || ostride != 1) return CUFFT_INVALID_VALUE;
    int F = n[0] / 2 + 1;
    if (type == CUFFT_R2C ? (idist < n[0] || odist < F) : (idist < F || odist < n[0]))
        return CUFFT_INVALID_VALUE;
    size_t in_floats = (size_t)idist * batch * (type == CUFFT_R2C ? 1 : 2);
    size_t out_floats = (size_t)odist * batch * (type == CUFFT_R2C ? 2 : 1);
    float *a = fftwf_alloc_real(in_floats), *b = fftwf_alloc_real(out_floats);
    if (!a || !b) return CUFFT_ALLOC_FAILED;
    h->type = type;
    h->p = type == CUFFT_R2C
               ? fftwf_plan_many_dft_r2c(1, n, batch, a, NULL, 1, idist, (fftwf_complex *)b, NULL,
                                         1, odist, FFTW_ESTIMATE | FFTW_UNALIGNED)
               : fftwf_plan_many_dft_c2r(1, n, batch, (fftwf_complex *)a, NULL, 1, idist, b, NULL,
                                         1, odist, FFTW_ESTIMATE | FFTW_UNALIGNED);
    fftwf_free(a);
    fftwf_free(b);
    *ws = 0;
    return h->p ? CUFFT_SUCCESS : CUFFT_SETUP_FAILED;
}
static inline cufftResult cufftGetSize(cufftHandle h, size_t *ws) {
    *ws = 0;
    return h->p ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}
static inline cufftResult cufftExecR2C(cufftHandle h, cufftReal *in, cufftComplex *out) {
    if (!h->p || h->type != CUFFT_R2C) return CUFFT_INVALID_PLAN;
    fftwf_execute_dft_r2c(h->p, in, (fftwf_complex *)out);
    return CUFFT_SUCCESS;
}
static inline cufftResult cufftExecC2R(cufftHandle h, cufftComplex *in, cufftReal *out) {
    if (!h->p || h->type != CUFFT_C2R) return CUFFT_INVALID_PLAN;
    fftwf_execute_dft_c2r(h->p, (fftwf_complex *)in, out);
    return CUFFT_SUCCESS;
}
#endif
