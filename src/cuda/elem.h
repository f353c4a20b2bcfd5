/* CUDA kernels of the model's own (non-GEMM, non-convolution) layers, as C-callable
 * launchers (src/cuda/elem.cu). No CUDA header here: the stream is a cudaStream_t passed as
 * void * (NULL: the legacy default stream) and the return value is the cudaError_t of the
 * launch as an int (0 = cudaSuccess; errors of the kernels themselves surface at the next
 * synchronisation). Every tensor pointer is a DEVICE pointer.
 *
 * Each launcher computes what the CPU function it names computes (same shapes, same
 * accumulate-or-write convention, same NULL conventions); the per-element math is the same
 * code, nn/elem.h and optim/optim_elem.h. Reductions accumulate in double where the CPU
 * does (BatchNorm statistics and gradients, LayerNorm statistics, the loss) and in float
 * where it does (LayerNorm backward row sums, softmax sums), in a different order, so
 * results agree to rounding, not bitwise. Every reduction is deterministic (fixed order,
 * no atomics): where one spans many blocks its partial sums go to a caller workspace of
 * the size its *_workspace function gives. tests/gpu/test_cuda_elem.c checks each one
 * against the CPU function. */
#ifndef TFSWA_CUDA_ELEM_H
#define TFSWA_CUDA_ELEM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------- GELU (nn/act.h) */
/* out (n) = gelu(inp (n)); out may alias inp */
int tf_cuda_gelu_forward(float *out, const float *inp, size_t n, void *stream);
/* dinp (n) += gelu'(inp) * dout (n) */
int tf_cuda_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n, void *stream);

/* ------------------------------------------------ BatchNorm2d (nn/conv.h) */
/* tf_batchnorm2d_forward (gelu = 0) / tf_batchnorm2d_gelu_forward (gelu = 1):
 * out (B, C, H, W); mean, rstd (C) saved; running_mean, running_var (C) updated in place
 * (both NULL: not updated); inp (B, C, H, W); weight, bias (C) or NULL. One block per
 * channel. */
int tf_cuda_batchnorm2d_forward(float *out, float *mean, float *rstd, float *running_mean,
                                float *running_var, const float *inp, const float *weight,
                                const float *bias, int B, int C, int H, int W, float momentum,
                                float eps, int gelu, void *stream);
/* tf_batchnorm2d_backward: dinp (B, C, H, W) +=, dweight, dbias (C) += (each may be NULL);
 * dout, inp (B, C, H, W); weight (C) or NULL; mean, rstd (C) from the forward. */
int tf_cuda_batchnorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, const float *mean,
                                 const float *rstd, int B, int C, int H, int W, void *stream);
/* tf_batchnorm2d_eval_forward (gelu = 0) / tf_batchnorm2d_gelu_eval_forward (gelu = 1):
 * out (B, C, H, W) (may alias inp); running_mean, running_var (C). */
int tf_cuda_batchnorm2d_eval_forward(float *out, const float *inp, const float *weight,
                                     const float *bias, const float *running_mean,
                                     const float *running_var, int B, int C, int H, int W,
                                     float eps, int gelu, void *stream);

/* tf_batchnorm2d_eval_backward: dinp (B, C, H, W) +=, dweight, dbias (C) += (each may be
 * NULL); the running statistics are constants. */
int tf_cuda_batchnorm2d_eval_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                      const float *inp, const float *weight,
                                      const float *running_mean, const float *running_var, int B,
                                      int C, int H, int W, float eps, void *stream);

/* ---------------------------------------------------- LayerNorm (nn/attn.h) */
/* tf_layernorm_forward: out (N, C), mean, rstd (N) saved, inp (N, C), weight, bias (C) */
int tf_cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, void *stream);
/* floats of workspace tf_cuda_layernorm_backward needs (the per-chunk partial sums of
 * dweight and dbias) */
size_t tf_cuda_layernorm_backward_workspace_floats(int N, int C);
/* tf_layernorm_backward: dinp (N, C) +=, dweight, dbias (C) +=; dout, inp (N, C); weight (C);
 * mean, rstd (N) from the forward; workspace (device) of
 * tf_cuda_layernorm_backward_workspace_floats(N, C) floats. */
int tf_cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C, float *workspace, void *stream);

/* -------------------------------------------------------- softmax (nn/attn.h) */
/* out (N, L) = softmax of each row of inp (N, L); out may alias inp. One warp per row. */
int tf_cuda_softmax_forward(float *out, const float *inp, int N, int L, void *stream);
/* dinp (N, L) += p * (dout - sum_j p_j dout_j), p (N, L) the forward's output */
int tf_cuda_softmax_backward(float *dinp, const float *dout, const float *p, int N, int L,
                             void *stream);

/* ------------------------------------------------- resampling (nn/conv.h) */
/* out (B, C, H/2, W/2) = 2x2 average pooling of inp (B, C, H, W), H and W even */
int tf_cuda_avgpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W,
                               void *stream);
/* dinp (B, C, H, W) += 0.25 * dout (B, C, H/2, W/2) over each 2x2 block */
int tf_cuda_avgpool2x2_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                                void *stream);
/* out (B, C, 2H, 2W) = bilinear x2 upsampling (align_corners=False) of inp (B, C, H, W) */
int tf_cuda_upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W,
                               void *stream);
/* dinp (B, C, H, W) += adjoint of the upsampling applied to dout (B, C, 2H, 2W) (a gather
 * per input element: no atomics) */
int tf_cuda_upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                                void *stream);

/* out (B, C1+C2, H, W) = [a (B, C1, H, W), b (B, C2, H, W)] along channels */
int tf_cuda_concat_forward(float *out, const float *a, const float *b, int B, int C1, int C2, int H,
                           int W, void *stream);
/* da (B, C1, H, W) += dout[:, :C1], db (B, C2, H, W) += dout[:, C1:]; either may be NULL */
int tf_cuda_concat_backward(float *da, float *db, const float *dout, int B, int C1, int C2, int H,
                            int W, void *stream);

/* ---------------------------------------------- Swin windows (nn/attn.h) */
/* x (B, T, F, C), win (B*(T/wt)*(F/wf), wt*wf, C), shift (st, sf); T % wt == 0, F % wf == 0
 * and 0 <= st < wt, 0 <= sf < wf (tf_swin_check_dims; not checked here). */
/* win = window_partition(roll(x, (-st, -sf))) */
int tf_cuda_window_partition_forward(float *win, const float *x, int B, int T, int F, int C, int wt,
                                     int wf, int st, int sf, void *stream);
/* dx += adjoint of the partition applied to dwin */
int tf_cuda_window_partition_backward(float *dx, const float *dwin, int B, int T, int F, int C,
                                      int wt, int wf, int st, int sf, void *stream);
/* x = roll(window_reverse(win), (st, sf)) */
int tf_cuda_window_reverse_forward(float *x, const float *win, int B, int T, int F, int C, int wt,
                                   int wf, int st, int sf, void *stream);
/* dwin += adjoint of the reverse applied to dx */
int tf_cuda_window_reverse_backward(float *dwin, const float *dx, int B, int T, int F, int C,
                                    int wt, int wf, int st, int sf, void *stream);

/* ------------------------------ feature map <-> token sequences (nn/attn.h) */
/* time_seq: 1 = TF_SEQ_TIME (tokens (B*F, T, C)), 0 = TF_SEQ_FREQ (tokens (B*T, F, C)); x is
 * the map (B, C, F, T). */
/* tok = x rearranged */
int tf_cuda_map_to_seq_forward(float *tok, const float *x, int B, int C, int F, int T, int time_seq,
                               void *stream);
/* dx += adjoint applied to dtok */
int tf_cuda_map_to_seq_backward(float *dx, const float *dtok, int B, int C, int F, int T,
                                int time_seq, void *stream);
/* x = tokens back to the map */
int tf_cuda_seq_to_map_forward(float *x, const float *tok, int B, int C, int F, int T, int time_seq,
                               void *stream);
/* dtok += adjoint applied to dx */
int tf_cuda_seq_to_map_backward(float *dtok, const float *dx, int B, int C, int F, int T,
                                int time_seq, void *stream);
/* from_time_seq 1: out (B, T, F, C) = in (B, F, T, C); 0: out (B, F, T, C) = in (B, T, F, C) */
int tf_cuda_seq_swap_forward(float *out, const float *in, int B, int C, int F, int T,
                             int from_time_seq, void *stream);
/* din += adjoint of the swap applied to dout */
int tf_cuda_seq_swap_backward(float *din, const float *dout, int B, int C, int F, int T,
                              int from_time_seq, void *stream);

/* ---------------------------------------------------------- loss (train/loss.h) */
/* doubles of workspace the two loss launchers need */
size_t tf_cuda_loss_workspace_doubles(void);
/* The waveform L1 of tf_loss_eval: *loss (one device double) = mean |y - t| over n values,
 * dy (n) = scale / n * sign(y - t) (written, not added); y, t (n). */
int tf_cuda_loss_l1(const float *y, const float *t, size_t n, double scale, float *dy, double *loss,
                    double *workspace, void *stream);
/* The per-bin part of tf_loss_eval's STFT magnitude loss for one signal and resolution:
 * *sum (one device double) = sum_i | |Y_i| - |T_i| | over m bins, and (dr, di) (m) = gm *
 * sign(|Y| - |T|) * Y / |Y| (0 where |Y| = 0) (written); yr, yi, tr, ti (m) the spectra. */
int tf_cuda_loss_mag_l1(const float *yr, const float *yi, const float *tr, const float *ti,
                        size_t m, float gm, float *dr, float *di, double *sum, double *workspace,
                        void *stream);

/* ---------------------------------------------------------- Adam (optim/optim.h) */
/* tf_adam_step with the fields of tf_adam_cfg (adamw, beta1, beta2, eps, weight_decay):
 * one fused update of n parameters at step t (1-based) with learning rate lr; params, m, v
 * (n) updated in place, grads (n) read. */
int tf_cuda_adam_step(int adamw, float beta1, float beta2, float eps, float weight_decay,
                      float *params, const float *grads, float *m, float *v, size_t n, int64_t t,
                      float lr, void *stream);

/* tf_global_norm: *norm (one device double) = sqrt(sum g^2) over g (n), accumulated in
 * double; workspace of tf_cuda_loss_workspace_doubles() doubles */
int tf_cuda_global_norm(const float *g, size_t n, double *norm, double *workspace, void *stream);
/* g (n) *= scale (tf_clip_by_norm's scaling, the scale computed on the host from the norm) */
int tf_cuda_scale(float *g, size_t n, float scale, void *stream);
/* tf_ema_update: ema (n) = decay * ema + (1 - decay) * params (n) */
int tf_cuda_ema_update(float *ema, const float *params, size_t n, float decay, void *stream);

/* ------------------------------- model glue (model/forward.c, dsp/stft.h, dsp/subband.c) */
/* y (n) += x (n) */
int tf_cuda_add(float *y, const float *x, size_t n, void *stream);
/* out (n) = a (n) + b (n); out may alias a or b */
int tf_cuda_add2(float *out, const float *a, const float *b, size_t n, void *stream);
/* dst (B, Cd, hw) channels [c0, c0 + Cs) = src (B, Cs, hw) (the other channels untouched) */
int tf_cuda_copy_channels(float *dst, int Cd, int c0, const float *src, int B, int Cs, size_t hw,
                          void *stream);
/* bf16 activation storage (use_amp), the rounding of util/hd.h (round to nearest even, the
 * CPU model's): dst (B, Cd, hw) bf16 channels [c0, c0 + Cs) = bf16(src (B, Cs, hw)); round
 * = 1: src also takes the rounded values (the forward goes on with what it stored) */
int tf_cuda_bf16_pack(uint16_t *dst, int Cd, int c0, float *src, int B, int Cs, size_t hw,
                      int round, void *stream);
/* 16-bit maps (the bf16 storage's widening, src/model/model_cuda.c, and the convolutions'
 * operand copies, src/cuda/conv.cu): fp16 = 0
 * bf16 (util/hd.h's tf_elem_f32_to_bf16), 1 IEEE binary16 (tf_elem_f32_to_f16: overflow to
 * Inf, subnormals kept). dst (n) = src (n) rounded; and back: dst (n) = (add: +=) the float
 * of src (n) (exact). */
int tf_cuda_half_pack(uint16_t *dst, const float *src, size_t n, int fp16, void *stream);
int tf_cuda_half_unpack(float *dst, const uint16_t *src, size_t n, int fp16, int add, void *stream);
/* tf_magphase: mag = |X|, (pr, pi) = X / |X| (1 + 0i where |X| == 0), all (n); any output
 * may be NULL to skip it */
int tf_cuda_magphase(float *mag, float *pr, float *pi, const float *re, const float *im, size_t n,
                     void *stream);
/* tf_combine_forward for S targets sharing one phase: yr, yi (B, S, n) = mag (B, S, n) *
 * (pr, pi) (B, n) (written) */
int tf_cuda_combine_forward(float *yr, float *yi, const float *mag, const float *pr,
                            const float *pi, int B, int S, size_t n, void *stream);
/* tf_combine_backward, the same broadcast: dmag (B, S, n) += pr * dyr + pi * dyi */
int tf_cuda_combine_backward(float *dmag, const float *dyr, const float *dyi, const float *pr,
                             const float *pi, int B, int S, size_t n, void *stream);
/* tf_subband_split / _split_backward / _merge / _merge_backward (dsp/stft.h): the same
 * shapes and the same write (=) or accumulate (+=) conventions; K >= 1 and (F - 1) % K == 0
 * (the caller checks) */
int tf_cuda_subband_split(float *out, const float *inp, int B, int C, int F, int T, int K,
                          void *stream);
int tf_cuda_subband_split_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                   int K, void *stream);
int tf_cuda_subband_merge(float *out, const float *inp, int B, int C, int F, int T, int K,
                          void *stream);
int tf_cuda_subband_merge_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                   int K, void *stream);
/* tf_copy_corner (model/model_internal.h): dst (R, Fd, Td) = the top-left corner of src
 * (R, Fsrc, Tsrc), the rest of dst 0 */
int tf_cuda_copy_corner(float *dst, int Fd, int Td, const float *src, int Fsrc, int Tsrc, size_t R,
                        void *stream);
/* The head's output activation of forward.c, whole batch: h (B, S, K2, Fs, T) (written) =
 * act(z cropped), z (B, S*K2, Fp, Tp), channel s*K2 + c of item b cropped to (Fs, T);
 * act = ReLU when x0 is NULL, else x0[b, c] / (1 + expf(-z)) with x0 (B, K2, Fp, Tp)
 * cropped the same way (the mask output). Fs <= Fp, T <= Tp. */
int tf_cuda_head_forward(float *h, const float *z, const float *x0, int B, int S, int K2, int Fs,
                         int T, int Fp, int Tp, void *stream);
/* Its backward: dz (B, S*K2, Fp, Tp) (written) = act'(z) * dh (B, S, K2, Fs, T) zero-padded
 * to (Fp, Tp): ReLU: dh where z > 0, else 0; mask: dh * x0 * sg * (1 - sg), sg the sigmoid
 * of z, as forward.c's backward computes it. */
int tf_cuda_head_backward(float *dz, const float *dh, const float *z, const float *x0, int B, int S,
                          int K2, int Fs, int T, int Fp, int Tp, void *stream);

#ifdef __cplusplus
}
#endif
#endif
