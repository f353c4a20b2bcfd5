/* The device model's memory layout (src/model/model_cuda.c): where every saved tensor and
 * workspace buffer of a training step of (B, N) lives on the GPU, as float offsets into
 * one allocation per role. Plain C, compiled in every build, so `tfswa plan --device cuda`
 * prints the bytes the device model will allocate without a GPU.
 *
 * The device model runs the whole batch at once (no per-item loops: a GPU wants large
 * launches) and saves, like the CPU model without checkpointing, the block inputs, each
 * RCM's conv1 output and output, the decoder concat inputs, the head input and
 * pre-activation, the mixture phase and every TFSWA sublayer's input and saved tensors,
 * all fp32. BatchNorm + GELU outputs are recomputed in backward.
 *
 * Checkpointing blocks (a->ckpt == TF_CKPT_BLOCKS), like the CPU model: only the inputs of
 * each Conv block (enc_in, dec_cat) and each TFSWA block (tok[k][0]), the head input and
 * pre-activation and the phase are saved. A block's insides (the Conv blocks' enc_c1,
 * enc_o, dec_c1, dec_o; the TFSWA blocks' tok[k][1..3] and tsv[k][0..3]) live in ONE
 * recompute scratch in the workspace, sized for the largest block: every block's insides
 * start at its beginning (the same offsets for every level and every TFSWA block), the
 * forward overwrites them block by block, and backward re-runs each block's forward into
 * it (BatchNorm on batch statistics, running statistics untouched) just before that
 * block's backward. Like the CPU model's scratch, a Conv block keeps there its RCM outputs
 * o[0..R-2] and ONE conv1-output slot that every RCM shares (enc_c1[l][r] / dec_c1[j][r]
 * the same offset for every r): R maps instead of 2R - 1. The block's recompute leaves the
 * last RCM's conv1 output in it; every other RCM's is recomputed again (nested) from that
 * RCM's input (o[r-1], or the block input) just before that RCM's backward: BN1 on batch
 * statistics (running statistics NOT updated), GELU into Y, conv1 into the slot. Its
 * buffers (Y, mean, rstd, convws) are none of those live between two RCM backwards (the
 * chain's gradients dout/tmp, E, the scratch).
 *
 * bf16 activations (use_amp, a->act_dtype TF_DT_BF16): what the CPU model stores as bf16 is
 * stored as bf16 here too, at the same points and with the same rounding (util/hd.h), so
 * both compute the same values (the storage; the convolutions' and GEMMs' arithmetic is the
 * kernels object's, bf16 or fp16 with --use_amp, whose operand copies are in the conv
 * workspace, convws): the block inputs enc_in (x0 included) and dec_cat, the insides c1
 * and o (saved, or in the recompute scratch), the head input and z. The phase, the TFSWA
 * tokens and saved tensors, the gradients and the workspace stay fp32. A stored map is
 * rounded in place in its fp32 buffer, which the forward goes on with; a block's last RCM
 * output is not stored, and the skip copy, pooling and upsampling read it unrounded (the
 * CPU model's sink). Kernels read fp32: one whole-batch fp32 staging map XW outside
 * region R (B x the largest of max(Cin, Cout) x H x W, 2KS x Fp x Tp and c_0 x Fp x Tp)
 * takes a block's widened input, the pooled next input, x0 before its store and the
 * head's z; in backward each widened input or c1 of a half-backward, and z and the head
 * input. A block forward computes its conv1 outputs in G and its RCM outputs alternately
 * in dG and XW (none of the three is live in a forward or a recompute); the nested
 * recompute its conv1 output in G. With output mask, X0W (B, 2K, Fp, Tp) takes the
 * widened x0 for the head. A skip gradient that does not fit into the bf16 bytes of its
 * decoder input gets its own workspace buffer (dskip_w). */
#ifndef TFSWA_MODEL_DLAYOUT_H
#define TFSWA_MODEL_DLAYOUT_H
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "nn/kernels.h"

#define TF_DLAY_MAX_RCMS  16
#define TF_DLAY_MAX_TFSWA 32

typedef struct {
    int B;
    int64_t N;
    int T, Fb, Fs, Fp, Tp;
    int H[TF_MAX_LEVELS + 1], W[TF_MAX_LEVELS + 1]; /* level l map (F, T); [L] = bottleneck */
    int nW;                                         /* Swin windows per image */
    int infer; /* tf_dlayout_infer: every offset is into the workspace block (see there) */
    int ckpt;  /* checkpointing blocks: the insides below are WORKSPACE offsets into the
                 recompute scratch scr (see the top comment) */
    int bf;    /* bf16 activations (use_amp): the Conv-block maps (enc_in, dec_cat, the
                  insides c1 and o, head_in, z) are stored as bf16, half the floats (see
                  the top comment); 0 in an inference layout */
    /* ---- saved: float offsets into the activation block ---- */
    size_t pr, pi;                /* (B, 2, Fb, T) mixture phase */
    size_t enc_in[TF_MAX_LEVELS]; /* block input; enc_in[0] = x0 (B, 2K, Fp, Tp) */
    size_t enc_c1[TF_MAX_LEVELS][TF_DLAY_MAX_RCMS], enc_o[TF_MAX_LEVELS][TF_DLAY_MAX_RCMS];
    size_t dec_cat[TF_MAX_LEVELS]; /* decoder j input [up, skip] (B, dec_in[j], H, W) */
    size_t dec_c1[TF_MAX_LEVELS][TF_DLAY_MAX_RCMS], dec_o[TF_MAX_LEVELS][TF_DLAY_MAX_RCMS];
    size_t head_in;                                              /* (B, c_0, Fp, Tp) */
    size_t z;                                                    /* (B, 2KS, Fp, Tp) */
    size_t tok[TF_DLAY_MAX_TFSWA][4], tsv[TF_DLAY_MAX_TFSWA][4]; /* sublayer inputs, saved;
                                      ckpt: tok[k][0] only, the rest in the scratch */
    /* ---- workspace: float offsets into the workspace block ---- */
    size_t re, im, mag;            /* (2B, Fb, T) input spectra, magnitude */
    size_t Y, G, dG, dY;           /* (B, max C x H x W): BN output, GELU output, gradients;
                                      dY = G (G is spent when dY is written) */
    size_t Tb, O, P;               /* shortcut output, block output, resampled map */
    size_t D0, D1, E;              /* block gradients: dout / scratch (swapping); E: an
                                      encoder block's RCM-chain second buffer where its
                                      input gradient is in D1 (!dx_own; may be empty) */
    int dx_own[2 * TF_MAX_LEVELS]; /* block (encoder levels, then decoders): its input
                                      gradient goes into its own insides, from
                                      enc_c1[l][0] / dec_c1[j][0] (else D1 or D0); ckpt:
                                      that is the scratch's start, and it fits the
                                      scratch (n_scr: R maps of the largest Conv block,
                                      or a TFSWA block's insides) */
    size_t mean, rstd;             /* BN statistics (max C) */
    size_t dskip[TF_MAX_LEVELS];   /* (B, c_l, H_l, W_l) fp32: ACTIVATION-block offsets, in
                                      the bytes of dec_cat[L-1-l] (free after decoder
                                      L-1-l's backward); bf16, where they do not fit
                                      there: a workspace offset (dskip_w[l] = 1) */
    int dskip_w[TF_MAX_LEVELS];
    size_t XW, X0W;          /* bf16 only: fp32 staging of the bf16 maps (see the top
                                comment): (B, max C x H x W); x0 (mask output) */
    size_t bott;             /* (B, C, Hb, Wb) */
    size_t tb[6], tbws;      /* token buffers (B*Hb*Wb*C); tblock backward workspace */
    size_t relidx, mask;     /* int (Ls, Ls); float (nW, Ls, Ls) */
    size_t hc, om, yr, yi;   /* head: (B, S, 2K, Fs, T), (B, S, 2, Fb, T) x 3 */
    size_t dz;               /* (B, 2KS, Fp, Tp) */
    size_t convws;           /* convolution workspace */
    size_t scr, n_scr;       /* ckpt: the recompute scratch (floats; 0 without) */
    size_t n_convws, n_tbws; /* floats */
    size_t act_floats, work_floats;
} tf_dlay;

/* The layout of a training step of batch B x N samples for a (fp32 activations,
 * checkpointing off or blocks: bf16 activations are TF_EUSER naming the setting). kern: the
 * convolutions' kernels; every shape is registered there (train = 1) and the largest
 * workspace sized from it (a plan-only object of tf_kernels_create_bound gives an upper
 * bound). */
tf_status tf_dlayout(tf_dlay *y, const tf_arch *a, int B, int64_t N, tf_kernels *kern);

/* The layout of the EVAL forward only (tf_dmodel_create_infer: separation), batch B x N
 * samples: nothing saved for a backward, no gradient buffers, the convolutions registered
 * forward only (train = 0; their workspace sized for the forward). One block: act_floats
 * is 0 and every offset, the saved-block fields (pr, pi, enc_in, dec_cat, head_in, z, tok,
 * tsv) and the insides too, is into the workspace block (work_floats). The eval forward
 * runs in steps: io (STFT, magnitude, phase, subband split, pad into x0), the L encoder
 * blocks, the TFSWA stack, the L decoder blocks, the head. Lifetimes:
 *   throughout: pr, pi (io -> head's phase combine); x0 = enc_in[0] with output mask (the
 *     head multiplies by it; else x0 is in X); dec_cat[j] (encoder level L-1-j writes the
 *     skip -> decoder j reads it); X = enc_in[l] (the pad or encoder l-1's pool -> encoder
 *     l; l >= 1, and 0 without mask) and bott (encoder L-1's pool -> the TFSWA stack ->
 *     the first upsample), one buffer (a level's input is spent before its pool writes
 *     the next); relidx, mask (constants); convws;
 *   region R, each step's buffers from its start (the steps never overlap in time):
 *     io      re, im, mag;
 *     blocks  Y, Tb, O, P, then the insides: c1[r] all in one buffer, o[r] alternating
 *             between two (RCM r reads o[r-1] and writes c1[r], o[r]), of the largest
 *             block's size; head_in after them (the last decoder block writes it);
 *     TFSWA   tok[k][0] (one buffer for every k: block k's input, spent before its
 *             output is swapped in for block k+1), tok[k][1..3] one buffer (the FSA input
 *             is spent by the FSA before the Swin input is written, that one by the Swin
 *             before the shifted Swin input is written), tb[0..4], and tsv[k][0..3] one
 *             transient saved block of the largest sublayer (the eval forward never reads
 *             it back);
 *     head    hc, om, yr, yi from R's start (head_in is spent into z before hc is
 *             written), z after head_in and yi.
 * Unused (0): mean, rstd, G, dG, dY, D0, D1, E, dskip, dz, tb[5], tbws, scr. */
tf_status tf_dlayout_infer(tf_dlay *y, const tf_arch *a, int B, int64_t N, tf_kernels *kern);

/* Floats of device workspace the transformer block's backward needs (tf_cuda_tblock_
 * workspace_floats in src/cuda/tblock.cu must never exceed it; the device model checks). */
size_t tf_dlay_tblock_ws_floats(int N, int L, int C, int H, int Hd);

/* The device trainer's buffers (src/train/step_cuda.c), float offsets into one allocation:
 * Adam m and v (n_params each), the EMA weights (with EMA on), a copy of the BN buffers,
 * the micro-batch (mix (B, 2, N), targets (B, S, 2, N)), the model output and its gradient
 * (B, S, 2, N), with the mrstft loss six spectra (yr, yi, tr, ti, dr, di) of all B*S*2
 * signals at the largest of its resolutions, and the loss reductions' doubles. */
#define TF_DLAY_LOSS_WS_DOUBLES 1024 /* at least tf_cuda_loss_workspace_doubles() */
typedef struct {
    size_t m, v, ema, bufsave, mix, tgt, out, dout, spec, dbl; /* dbl: 8-byte aligned */
    size_t n_spec;                                             /* floats of each spectrum buffer */
    size_t floats;
} tf_dtrl;
/* spec_bins_frames: the largest bins x frames over the loss's STFT resolutions (0: l1) */
void tf_dlay_trainer(tf_dtrl *o, size_t n_params, size_t n_buffers, int ema, int B, int S,
                     int64_t N, size_t spec_bins_frames);
/* the mrstft loss's largest bins x frames for N samples (windows 512, 1024, 2048, hop/4) */
size_t tf_dlay_mrstft_bins_frames(int64_t N);

#endif
