/* Attention-side layer kernels of TFSWA-ResUNet (CPU: OpenMP + OpenBLAS sgemm).
 *
 * Conventions (karpathy/llm.c): forward(out, saved..., inp, weights..., dims);
 * backward(dinp, dweights..., dout, saved/inp..., weights..., dims). Every backward ADDS
 * (+=) into all of its gradients, so residual branches and skips sum for free; zero the
 * gradients once per step. No kernel allocates: scratch comes from a caller workspace
 * whose size is given by a `*_workspace_floats(dims)` function. Tensors are row-major
 * float32, shapes in comments. Dimensions are ints; offsets are computed in size_t.
 * Outputs never alias inputs unless a comment says so.
 *
 * Typical use of the pieces (one TFSWA block of the bottleneck, map x (B, C, F, T)):
 *   TSA:  map_to_seq(x, TF_SEQ_TIME) -> (B*F, T, C) -> tblock -> seq_to_map
 *   FSA:  map_to_seq(x, TF_SEQ_FREQ) -> (B*T, F, C) -> tblock -> seq_to_map
 *   Swin: tokens (B, T, F, C) (= TF_SEQ_FREQ layout) -> window_partition (shift 0 for
 *         W-MSA, (wt/2, wf/2) for SW-MSA) -> tblock with rel. position bias (+ the shift
 *         mask for SW-MSA) -> window_reverse. LayerNorm, residuals and the MLP act per token,
 *         so partition -> tblock -> reverse equals the official Swin block exactly.
 */
#ifndef TFSWA_NN_ATTN_H
#define TFSWA_NN_ATTN_H
#include <stddef.h>

#include "util/err.h"

/* ------------------------------------------------------------------ layer norm */
#define LAYERNORM_EPS 1e-5f

/* LayerNorm over the last dim, affine (PyTorch nn.LayerNorm(C), eps 1e-5, biased var).
 * out (N, C), mean (N), rstd (N) saved for backward, inp (N, C), weight (C), bias (C). */
void tf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C);
/* dinp (N, C) +=, dweight (C) +=, dbias (C) +=; dout (N, C), inp (N, C), weight (C),
 * mean (N), rstd (N) from the forward. */
void tf_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C);

/* ---------------------------------------------------------------------- linear */
/* out (N, OC) = inp (N, IC) @ weight^T + bias, weight (OC, IC) as PyTorch nn.Linear,
 * bias (OC) or NULL. */
void tf_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                       int IC, int OC);
/* dinp (N, IC) += dout @ weight; dweight (OC, IC) += dout^T @ inp; dbias (OC) += sum_n dout.
 * dinp and dbias may be NULL (not wanted / no bias). sgemm with beta = 1. */
void tf_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int IC, int OC);

/* --------------------------------------------------------------------- softmax */
/* out (N, L) = softmax over each row of inp (N, L); out may alias inp. */
void tf_softmax_forward(float *out, const float *inp, int N, int L);
/* dinp (N, L) += p * (dout - sum_j p_j dout_j) with p = out (N, L) of the forward. */
void tf_softmax_backward(float *dinp, const float *dout, const float *p, int N, int L);

/* ------------------------------------------------------ multi-head attention core */
/* Self-attention of N independent sequences of length L, C channels, H heads (C % H == 0),
 * head dim D = C/H, scale 1/sqrt(D).
 *   qkv (N, L, 3C): nn.Linear(C, 3C) output; channel s*C + h*D + d is (q|k|v)[s], head h,
 *                   element d (PyTorch's reshape (N, L, 3, H, D)).
 *   out (N, L, C):  heads concatenated (channel h*D + d), before the output projection.
 *   att (N, H, L, L) SAVED: the attention probabilities; memory N*H*L*L floats.
 *   bias_table (R, H) or NULL: learned relative position bias table (Swin layout);
 *   bias_index (L, L): row of the table for query i, key j (needed iff bias_table).
 *   mask (nW, L, L) or NULL: additive mask; sequence n uses mask[n % nW] (Swin: the nW
 *                   windows of one image are consecutive). nW ignored when mask is NULL.
 * score[n,h,i,j] = scale q_i.k_j + bias_table[bias_index[i,j], h] + mask[n % nW, i, j] */
void tf_attention_forward(float *out, float *att, const float *qkv, const float *bias_table,
                          const int *bias_index, const float *mask, int nW, int N, int L, int C,
                          int H);
/* Floats of workspace tf_attention_backward needs: min(N, 64)*H*L*L (the backward works in
 * chunks of 64 sequences); the forward needs none. */
size_t tf_attention_workspace_floats(int N, int L, int H);
/* dqkv (N, L, 3C) +=; dbias_table (R, H) += (scattered through bias_index; may be NULL
 * when there is no table); dout (N, L, C); qkv and att as saved by the forward. The mask
 * needs no gradient. workspace: tf_attention_workspace_floats(N, L, H) floats. */
void tf_attention_backward(float *dqkv, float *dbias_table, const float *dout, const float *qkv,
                           const float *att, const int *bias_index, int N, int L, int C, int H,
                           float *workspace);

/* ------------------------------------------------------------- Swin helpers */
/* Token layout of a feature map: (B, T, F, C), time-major, then frequency, channels last.
 * Windows (wt, wf) time x frequency (paper: 5 x 4). T % wt == 0 and F % wf == 0 are
 * REQUIRED (the model pads the map first); tf_swin_check_dims says so as a TF_EUSER error.
 * Shift (st, sf): 0, 0 for W-MSA; wt/2, wf/2 for SW-MSA (Swin's shift_size = ws // 2).
 * Windows are numbered b*nWt*nWf + i*nWf + j, token (ti, fj) in a window is ti*wf + fj
 * (Swin window_partition with H = T, W = F). */
tf_status tf_swin_check_dims(int T, int F, int wt, int wf, int st, int sf);

/* win (B*nWt*nWf, wt*wf, C) = window_partition(torch.roll(x, (-st, -sf), dims=(1, 2)))
 * with x (B, T, F, C). A permutation. */
void tf_window_partition_forward(float *win, const float *x, int B, int T, int F, int C, int wt,
                                 int wf, int st, int sf);
/* dx (B, T, F, C) += exact adjoint (inverse permutation) of dwin. */
void tf_window_partition_backward(float *dx, const float *dwin, int B, int T, int F, int C, int wt,
                                  int wf, int st, int sf);
/* x (B, T, F, C) = torch.roll(window_reverse(win), (st, sf), dims=(1, 2)): the inverse of
 * tf_window_partition_forward with the same arguments. */
void tf_window_reverse_forward(float *x, const float *win, int B, int T, int F, int C, int wt,
                               int wf, int st, int sf);
/* dwin (B*nW, wt*wf, C) += exact adjoint of tf_window_reverse_forward applied to dx. */
void tf_window_reverse_backward(float *dwin, const float *dx, int B, int T, int F, int C, int wt,
                                int wf, int st, int sf);

/* Rows of the relative position bias table: (2wt-1)*(2wf-1). */
int tf_swin_relpos_rows(int wt, int wf);
/* index (L, L), L = wt*wf, exactly Swin's relative_position_index:
 * rel = coords[:, :, None] - coords[:, None, :]; rel[...,0] += wt-1; rel[...,1] += wf-1;
 * rel[...,0] *= 2wf-1; index = rel.sum(-1). With wf = 1 it is the 1-D relative index
 * i - j + wt - 1 into a (2wt-1, H) table (usable for TSA/FSA if the model wants it). */
void tf_swin_relpos_index(int *index, int wt, int wf);
/* mask (nWt*nWf, L, L) for the shifted windows of a T x F map: 0 where two tokens of a
 * window come from the same region of Swin's img_mask slice construction
 * ((0,-w), (-w,-s), (-s,None) per axis, on the rolled map), -100 otherwise. A dim with
 * shift 0 forms one region. Same for every image of the batch (use nW = nWt*nWf). */
void tf_swin_attn_mask(float *mask, int T, int F, int wt, int wf, int st, int sf);

/* ------------------------------------------ feature map <-> token sequences */
/* x is a feature map (B, C, F, T). TF_SEQ_TIME: tokens (B*F, T, C), one time sequence per
 * frequency row (TSA). TF_SEQ_FREQ: tokens (B*T, F, C), one frequency sequence per frame
 * (FSA); this is also the Swin token layout (B, T, F, C). */
typedef enum { TF_SEQ_TIME = 0, TF_SEQ_FREQ = 1 } tf_seq_axis;
/* tok = x rearranged; a permutation. */
void tf_map_to_seq_forward(float *tok, const float *x, int B, int C, int F, int T, tf_seq_axis ax);
/* dx (B, C, F, T) += adjoint applied to dtok. */
void tf_map_to_seq_backward(float *dx, const float *dtok, int B, int C, int F, int T,
                            tf_seq_axis ax);
/* x (B, C, F, T) = tokens back to the map (the inverse of tf_map_to_seq_forward). */
void tf_seq_to_map_forward(float *x, const float *tok, int B, int C, int F, int T, tf_seq_axis ax);
/* dtok += adjoint applied to dx (B, C, F, T). */
void tf_seq_to_map_backward(float *dtok, const float *dx, int B, int C, int F, int T,
                            tf_seq_axis ax);
/* Between the two token layouts directly: out (B, T, F, C) = in (B, F, T, C) (from_ax =
 * TF_SEQ_TIME) or out (B, F, T, C) = in (B, T, F, C) (from_ax = TF_SEQ_FREQ). */
void tf_seq_swap_forward(float *out, const float *in, int B, int C, int F, int T,
                         tf_seq_axis from_ax);
/* din += adjoint of tf_seq_swap_forward(.., from_ax) applied to dout. */
void tf_seq_swap_backward(float *din, const float *dout, int B, int C, int F, int T,
                          tf_seq_axis from_ax);

/* ------------------------------------------------------- transformer block */
/* Pre-LN transformer block over N sequences (N, L, C), H heads, MLP hidden Hd:
 *   x1  = inp + proj(MSA(LN1(inp)))          MSA with optional bias table + mask
 *   out = x1 + fc2(GELU(fc1(LN2(x1))))
 * Used for TSA, FSA and both Swin blocks (the caller partitions/reverses windows).
 * The same struct holds parameters or their gradients (llm.c ParameterTensors). */
typedef struct {
    float *ln1_w, *ln1_b;   /* (C), (C) */
    float *qkv_w, *qkv_b;   /* (3C, C), (3C) */
    float *proj_w, *proj_b; /* (C, C), (C) */
    float *ln2_w, *ln2_b;   /* (C), (C) */
    float *fc1_w, *fc1_b;   /* (Hd, C), (Hd) */
    float *fc2_w, *fc2_b;   /* (C, Hd), (C) */
    float *rel_bias_table;  /* (R, H) or NULL (no relative position bias) */
} tf_tblock_params;

/* Floats of one block's parameters in the order of the struct; R = 0 for no table:
 * 4C^2 + 2C*Hd + 9C + Hd + R*H. */
size_t tf_tblock_param_floats(int C, int H, int Hd, int R);
/* Point p's fields into mem (tf_tblock_param_floats(C, H, Hd, R) floats), struct order;
 * rel_bias_table = NULL when R == 0. */
void tf_tblock_params_point(tf_tblock_params *p, float *mem, int C, int H, int Hd, int R);

/* Activations the backward needs, pointers into caller memory (NL = N*L tokens). */
typedef struct {
    float *ln1;                 /* (N, L, C)  LN1 output */
    float *ln1_mean, *ln1_rstd; /* (N*L), (N*L) */
    float *qkv;                 /* (N, L, 3C) */
    float *att;                 /* (N, H, L, L) attention probabilities */
    float *atty;                /* (N, L, C)  attention output before proj */
    float *x1;                  /* (N, L, C)  after the attention residual */
    float *ln2;                 /* (N, L, C) */
    float *ln2_mean, *ln2_rstd; /* (N*L), (N*L) */
    float *fc1;                 /* (N, L, Hd) pre-GELU */
    float *gelu;                /* (N, L, Hd) */
} tf_tblock_saved;

/* = NL*(7C + 4 + 2Hd) + N*H*L*L floats (every field above). With checkpointing the
 * caller can keep only inp and re-run tf_tblock_forward into a transient saved block. */
size_t tf_tblock_saved_floats(int N, int L, int C, int H, int Hd);
/* Point s's fields into mem (tf_tblock_saved_floats(...) floats), struct order. */
void tf_tblock_saved_point(tf_tblock_saved *s, float *mem, int N, int L, int C, int H, int Hd);
/* Backward workspace (forward needs none):
 * NL*(2C + max(Hd, 3C) + max(Hd, C)) + tf_attention_workspace_floats(N, L, H). */
size_t tf_tblock_workspace_floats(int N, int L, int C, int H, int Hd);

/* out (N, L, C), saved filled, inp (N, L, C) (out must not alias inp: the backward needs
 * inp). bias_index (L, L) required iff p->rel_bias_table; mask (nW, L, L) or NULL. */
void tf_tblock_forward(float *out, const tf_tblock_saved *s, const float *inp,
                       const tf_tblock_params *p, const int *bias_index, const float *mask, int nW,
                       int N, int L, int C, int H, int Hd);
/* dinp (N, L, C) +=; every field of g += (all required; g->rel_bias_table used iff
 * p->rel_bias_table); dout (N, L, C); s, inp as in the forward;
 * workspace: tf_tblock_workspace_floats(N, L, C, H, Hd) floats. */
void tf_tblock_backward(float *dinp, const tf_tblock_params *g, const float *dout,
                        const tf_tblock_saved *s, const float *inp, const tf_tblock_params *p,
                        const int *bias_index, int N, int L, int C, int H, int Hd,
                        float *workspace);

#endif
