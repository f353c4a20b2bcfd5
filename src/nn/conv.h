/* Convolutional-side layer kernels of TFSWA-ResUNet (CPU: OpenMP + OpenBLAS sgemm).
 *
 * Every layer is a forward/backward pair in llm.c order:
 *   x_forward(out, [saved...], inp, weights..., dims...)
 *   x_backward(dinp, dweights..., dout, inp/saved..., weights..., dims...)
 * Backward ADDS (+=) into dinp and into every weight gradient; the caller zeroes the
 * gradients once per step. Kernels never allocate: scratch is a caller-provided workspace
 * whose size (in floats) the matching *_workspace_floats() returns.
 * Tensors are row-major float32 (B, C, H, W); in the model H is frequency F, W is time T.
 * A gradient pointer documented as "may be NULL" skips that gradient.
 *
 * Threads: conv2d takes `nthreads`. With nthreads > 1 it runs an OpenMP team over
 * (batch, tile) pairs and sets OpenBLAS to 1 thread for the duration of the call
 * (restored on return); with nthreads == 1 the loop is serial and OpenBLAS uses its own
 * thread count (the "BLAS-only" mode). Measured on 2 cores (conv3x3 32->32, 256x128):
 * OpenMP over tiles with serial sgemm ran ~1.5x faster than the BLAS-only mode with 2
 * BLAS threads, which was no faster than 1 thread (im2col stays serial, M = 32 is small).
 * Do not call conv2d from inside a parallel region that also calls BLAS. The other
 * kernels use OpenMP with the default team. */
#ifndef TFSWA_NN_CONV_H
#define TFSWA_NN_CONV_H
#include <stddef.h>

#include "util/err.h"

/* ---------------------------------------------------------------------------------------
 * conv2d: kernel k in {1, 3}, stride 1, zero padding (k-1)/2 ("same"), PyTorch weight
 * layout (Cout, Cin, k, k), optional bias (Cout) (NULL = none).
 * Computed by im2col over TILES of at most `tile` output pixels of the flattened H*W axis
 * and one sgemm per tile (k == 1 needs no im2col). tile <= 0 means CONV2D_TILE. The tile
 * is also shrunk when B * ceil(H*W / tile) < nthreads so every thread gets work.
 * Backward: dweight += dout x col^T (per-thread partial sums in the workspace, reduced in
 * a fixed order, so results are deterministic for a given nthreads); dinp is computed in
 * gather form, dinp = conv(dout, W~) with W~[ci][co][ky][kx] = W[co][ci][k-1-ky][k-1-kx]
 * (the exact adjoint of the zero-padded stride-1 conv), so tiles write disjoint pixels
 * of dinp and need no scatter (col2im) across tile borders. */
/* 1024 pixels: the measured sweet spot (256..1024 were within noise of each other for
 * 32->32, 64->64 and 384->384 3x3 convs on one core; 4096 was 5..15% slower at 32 and 64
 * channels, where a larger im2col tile falls out of L2). */
#define CONV2D_TILE 1024

/* Floats of workspace that tf_conv2d_forward AND tf_conv2d_backward need for these dims with
 * this tile and thread count (one workspace serves both):
 *   k == 3: forward  nthreads * Cin*9*t,
 *           backward Cin*Cout*9 + (nthreads-1) * Cout*Cin*9 + nthreads * max(Cin,Cout)*9*t
 *   k == 1: forward 0, backward (nthreads-1) * Cout*Cin
 * with t = min(tile, H*W). Returns 0 for k not in {1, 3}. */
size_t tf_conv2d_workspace_floats(int Cin, int Cout, int H, int W, int k, int tile, int nthreads);
/* Floats of workspace tf_conv2d_forward alone needs (inference): nthreads * Cin*k*k*t for
 * k == 3, 0 for k == 1 (no im2col), with t = min(tile, H*W). Never more than
 * tf_conv2d_workspace_floats(). */
size_t tf_conv2d_forward_workspace_floats(int Cin, int H, int W, int k, int tile, int nthreads);

/* out (B, Cout, H, W) = conv(inp (B, Cin, H, W), weight (Cout, Cin, k, k)) + bias (Cout) */
void tf_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int Cin, int Cout, int H, int W, int k, float *workspace, int tile,
                       int nthreads);

/* dinp (B, Cin, H, W) += d/dinp, dweight (Cout, Cin, k, k) += d/dweight,
 * dbias (Cout) += sum of dout over (B, H, W); dinp and dbias may be NULL.
 * dout (B, Cout, H, W); inp (B, Cin, H, W) is the forward input. */
void tf_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int Cin, int Cout, int H,
                        int W, int k, float *workspace, int tile, int nthreads);

/* Floating-point operations of one tf_conv2d_forward (2 per multiply-add, padded taps
 * counted as the sgemm does): 2 * B * Cout * Cin * k*k * H * W. A full backward (dinp and
 * dweight) costs twice that; the bias terms are not counted. */
double tf_conv2d_flops(int B, int Cin, int Cout, int H, int W, int k);

/* ---------------------------------------------------------------------------------------
 * batchnorm2d, as PyTorch nn.BatchNorm2d (eps and momentum are arguments: PyTorch's
 * defaults are 1e-5 and 0.1). Statistics per channel over (B, H, W); weight/bias (C) are
 * the affine parameters and may be NULL (affine=False: weight 1, bias 0).
 * Training mode normalises with the batch mean and BIASED variance, saves mean and
 * rstd = 1/sqrt(var + eps) for backward, and (when running_mean/running_var are not NULL)
 * updates running = (1 - momentum) * running + momentum * batch_stat with the UNBIASED
 * variance var * n/(n-1), n = B*H*W (n == 1: the biased one, 0; PyTorch refuses n == 1).
 * Statistics are accumulated in double. */

/* out (B, C, H, W); mean, rstd (C) saved; running_mean, running_var (C) updated in place */
void tf_batchnorm2d_forward(float *out, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *inp, const float *weight,
                            const float *bias, int B, int C, int H, int W, float momentum,
                            float eps);
/* out (n) = (inp (n) - mean) * (weight * rstd) + bias: the normalisation tf_batchnorm2d_forward
 * applies to the values of one channel (it calls this, so the values are bitwise the
 * same), for callers that recompute a BN output piecewise from the saved mean and rstd.
 * weight 1 and bias 0 when the layer has none. out may alias inp. */
void tf_batchnorm_normalize(float *out, const float *inp, size_t n, float mean, float rstd,
                            float weight, float bias);
/* gelu(tf_batchnorm2d_forward(...)) in one pass over the output (same statistics and
 * running-stat updates; the values of tf_bn_gelu per channel) */
void tf_batchnorm2d_gelu_forward(float *out, float *mean, float *rstd, float *running_mean,
                                 float *running_var, const float *inp, const float *weight,
                                 const float *bias, int B, int C, int H, int W, float momentum,
                                 float eps);
/* exact training-mode backward: dinp (B, C, H, W) +=, dweight, dbias (C) += (may be NULL);
 * mean, rstd (C) from tf_batchnorm2d_forward */
void tf_batchnorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *mean,
                             const float *rstd, int B, int C, int H, int W);
/* eval mode: out = (inp - running_mean) / sqrt(running_var + eps) * weight + bias */
void tf_batchnorm2d_eval_forward(float *out, const float *inp, const float *weight,
                                 const float *bias, const float *running_mean,
                                 const float *running_var, int B, int C, int H, int W, float eps);
/* gelu(tf_batchnorm2d_eval_forward(...)) in one pass; out may alias inp */
void tf_batchnorm2d_gelu_eval_forward(float *out, const float *inp, const float *weight,
                                      const float *bias, const float *running_mean,
                                      const float *running_var, int B, int C, int H, int W,
                                      float eps);
/* backward of the eval-mode forward (running stats are constants) */
void tf_batchnorm2d_eval_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *weight, const float *running_mean,
                                  const float *running_var, int B, int C, int H, int W, float eps);

/* ---------------------------------------------------------------------------------------
 * Resampling and concat. */

/* 2x2 average pooling, stride 2 (nn.AvgPool2d(2)): out (B, C, H/2, W/2) from
 * inp (B, C, H, W); H and W even (the caller guarantees it). */
void tf_avgpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W);
/* dinp (B, C, H, W) += 0.25 * dout (B, C, H/2, W/2) broadcast over each 2x2 block */
void tf_avgpool2x2_backward(float *dinp, const float *dout, int B, int C, int H, int W);

/* Bilinear upsampling x2 with align_corners=False, i.e. PyTorch's
 * nn.Upsample(scale_factor=2, mode='bilinear') default: source coordinate
 * s = (o + 0.5) / 2 - 0.5 clamped below at 0, neighbours floor(s) and min(floor(s)+1, n-1).
 * out (B, C, 2H, 2W) from inp (B, C, H, W). */
void tf_upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W);
/* dinp (B, C, H, W) += exact adjoint of tf_upsample2x_forward applied to dout (B, C, 2H, 2W) */
void tf_upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W);

/* out (B, C1+C2, H, W) = [a (B, C1, H, W), b (B, C2, H, W)] along channels */
void tf_concat_forward(float *out, const float *a, const float *b, int B, int C1, int C2, int H,
                       int W);
/* da (B, C1, H, W) += dout[:, :C1], db (B, C2, H, W) += dout[:, C1:]; either may be NULL */
void tf_concat_backward(float *da, float *db, const float *dout, int B, int C1, int C2, int H,
                        int W);

#endif
