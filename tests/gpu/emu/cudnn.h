/* CPU emulation of the cuDNN calls src/cuda/conv.cu makes (tests/gpu/run_emulated.sh): the
 * legacy convolution API on NCHW tensors of fp32, bf16 or fp16, computed by the CPU ref
 * conv2d of nn/conv.h in fp32 (16-bit operands widened exactly, results rounded to nearest
 * even: bf16 by bit arithmetic, fp16 by the compiler's _Float16), with alpha/beta as cuDNN
 * defines them. What it checks of the caller, as real cuDNN would refuse
 * or misbehave:
 *   - the descriptors of a call agree: x, w and y of one data type (the PSEUDO_BFLOAT16,
 *     PSEUDO_HALF or FLOAT config), fp32 compute, cross-correlation, the shapes of a same-padding
 * conv; otherwise CUDNN_STATUS_BAD_PARAM;
 *   - the algorithm: the heuristics offer two (best first: algo 1 with the math the caller
 *     does not want, then algo 0 with FMA for fp32 data, tensor-op for 16-bit), each with its
 *     own workspace size; a call with an algorithm and a math type that were not offered
 *     together, or with less workspace than the algorithm's, is CUDNN_STATUS_BAD_PARAM;
 *   - the workspace is scribbled over (0xff bytes: NaN) before each call computes, so a
 *     caller whose operands lie in it reads NaN.
 * Not emulated: speed, the algorithms' own rounding, tensor cores. */
#ifndef TFSWA_EMU_CUDNN_H
#define TFSWA_EMU_CUDNN_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cuda_runtime_api.h"
extern "C" {
#include "nn/conv.h"
}

typedef enum {
    CUDNN_STATUS_SUCCESS = 0,
    CUDNN_STATUS_ALLOC_FAILED = 2,
    CUDNN_STATUS_BAD_PARAM = 3,
    CUDNN_STATUS_NOT_SUPPORTED = 9
} cudnnStatus_t;
typedef enum {
    CUDNN_DATA_FLOAT = 0,
    CUDNN_DATA_HALF = 2,
    CUDNN_DATA_BFLOAT16 = 14
} cudnnDataType_t;
typedef enum { CUDNN_TENSOR_NCHW = 0 } cudnnTensorFormat_t;
typedef enum { CUDNN_CONVOLUTION = 0, CUDNN_CROSS_CORRELATION = 1 } cudnnConvolutionMode_t;
typedef enum {
    CUDNN_DEFAULT_MATH = 0,
    CUDNN_TENSOR_OP_MATH = 1,
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    CUDNN_FMA_MATH = 3
} cudnnMathType_t;
typedef int cudnnConvolutionFwdAlgo_t;
typedef int cudnnConvolutionBwdDataAlgo_t;
typedef int cudnnConvolutionBwdFilterAlgo_t;
enum {
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7
};

struct emu_cudnn {
    int dummy;
};
typedef emu_cudnn *cudnnHandle_t;
struct emu_tensor {
    cudnnDataType_t t;
    int n, c, h, w;
};
typedef emu_tensor *cudnnTensorDescriptor_t;
typedef emu_tensor *cudnnFilterDescriptor_t; /* (k, c, h, w) as (n, c, h, w) */
struct emu_conv {
    int pad, mode_ok;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};
typedef emu_conv *cudnnConvolutionDescriptor_t;

#define EMU_PERF(name, algo_t)                                                                     \
    typedef struct {                                                                               \
        algo_t algo;                                                                               \
        cudnnStatus_t status;                                                                      \
        float time;                                                                                \
        size_t memory;                                                                             \
        int determinism;                                                                           \
        cudnnMathType_t mathType;                                                                  \
        int reserved[3];                                                                           \
    } name;
EMU_PERF(cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t)
EMU_PERF(cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t)
EMU_PERF(cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t)
#undef EMU_PERF

static inline const char *cudnnGetErrorString(cudnnStatus_t s) {
    return s == CUDNN_STATUS_SUCCESS     ? "CUDNN_STATUS_SUCCESS"
           : s == CUDNN_STATUS_BAD_PARAM ? "CUDNN_STATUS_BAD_PARAM (emulated)"
                                         : "CUDNN_STATUS_NOT_SUPPORTED (emulated)";
}
static inline cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    *h = new emu_cudnn{0};
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
    delete h;
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    *d = new emu_tensor{CUDNN_DATA_FLOAT, 0, 0, 0, 0};
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    return cudnnCreateTensorDescriptor(d);
}
static inline cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
    return cudnnDestroyTensorDescriptor(d);
}
static inline cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d,
                                                       cudnnTensorFormat_t f, cudnnDataType_t t,
                                                       int n, int c, int h, int w) {
    if (f != CUDNN_TENSOR_NCHW || n < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
    *d = emu_tensor{t, n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                                       cudnnTensorFormat_t f, int k, int c, int h,
                                                       int w) {
    return cudnnSetTensor4dDescriptor(d, f, t, k, c, h, w);
}
static inline cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    *d = new emu_conv{0, 0, CUDNN_DATA_FLOAT, CUDNN_DEFAULT_MATH};
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph,
                                                            int pw, int sh, int sw, int dh, int dw,
                                                            cudnnConvolutionMode_t m,
                                                            cudnnDataType_t compute) {
    if (ph != pw || sh != 1 || sw != 1 || dh != 1 || dw != 1) return CUDNN_STATUS_NOT_SUPPORTED;
    d->pad = ph, d->mode_ok = m == CUDNN_CROSS_CORRELATION, d->compute = compute;
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d,
                                                        cudnnMathType_t m) {
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

/* the emulated algorithms: 0 (the math of the data type) and 1 (the other math, offered
 * first), with workspaces of EMU_WS0 and EMU_WS1 bytes */
#define EMU_WS0 ((size_t)4096)
#define EMU_WS1 ((size_t)8192)
static inline cudnnMathType_t emu_math(cudnnDataType_t t, int algo) {
    const cudnnMathType_t own = t != CUDNN_DATA_FLOAT ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    const cudnnMathType_t other = t != CUDNN_DATA_FLOAT ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    return algo == 0 ? own : other;
}
/* x (B, Cin, H, W), w (Cout, Cin, k, k), y (B, Cout, H, W) of one type, a same-padding
 * cross-correlation with fp32 compute; 0 if consistent */
static inline int emu_bad(const emu_tensor *x, const emu_tensor *w, const emu_conv *c,
                          const emu_tensor *y) {
    return x->t != w->t || x->t != y->t ||
           (x->t != CUDNN_DATA_FLOAT && x->t != CUDNN_DATA_BFLOAT16 && x->t != CUDNN_DATA_HALF) ||
           c->compute != CUDNN_DATA_FLOAT || !c->mode_ok || w->h != w->w ||
           c->pad != (w->h - 1) / 2 || x->n != y->n || x->c != w->c || y->c != w->n ||
           x->h != y->h || x->w != y->w;
}
template <typename P>
static inline cudnnStatus_t emu_algos(const emu_tensor *x, const emu_tensor *w, const emu_conv *c,
                                      const emu_tensor *y, int req, int *n, P *r) {
    if (emu_bad(x, w, c, y) || req < 2) return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < 2; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].algo = 1 - i;
        r[i].status = CUDNN_STATUS_SUCCESS;
        r[i].memory = r[i].algo ? EMU_WS1 : EMU_WS0;
        r[i].mathType = emu_math(x->t, r[i].algo);
    }
    *n = 2;
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t emu_wssize(const emu_tensor *x, const emu_tensor *w, const emu_conv *c,
                                       const emu_tensor *y, int algo, size_t *bytes) {
    if (emu_bad(x, w, c, y) || algo < 0 || algo > 1 || c->math != emu_math(x->t, algo))
        return CUDNN_STATUS_BAD_PARAM;
    *bytes = algo ? EMU_WS1 : EMU_WS0;
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t
cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t x,
                                       cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                       cudnnTensorDescriptor_t y, int req, int *n,
                                       cudnnConvolutionFwdAlgoPerf_t *r) {
    return emu_algos(x, w, c, y, req, n, r);
}
static inline cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int req, int *n,
    cudnnConvolutionBwdDataAlgoPerf_t *r) {
    return emu_algos(dx, w, c, dy, req, n, r);
}
static inline cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, int req, int *n,
    cudnnConvolutionBwdFilterAlgoPerf_t *r) {
    return emu_algos(x, dw, c, dy, req, n, r);
}
static inline cudnnStatus_t
cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t x,
                                        cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                        cudnnTensorDescriptor_t y, int algo, size_t *b) {
    return emu_wssize(x, w, c, y, algo, b);
}
static inline cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int algo, size_t *b) {
    return emu_wssize(dx, w, c, dy, algo, b);
}
static inline cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, int algo, size_t *b) {
    return emu_wssize(x, dw, c, dy, algo, b);
}

/* the values of a tensor as fp32 (bf16 widened exactly) */
static inline std::vector<float> emu_load(const emu_tensor *d, const void *p) {
    const size_t n = (size_t)d->n * d->c * d->h * d->w;
    std::vector<float> v(n);
    if (d->t == CUDNN_DATA_FLOAT) {
        memcpy(v.data(), p, n * sizeof(float));
    } else if (d->t == CUDNN_DATA_HALF) {
        const _Float16 *h = (const _Float16 *)p;
        for (size_t i = 0; i < n; i++) v[i] = (float)h[i];
    } else {
        const uint16_t *h = (const uint16_t *)p;
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)h[i] << 16;
            memcpy(&v[i], &u, 4);
        }
    }
    return v;
}
/* y = alpha * v + beta * y, in the tensor's type (bf16: round to nearest even; beta 0: y
 * is not read, as cuDNN) */
static inline void emu_store(const emu_tensor *d, void *p, const std::vector<float> &v, float alpha,
                             float beta) {
    const size_t n = v.size();
    std::vector<float> old = beta != 0.f ? emu_load(d, p) : std::vector<float>();
    for (size_t i = 0; i < n; i++) {
        const float r = alpha * v[i] + (beta != 0.f ? beta * old[i] : 0.f);
        if (d->t == CUDNN_DATA_FLOAT) {
            ((float *)p)[i] = r;
        } else if (d->t == CUDNN_DATA_HALF) {
            ((_Float16 *)p)[i] = (_Float16)r;
        } else {
            uint32_t u;
            memcpy(&u, &r, 4);
            if ((u & 0x7fffffffu) > 0x7f800000u) {
                ((uint16_t *)p)[i] = (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
                continue;
            }
            u += 0x7fffu + ((u >> 16) & 1u);
            ((uint16_t *)p)[i] = (uint16_t)(u >> 16);
        }
    }
}
/* a call's checks: consistent descriptors, the algorithm with its math, enough workspace,
 * which is then scribbled over */
static inline cudnnStatus_t emu_call(const emu_tensor *x, const emu_tensor *w, const emu_conv *c,
                                     const emu_tensor *y, int algo, void *ws, size_t wsb) {
    size_t need = 0;
    if (emu_wssize(x, w, c, y, algo, &need) != CUDNN_STATUS_SUCCESS || wsb < need || (need && !ws))
        return CUDNN_STATUS_BAD_PARAM;
    if (wsb) memset(ws, 0xff, wsb);
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void *alpha,
                                                    cudnnTensorDescriptor_t xd, const void *x,
                                                    cudnnFilterDescriptor_t wd, const void *w,
                                                    cudnnConvolutionDescriptor_t c, int algo,
                                                    void *ws, size_t wsb, const void *beta,
                                                    cudnnTensorDescriptor_t yd, void *y) {
    cudnnStatus_t s = emu_call(xd, wd, c, yd, algo, ws, wsb);
    if (s) return s;
    std::vector<float> xv = emu_load(xd, x), wv = emu_load(wd, w),
                       yv((size_t)yd->n * yd->c * yd->h * yd->w);
    std::vector<float> t(tf_conv2d_workspace_floats(xd->c, yd->c, xd->h, xd->w, wd->h, 0, 1) + 1);
    tf_conv2d_forward(yv.data(), xv.data(), wv.data(), NULL, xd->n, xd->c, yd->c, xd->h, xd->w,
                      wd->h, t.data(), 0, 1);
    emu_store(yd, y, yv, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
/* the CPU ref backward of the convolution x (xd) * w (wd) -> dy (dyd) from zero: dx (of
 * xd's size; NULL: not computed) and dw */
static inline void emu_backward(const emu_tensor *xd, const emu_tensor *wd, const emu_tensor *dyd,
                                const std::vector<float> &xv, const std::vector<float> &wv,
                                const std::vector<float> &dyv, std::vector<float> *dx,
                                std::vector<float> &dw) {
    std::vector<float> t(tf_conv2d_workspace_floats(xd->c, dyd->c, xd->h, xd->w, wd->h, 0, 1) + 1);
    dw.assign(wv.size(), 0.f);
    if (dx) dx->assign(xv.size(), 0.f);
    tf_conv2d_backward(dx ? dx->data() : NULL, dw.data(), NULL, dyv.data(), xv.data(), wv.data(),
                       xd->n, xd->c, dyd->c, xd->h, xd->w, wd->h, t.data(), 0, 1);
}
static inline size_t emu_count(const emu_tensor *d) {
    return (size_t)d->n * d->c * d->h * d->w;
}
static inline cudnnStatus_t
cudnnConvolutionBackwardData(cudnnHandle_t, const void *alpha, cudnnFilterDescriptor_t wd,
                             const void *w, cudnnTensorDescriptor_t dyd, const void *dy,
                             cudnnConvolutionDescriptor_t c, int algo, void *ws, size_t wsb,
                             const void *beta, cudnnTensorDescriptor_t dxd, void *dx) {
    cudnnStatus_t s = emu_call(dxd, wd, c, dyd, algo, ws, wsb);
    if (s) return s;
    std::vector<float> dxv, dwv, xv(emu_count(dxd), 0.f); /* x: only dw needs it */
    emu_backward(dxd, wd, dyd, xv, emu_load(wd, w), emu_load(dyd, dy), &dxv, dwv);
    emu_store(dxd, dx, dxv, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
static inline cudnnStatus_t
cudnnConvolutionBackwardFilter(cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t xd,
                               const void *x, cudnnTensorDescriptor_t dyd, const void *dy,
                               cudnnConvolutionDescriptor_t c, int algo, void *ws, size_t wsb,
                               const void *beta, cudnnFilterDescriptor_t dwd, void *dw) {
    cudnnStatus_t s = emu_call(xd, dwd, c, dyd, algo, ws, wsb);
    if (s) return s;
    std::vector<float> dwv, wv(emu_count(dwd), 0.f); /* w: only dx needs it */
    emu_backward(xd, dwd, dyd, emu_load(xd, x), wv, emu_load(dyd, dy), NULL, dwv);
    emu_store(dwd, dw, dwv, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
/* db (1, C, 1, 1) = alpha * sum over (n, h, w) of dy + beta * db; fp32 only */
static inline cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t, const void *alpha,
                                                         cudnnTensorDescriptor_t dyd,
                                                         const void *dy, const void *beta,
                                                         cudnnTensorDescriptor_t dbd, void *db) {
    if (dyd->t != CUDNN_DATA_FLOAT || dbd->t != CUDNN_DATA_FLOAT || dbd->c != dyd->c ||
        dbd->n != 1 || dbd->h != 1 || dbd->w != 1)
        return CUDNN_STATUS_BAD_PARAM;
    const float *g = (const float *)dy;
    const size_t hw = (size_t)dyd->h * dyd->w;
    std::vector<float> v((size_t)dyd->c, 0.f);
    for (int c = 0; c < dyd->c; c++) {
        double acc = 0;
        for (int n = 0; n < dyd->n; n++)
            for (size_t i = 0; i < hw; i++) acc += g[((size_t)n * dyd->c + c) * hw + i];
        v[(size_t)c] = (float)acc;
    }
    emu_store(dbd, db, v, *(const float *)alpha, *(const float *)beta);
    return CUDNN_STATUS_SUCCESS;
}
/* y (N, C, H, W) = alpha * b (1, C, 1, 1) broadcast + beta * y; fp32 only */
static inline cudnnStatus_t cudnnAddTensor(cudnnHandle_t, const void *alpha,
                                           cudnnTensorDescriptor_t bd, const void *b,
                                           const void *beta, cudnnTensorDescriptor_t yd, void *y) {
    if (bd->t != CUDNN_DATA_FLOAT || yd->t != CUDNN_DATA_FLOAT || bd->c != yd->c || bd->n != 1 ||
        bd->h != 1 || bd->w != 1)
        return CUDNN_STATUS_BAD_PARAM;
    const float a = *(const float *)alpha, be = *(const float *)beta;
    const size_t hw = (size_t)yd->h * yd->w;
    float *o = (float *)y;
    for (int n = 0; n < yd->n; n++)
        for (int c = 0; c < yd->c; c++)
            for (size_t i = 0; i < hw; i++) {
                float *p = &o[((size_t)n * yd->c + c) * hw + i];
                *p = a * ((const float *)b)[c] + be * *p;
            }
    return CUDNN_STATUS_SUCCESS;
}

#endif
