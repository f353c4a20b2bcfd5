/* Internals of src/model shared by model.c (layout, parameters, plan) and forward.c
 * (forward/backward). Not a public header. */
#ifndef TFSWA_MODEL_INTERNAL_H
#define TFSWA_MODEL_INTERNAL_H
#include <string.h>

#include "model/model.h"
#include "nn/kernels.h"

#define TF_MAX_RCMS    16
#define TF_MAX_TFSWA   32
#define TF_BN_EPS      1e-5f
#define TF_BN_MOMENTUM 0.1f

/* Where a saved tensor lives: the activation block or the workspace (recompute scratch). */
enum { IN_ACT = 0, IN_WORK = 1, IN_TMP = 2 }; /* IN_TMP: layout_t.dx only */
typedef struct {
    unsigned char where;
    unsigned char bf16; /* stored as bf16 (else fp32) */
    size_t off;         /* bytes into its block */
    size_t n;           /* elements */
} slot_t;

/* Parameter pointers of one RCM (into the param block or, same offsets, the grad block). */
typedef struct {
    float *bn1_w, *bn1_b, *conv1_w, *conv1_b, *bn2_w, *bn2_b, *conv2_w, *conv2_b, *short_w,
        *short_b;
} rcm_params;
typedef struct {
    float *rm1, *rv1, *rm2, *rv2;
} rcm_buffers;

/* The eval (streaming) forward's buffers: byte offsets into the model's arena (the start
 * of the activation + workspace allocation), all fp32. */
typedef struct {
    size_t skip[TF_MAX_LEVELS]; /* (B, c_l, H_l, W_l) encoder outputs, kept for the decoder */
    size_t bott;                /* (B, C, Hb, Wb) bottleneck map */
    size_t P0;                  /* conv ping-pong map, (B, largest channels, H, W) */
    /* ---- stage scratch: the STFT, the conv blocks, the TFSWA stack and the head take
     * turns using the same bytes (all start at `stage`) ---- */
    size_t stage;
    size_t P1, Q, convws;       /* conv blocks: second ping-pong map, shortcut (B, Cout, H, W) */
    size_t n_convws;            /* floats */
    size_t t[3], tsv;           /* TFSWA: token buffers (B*Hb*Wb*C), one tf_tblock_saved */
    size_t relidx, mask;        /* int (L*L), float (nW, L, L) */
    size_t re, im, mag, pr, pi; /* STFT and head: (Fb, T) of one audio channel */
    size_t xk, zk;              /* head: (K, Fp, Tp) of one audio channel */
    size_t bytes;               /* total */
} evlay_t;

/* The parameter table of an architecture and the pointers of every layer into flat
 * (params, grads, buffers) blocks: tf_model's own (host) blocks, or the device model's
 * (src/model/model_cuda.c), with the same offsets. */
typedef struct {
    tf_param_info *info;  /* sorted: parameters, then buffers (tf_model_tensor's order) */
    tf_param_info *build; /* the same entries in build order */
    size_t n_tensors, n_param_tensors, n_params, n_buffers; /* n_params, n_buffers: floats */
    rcm_params *rcm_p, *rcm_g;                              /* [(enc l | dec j) * nrcm + r] */
    rcm_buffers *rcm_b;
    size_t *tb_off; /* [b*4 + sub]: float offset of that tblock's params */
    float *head_w, *head_b, *ghead_w, *ghead_b;
} tf_param_map;
tf_status tf_param_map_create(tf_param_map *pm, const tf_arch *a);
/* grads may be NULL (the g pointers are then NULL) */
void tf_param_map_point(tf_param_map *pm, const tf_arch *a, float *params, float *grads,
                        float *buffers);
void tf_param_map_free(tf_param_map *pm);

/* Byte offsets of every saved tensor and workspace buffer for one (B, N). */
typedef struct {
    int B;
    int64_t N;
    int T, Fb, Fs, Fp, Tp;
    int H[TF_MAX_LEVELS + 1], W[TF_MAX_LEVELS + 1]; /* level l map (F, T); [L] = bottleneck */
    int nW;                                         /* Swin windows per image */
    /* ---- saved (activation block unless where == IN_WORK) ---- */
    slot_t pr, pi;                /* fp32 (B, 2, Fb, T) mixture phase */
    slot_t enc_in[TF_MAX_LEVELS]; /* block input; enc_in[0] = x0 (B, 2K, Fp, Tp) */
    slot_t enc_c1[TF_MAX_LEVELS][TF_MAX_RCMS], enc_o[TF_MAX_LEVELS][TF_MAX_RCMS];
    /* (checkpointing blocks: enc_c1[l][r] is ONE scratch slot for every r, then enc_o
     * [l][0 .. nrcm-2]; the same for dec_*) */
    slot_t dec_cat[TF_MAX_LEVELS]; /* decoder j input [up, skip] */
    slot_t dec_c1[TF_MAX_LEVELS][TF_MAX_RCMS], dec_o[TF_MAX_LEVELS][TF_MAX_RCMS];
    slot_t head_in;              /* (B, c_0, Fp, Tp) last decoder output */
    slot_t z;                    /* (B, 2KS, Fp, Tp) head pre-activation */
    slot_t tok[TF_MAX_TFSWA][4]; /* fp32 sublayer inputs: tsa, fsa, swin0, swin1 */
    slot_t tsv[TF_MAX_TFSWA][4]; /* fp32 tf_tblock_saved of each sublayer */
    /* ---- workspace (fp32, bytes into the workspace block); views of region R (model.c
     * tf_layout): in, head, fwd, bwd, tfswa. The conv blocks and the head run one batch
     * item at a time: their buffers marked "item" hold one item, (C, H, W) ---- */
    size_t spec_re, mag_in;       /* in: subbands (B, 2K, Fs, T) (D0 where it fits),
                                     magnitude (B*2, Fb, T) */
    size_t wx;                    /* in, bf16: x0 (B, 2K, Fp, Tp) before its store (D1
                                     where it fits) */
    size_t om, oyr, oyi;          /* head: (2, Fb, T) of one (item, target), in hin's bytes */
    size_t hin, x0i, zi, dzi;     /* head, item (bf16 loads): head input, x0 (mask), z; dz
                                     (D1 where it fits) */
    size_t it;                    /* fwd, bwd, item (i_max floats at R's start): a bf16
                                     input or c1 widened, which the BN/GELU output then
                                     takes in place (fp32 slots: the BN/GELU output); in
                                     the forward also the block output's pooled/upsampled
                                     copy (the input spent by then); in backward also the
                                     nested recompute's load and BN/GELU output */
    size_t fo;                    /* fwd, item: the RCM output, after the largest of the
                                     BN/GELU output and that copy (c1 and the shortcut
                                     output are staged in D1: convblock_forward) */
    size_t bdg;                   /* bwd, item (Cout, after the first i_out floats): the
                                     GELU-output gradient where the input gradient
                                     overwrites dy in place */
    size_t D0, D1;                /* block gradients (dout, scratch / dx) */
    size_t E;                     /* (B, Cout, H, W) of an encoder block whose input
                                     gradient does not fit in its insides: the RCM chain's
                                     second buffer (its dx is in D1); 0 if none */
    slot_t dx[2 * TF_MAX_LEVELS]; /* fp32 (B, Cin, H, W): a Conv block's input gradient
                                   * (blocks: encoder levels, then decoders), in the bytes
                                   * of the block's own insides (c1s, os: free by the time
                                   * it is written) where they fit, else (IN_TMP) in the
                                   * block's scratch gradient buffer (D0 or D1) */
    size_t st_m1, st_r1, st_sd;   /* BN statistics (max C); st_sd: 2 x max C doubles */
    size_t convws;                /* conv2d workspace */
    slot_t dskip[TF_MAX_LEVELS];  /* fp32 (B, c_l, H_l, W_l) skip gradients: in the bytes
                                   * of dec_cat[L-1-l] (free once that decoder's backward
                                   * is done) where they fit, else in the workspace */
    size_t bott;                  /* (B, C, Hb, Wb) */
    size_t tb[8];                 /* tfswa: token buffers (NL*C) */
    size_t tbws;                  /* tfswa: tblock workspace */
    size_t relidx, mask;          /* int (L*L), float (nW, L, L) */
    size_t scratch;               /* recompute scratch start (checkpointing) */
    size_t n_convws, n_tbws;      /* floats */
    /* ---- the eval forward (offsets into the arena) ---- */
    evlay_t ev;
    /* ---- totals (bytes) ---- */
    size_t act_bytes, work_bytes;
} layout_t;

struct tf_model {
    tf_arch a;
    tf_model_mode mode;
    int threads;
    /* parameter table */
    size_t n_tensors, n_param_tensors;
    tf_param_info *info;
    size_t n_params, n_buffers; /* floats */
    /* the five blocks; acts and work are one allocation, the arena (grads, acts: NULL in
     * an inference model) */
    float *params, *grads, *buffers;
    unsigned char *arena, *acts, *work;
    tf_model_sizes plan;
    /* resolved pointers */
    rcm_params *rcm_p, *rcm_g; /* [(enc l | dec j) * nrcm + r]: enc first, then dec */
    rcm_buffers *rcm_b;
    float *head_w, *head_b, *ghead_w, *ghead_b;
    size_t *tb_off; /* [b*4 + sub]: float offset of that tblock's params */
    /* STFT */
    void *stft;       /* tf_stft* */
    tf_kernels *kern; /* the arithmetic (nn/kernels.h) */
    /* state of the last forward */
    layout_t lay;
    int have_fwd; /* the last forward was a training forward (backward may run) */
    /* debug taps */
    int taps_on;
    int tap_item, tap_items; /* taps of item tap_item of a batch of tap_items (eval forward of
                                a training model, one item at a time); tap_items 0: whole */
    size_t n_taps;
    char (*tap_name)[32];
    float **tap;
    size_t *tap_n;
};

/* y (n) += x (n) */
static inline void tf_add_inplace(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* dst (R, Fd, Td) <- src (R, Fs, Ts) top-left corner copy, rows of min widths; the rest of
 * dst zeroed (padding) */
static inline void tf_copy_corner(float *dst, int Fd, int Td, const float *src, int Fsrc, int Tsrc,
                                  size_t R) {
    const int f = Fd < Fsrc ? Fd : Fsrc, t = Td < Tsrc ? Td : Tsrc;
#pragma omp parallel for schedule(static) if (R * Fd * Td > 65536)
    for (size_t r = 0; r < R; r++) {
        float *d = dst + r * Fd * Td;
        const float *s = src + r * Fsrc * Tsrc;
        for (int i = 0; i < f; i++) {
            memcpy(d + (size_t)i * Td, s + (size_t)i * Tsrc, (size_t)t * sizeof(float));
            if (Td > t) memset(d + (size_t)i * Td + t, 0, (size_t)(Td - t) * sizeof(float));
        }
        if (Fd > f) memset(d + (size_t)f * Td, 0, (size_t)(Fd - f) * Td * sizeof(float));
    }
}

/* The map sizes of a segment of N samples (model.c): STFT frames T, bins Fb, subband bins
 * Fs, the padded map (Fp, Tp), level l's map (H[l], W[l]) for l = 0..L (L: the
 * bottleneck) and the Swin windows per image nW. TF_EUSER for a segment too long. */
typedef struct {
    int T, Fb, Fs, Fp, Tp;
    int H[TF_MAX_LEVELS + 1], W[TF_MAX_LEVELS + 1];
    int nW;
} tf_map_dims;
tf_status tf_map_dims_of(tf_map_dims *d, const tf_arch *a, int64_t N);

/* *acc = max(*acc, workspace floats of conv (B, ci -> co, H x W, k x k, with bias) through
 * kern (registering the shape there), or through the ref kernels when kern is NULL;
 * train = 0: the forward's workspace only (model.c). */
tf_status tf_conv_ws(size_t *acc, tf_kernels *kern, int B, int ci, int co, int H, int W, int k,
                     int train, int threads);
/* The same over the convolutions of one Conv block (a->nrcm RCMs, ci -> co at H x W): conv1,
 * conv2 and the 1x1 shortcut of each RCM. */
tf_status tf_block_conv_ws(size_t *acc, tf_kernels *kern, const tf_arch *a, int B, int ci, int co,
                           int H, int W, int train, int threads);

/* forward_eval.c: the streaming eval forward (training = 0) of any model; (B, N) checked
 * against the plan and m->lay set by the caller */
tf_status tf_model_forward_eval(tf_model *m, float *out, const float *mix);

/* model.c */
/* kern: the kernels the convolutions will run on (their shapes are registered there and
 * their workspace comes from there); NULL: the ref kernels' sizes, nothing registered */
tf_status tf_layout(layout_t *lay, const tf_arch *a, int B, int64_t N, int threads,
                    tf_model_mode mode, tf_kernels *kern);
size_t tf_tblock_hidden(const tf_arch *a);
tf_status tf_model_tap_put(tf_model *m, const char *name, const float *x, size_t n);
/* part [off, off + n) of a tap of `total` floats */
tf_status tf_model_tap_put_at(tf_model *m, const char *name, size_t total, size_t off,
                              const float *x, size_t n);

#endif
