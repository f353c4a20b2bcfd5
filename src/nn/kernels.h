/* The kernel interface between the model and the arithmetic.
 *
 * The model calls the heavy kernels (convolutions today) only through a tf_kernels
 * object, which one BACKEND implements:
 *   ref   the OpenMP + OpenBLAS kernels of nn/conv.h: the oracle every other backend is
 *         tested against (tests/test_kernels.c);
 *   dnnl  oneDNN (libdnnl, C API) primitives, the default on CPU;
 *   cuda  cuDNN on the current CUDA device (CUDA builds only: `make CUDA=1`; src/cuda/
 *         conv.cu): every pointer a call takes is DEVICE memory, the workspace too. The
 *         algorithms of each shape (forward, backward-data, backward-filter) are chosen
 *         once, at tf_kern_conv2d_add, under TF_KERN_CUDA_WS_LIMIT bytes of workspace; fp32
 *         arithmetic (FMA, no TF32), or with compute TF_DT_BF16 on compute capability 8.0+
 *         (TF_DT_FP16 on 7.0+) 16-bit operands (copies in the workspace), fp32 sums,
 *         16-bit results widened into the fp32 outputs (cuda/cuda_backend.h). TF_DT_FP16 is
 *         for cuda only (TF_EUSER elsewhere).
 * Every pointer a call takes lives in the backend's memory space (host memory for ref and
 * dnnl, device memory for cuda), and nothing here keeps a pointer between calls.
 *
 * Life cycle, so that the memory plan stays exact:
 *   1. tf_kernels_create(backend, compute dtype, threads);
 *   2. tf_kern_conv2d_add() once per convolution SHAPE the model will run: it builds the
 *      backend's descriptors and returns the workspace bytes that shape needs (oneDNN's
 *      scratchpad plus its reordered copies of the operands). The model's plan takes the
 *      maximum over shapes; the caller hands that workspace to every call;
 *   3. tf_kernels_commit(): creates every primitive (JIT code) once, before the first
 *      call; a plan-only object (tfswa plan) never commits;
 *   4. tf_kern_conv2d_forward/backward() with a registered shape (an unregistered shape
 *      or an uncommitted object is an internal error, reported by tf_kernels_status).
 * Calls return nothing: a backend failure is recorded (the first one wins) and
 * tf_kernels_status() returns it; the model checks it after each forward/backward.
 *
 * Threads: every call runs on `threads` OpenMP threads (the creating argument).
 * Compute dtype TF_DT_BF16 = bf16 operands with fp32 accumulation and fp32 outputs where
 * the backend has native bf16 arithmetic (oneDNN on AVX512-BF16 or AMX); elsewhere the
 * object falls back to fp32 arithmetic and tf_kernels_compute() says so. */
#ifndef TFSWA_NN_KERNELS_H
#define TFSWA_NN_KERNELS_H
#include <stddef.h>

#include "util/err.h"
#include "util/model_types.h"

typedef struct tf_kernels tf_kernels;

/* The largest workspace a cuDNN algorithm may ask for, per convolution shape and pass. */
#define TF_KERN_CUDA_WS_LIMIT ((size_t)256 << 20)

/* backend: TF_BACKEND_REF | TF_BACKEND_DNNL | TF_BACKEND_CUDA (on the current CUDA device:
 * util/device.h's tf_device_open selects it); compute: requested arithmetic dtype;
 * threads >= 1. TF_EUSER when the backend is not compiled in (cuda in a CPU build) or
 * there is no CUDA device. */
tf_status tf_kernels_create(tf_kernels **out, tf_backend backend, tf_dtype compute, int threads);
void tf_kernels_free(tf_kernels *k);
/* A plan-only object for `backend` (any build, no device needed): every conv shape
 * registered through tf_kern_conv2d_add needs ws_bytes of workspace (an upper bound where
 * the backend's own choice cannot be made here: cuDNN without a GPU), plus, for cuda with
 * compute TF_DT_BF16 or TF_DT_FP16, the shape's 16-bit operand copies
 * (tf_cuda_conv_half_copy_bytes; the compute dtype of other backends is fp32 here). describe: what
 * tf_kernels_describe returns. The calls record an internal error; nothing to commit. */
tf_status tf_kernels_create_bound(tf_kernels **out, tf_backend backend, tf_dtype compute,
                                  size_t ws_bytes, const char *describe);

tf_backend tf_kernels_backend(const tf_kernels *k);
/* The arithmetic dtype calls actually use (TF_DT_FP32 after a bf16 fallback). */
tf_dtype tf_kernels_compute(const tf_kernels *k);
/* One line: backend, library version and the instruction set it dispatched to, e.g.
 * "dnnl (oneDNN 2.6.3, isa avx2), fp32 arithmetic" or "ref (OpenMP + OpenBLAS sgemm)". */
const char *tf_kernels_describe(const tf_kernels *k);
/* "oneDNN 2.6.3 isa avx2, bf16 native no": the library version and the instruction set
 * oneDNN dispatches to on this CPU (for bench JSON and logs). Does not need an object. */
void tf_kernels_cpu(char *out, size_t n);
/* Whether this CPU has native bf16 arithmetic for the backend (oneDNN: AVX512-BF16 or
 * AMX; ref: never; cuda: 0 here, it depends on the card: tf_kernels_compute of an object).
 * Does not need an object. */
int tf_kernels_native_bf16(tf_backend backend);

/* Register conv2d of this shape (see nn/conv.h: k in {1, 3}, stride 1, same padding,
 * bias or not); train = 1 also prepares the backward passes. *ws_bytes = workspace the
 * calls of this shape need (forward only when train = 0). Registering a shape twice is
 * allowed; registering it with train = 1 after train = 0 adds the backward passes.
 * *ws_bytes is what a call with `train`'s passes needs (forward only for train = 0). */
tf_status tf_kern_conv2d_add(tf_kernels *k, int B, int Cin, int Cout, int H, int W, int ksize,
                             int bias, int train, size_t *ws_bytes);
/* Create the primitives of every registered shape. */
tf_status tf_kernels_commit(tf_kernels *k);
/* TF_OK, or the first failure of a call since the last check (then cleared). */
tf_status tf_kernels_status(tf_kernels *k);
/* Registered conv shapes (for tests and tfswa plan). */
size_t tf_kernels_n_shapes(const tf_kernels *k);
/* The algorithms chosen for registered shape i, one line (cuda: "fwd algo 1 (fma) 0 B,
 * bwd-data ..."; the CPU backends: ""). */
void tf_kernels_shape_algos(const tf_kernels *k, size_t i, char *out, size_t n);

/* out (B, Cout, H, W) = conv(inp (B, Cin, H, W), weight (Cout, Cin, k, k)) + bias (Cout)
 * (bias NULL iff registered without). ws: the workspace, ws_bytes long (64-byte aligned).
 * A shape not registered is registered at its first call when it fits ws_bytes; otherwise
 * the call records an error and does nothing. */
void tf_kern_conv2d_forward(tf_kernels *k, float *out, const float *inp, const float *weight,
                            const float *bias, int B, int Cin, int Cout, int H, int W, int ksize,
                            void *ws, size_t ws_bytes);
/* dinp (B, Cin, H, W) +=, dweight (Cout, Cin, k, k) +=, dbias (Cout) += (dinp, dbias may
 * be NULL), as tf_conv2d_backward; set_dinp = 1: dinp = instead (overwritten, not added
 * to: the caller need not zero it, and the backend skips reading it). */
void tf_kern_conv2d_backward(tf_kernels *k, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int B,
                             int Cin, int Cout, int H, int W, int ksize, void *ws, size_t ws_bytes,
                             int set_dinp);

#endif
