/* conv2d on CUDA with cuDNN (legacy convolution API): the cuda backend of nn/kernels.h,
 * through the C face cuda/cuda_backend.h.
 *
 * Per registered shape (B, Cin, Cout, H, W, k): NCHW fp32 tensor descriptors for the
 * input x (B, Cin, H, W), the output y (B, Cout, H, W), the filter w (Cout, Cin, k, k) and
 * the bias b (1, Cout, 1, 1); one convolution descriptor per pass (pad (k-1)/2, stride 1,
 * cross-correlation as the CPU kernels, fp32 compute) so that each pass carries the math
 * type of its algorithm. The algorithms are chosen once, at registration, from cuDNN's
 * heuristics (cudnnGet*Algorithm_v7, best first): the first that is supported, needs at
 * most ws_limit bytes of workspace and uses FMA math (no TF32 tensor cores: fp32
 * arithmetic, as the CPU backends); only when no FMA algorithm fits, the first that fits.
 *
 * Accumulation (nn/kernels.h) through cuDNN's alpha/beta: out = conv + bias (beta 0, then
 * cudnnAddTensor); dweight += (beta 1); dbias += (cudnnConvolutionBackwardBias, beta 1);
 * dinp += (beta 1) or, with set_dinp, dinp = (beta 0: cuDNN does not read it).
 *
 * bf16 or fp16 arithmetic (tf_cuda_conv_create's dtype, cuda_backend.h): the same
 * descriptors in CUDNN_DATA_BFLOAT16 or CUDNN_DATA_HALF for x, y and w (fp32 compute:
 * cuDNN's PSEUDO_BFLOAT16 / PSEUDO_HALF configs), the algorithms chosen for them preferring
 * tensor-op math; the operands are packed into 16-bit copies at the start of the workspace
 * (src/cuda/elem.cu), cuDNN writes 16-bit results there (beta 0), and elem.cu widens them
 * into the fp32 outputs (= or +=). The bias and its gradient stay fp32 (the fp32 y and bias
 * descriptors). */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "cuda/elem.h"

enum { FWD = 0, BWD_DATA = 1, BWD_FILTER = 2, N_PASS = 3 };

typedef struct {
    int B, Cin, Cout, H, W, k, train;
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnTensorDescriptor_t xh, yh; /* bf16/fp16: the operands cuDNN sees (else x and y) */
    cudnnFilterDescriptor_t wh;     /* bf16/fp16: else w */
    cudnnConvolutionDescriptor_t conv[N_PASS];
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws[N_PASS]; /* cuDNN's own workspace per pass (after the 16-bit copies) */
    cudnnMathType_t math[N_PASS];
} shape_t;

struct tf_cuda_conv {
    cudnnHandle_t h;
    size_t ws_limit;
    int device;
    int half; /* TF_CUDA_CONV_FP32, _BF16 or _FP16 */
    char desc[512];
    shape_t *s;
    size_t n, cap;
};

static int dnnerr(char *err, size_t n, const char *what, cudnnStatus_t s) {
    if (err && n) snprintf(err, n, "cuDNN: %s: %s", what, cudnnGetErrorString(s));
    return 1;
}
#define DNN(what, call)                                                                            \
    do {                                                                                           \
        cudnnStatus_t s_ = (call);                                                                 \
        if (s_ != CUDNN_STATUS_SUCCESS) return dnnerr(err, err_n, what, s_);                       \
    } while (0)

extern "C" int tf_cuda_conv_create(tf_cuda_conv **out, size_t ws_limit, int dtype, char *err,
                                   size_t err_n) {
    *out = NULL;
    if (dtype != TF_CUDA_CONV_FP32 && dtype != TF_CUDA_CONV_BF16 && dtype != TF_CUDA_CONV_FP16) {
        if (err && err_n)
            snprintf(err, err_n, "conv2d arithmetic %d: expected fp32, bf16, fp16", dtype);
        return 1;
    }
    tf_cuda_conv *c = (tf_cuda_conv *)calloc(1, sizeof *c);
    if (!c) {
        if (err && err_n) snprintf(err, err_n, "out of memory (cuDNN convolutions)");
        return 1;
    }
    cudaError_t e = cudaGetDevice(&c->device);
    cudaDeviceProp p;
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&p, c->device);
    if (e != cudaSuccess) {
        if (err && err_n) snprintf(err, err_n, "no CUDA device: %s", cudaGetErrorString(e));
        free(c);
        return 1;
    }
    cudnnStatus_t s = cudnnCreate(&c->h);
    if (s != CUDNN_STATUS_SUCCESS) {
        free(c);
        return dnnerr(err, err_n, "cudnnCreate", s);
    }
    c->ws_limit = ws_limit;
    /* tensor cores: bf16 from Ampere (8.0), fp16 from Volta (7.0) */
    const int need = dtype == TF_CUDA_CONV_BF16 ? 8 : 7;
    c->half = dtype == TF_CUDA_CONV_FP32 || p.major >= need ? dtype : TF_CUDA_CONV_FP32;
    static const char *const names[] = {"fp32", "bf16", "fp16"};
    char why[96] = "";
    if (c->half != dtype)
        snprintf(why, sizeof why, " (%s requested: needs compute capability %d.0)", names[dtype],
                 need);
    char v[96];
    tf_cuda_versions(v, sizeof v);
    snprintf(c->desc, sizeof c->desc, "cuda (%s, on cuda:%d %s, cc %d.%d), %s arithmetic%s", v,
             c->device, p.name, p.major, p.minor, names[c->half], why);
    *out = c;
    return 0;
}

static void shape_free(shape_t *s) {
    if (s->xh && s->xh != s->x) cudnnDestroyTensorDescriptor(s->xh);
    if (s->yh && s->yh != s->y) cudnnDestroyTensorDescriptor(s->yh);
    if (s->wh && s->wh != s->w) cudnnDestroyFilterDescriptor(s->wh);
    if (s->x) cudnnDestroyTensorDescriptor(s->x);
    if (s->y) cudnnDestroyTensorDescriptor(s->y);
    if (s->b) cudnnDestroyTensorDescriptor(s->b);
    if (s->w) cudnnDestroyFilterDescriptor(s->w);
    for (int p = 0; p < N_PASS; p++)
        if (s->conv[p]) cudnnDestroyConvolutionDescriptor(s->conv[p]);
    memset(s, 0, sizeof *s);
}

extern "C" void tf_cuda_conv_free(tf_cuda_conv *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) shape_free(&c->s[i]);
    free(c->s);
    if (c->h) cudnnDestroy(c->h);
    free(c);
}

extern "C" const char *tf_cuda_conv_describe(const tf_cuda_conv *c) {
    return c->desc;
}

extern "C" int tf_cuda_conv_dtype(const tf_cuda_conv *c) {
    return c->half;
}

extern "C" size_t tf_cuda_conv_n_shapes(const tf_cuda_conv *c) {
    return c->n;
}

static shape_t *find(tf_cuda_conv *c, int B, int Cin, int Cout, int H, int W, int k) {
    for (size_t i = 0; i < c->n; i++) {
        shape_t *s = &c->s[i];
        if (s->B == B && s->Cin == Cin && s->Cout == Cout && s->H == H && s->W == W && s->k == k)
            return s;
    }
    return NULL;
}

/* fp32 compute in every mode (16-bit data with fp32 compute: fp32 accumulation) */
static int conv_desc(cudnnConvolutionDescriptor_t *d, int k, int half, char *err, size_t err_n) {
    const int pad = (k - 1) / 2;
    DNN("cudnnCreateConvolutionDescriptor", cudnnCreateConvolutionDescriptor(d));
    DNN("cudnnSetConvolution2dDescriptor",
        cudnnSetConvolution2dDescriptor(*d, pad, pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT));
    DNN("cudnnSetConvolutionMathType",
        cudnnSetConvolutionMathType(*d, half ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    return 0;
}

/* The index of the algorithm to take among n heuristic results (best first): supported,
 * workspace <= limit, math `want` (fp32: FMA, no TF32; bf16/fp16: tensor ops); else the first
 * supported that fits; -1 if none. */
template <typename P> static int pick(const P *r, int n, size_t limit, cudnnMathType_t want) {
    for (int i = 0; i < n; i++)
        if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].memory <= limit && r[i].mathType == want)
            return i;
    for (int i = 0; i < n; i++)
        if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].memory <= limit) return i;
    return -1;
}

static int no_algo(char *err, size_t err_n, const char *pass, const shape_t *s, size_t limit) {
    if (err && err_n)
        snprintf(err, err_n,
                 "cuDNN: no %s algorithm for conv2d B %d Cin %d Cout %d %dx%d k %d within the "
                 "workspace limit of %zu bytes",
                 pass, s->B, s->Cin, s->Cout, s->H, s->W, s->k, limit);
    return 1;
}

static cudnnMathType_t want(const tf_cuda_conv *c) {
    return c->half ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

static int choose_fwd(tf_cuda_conv *c, shape_t *s, char *err, size_t err_n) {
    cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    DNN("cudnnGetConvolutionForwardAlgorithm_v7",
        cudnnGetConvolutionForwardAlgorithm_v7(c->h, s->xh, s->wh, s->conv[FWD], s->yh,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, r));
    int i = pick(r, n, c->ws_limit, want(c));
    if (i < 0) return no_algo(err, err_n, "forward", s, c->ws_limit);
    s->fwd = r[i].algo, s->math[FWD] = r[i].mathType;
    DNN("cudnnSetConvolutionMathType", cudnnSetConvolutionMathType(s->conv[FWD], r[i].mathType));
    /* the size for the chosen math type, as the call will see it */
    DNN("cudnnGetConvolutionForwardWorkspaceSize",
        cudnnGetConvolutionForwardWorkspaceSize(c->h, s->xh, s->wh, s->conv[FWD], s->yh, s->fwd,
                                                &s->ws[FWD]));
    return 0;
}

static int choose_bwd(tf_cuda_conv *c, shape_t *s, char *err, size_t err_n) {
    cudnnConvolutionBwdDataAlgoPerf_t rd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    DNN("cudnnGetConvolutionBackwardDataAlgorithm_v7",
        cudnnGetConvolutionBackwardDataAlgorithm_v7(c->h, s->wh, s->yh, s->conv[BWD_DATA], s->xh,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, rd));
    int i = pick(rd, n, c->ws_limit, want(c));
    if (i < 0) return no_algo(err, err_n, "backward-data", s, c->ws_limit);
    s->bwd_data = rd[i].algo, s->math[BWD_DATA] = rd[i].mathType;
    DNN("cudnnSetConvolutionMathType",
        cudnnSetConvolutionMathType(s->conv[BWD_DATA], rd[i].mathType));
    DNN("cudnnGetConvolutionBackwardDataWorkspaceSize",
        cudnnGetConvolutionBackwardDataWorkspaceSize(c->h, s->wh, s->yh, s->conv[BWD_DATA], s->xh,
                                                     s->bwd_data, &s->ws[BWD_DATA]));
    cudnnConvolutionBwdFilterAlgoPerf_t rf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    n = 0;
    DNN("cudnnGetConvolutionBackwardFilterAlgorithm_v7",
        cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            c->h, s->xh, s->yh, s->conv[BWD_FILTER], s->wh, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
            &n, rf));
    i = pick(rf, n, c->ws_limit, want(c));
    if (i < 0) return no_algo(err, err_n, "backward-filter", s, c->ws_limit);
    s->bwd_filter = rf[i].algo, s->math[BWD_FILTER] = rf[i].mathType;
    DNN("cudnnSetConvolutionMathType",
        cudnnSetConvolutionMathType(s->conv[BWD_FILTER], rf[i].mathType));
    DNN("cudnnGetConvolutionBackwardFilterWorkspaceSize",
        cudnnGetConvolutionBackwardFilterWorkspaceSize(c->h, s->xh, s->yh, s->conv[BWD_FILTER],
                                                       s->wh, s->bwd_filter, &s->ws[BWD_FILTER]));
    return 0;
}

static int shape_setup(tf_cuda_conv *c, shape_t *s, char *err, size_t err_n) {
    DNN("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&s->x));
    DNN("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&s->y));
    DNN("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&s->b));
    DNN("cudnnCreateFilterDescriptor", cudnnCreateFilterDescriptor(&s->w));
    DNN("cudnnSetTensor4dDescriptor (input)",
        cudnnSetTensor4dDescriptor(s->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->B, s->Cin, s->H,
                                   s->W));
    DNN("cudnnSetTensor4dDescriptor (output)",
        cudnnSetTensor4dDescriptor(s->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->B, s->Cout, s->H,
                                   s->W));
    DNN("cudnnSetTensor4dDescriptor (bias)",
        cudnnSetTensor4dDescriptor(s->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->Cout, 1, 1));
    DNN("cudnnSetFilter4dDescriptor",
        cudnnSetFilter4dDescriptor(s->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->Cout, s->Cin, s->k,
                                   s->k));
    s->xh = s->x, s->yh = s->y, s->wh = s->w;
    if (c->half) {
        const cudnnDataType_t t =
            c->half == TF_CUDA_CONV_FP16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
        s->xh = s->yh = NULL, s->wh = NULL;
        DNN("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&s->xh));
        DNN("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&s->yh));
        DNN("cudnnCreateFilterDescriptor", cudnnCreateFilterDescriptor(&s->wh));
        DNN("cudnnSetTensor4dDescriptor (16-bit input)",
            cudnnSetTensor4dDescriptor(s->xh, CUDNN_TENSOR_NCHW, t, s->B, s->Cin, s->H, s->W));
        DNN("cudnnSetTensor4dDescriptor (16-bit output)",
            cudnnSetTensor4dDescriptor(s->yh, CUDNN_TENSOR_NCHW, t, s->B, s->Cout, s->H, s->W));
        DNN("cudnnSetFilter4dDescriptor (16-bit)",
            cudnnSetFilter4dDescriptor(s->wh, t, CUDNN_TENSOR_NCHW, s->Cout, s->Cin, s->k, s->k));
    }
    for (int p = 0; p < N_PASS; p++)
        if (conv_desc(&s->conv[p], s->k, c->half, err, err_n)) return 1;
    if (choose_fwd(c, s, err, err_n)) return 1;
    return s->train ? choose_bwd(c, s, err, err_n) : 0;
}

/* bf16/fp16: the bytes of the operand copies before cuDNN's workspace (0 for fp32) */
static size_t copy_bytes(const tf_cuda_conv *c, const shape_t *s, int train) {
    return c->half ? tf_cuda_conv_half_copy_bytes(s->B, s->Cin, s->Cout, s->H, s->W, s->k, train)
                   : 0;
}

static size_t shape_bytes(const tf_cuda_conv *c, const shape_t *s, int train) {
    /* a training shape's calls: forward, backward-data and backward-filter */
    size_t b = s->ws[FWD];
    if (train) {
        if (s->ws[BWD_DATA] > b) b = s->ws[BWD_DATA];
        if (s->ws[BWD_FILTER] > b) b = s->ws[BWD_FILTER];
    }
    return copy_bytes(c, s, train) + b;
}

extern "C" int tf_cuda_conv_add(tf_cuda_conv *c, int B, int Cin, int Cout, int H, int W, int ksize,
                                int bias, int train, size_t *ws_bytes, char *err, size_t err_n) {
    (void)bias; /* the bias descriptor is always there */
    *ws_bytes = 0;
    train = !!train;
    shape_t *s = find(c, B, Cin, Cout, H, W, ksize);
    if (s && train && !s->train) {
        if (choose_bwd(c, s, err, err_n)) return 1;
        s->train = 1;
    }
    if (s) {
        *ws_bytes = shape_bytes(c, s, train);
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        shape_t *ns = (shape_t *)realloc(c->s, cap * sizeof *ns);
        if (!ns) {
            if (err && err_n) snprintf(err, err_n, "out of memory (conv shapes)");
            return 1;
        }
        c->s = ns, c->cap = cap;
    }
    s = &c->s[c->n];
    memset(s, 0, sizeof *s);
    s->B = B, s->Cin = Cin, s->Cout = Cout, s->H = H, s->W = W, s->k = ksize, s->train = train;
    if (shape_setup(c, s, err, err_n)) {
        shape_free(s);
        return 1;
    }
    c->n++;
    *ws_bytes = shape_bytes(c, s, train);
    return 0;
}

static const char *math_name(cudnnMathType_t m) {
    switch (m) {
    case CUDNN_FMA_MATH:
        return "fma";
    case CUDNN_DEFAULT_MATH:
        return "default";
    case CUDNN_TENSOR_OP_MATH:
        return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
        return "tensor-op-conversion";
    default:
        return "?";
    }
}

extern "C" void tf_cuda_conv_algos(const tf_cuda_conv *c, size_t i, char *out, size_t n) {
    if (i >= c->n) {
        snprintf(out, n, "?");
        return;
    }
    const shape_t *s = &c->s[i];
    int k = snprintf(out, n, "fwd algo %d (%s) %zu B", (int)s->fwd, math_name(s->math[FWD]),
                     s->ws[FWD]);
    if (s->train && k >= 0 && (size_t)k < n)
        snprintf(out + k, n - (size_t)k,
                 ", bwd-data algo %d (%s) %zu B, bwd-filter algo %d (%s) %zu B", (int)s->bwd_data,
                 math_name(s->math[BWD_DATA]), s->ws[BWD_DATA], (int)s->bwd_filter,
                 math_name(s->math[BWD_FILTER]), s->ws[BWD_FILTER]);
}

/* bf16/fp16: the operand copies in a call's workspace (tf_cuda_conv_half_copy_bytes's layout):
 * x (B, Cin, H, W), w (Cout, Cin, k, k), y or dout (B, Cout, H, W), dw (train), then cuDNN's
 * own workspace cws. Element counts nx, nw, ny. */
typedef struct {
    uint16_t *x, *w, *y, *dw;
    void *cws;
    size_t nx, nw, ny;
} half_ops;

static half_ops ops(const shape_t *s, void *ws, int train) {
    half_ops o;
    const size_t hw = (size_t)s->H * s->W;
    o.nx = (size_t)s->B * s->Cin * hw, o.ny = (size_t)s->B * s->Cout * hw;
    o.nw = (size_t)s->Cout * s->Cin * s->k * s->k;
    char *p = (char *)ws;
    o.x = (uint16_t *)(void *)p, p += tf_cuda_al256(2 * o.nx);
    o.w = (uint16_t *)(void *)p, p += tf_cuda_al256(2 * o.nw);
    o.y = (uint16_t *)(void *)p, p += tf_cuda_al256(2 * o.ny);
    o.dw = train ? (uint16_t *)(void *)p : NULL;
    if (train) p += tf_cuda_al256(2 * o.nw);
    o.cws = p;
    return o;
}

static int elemerr(char *err, size_t n, const char *what) {
    if (err && n) snprintf(err, n, "16-bit conv2d: %s: kernel launch failed", what);
    return 1;
}

/* dst (n) 16-bit = src (n) fp32, round to nearest even */
static int pack(const tf_cuda_conv *c, uint16_t *dst, const float *src, size_t n, char *err,
                size_t err_n) {
    if (tf_cuda_half_pack(dst, src, n, c->half == TF_CUDA_CONV_FP16, NULL))
        return elemerr(err, err_n, "pack");
    return 0;
}

/* dst (n) = (add: +=) the floats of src (n) */
static int widen(const tf_cuda_conv *c, float *dst, const uint16_t *src, size_t n, int add,
                 const char *what, char *err, size_t err_n) {
    if (tf_cuda_half_unpack(dst, src, n, c->half == TF_CUDA_CONV_FP16, add, NULL))
        return elemerr(err, err_n, what);
    return 0;
}

static int backward_half(tf_cuda_conv *c, shape_t *s, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight, void *ws,
                         int set_dinp, char *err, size_t err_n) {
    const float one = 1.f, zero = 0.f;
    half_ops o = ops(s, ws, 1);
    if (pack(c, o.x, inp, o.nx, err, err_n) || pack(c, o.y, dout, o.ny, err, err_n)) return 1;
    DNN("cudnnConvolutionBackwardFilter (16-bit)",
        cudnnConvolutionBackwardFilter(c->h, &one, s->xh, o.x, s->yh, o.y, s->conv[BWD_FILTER],
                                       s->bwd_filter, o.cws, s->ws[BWD_FILTER], &zero, s->wh,
                                       o.dw));
    if (widen(c, dweight, o.dw, o.nw, 1, "dweight", err, err_n)) return 1;
    if (dbias)
        DNN("cudnnConvolutionBackwardBias",
            cudnnConvolutionBackwardBias(c->h, &one, s->y, dout, &one, s->b, dbias));
    if (!dinp) return 0;
    if (pack(c, o.w, weight, o.nw, err, err_n)) return 1;
    /* dx over the x copy, which backward-filter has read */
    DNN("cudnnConvolutionBackwardData (16-bit)",
        cudnnConvolutionBackwardData(c->h, &one, s->wh, o.w, s->yh, o.y, s->conv[BWD_DATA],
                                     s->bwd_data, o.cws, s->ws[BWD_DATA], &zero, s->xh, o.x));
    return widen(c, dinp, o.x, o.nx, !set_dinp, "dinp", err, err_n);
}

/* The shape of a call, registered now if needed; its workspace must fit ws_bytes. */
static shape_t *get(tf_cuda_conv *c, int B, int Cin, int Cout, int H, int W, int k, int train,
                    size_t ws_bytes, char *err, size_t err_n) {
    size_t need = 0;
    if (tf_cuda_conv_add(c, B, Cin, Cout, H, W, k, 1, train, &need, err, err_n)) return NULL;
    if (need > ws_bytes) {
        if (err && err_n)
            snprintf(err, err_n,
                     "conv2d B %d Cin %d Cout %d %dx%d k %d: needs %zu workspace bytes, the caller "
                     "has %zu",
                     B, Cin, Cout, H, W, k, need, ws_bytes);
        return NULL;
    }
    return find(c, B, Cin, Cout, H, W, k);
}

extern "C" int tf_cuda_conv_forward(tf_cuda_conv *c, float *out, const float *inp,
                                    const float *weight, const float *bias, int B, int Cin,
                                    int Cout, int H, int W, int ksize, void *ws, size_t ws_bytes,
                                    char *err, size_t err_n) {
    shape_t *s = get(c, B, Cin, Cout, H, W, ksize, 0, ws_bytes, err, err_n);
    if (!s) return 1;
    const float one = 1.f, zero = 0.f;
    if (c->half) {
        half_ops o = ops(s, ws, 0);
        if (pack(c, o.x, inp, o.nx, err, err_n) || pack(c, o.w, weight, o.nw, err, err_n)) return 1;
        DNN("cudnnConvolutionForward (16-bit)",
            cudnnConvolutionForward(c->h, &one, s->xh, o.x, s->wh, o.w, s->conv[FWD], s->fwd, o.cws,
                                    s->ws[FWD], &zero, s->yh, o.y));
        if (widen(c, out, o.y, o.ny, 0, "out", err, err_n)) return 1;
    } else {
        DNN("cudnnConvolutionForward",
            cudnnConvolutionForward(c->h, &one, s->x, inp, s->w, weight, s->conv[FWD], s->fwd, ws,
                                    s->ws[FWD], &zero, s->y, out));
    }
    if (bias) DNN("cudnnAddTensor (bias)", cudnnAddTensor(c->h, &one, s->b, bias, &one, s->y, out));
    return 0;
}

extern "C" int tf_cuda_conv_backward(tf_cuda_conv *c, float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *weight,
                                     int B, int Cin, int Cout, int H, int W, int ksize, void *ws,
                                     size_t ws_bytes, int set_dinp, char *err, size_t err_n) {
    shape_t *s = get(c, B, Cin, Cout, H, W, ksize, 1, ws_bytes, err, err_n);
    if (!s) return 1;
    const float one = 1.f, zero = 0.f;
    if (c->half)
        return backward_half(c, s, dinp, dweight, dbias, dout, inp, weight, ws, set_dinp, err,
                             err_n);
    DNN("cudnnConvolutionBackwardFilter",
        cudnnConvolutionBackwardFilter(c->h, &one, s->x, inp, s->y, dout, s->conv[BWD_FILTER],
                                       s->bwd_filter, ws, s->ws[BWD_FILTER], &one, s->w, dweight));
    if (dbias)
        DNN("cudnnConvolutionBackwardBias",
            cudnnConvolutionBackwardBias(c->h, &one, s->y, dout, &one, s->b, dbias));
    if (dinp)
        DNN("cudnnConvolutionBackwardData",
            cudnnConvolutionBackwardData(c->h, &one, s->w, weight, s->y, dout, s->conv[BWD_DATA],
                                         s->bwd_data, ws, s->ws[BWD_DATA], set_dinp ? &zero : &one,
                                         s->x, dinp));
    return 0;
}
