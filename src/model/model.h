/* TFSWA-ResUNet (Yao et al. 2025, see shared/PAPER.md): parameter layout, memory plan,
 * forward and backward, on the CPU.
 *
 *   mix (B, 2, N) -> STFT -> |X| (B, 2, Fb, T), phase P = X/|X|
 *     -> subbands (B, 2K, Fs, T), Fs = (Fb-1)/K (Nyquist dropped), channel ch*K + k
 *     -> zero pad to (B, 2K, Fp, Tp)
 *     -> enc.l, l = 0..L-1: Conv block (RCMs, c_{l-1} -> c_l) = skip_l; 2x2 avg pool
 *     -> tfswa.b, b = 0..nb-1 at (B, C, Fp/2^L, Tp/2^L), C = c_{L-1}
 *     -> dec.j, j = 0..L-1 (level i = L-1-j): bilinear x2, concat [up, skip_i], Conv block
 *        (c_prev + c_i -> c_{i-1}; the last one -> c_0)
 *     -> head: 1x1 conv c_0 -> 2*K*S, channel (s, ch, k); ReLU (output magnitude) or
 *        sigmoid * input magnitude (output mask)
 *     -> crop, subband merge (Nyquist bin 0) -> M (B, S, 2, Fb, T) -> M * P -> ISTFT
 *     -> (B, S, 2, N)
 *
 * Choices the paper leaves open (the PyTorch reference tests/reference/tfswa_ref.py makes
 * the same ones):
 *  - Subbands: Nyquist bin dropped on input, 0 on output; channel index ch*K + k.
 *  - Padding: frames (time) and bins (frequency) are zero padded at the end to multiples
 *    of 2^L * window (time: 2^L*wt, frequency: 2^L*wf), so every level pools evenly and
 *    the bottleneck tiles into whole Swin windows; the output is cropped back. (Paper: 301
 *    frames of a 3 s segment -> 320.)
 *  - RCM: BN -> GELU -> conv3x3 -> BN -> GELU -> conv3x3, plus a 1x1 conv shortcut on every
 *    RCM (also when Cin == Cout). All convs have biases. BatchNorm eps 1e-5, momentum 0.1,
 *    running variance unbiased (PyTorch). The first RCM of a block changes the channels.
 *  - Pooling sits AFTER the skip: skip_l is the Conv block output at full level
 *    resolution; the pooled map feeds the next level (and, after the last level, the
 *    TFSWA stack at 1/2^L resolution).
 *  - TFSWA width = bottleneck channels c_{L-1} (384 for the paper); no projection in or
 *    out. MLP hidden = round(C * mlp_ratio) (2.0: see configs/model/paper.yaml for why).
 *  - TSA and FSA use no position encoding (the convolutional features carry position);
 *    the Swin blocks use Swin's relative position bias table ((2wt-1)(2wf-1), heads).
 *  - TFSWA block: y = FSA(TSA(x)); out = y + SwinSW(SwinW(y)): the Swin pair is a
 *    residual branch around y (each Swin block keeps its own two pre-LN residuals). The
 *    SW-MSA shift is (wt/2, wf/2) with Swin's region mask (-100); the shift is applied
 *    even when the map is a single window (the mask then splits it into regions).
 *  - Decoder: up x2 first, then concat [up, skip] (up first), then the Conv block;
 *    channels out c_{i-1} at level i > 0 and c_0 at level 0: [256, 128, 64, 32, 32].
 *  - Output layer: 1x1 conv to 2*K*S channels. magnitude mode: ReLU (exactly 0 is a valid
 *    magnitude, no bias towards positive values like softplus's log 2). mask mode:
 *    sigmoid(z) times the (padded) input magnitude of the same (ch, k) channel.
 *  - The output magnitude takes the MIXTURE phase; where |X| = 0 the phase is 1.
 *  - Initialisation: PyTorch defaults (conv and linear: kaiming-uniform a = sqrt(5), i.e.
 *    U(+-1/sqrt(fan_in)) for weights and biases; BN/LN weight 1, bias 0, running mean 0,
 *    var 1), relative position tables N(0, 0.02^2) (Swin uses a 0.02 truncated normal),
 *    seeded by (seed, parameter index).
 *  - Parameter count (paper preset, 1 target): 44,535,800 = 44.5 M vs the paper's 44.3 M;
 *    see configs/model/paper.yaml.
 *
 * Memory (shared/DESIGN.md): tf_model_plan computes, before any allocation, the bytes of
 * five blocks: parameters (trainable, fp32), gradients (same layout: one flat block for
 * the optimizer and MPI), buffers (BN running stats, fp32), saved activations and
 * workspace. tf_model_create allocates exactly those five blocks. Saved activations:
 *  - checkpointing off: per RCM its conv1 output and its output (the input of the next
 *    RCM); BN and GELU outputs are recomputed in backward from those (a BN recompute
 *    reuses the batch statistics exactly and never touches the running stats); the block
 *    inputs; the decoder concat inputs; the head input and pre-activation; every TFSWA
 *    sublayer's input and tf_tblock_saved; the mixture phase (fp32).
 *  - checkpointing blocks: only the inputs of each Conv block and each TFSWA block (plus
 *    head input/pre-activation and phase); block insides are recomputed in backward into
 *    a scratch region of the workspace sized for the largest block. In that scratch a
 *    Conv block keeps its RCM outputs and ONE conv1 output: each RCM's conv1 output but
 *    the last one's is recomputed again (nested) just before that RCM's backward, from
 *    the RCM's input, so the scratch holds nrcm maps instead of 2 nrcm - 1.
 *  - activation_dtype bf16: every saved conv-side tensor is stored in bf16 (round to
 *    nearest even); the forward continues with the ROUNDED values, so backward sees
 *    exactly the forward it differentiates, and checkpointing on/off stay bitwise equal.
 *    The TFSWA stack (1/4^L of the pixels) and the phase stay fp32. Arithmetic is fp32.
 * Workspace (training): buffers of phases that never overlap in time share one region
 * (the input STFT; the head with its backward; a conv block's forward, also when
 * recomputed; a conv block's backward; the TFSWA stack), the conv blocks and the head run
 * one batch item at a time (the head after its 1x1 conv one (item, target)), and the two
 * block-gradient buffers are sized for the levels they serve: the RCM chain's gradients
 * take turns in them (an RCM's input gradient overwrites its conv1-output gradient in
 * place), and outside a block's backward they stage one item's c1 and shortcut output,
 * the input subbands, x0 and the head's dz. Outside the region: the skip gradients (in the
 * decoder inputs' bytes where they fit), the block gradients, the conv workspace, the
 * checkpointing scratch.
 *
 * Two kinds of model (tf_model_mode), one plan function for both:
 *  - TF_MODEL_TRAIN (tf_model_create): the five blocks above. Activations and workspace
 *    are one allocation (the plan still reports them per role).
 *  - TF_MODEL_INFER (tf_model_create_mode(..., TF_MODEL_INFER)): separation, evaluation.
 *    No gradients and no saved activations (0 bytes); the workspace is only what the
 *    eval forward streams through: the encoder outputs kept for the decoder skips, two
 *    ping-pong maps and a shortcut map sized for the largest level, the conv forward
 *    workspace, and per-stage scratch that the STFT, the TFSWA stack and the head take
 *    turns using (the head runs per (item, target, audio channel); the STFT is taken
 *    again there instead of keeping the phase). checkpointing and activation_dtype do
 *    not apply. A training forward or a backward on it is refused (TF_EINTERNAL).
 * The eval forward (training = 0) is that streaming path on both kinds of model: on a
 * training model it runs inside the activation + workspace allocation (the plan makes
 * that allocation at least as large as the inference workspace), so validation during
 * training needs no extra memory, and its outputs equal an inference model's bitwise.
 * It is fp32 throughout: unlike the training forward, it does not round to bf16.
 */
#ifndef TFSWA_MODEL_H
#define TFSWA_MODEL_H
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/model_types.h"

#define TF_PARAM_NAME_MAX 64

/* One named tensor of the model (a trainable parameter or a BatchNorm buffer). */
typedef struct {
    char name[TF_PARAM_NAME_MAX]; /* PyTorch state_dict name, e.g. enc.0.rcm.1.bn1.weight */
    int ndim;
    int64_t shape[4];
    size_t numel;
    size_t offset; /* in floats, into the parameter block (or the buffer block) */
    int is_buffer; /* 1: running_mean / running_var (no gradient, not optimised) */
    int init;      /* internal: how tf_model_init fills it */
    int fan_in;    /* internal: for the uniform init */
} tf_param_info;

/* The model's only input (like llm.c's GPT2Config): the architecture, which model.json
 * stores, and the run options, which it does not. Filled from a tf_config above the model
 * (tf_train_model_config in train/train.h) or from a checkpoint (model/checkpoint.h). The
 * names follow the config keys, which the validation errors name. */
typedef struct {
    /* ---- architecture ---- */
    int n_levels;                /* channels: one entry per encoder level */
    int channels[TF_MAX_LEVELS]; /* encoder Conv-block output channels */
    int rcms_per_block, tfswa_blocks, heads;
    int window_t, window_f; /* Swin window (time x frequency) */
    double mlp_ratio;
    int subbands;   /* K */
    int n_targets;  /* S, output stems */
    int n_fft, hop; /* stft.window_size, stft.hop_length */
    tf_output_mode output;
    /* ---- run options ---- */
    tf_dtype activation_dtype;  /* saved activations fp32 | bf16 */
    tf_ckpt_mode checkpointing; /* off | blocks */
    tf_backend backend;         /* dnnl | ref: who runs the convolutions (nn/kernels.h) */
    tf_dtype compute_dtype;     /* fp32 | bf16 arithmetic (bf16 only where native) */
    int threads;                /* 0: the OpenMP maximum */
    uint64_t seed;              /* parameter initialisation */
} tf_model_config;

/* Architecture derived from a tf_model_config. */
typedef struct {
    int L;                 /* levels (encoder blocks = decoder blocks) */
    int ch[TF_MAX_LEVELS]; /* encoder Conv-block output channels per level */
    int dec_in[TF_MAX_LEVELS], dec_out[TF_MAX_LEVELS]; /* decoder j (level L-1-j) */
    int nrcm, nblk, heads, wt, wf, hidden, K, S, cin;  /* cin = 2K */
    int n_fft, hop;
    tf_output_mode output;
    tf_dtype act_dtype;
    tf_ckpt_mode ckpt;
    tf_backend backend;
    tf_dtype compute;
} tf_arch;

/* What a model is for: training (gradients, saved activations) or inference only. */
typedef enum { TF_MODEL_TRAIN = 0, TF_MODEL_INFER = 1 } tf_model_mode;

/* Bytes per role for (model config, batch, segment frames, threads, mode). */
typedef struct {
    tf_model_mode mode;
    size_t params;      /* trainable parameters, fp32 */
    size_t grads;       /* = params (0 for an inference model) */
    size_t buffers;     /* BN running stats, fp32 */
    size_t activations; /* saved for backward (0 for an inference model) */
    size_t workspace;   /* scratch (incl. recompute scratch when checkpointing) */
    size_t total;
    size_t eval_arena; /* of activations + workspace (one allocation, the arena): the bytes
                          an eval forward of (batch, frames) uses, from the arena's start;
                          the rest is idle outside training steps (tf_model_spare) */
    size_t n_params;   /* trainable parameter count (floats) */
    size_t n_buffers;
    int batch;
    int64_t frames;  /* samples per channel of the segment */
    int stft_frames; /* T */
    int fpad, tpad;  /* padded subband map (Fp, Tp) */
    int threads;
    size_t conv_workspace; /* of workspace: the convolutions' (oneDNN scratchpads and reordered
                              operands, or the ref kernels' im2col tiles) */
    char arithmetic[160];  /* the kernels: backend, instruction set, arithmetic dtype */
} tf_model_sizes;

typedef struct tf_model tf_model;

/* Architecture of mc (validates it: TF_EUSER naming the config key). */
tf_status tf_arch_from_config(tf_arch *a, const tf_model_config *mc);

/* The memory plan: sizes of every block for training (or inference) of batches of up to
 * `batch` segments of `frames` samples, computed WITHOUT allocating. threads <= 0 means
 * mc->threads, and when that is 0 the OpenMP maximum (the conv workspace depends on it). */
tf_status tf_model_plan(tf_model_sizes *out, const tf_model_config *mc, int batch, int64_t frames,
                        int threads);
/* The same for a model of the given mode (tf_model_plan is TF_MODEL_TRAIN). */
tf_status tf_model_plan_mode(tf_model_sizes *out, const tf_model_config *mc, int batch,
                             int64_t frames, int threads, tf_model_mode mode);

/* The same layout with the convolutions' workspace sized by kern (nn/kernels.h), whose
 * backend must be mc->backend: a cuDNN object on the current GPU, or a plan-only object of
 * tf_kernels_create_bound (an upper bound, no device needed). The device memory plan
 * (train/device_plan.h) uses it; every other role is the same as tf_model_plan_mode's. */
typedef struct tf_kernels tf_kernels;
tf_status tf_model_plan_kern(tf_model_sizes *out, const tf_model_config *mc, int batch,
                             int64_t frames, int threads, tf_model_mode mode, tf_kernels *kern);

/* Trainable parameter count of mc (no allocation). */
tf_status tf_model_param_count(size_t *out, const tf_model_config *mc);

/* Allocate a model for batches up to `batch` x `frames` samples: exactly the plan's five
 * blocks (plus the parameter table and the STFT plan). Parameters are initialised with
 * tf_model_init(m, mc->seed). */
tf_status tf_model_create(tf_model **out, const tf_model_config *mc, int batch, int64_t frames,
                          int threads);
/* The same for a model of the given mode: TF_MODEL_INFER allocates the parameters, the BN
 * buffers and the inference workspace only (tf_model_plan_mode's bytes). */
tf_status tf_model_create_mode(tf_model **out, const tf_model_config *mc, int batch, int64_t frames,
                               int threads, tf_model_mode mode);
void tf_model_free(tf_model *m);

/* The plan the model was created with: tf_model_create allocates exactly these blocks
 * (tests/test_model.c measures the heap growth of tf_model_create against it). */
const tf_model_sizes *tf_model_get_plan(const tf_model *m);
/* The arena bytes that neither an eval forward of the planned (batch, frames) nor anything
 * else outside a training step uses: plan.activations + plan.workspace - plan.eval_arena
 * bytes at *bytes, 64-byte aligned (NULL, 0 when none). Training validation keeps its
 * overlap-add buffers there, so it costs no memory beyond the training plan. The contents
 * are lost at the next training forward. */
unsigned char *tf_model_spare(tf_model *m, size_t *bytes);
/* What tf_model_spare gives at least, from the plan alone (alignment taken off). */
size_t tf_model_spare_bytes(const tf_model_sizes *plan);
const tf_arch *tf_model_arch(const tf_model *m);
/* The model's kernels in one line (tf_kernels_describe: backend, library, ISA, arithmetic
 * dtype in effect), valid while the model lives. */
const char *tf_model_kernels_describe(const tf_model *m);
/* Convolution shapes the model's kernels hold primitives for (nn/kernels.h). */
size_t tf_model_kernel_shapes(const tf_model *m);

/* Parameter table (parameters first, then buffers). */
size_t tf_model_n_tensors(const tf_model *m);
const tf_param_info *tf_model_tensor(const tf_model *m, size_t i);
const tf_param_info *tf_model_find(const tf_model *m, const char *name);
/* Pointer to a tensor's data (params block or buffers block) and to its gradient (NULL
 * for buffers, and for everything in an inference model). */
float *tf_model_data(tf_model *m, const tf_param_info *p);
float *tf_model_grad(tf_model *m, const tf_param_info *p);

/* Flat blocks (llm.c style): params and grads have the same layout, n = n_params.
 * tf_model_grads is NULL for an inference model (tf_model_zero_grad does nothing). */
float *tf_model_params(tf_model *m);
float *tf_model_grads(tf_model *m);
float *tf_model_buffers(tf_model *m);

/* PyTorch-default initialisation, seeded (deterministic for a given seed). */
void tf_model_init(tf_model *m, uint64_t seed);
void tf_model_zero_grad(tf_model *m);

/* Weights (parameters and BN buffers) from/to safetensors. Loading checks that every
 * tensor of the model is present with the right shape (TF_EUSER naming the file and the
 * tensor); extra tensors in the file are ignored (e.g. a test's activations). */
tf_status tf_model_load(tf_model *m, const char *path);
tf_status tf_model_save(const tf_model *m, const char *path, const char *const *meta,
                        size_t n_meta);

/* Forward: mix (B, 2, N) -> out (B, S, 2, N). B <= planned batch, N <= planned frames
 * (any N >= 1 within that; frames are padded and cropped internally). training = 1 uses
 * batch statistics, updates the BN running stats and saves what backward needs (training
 * models only); training = 0 uses the running stats (the streaming eval forward). */
tf_status tf_model_forward(tf_model *m, float *out, const float *mix, int B, int64_t N,
                           int training);
/* Backward of the last training forward: gradients (tf_model_grads) += d loss / d params
 * given dout = d loss / d out (B, S, 2, N). */
tf_status tf_model_backward(tf_model *m, const float *dout);

/* Floating-point operations of one forward of (B, N) counted from the layer shapes
 * (convs, linears, attention matmuls; 2 per multiply-add; STFT and elementwise excluded). */
double tf_model_forward_flops(const tf_arch *a, int B, int64_t N);

/* Floating-point operations of one training step (a training tf_model_forward, then
 * tf_model_backward) of (B, N), counted layer by layer from the shapes as the code does
 * the work (same conventions as tf_model_forward_flops):
 *  - every conv (3x3, 1x1 shortcut, head) and every linear (qkv, proj, fc1, fc2): forward
 *    F = 2 * MACs, backward-data F and backward-weights F. The backward computes dinp for
 *    EVERY conv, the first encoder conv (whose input is the spectrogram) included, so none
 *    is skipped;
 *  - attention: forward QK^T and AV (2*N*H*L*L*D each); backward dP = dO V^T, dV = P^T dO,
 *    dQ = dS K, dK = dS^T Q (4 of the same size; the probabilities are saved, not
 *    recomputed);
 *  - checkpointing blocks: the forward of every Conv block and TFSWA block is run again in
 *    backward (everything but the head conv), and the conv1 of every RCM but a block's
 *    last once more (the nested recompute): counted in recompute, as work done.
 * BatchNorm, GELU, LayerNorm, softmax, pooling, STFT and other elementwise work: excluded. */
typedef struct {
    double forward;          /* = tf_model_forward_flops */
    double backward_data;    /* d/dinput of convs and linears, attention backward matmuls */
    double backward_weights; /* d/dweight of convs and linears */
    double recompute;        /* checkpointing blocks: the block forwards re-run in backward */
    double total;            /* forward + backward_data + backward_weights + recompute */
} tf_train_flops;

/* Fills *out (may be NULL) and returns out->total; 0 (and *out zeroed) when the shapes are
 * invalid. */
double tf_model_train_flops(const tf_arch *a, int B, int64_t N, tf_train_flops *out);

/* Block outputs of the last forward, fp32 copies for tests: "enc.l" (B, c_l, Fp/2^l,
 * Tp/2^l), "tfswa.b" (B, C, Fb', Tb'), "dec.j", "mag" (B, S, 2, Fb, T), "input_spec".
 * Enabled with tf_model_debug_taps(m, 1) before the forward (allocates its own memory,
 * outside the plan; off by default). */
tf_status tf_model_debug_taps(tf_model *m, int on);
const float *tf_model_tap(const tf_model *m, const char *name, size_t *numel);

#endif
