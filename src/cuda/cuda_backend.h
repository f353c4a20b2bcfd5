/* The C face of the CUDA code (the .cu files of src/cuda): plain C declarations, no CUDA header, so
 * that the C side (util/device.c, nn/kernels.c) can call it. Only a CUDA build
 * (`make CUDA=1`, which defines TFSWA_CUDA=1) compiles the .cu files that define these;
 * the C side calls them only under #if TFSWA_CUDA.
 *
 * Conventions: functions return 0 on success; on failure they return a nonzero value and
 * write one line of text into err (err_n bytes, NUL-terminated) naming the call and the
 * CUDA / cuDNN error string. They include nothing of the project (this part sits below
 * util in tools/include_graph.sh). Every pointer to tensor data is a DEVICE pointer. */
#ifndef TFSWA_CUDA_BACKEND_H
#define TFSWA_CUDA_BACKEND_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- devices (device.cu) */

typedef struct {
    int index;      /* the CUDA device number */
    int count;      /* CUDA devices visible */
    char name[256]; /* e.g. "NVIDIA H200" */
    int cc_major;   /* compute capability, e.g. 9.0 */
    int cc_minor;
    size_t total_bytes;  /* device memory (cudaMemGetInfo) */
    size_t free_bytes;   /* free now */
    int bf16;            /* native bf16 arithmetic: compute capability >= 8.0 */
    int multiprocessors; /* SMs */
    int driver_version;  /* cudaDriverGetVersion, e.g. 13000 */
    int runtime_version; /* cudaRuntimeGetVersion */
} tf_cuda_device_info;

/* Number of CUDA devices in *count. Fails (no CUDA device, no driver) with the CUDA error
 * string in err; *count is 0 then. */
int tf_cuda_device_count(int *count, char *err, size_t err_n);
/* Make device `index` current for this thread (cudaSetDevice) and fill *info. Fails with
 * "no CUDA device: <error>" when none is usable, "device N out of range (K CUDA devices)"
 * for a bad index. */
int tf_cuda_device_open(int index, tf_cuda_device_info *info, char *err, size_t err_n);
/* "cuDNN 9.19.0, CUDA runtime 13.0" (versions of the libraries linked / loaded). */
void tf_cuda_versions(char *out, size_t n);

/* Device memory and copies (for tests and the model's one-allocation-per-role buffers). */
int tf_cuda_malloc(void **p, size_t bytes, char *err, size_t err_n);
void tf_cuda_free(void *p);
int tf_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, char *err, size_t err_n);
int tf_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, char *err, size_t err_n);
int tf_cuda_memset(void *p, int value, size_t bytes, char *err, size_t err_n);
int tf_cuda_synchronize(char *err, size_t err_n);

/* ---------------------------------------------------------------- conv2d (conv.cu) */

/* A cuDNN handle on the current device and the convolution shapes registered with it. */
typedef struct tf_cuda_conv tf_cuda_conv;

/* The convolutions' arithmetic */
enum { TF_CUDA_CONV_FP32 = 0, TF_CUDA_CONV_BF16 = 1, TF_CUDA_CONV_FP16 = 2 };

/* bf16 or fp16 arithmetic (use_amp; fp16: amp_dtype fp16): a call converts its fp32
 * operands to 16-bit copies at the start of its workspace (round to nearest even, util/hd.h;
 * fp16: |x| >= 65520 becomes Inf, below 2^-25 it flushes to 0, hence the trainer's loss
 * scaling), cuDNN runs on those with fp32 accumulation (CUDNN_DATA_FLOAT compute) and writes
 * a 16-bit result, which the call widens into (or, for the += of backward, adds to) the fp32
 * output: out, dinp and dweight are rounded sums, dbias an fp32 sum of the fp32 dout. The
 * copies, each 256-byte aligned: x (B, Cin, H, W), w (Cout, Cin, k, k), y or dout (B, Cout,
 * H, W) and, for train, dw; backward-data writes its dx over x after backward-filter has
 * read it. cuDNN's own workspace follows them. */
static inline size_t tf_cuda_al256(size_t bytes) {
    return (bytes + 255) / 256 * 256;
}
static inline size_t tf_cuda_conv_half_copy_bytes(int B, int Cin, int Cout, int H, int W, int ksize,
                                                  int train) {
    const size_t hw = (size_t)H * (size_t)W, nw = (size_t)Cout * Cin * ksize * ksize;
    return tf_cuda_al256(2 * (size_t)B * Cin * hw) + tf_cuda_al256(2 * nw) +
           tf_cuda_al256(2 * (size_t)B * Cout * hw) + (train ? tf_cuda_al256(2 * nw) : 0);
}

/* ws_limit: the largest workspace an algorithm may ask for (bytes, the 16-bit copies not
 * counted); dtype: TF_CUDA_CONV_FP32, _BF16 or _FP16 (above). The handle is created on the
 * current device; bf16 needs compute capability 8.0 or later, fp16 7.0 (their tensor
 * cores): on an older card the object does fp32, tf_cuda_conv_dtype says so and the
 * description says why. */
int tf_cuda_conv_create(tf_cuda_conv **out, size_t ws_limit, int dtype, char *err, size_t err_n);
/* The arithmetic the calls do: TF_CUDA_CONV_* */
int tf_cuda_conv_dtype(const tf_cuda_conv *c);
void tf_cuda_conv_free(tf_cuda_conv *c);
/* One line: "cuda (cuDNN 9.19.0 on NVIDIA H200, cc 9.0), fp32 arithmetic" (or bf16) */
const char *tf_cuda_conv_describe(const tf_cuda_conv *c);
/* Register conv2d (B, Cin, H, W) -> (B, Cout, H, W), ksize 1 or 3, stride 1, same
 * padding: creates the descriptors and chooses the algorithms once (forward; with train,
 * also backward-data and backward-filter) among those whose workspace fits ws_limit.
 * *ws_bytes: the workspace a forward call (train 0) or a backward call (train 1) needs.
 * Registering again is allowed (train 1 after 0 adds the backward algorithms). */
int tf_cuda_conv_add(tf_cuda_conv *c, int B, int Cin, int Cout, int H, int W, int ksize, int bias,
                     int train, size_t *ws_bytes, char *err, size_t err_n);
/* The registered shapes, and the algorithms chosen for shape i (for plans and logs):
 * "fwd IMPLICIT_PRECOMP_GEMM 0 B, bwd-data ALGO_1 4096 B, bwd-filter ALGO_1 0 B". */
size_t tf_cuda_conv_n_shapes(const tf_cuda_conv *c);
void tf_cuda_conv_algos(const tf_cuda_conv *c, size_t i, char *out, size_t n);
/* out = conv(inp, weight) + bias (bias NULL: none); ws: ws_bytes of device memory. A
 * shape not registered is registered here (fails if its workspace exceeds ws_bytes). */
int tf_cuda_conv_forward(tf_cuda_conv *c, float *out, const float *inp, const float *weight,
                         const float *bias, int B, int Cin, int Cout, int H, int W, int ksize,
                         void *ws, size_t ws_bytes, char *err, size_t err_n);
/* dweight +=, dbias += (NULL: skipped), dinp += (set_dinp: =; NULL: skipped), as
 * nn/kernels.h's tf_kern_conv2d_backward. */
int tf_cuda_conv_backward(tf_cuda_conv *c, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight, int B, int Cin,
                          int Cout, int H, int W, int ksize, void *ws, size_t ws_bytes,
                          int set_dinp, char *err, size_t err_n);

#ifdef __cplusplus
}
#endif
#endif
