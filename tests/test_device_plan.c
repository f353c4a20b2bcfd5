/* The device memory plan (train/device_plan.h, `tfswa plan --device cuda`) where no GPU is:
 * every device role against the device model's own layout functions called here
 * (tf_dlayout, tf_dlay_trainer: the sizes src/model/model_cuda.c and src/train/step_cuda.c
 * cudaMalloc) and against formulas written out (the trainer block's split, the cuFFT objects of
 * fft.cu, the assumed cuBLAS workspace); parameters and BN buffers against the CPU plan; the total
 * as the sum of every role (each nonzero, so a dropped role fails); the host roles, with
 * the host inference model; all four precision x checkpointing variants planned, the
 * variants' table each variant's own largest batch; both checkpointing settings' layouts
 * checked in fp32 and in bf16 storage (sizes written out: a Conv block's insides with
 * checkpointing are ONE shared conv1 slot and the RCM outputs, bf16 maps half the floats;
 * no two buffers live at once overlapping, the nested conv1 recompute's between two RCM
 * backwards, the bf16 staging map and skip gradients outside the decoder inputs
 * included); the largest batch (monotone in the budget; its plan fits, batch + 1 does
 * not); and the CLI: text and --json fields, --device cpu unchanged, cpu-only flags
 * refused, --use_amp planned as bf16. */
#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dlayout.h"
#include "model/model.h"
#include "nn/attn.h"
#include "nn/kernels.h"
#include "test.h"
#include "train/device_plan.h"
#include "train/train.h"
#include "util/config.h"
#include "util/device.h"

static char tfswa[PATH_MAX + 16];

static void tiny(tf_config *c, int batch) {
    tf_config_defaults(c);
    const char *argv[] = {"x", "--preset",      "tiny", "--segment_seconds", "0.5", "--num_workers",
                          "0", "--num_threads", "2"};
    CHECK(tf_config_parse_args(c, 9, (char **)argv, NULL) == TF_OK);
    c->batch_size = batch;
}

/* the paper preset with the paper's STFT (2048 / 441) */
static void paper(tf_config *c) {
    tf_config_defaults(c);
    const char *argv[] = {"x", "--preset", "paper", "--n_fft", "2048", "--hop_length", "441"};
    CHECK(tf_config_parse_args(c, 7, (char **)argv, NULL) == TF_OK);
}

/* 1 when cuda:idx cannot be opened here (no CUDA build or no GPU): the plan uses the bound */
static int no_gpu(int idx) {
    tf_device d = {TF_DEVICE_CUDA, idx};
    tf_device_info info;
    int r = tf_device_open(&d, "--device", NULL, &info) != TF_OK;
    tf_err_clear();
    return r;
}

/* n floats rounded up to dlayout's 64-float (256-byte) alignment */
static size_t al(size_t n) {
    return (n + 63) / 64 * 64;
}

/* fft.cu's buffers of one STFT object (S signals of N samples) + plans of one spectrum
 * buffer each */
static size_t fft_obj(int n_fft, int hop, size_t S, size_t N) {
    const size_t T = 1 + N / (size_t)hop, F = (size_t)n_fft / 2 + 1, nfr = S * T;
    return nfr * n_fft * 4 + nfr * F * 8 + ((size_t)n_fft + N) * 4 + 2 * nfr * F * 8;
}

static void test_roles_vs_dlayout(void) {
    const tf_device d = {TF_DEVICE_CUDA, 0};
    for (int v = 0; v < 8; v++) {
        tf_config c;
        tiny(&c, 1 + v % 3);
        c.ema_decay = v & 1 ? 0.999 : 0;
        c.loss = v & 2 ? TF_LOSS_MRSTFT : TF_LOSS_L1;
        if (v & 4) c.n_targets = 1; /* S = 1: the model object sized max(2BS, 2B) */
        tf_device_plan p;
        tf_status st = tf_device_plan_bytes(&p, &c, &d, NULL);
        CHECKF(st == TF_OK, "variant %d: %s", v, tf_errmsg());
        if (st) continue;
        /* the device model's layout, computed here */
        const tf_model_config mc = tf_train_model_config(&c);
        tf_arch a;
        CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
        tf_kernels *k = NULL;
        CHECK(tf_kernels_create_bound(&k, TF_BACKEND_CUDA, TF_DT_FP32, TF_KERN_CUDA_WS_LIMIT,
                                      "test") == TF_OK);
        tf_dlay y;
        const size_t N = (size_t)(0.5 * c.sample_rate + 0.5), B = (size_t)c.batch_size;
        const size_t S = (size_t)c.n_targets;
        CHECK(tf_dlayout(&y, &a, (int)B, (int64_t)N, k) == TF_OK);
        tf_dlay yi; /* separation: TF_DEVPLAN_SEP_BATCH chunks of the segment */
        CHECK(tf_dlayout_infer(&yi, &a, TF_DEVPLAN_SEP_BATCH, (int64_t)N, k) == TF_OK);
        tf_kernels_free(k);
        CHECK(p.frames == (int64_t)N);
        CHECKF(p.activations == 4 * y.act_floats && p.workspace == 4 * y.work_floats,
               "variant %d: act %zu vs %zu, work %zu vs %zu", v, p.activations, 4 * y.act_floats,
               p.workspace, 4 * y.work_floats);
        CHECKF(p.conv_workspace == 4 * y.n_convws && p.conv_workspace == TF_KERN_CUDA_WS_LIMIT,
               "conv ws %zu", p.conv_workspace);
        /* parameters and buffers: the CPU model's (its plan and its parameter count) */
        tf_train_plan cp;
        CHECK(tf_train_plan_bytes(&cp, &c, c.num_threads) == TF_OK);
        size_t np = 0;
        CHECK(tf_model_param_count(&np, &mc) == TF_OK);
        CHECKF(p.n_params == np && p.n_params == cp.model.n_params &&
                   p.n_buffers == cp.model.n_buffers && p.params == cp.model.params &&
                   p.grads == cp.model.grads && p.buffers == cp.model.buffers,
               "variant %d: n_params %zu/%zu params %zu/%zu buffers %zu/%zu", v, p.n_params,
               cp.model.n_params, p.params, cp.model.params, p.buffers, cp.model.buffers);
        CHECK(p.params == 4 * np && p.grads == 4 * np && p.buffers == 4 * p.n_buffers);
        /* the trainer block: dlayout's function, and its split written out */
        tf_dtrl o;
        const size_t sbf = c.loss == TF_LOSS_MRSTFT ? tf_dlay_mrstft_bins_frames((int64_t)N) : 0;
        tf_dlay_trainer(&o, np, p.n_buffers, c.ema_decay > 0, (int)B, (int)S, (int64_t)N, sbf);
        CHECKF(p.trainer == 4 * o.floats, "variant %d: trainer %zu vs %zu", v, p.trainer,
               4 * o.floats);
        const size_t nio = B * S * 2 * N;
        CHECKF(p.optimizer == 4 * al(np) * (v & 1 ? 3 : 2), "variant %d: optimizer %zu", v,
               p.optimizer);
        CHECKF(p.batches == 4 * (al(B * 2 * N) + al(nio)), "variant %d: batches %zu", v, p.batches);
        CHECKF(p.loss == 4 * (al(p.n_buffers) + 2 * al(nio) + al(6 * sbf * B * S * 2) +
                              al(2 * (TF_DLAY_LOSS_WS_DOUBLES + 8))),
               "variant %d: loss %zu", v, p.loss);
        CHECK(p.optimizer + p.batches + p.loss == p.trainer);
        /* cuFFT: the model's object for 2BS signals; mrstft: 512, 1024, 2048 for 2BS each */
        CHECKF(p.cufft_model == fft_obj(c.stft_window_size, c.stft_hop_length, 2 * B * S, N),
               "variant %d: cufft model %zu", v, p.cufft_model);
        size_t loss_fft = 0, plans = 0;
        for (int w = 512; w <= 2048 && (v & 2); w *= 2) {
            loss_fft += fft_obj(w, w / 4, 2 * B * S, N);
            plans += 2 * (2 * B * S * (1 + N / (size_t)(w / 4))) * (size_t)(w / 2 + 1) * 8;
        }
        plans += 2 * (2 * B * S * (1 + N / (size_t)c.stft_hop_length)) *
                 (size_t)(c.stft_window_size / 2 + 1) * 8;
        CHECKF(p.cufft_loss == loss_fft && p.cufft == p.cufft_model + loss_fft &&
                   p.cufft_plans == plans,
               "variant %d: cufft loss %zu vs %zu, plans %zu vs %zu", v, p.cufft_loss, loss_fft,
               p.cufft_plans, plans);
        CHECK(p.cublas == TF_DEVPLAN_CUBLAS_WS);
        /* the total: every role, each nonzero (a role dropped from the sum fails here) */
        const size_t roles[] = {p.params,    p.grads,   p.buffers,     p.activations,
                                p.workspace, p.trainer, p.cufft_model, p.cublas};
        size_t sum = p.cufft_loss;
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
            CHECKF(roles[r] > 0, "variant %d: role %zu is 0", v, r);
            sum += roles[r];
        }
        if (v & 2) CHECK(p.cufft_loss > 0);
        CHECKF(p.total == sum, "variant %d: total %zu vs %zu", v, p.total, sum);
        /* separation: weights, the inference layout, chunks and stems, cuFFT, cuBLAS */
        const size_t sb = TF_DEVPLAN_SEP_BATCH, ssig = 2 * sb * (S > 1 ? S : 1);
        CHECKF(p.sep_workspace == 4 * yi.work_floats &&
                   p.sep_total == p.params + p.buffers + p.sep_workspace +
                                      4 * (sb * 2 * N + sb * S * 2 * N) +
                                      fft_obj(c.stft_window_size, c.stft_hop_length, ssig, N) +
                                      TF_DEVPLAN_CUBLAS_WS &&
                   p.sep_total < p.total,
               "variant %d: separation %zu (workspace %zu) vs training %zu", v, p.sep_total,
               p.sep_workspace, p.total);
        /* host: loader, validation, staging (params, buffers, m, v (+ EMA, raw)), model */
        CHECK(p.host_loader == cp.loader && p.host_loader > 0);
        CHECK(p.host_staging == 4 * (np + p.n_buffers + np * (v & 1 ? 4 : 2)));
        /* the host model only holds the weights for checkpoints: batch 1 x 4 STFT windows */
        tf_model_sizes hm;
        CHECK(tf_model_plan_mode(&hm, &mc, 1, 4 * (int64_t)c.stft_window_size, c.num_threads,
                                 TF_MODEL_INFER) == TF_OK);
        CHECKF(p.host_model == hm.total && hm.total > 0, "host model %zu vs %zu", p.host_model,
               hm.total);
        CHECK(p.host_validation > 0);
        CHECK(p.host_total == p.host_loader + p.host_validation + p.host_staging + p.host_model);
        /* no GPU: the upper bound, said so */
        CHECK(!p.ws_chosen);
        CHECKF(!strcmp(p.ws_source, "upper bound (no GPU: 256 MiB per shape limit)"), "'%s'",
               p.ws_source);
        CHECK(p.dev_name[0] == 0 && p.dev_free_bytes == 0);
    }
}

/* Every precision x checkpointing variant plans on the device (bf16 storage included): the
 * table of tf_device_plan_variants is each variant's own tf_device_plan_max_batch, and
 * bf16 fits a larger batch than fp32, blocks larger than off */
static void test_variants(void) {
    const tf_device d = {TF_DEVICE_CUDA, 0};
    tf_config c;
    tiny(&c, 2);
    int mb[TF_DEVPLAN_VARIANTS], one[TF_DEVPLAN_VARIANTS];
    char why[TF_DEVPLAN_VARIANTS][256];
    CHECK(tf_device_plan_variants(&c, &d, NULL, (size_t)1 << 30, mb, why) == TF_OK);
    for (int v = 0; v < TF_DEVPLAN_VARIANTS; v++) {
        tf_config k = c;
        tf_device_plan_variant(&k, v);
        CHECK(k.activation_dtype == (v & 2 ? TF_DT_BF16 : TF_DT_FP32) &&
              k.compute_dtype == k.activation_dtype &&
              k.checkpointing == (v & 1 ? TF_CKPT_BLOCKS : TF_CKPT_OFF));
        tf_device_plan p;
        CHECKF(tf_device_plan_bytes(&p, &k, &d, NULL) == TF_OK, "variant %d: %s", v, tf_errmsg());
        one[v] = -1;
        CHECKF(tf_device_plan_max_batch(&k, &d, NULL, (size_t)1 << 30, &one[v]) == TF_OK,
               "variant %d: %s", v, tf_errmsg());
        CHECKF(mb[v] == one[v] && one[v] > 0 && why[v][0] == 0, "variant %d: %d vs %d '%s'", v,
               mb[v], one[v], why[v]);
    }
    /* (tiny at 1 GiB: cuDNN's 256 MiB bound and cuFFT weigh; bf16's fp32 staging map and
     * the convolutions' bf16 operand copies take most of what bf16 storage saves, so the
     * largest batches are close: bf16 is compared by its bytes per batch item; with blocks
     * it costs more than it saves, see test_checkpointing_layout for the paper preset and
     * test_bf16_conv_copies) */
    CHECKF(mb[1] > mb[0] && mb[3] > mb[2] && mb[2] >= mb[0], "fp32 %d/%d, bf16 %d/%d (off/blocks)",
           mb[0], mb[1], mb[2], mb[3]);
    size_t per_item[2] = {0, 0};
    for (int bf = 0; bf < 2; bf++) {
        tf_config k = c;
        tf_device_plan_variant(&k, bf ? 2 : 0);
        tf_device_plan p4, p8;
        k.batch_size = 4;
        CHECK(tf_device_plan_bytes(&p4, &k, &d, NULL) == TF_OK);
        k.batch_size = 8;
        CHECK(tf_device_plan_bytes(&p8, &k, &d, NULL) == TF_OK);
        per_item[bf] = (p8.total - p4.total) / 4;
    }
    CHECKF(per_item[1] < per_item[0], "bytes per batch item, checkpointing off: bf16 %zu, fp32 %zu",
           per_item[1], per_item[0]);
    /* the table */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f) return;
    tf_device_plan_print_variants(f, &c, mb);
    char text[2048] = "";
    rewind(f);
    const size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    for (int v = 0; v < TF_DEVPLAN_VARIANTS; v++) {
        char want[128];
        snprintf(want, sizeof want, "  %s activations, checkpointing %-6s: batch_size %d\n",
                 v & 2 ? "bf16" : "fp32", v & 1 ? "blocks" : "off", mb[v]);
        CHECKF(strstr(text, want) != NULL, "'%s' not in\n%s", want, text);
    }
}

/* bytes of the bf16 operand copies of a training conv (B, ci -> co, hw, k x k): x, w, y
 * and dw, each rounded up to 256 bytes (src/cuda/conv.cu's layout, written out here) */
static size_t copies(size_t B, size_t ci, size_t co, size_t hw, size_t k) {
    return 4 * al((B * ci * hw + 1) / 2) + 8 * al((co * ci * k * k + 1) / 2) +
           4 * al((B * co * hw + 1) / 2);
}

/* --use_amp on the device: bf16 arithmetic adds the largest conv's operand copies to the
 * conv workspace (the 256 MiB bound of cuDNN's own is per shape), nothing else; the
 * separation plan (fp32) does not change */
static void test_bf16_conv_copies(void) {
    const tf_device d = {TF_DEVICE_CUDA, 0};
    for (int v = 0; v < 2; v++) {
        tf_config c;
        tiny(&c, 2 + v);
        if (v) paper(&c), c.batch_size = 3;
        c.activation_dtype = TF_DT_BF16;
        tf_config c32 = c;
        c.compute_dtype = TF_DT_BF16;
        tf_device_plan p, q;
        CHECK(tf_device_plan_bytes(&p, &c, &d, NULL) == TF_OK);
        CHECK(tf_device_plan_bytes(&q, &c32, &d, NULL) == TF_OK);
        CHECK(p.conv_dtype == TF_DT_BF16 && q.conv_dtype == TF_DT_FP32);
        const tf_model_config mc = tf_train_model_config(&c);
        tf_arch a;
        CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
        tf_kernels *k = NULL;
        CHECK(tf_kernels_create_bound(&k, TF_BACKEND_CUDA, TF_DT_FP32, 1, "test") == TF_OK);
        tf_dlay y;
        const size_t B = (size_t)c.batch_size;
        CHECK(tf_dlayout(&y, &a, (int)B, (int64_t)llround(c.segment_seconds * c.sample_rate), k) ==
              TF_OK);
        tf_kernels_free(k);
        /* the 3x3 convs of every block (the 1x1 ones move the same maps, smaller w) and the
         * head's 1x1 */
        size_t want = copies(B, (size_t)a.ch[0], (size_t)(2 * a.K * a.S), (size_t)y.Fp * y.Tp, 1);
        for (int l = 0; l < a.L; l++) {
            const size_t hw = (size_t)y.H[l] * y.W[l], co = (size_t)a.ch[l];
            const size_t w1 = copies(B, (size_t)(l ? a.ch[l - 1] : a.cin), co, hw, 3);
            const size_t w2 = copies(B, co, co, hw, 3);
            want = want > w1 ? want : w1;
            want = want > w2 ? want : w2;
        }
        for (int j = 0; j < a.L; j++) {
            const int i = a.L - 1 - j;
            const size_t hw = (size_t)y.H[i] * y.W[i], co = (size_t)a.dec_out[j];
            const size_t w1 = copies(B, (size_t)a.dec_in[j], co, hw, 3),
                         w2 = copies(B, co, co, hw, 3);
            want = want > w1 ? want : w1;
            want = want > w2 ? want : w2;
        }
        CHECKF(p.conv_workspace == q.conv_workspace + want &&
                   q.conv_workspace == TF_KERN_CUDA_WS_LIMIT,
               "v %d: conv ws %zu vs fp32 %zu + copies %zu", v, p.conv_workspace, q.conv_workspace,
               want);
        CHECK(p.workspace == q.workspace + want && p.total == q.total + want);
        CHECK(p.activations == q.activations && p.sep_total == q.sep_total &&
              p.sep_workspace == q.sep_workspace);
        /* amp_dtype fp16: fp16 copies of the same size */
        tf_config c16 = c;
        c16.amp_dtype = 1;
        tf_device_plan h;
        CHECK(tf_device_plan_bytes(&h, &c16, &d, NULL) == TF_OK);
        CHECK(h.conv_dtype == TF_DT_FP16 && h.conv_workspace == p.conv_workspace &&
              h.total == p.total);
        /* the text names them */
        FILE *f = tmpfile();
        CHECK(f != NULL);
        if (!f) continue;
        tf_device_plan_print(f, &p, &c);
        char text[8192] = "";
        rewind(f);
        text[fread(text, 1, sizeof text - 1, f)] = 0;
        fclose(f);
        CHECKF(strstr(text, "bf16 activations, bf16 arithmetic") &&
                   strstr(text, "of which cuDNN + 16-bit copies (upper bound)"),
               "%s", text);
    }
}

/* A float range [off, off + n) of a block, with the phases it is live in */
typedef struct {
    const char *name;
    size_t off, n;
    unsigned long long live; /* phases: 1 input STFT, 2 Conv block, 4 TFSWA stack, 8 head,
                                16 between two RCM backwards of a Conv block (checkpointing:
                                the nested recompute of the next RCM's conv1 output), 31 all
                                (training); steps of the eval forward (inference) */
} range_t;

/* no two ranges that are live in a common phase overlap; every range ends by `end` */
static int disjoint(const range_t *r, int n, size_t end, const char *what) {
    int ok = 1;
    for (int i = 0; i < n; i++) {
        if (r[i].off + r[i].n > end) {
            fprintf(stderr, "  %s %s [%zu, %zu) past %zu\n", what, r[i].name, r[i].off,
                    r[i].off + r[i].n, end);
            ok = 0;
        }
        for (int j = i + 1; j < n; j++)
            if ((r[i].live & r[j].live) && r[i].off < r[j].off + r[j].n &&
                r[j].off < r[i].off + r[i].n) {
                fprintf(stderr, "  %s %s [%zu, %zu) overlaps %s [%zu, %zu)\n", what, r[i].name,
                        r[i].off, r[i].off + r[i].n, r[j].name, r[j].off, r[j].off + r[j].n);
                ok = 0;
            }
    }
    return ok;
}

/* The device layout with checkpointing blocks against the same without, and both against
 * sizes written out: the saved activations are exactly the block inputs, the head input
 * and pre-activation, the phase and the TFSWA block inputs (off: plus every block's
 * insides); with blocks the insides are in one workspace scratch of the largest block's
 * size (a Conv block's: one c1 slot shared by every RCM, then o[0..R-2]), each block's
 * insides disjoint inside it, a block's input gradient (dx_own) inside
 * it; no two buffers live at the same time overlap (saved: all; workspace: by phase) */
static void check_layout(const tf_config *c, int B, int64_t N, int bf) {
    const tf_model_config mc = tf_train_model_config(c);
    tf_arch a;
    CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
    a.act_dtype = bf ? TF_DT_BF16 : TF_DT_FP32;
    /* floats of a stored map of n values: the block inputs, the insides, head_in and z */
#define HB(n) (bf ? ((n) + 1) / 2 : (n))
    tf_dlay yk[2];
    for (int ck = 0; ck < 2; ck++) {
        a.ckpt = ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        tf_kernels *k = NULL;
        CHECK(tf_kernels_create_bound(&k, TF_BACKEND_CUDA, TF_DT_FP32, TF_KERN_CUDA_WS_LIMIT,
                                      "test") == TF_OK);
        CHECKF(tf_dlayout(&yk[ck], &a, B, N, k) == TF_OK, "ckpt %d: %s", ck, tf_errmsg());
        tf_kernels_free(k);
    }
    const int L = a.L, R = a.nrcm, K = a.K, S = a.S, C = a.ch[L - 1];
    const tf_dlay *y = &yk[1];
    CHECK(!yk[0].ckpt && yk[1].ckpt && yk[0].n_scr == 0 && yk[0].bf == bf && yk[1].bf == bf);
    const size_t b = (size_t)B, hwp = (size_t)y->Fp * y->Tp, nspec = b * 2 * y->Fb * y->T;
    const size_t ntok = b * C * y->H[L] * y->W[L];
    const int Ls = a.wt * a.wf, Hb = y->H[L], Wb = y->W[L];
    const int Ns[4] = {B * Hb, B * Wb, B * y->nW, B * y->nW}, Lq[4] = {Wb, Hb, Ls, Ls};
    /* the saved block: inputs only, then the insides */
    size_t in = 2 * al(nspec) + al(HB(b * a.ch[0] * hwp)) + al(HB(b * 2 * K * S * hwp)) +
                (size_t)a.nblk * al(ntok);
    size_t insides = 0, scr = 0;
    for (int blk = 0; blk < 2 * L; blk++) {
        const int lv = blk < L ? blk : 2 * L - 1 - blk;
        const size_t px = b * y->H[lv] * y->W[lv];
        const int ci = blk < L ? (lv ? a.ch[lv - 1] : a.cin) : a.dec_in[blk - L];
        const int co = blk < L ? a.ch[lv] : a.dec_out[blk - L];
        in += al(HB(px * ci));
        /* saved: c1[r] and o[r] (2R - 1 maps); the scratch: one shared c1 and o[r] (R) */
        const size_t one = (size_t)R * al(HB(px * co));
        insides += (size_t)(2 * R - 1) * al(HB(px * co));
        scr = scr > one ? scr : one;
        /* the input gradient in the scratch: only where it fits */
        CHECKF(y->dx_own[blk] == (px * ci <= y->n_scr), "block %d: dx_own %d", blk, y->dx_own[blk]);
    }
    size_t tf1 = 3 * al(ntok);
    for (int s = 0; s < 4; s++)
        tf1 += al(tf_tblock_saved_floats(Ns[s], Lq[s], C, a.heads, a.hidden));
    if (a.nblk > 0) {
        insides += (size_t)a.nblk * tf1;
        scr = scr > tf1 ? scr : tf1;
    }
    CHECKF(y->act_floats == in && yk[0].act_floats == in + insides,
           "saved floats: blocks %zu vs %zu, off %zu vs %zu", y->act_floats, in, yk[0].act_floats,
           in + insides);
    CHECKF(y->n_scr == scr, "scratch %zu vs %zu", y->n_scr, scr);
    CHECK(y->act_floats < yk[0].act_floats);
    /* both layouts: the saved block all live at once; with blocks, the insides of each block
     * in the scratch (live by phase below), all blocks at the same offsets */
    for (int ck = 0; ck < 2; ck++) {
        const tf_dlay *z = &yk[ck];
        range_t r[1024];
        int n = 0;
        r[n++] = (range_t){"pr", z->pr, nspec, 31};
        r[n++] = (range_t){"pi", z->pi, nspec, 31};
        r[n++] = (range_t){"head_in", z->head_in, HB(b * a.ch[0] * hwp), 31};
        r[n++] = (range_t){"z", z->z, HB(b * 2 * K * S * hwp), 31};
        for (int l = 0; l < L; l++) {
            const int i = L - 1 - l;
            r[n++] = (range_t){"enc_in", z->enc_in[l],
                               HB(b * (l ? a.ch[l - 1] : a.cin) * y->H[l] * y->W[l]), 31};
            r[n++] =
                (range_t){"dec_cat", z->dec_cat[l], HB(b * a.dec_in[l] * y->H[i] * y->W[i]), 31};
        }
        for (int kb = 0; kb < a.nblk; kb++) r[n++] = (range_t){"tok0", z->tok[kb][0], ntok, 31};
        /* the insides: saved (off) or in the scratch, one block at a time (the scratch
         * itself is checked against the workspace below) */
        for (int blk = 0; blk < 2 * L + a.nblk; blk++) {
            range_t q[64];
            int nq = 0;
            if (blk < 2 * L) {
                const int lv = blk < L ? blk : 2 * L - 1 - blk, j = blk - L;
                const size_t px = b * y->H[lv] * y->W[lv];
                const int co = blk < L ? a.ch[lv] : a.dec_out[j];
                for (int rr = 0; rr < R; rr++) {
                    const size_t c1r = blk < L ? z->enc_c1[lv][rr] : z->dec_c1[j][rr];
                    const size_t c10 = blk < L ? z->enc_c1[lv][0] : z->dec_c1[j][0];
                    /* the scratch: ONE c1 slot for every RCM (the nested recompute) */
                    if (ck) CHECKF(c1r == c10, "block %d: c1[%d] %zu vs %zu", blk, rr, c1r, c10);
                    if (!ck || rr == 0) q[nq++] = (range_t){"c1", c1r, HB(px * co), 2};
                    if (rr < R - 1)
                        q[nq++] = (range_t){"o", blk < L ? z->enc_o[lv][rr] : z->dec_o[j][rr],
                                            HB(px * co), 2};
                }
                /* contiguous from c1[0]: the input gradient's room (dx_own) */
                const int ci = blk < L ? (lv ? a.ch[lv - 1] : a.cin) : a.dec_in[j];
                const size_t c10 = blk < L ? z->enc_c1[lv][0] : z->dec_c1[j][0];
                if (z->dx_own[blk]) {
                    if (ck)
                        CHECKF(c10 == z->scr && px * ci <= z->n_scr, "block %d: dx", blk);
                    else
                        CHECKF(px * ci <= (size_t)(2 * R - 1) * HB(px * co), "block %d: dx", blk);
                }
            } else {
                const int kb = blk - 2 * L;
                for (int s = 0; s < 4; s++) {
                    if (s) q[nq++] = (range_t){"tok", z->tok[kb][s], ntok, 4};
                    q[nq++] =
                        (range_t){"tsv", z->tsv[kb][s],
                                  tf_tblock_saved_floats(Ns[s], Lq[s], C, a.heads, a.hidden), 4};
                }
            }
            CHECKF(disjoint(q, nq, SIZE_MAX, ck ? "scratch" : "saved"), "block %d", blk);
            for (int i = 0; i < nq; i++) {
                if (!ck) {
                    q[i].live = 31;
                    r[n++] = q[i];
                } else {
                    CHECKF(q[i].off >= z->scr && q[i].off + q[i].n <= z->scr + z->n_scr,
                           "block %d %s [%zu, +%zu) outside the scratch [%zu, +%zu)", blk,
                           q[i].name, q[i].off, q[i].n, z->scr, z->n_scr);
                }
            }
        }
        if (!ck) CHECK(n > 0 && n < 1024);
        CHECK(disjoint(r, n, z->act_floats, ck ? "saved (blocks)" : "saved (off)"));
        /* the workspace by phase: region R (input STFT, head, Conv block, TFSWA stack and
         * the scratch of the last two), then what lives throughout. Phase 16, between two
         * RCM backwards of a Conv block (model_cuda.c convblock_backward): live are the
         * chain's gradients dout and tmp (D0, D1 or the skip gradient in the saved block),
         * E, the scratch (o[r-1], the c1 slot) and, with checkpointing, the nested
         * recompute's Y, mean, rstd and convws; G/dY, dG, Tb, O, P are not (Y is listed
         * live there in both layouts: the check is stricter than needed without) */
        size_t cmax = 0, omax = 0, pmax = 0;
        for (int blk = 0; blk < 2 * L; blk++) {
            const int lv = blk < L ? blk : 2 * L - 1 - blk, j = blk - L;
            const size_t hw = (size_t)y->H[lv] * y->W[lv];
            const size_t ci = blk < L ? (lv ? a.ch[lv - 1] : a.cin) : a.dec_in[j];
            const size_t co = blk < L ? a.ch[lv] : a.dec_out[j];
            cmax = cmax > (ci > co ? ci : co) * hw ? cmax : (ci > co ? ci : co) * hw;
            omax = omax > co * hw ? omax : co * hw;
            if (blk >= L) {
                const size_t cu = (size_t)a.dec_in[j] - a.ch[lv];
                pmax = pmax > cu * hw ? pmax : cu * hw;
            }
        }
        const size_t nout = b * S * 2 * y->Fb * y->T;
        range_t w[64];
        int m = 0;
        w[m++] = (range_t){"re", z->re, nspec, 1};
        w[m++] = (range_t){"im", z->im, nspec, 1};
        w[m++] = (range_t){"mag", z->mag, nspec, 1};
        w[m++] = (range_t){"hc", z->hc, b * S * 2 * K * y->Fs * y->T, 8};
        w[m++] = (range_t){"om", z->om, nout, 8};
        w[m++] = (range_t){"yr", z->yr, nout, 8};
        w[m++] = (range_t){"yi", z->yi, nout, 8};
        w[m++] = (range_t){"dz", z->dz, b * 2 * K * S * hwp, 8};
        w[m++] = (range_t){"Y", z->Y, b * cmax, 2 | 16};
        w[m++] = (range_t){"G/dY", z->G, b * cmax, 2};
        w[m++] = (range_t){"dG", z->dG, b * cmax, 2};
        w[m++] = (range_t){"Tb", z->Tb, b * omax, 2};
        w[m++] = (range_t){"O", z->O, b * omax, 2};
        w[m++] = (range_t){"P", z->P, b * pmax, 2};
        if (a.nblk > 0) {
            for (int t = 0; t < 6; t++) w[m++] = (range_t){"tb", z->tb[t], ntok, 4};
            w[m++] = (range_t){"tbws", z->tbws, z->n_tbws, 4};
            w[m++] = (range_t){"relidx", z->relidx, (size_t)Ls * Ls, 31};
            w[m++] = (range_t){"mask", z->mask, (size_t)y->nW * Ls * Ls, 31};
        }
        if (ck) w[m++] = (range_t){"scratch", z->scr, z->n_scr, 2 | 4 | 16};
        /* E: the RCM chain's second buffer of an encoder block whose input gradient is not
         * in its insides (in D1 then); empty where none is */
        size_t ne = 0;
        for (int l = 0; l < L; l++)
            if (!z->dx_own[l]) {
                const size_t ne_l = b * a.ch[l] * y->H[l] * y->W[l];
                ne = ne > ne_l ? ne : ne_l;
            }
        w[m++] = (range_t){"E", z->E, ne, 31};
        int chmax = a.cin;
        for (int l = 0; l < L; l++) {
            chmax = a.ch[l] > chmax ? a.ch[l] : chmax;
            chmax = a.dec_in[l] > chmax ? a.dec_in[l] : chmax;
        }
        w[m++] = (range_t){"mean", z->mean, (size_t)chmax, 31};
        w[m++] = (range_t){"rstd", z->rstd, (size_t)chmax, 31};
        w[m++] = (range_t){"bott", z->bott, ntok, 31};
        w[m++] = (range_t){"convws", z->convws, z->n_convws, 31};
        CHECK(z->D0 < z->D1 && z->D1 < z->E && z->E + ne <= z->mean);
        w[m++] = (range_t){"D0", z->D0, z->D1 - z->D0, 31};
        w[m++] = (range_t){"D1", z->D1, z->E - z->D1, 31};
        /* the skip gradients (fp32): in their decoder input's bytes (the saved block, checked
         * to fit here), or in the workspace from the decoders' backward on (bf16 only) */
        for (int l = 0; l < L; l++) {
            const size_t ns = b * a.ch[l] * y->H[l] * y->W[l];
            const size_t room = HB(b * a.dec_in[L - 1 - l] * y->H[l] * y->W[l]);
            CHECKF(z->dskip_w[l] == (ns > room) && (bf || !z->dskip_w[l]), "dskip %d", l);
            if (z->dskip_w[l])
                w[m++] = (range_t){"dskip", z->dskip[l], ns, 2 | 4 | 16};
            else
                CHECK(z->dskip[l] == z->dec_cat[L - 1 - l]);
        }
        /* bf16: XW takes the padded x0 (input STFT), each block's widened maps and RCM
         * outputs (Conv block, nested recompute) and z and the head input (head); X0W the
         * widened x0 (head, output mask) */
        if (bf) {
            size_t xw = cmax > (size_t)2 * K * S * hwp / b ? cmax : 2 * K * S * hwp / b;
            xw = xw > (size_t)a.ch[0] * hwp / b ? xw : (size_t)a.ch[0] * hwp / b;
            w[m++] = (range_t){"XW", z->XW, b * xw, 1 | 2 | 8 | 16};
            if (a.output == TF_OUT_MASK) w[m++] = (range_t){"X0W", z->X0W, b * a.cin * hwp, 8};
        }
        CHECK(disjoint(w, m, z->work_floats, ck ? "workspace (blocks)" : "workspace (off)"));
    }
#undef HB
}

static void test_checkpointing_layout(void) {
    for (int bf = 0; bf < 2; bf++) {
        tf_config c;
        tiny(&c, 2);
        check_layout(&c, 2, 11025, bf);
        c.output = TF_OUT_MASK;
        c.n_targets = 3;
        check_layout(&c, 3, 9000, bf);
        paper(&c);
        check_layout(&c, 8, 132300, bf);
    }
    tf_config c;
    paper(&c);
    /* the device plan follows: less saved, the scratch in the workspace */
    const tf_device d = {TF_DEVICE_CUDA, 0};
    c.batch_size = 8;
    c.segment_seconds = 3;
    tf_device_plan p0, p1;
    CHECKF(tf_device_plan_bytes(&p0, &c, &d, NULL) == TF_OK, "%s", tf_errmsg());
    c.checkpointing = TF_CKPT_BLOCKS;
    CHECKF(tf_device_plan_bytes(&p1, &c, &d, NULL) == TF_OK, "%s", tf_errmsg());
    CHECKF(p1.activations < p0.activations / 4 && p1.workspace > p0.workspace &&
               p1.total < p0.total,
           "activations %zu vs %zu, workspace %zu vs %zu, total %zu vs %zu", p1.activations,
           p0.activations, p1.workspace, p0.workspace, p1.total, p0.total);
    /* bf16 storage (use_amp): the saved block a little over half (the phase, TFSWA tokens
     * and saved tensors stay fp32), the staging in the workspace, less in all */
    tf_device_plan q[2];
    for (int ck = 0; ck < 2; ck++) {
        c.checkpointing = ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        c.activation_dtype = TF_DT_BF16;
        CHECKF(tf_device_plan_bytes(&q[ck], &c, &d, NULL) == TF_OK, "%s", tf_errmsg());
        const tf_device_plan *f = ck ? &p1 : &p0;
        CHECKF(q[ck].activations < f->activations * 6 / 10 &&
                   q[ck].activations > f->activations / 2 && q[ck].workspace >= f->workspace &&
                   q[ck].total < f->total,
               "ckpt %d, bf16 vs fp32: activations %zu vs %zu, workspace %zu vs %zu, total %zu vs "
               "%zu",
               ck, q[ck].activations, f->activations, q[ck].workspace, f->workspace, q[ck].total,
               f->total);
    }
}

/* The inference layout (tf_dlayout_infer) against the eval forward's steps written out
 * here from src/model/model_cuda.c's forward(): every buffer it touches as a range live from
 * the step that writes it to the last step that reads it. Steps: the input STFT (io), the
 * encoder levels (each two: the block, then its output's skip copy and pool), the TFSWA stack
 * kernel by kernel (t1 tsa, t2 seq swap, t3 fsa, t4 window partition, t5 swin, t6 window reverse,
 * t7 partition, t8 shifted swin, t9 reverse, t10 residual, t11 swap into the next block's input and
 * tokens to map; one block k at a time, with k+1's input), the decoder blocks (the upsample into
 * decoder j's concat is step j), the head kernel by kernel (h1 conv, h2 activation, h3 subband
 * merge, h4 phase, h5 ISTFT). Inside a Conv block its insides by RCM r (c1[r] live in RCM r, o[r]
 * in r and r+1). No two ranges live in a common step overlap; sizes written out (the region's
 * largest step); the convolutions registered forward only (fewer bytes than with the backward where
 * the backend sizes them: the CPU ones). */
static void check_infer_layout(const tf_config *c, int B, int64_t N) {
    const tf_model_config mc = tf_train_model_config(c);
    tf_arch a;
    CHECK(tf_arch_from_config(&a, &mc) == TF_OK);
    tf_kernels *k = NULL;
    CHECK(tf_kernels_create_bound(&k, TF_BACKEND_CUDA, TF_DT_FP32, TF_KERN_CUDA_WS_LIMIT, "test") ==
          TF_OK);
    tf_dlay yv, yt;
    CHECKF(tf_dlayout_infer(&yv, &a, B, N, k) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dlayout(&yt, &a, B, N, k) == TF_OK, "%s", tf_errmsg());
    tf_kernels_free(k);
    /* forward-only registration: the ref backend sizes forward and backward differently */
    tf_kernels *kf = NULL, *kt = NULL;
    CHECK(tf_kernels_create(&kf, TF_BACKEND_REF, TF_DT_FP32, 1) == TF_OK);
    CHECK(tf_kernels_create(&kt, TF_BACKEND_REF, TF_DT_FP32, 1) == TF_OK);
    tf_dlay rf, rt;
    CHECK(tf_dlayout_infer(&rf, &a, B, N, kf) == TF_OK && tf_dlayout(&rt, &a, B, N, kt) == TF_OK);
    CHECKF(rf.n_convws < rt.n_convws && tf_kernels_n_shapes(kf) == tf_kernels_n_shapes(kt),
           "conv ws forward %zu vs training %zu", rf.n_convws, rt.n_convws);
    tf_kernels_free(kf);
    tf_kernels_free(kt);
    const tf_dlay *y = &yv;
    CHECK(y->infer && !yt.infer && y->act_floats == 0 && !y->ckpt);
    const int L = a.L, R = a.nrcm, K = a.K, S = a.S, C = a.ch[L - 1], mk = a.output == TF_OUT_MASK;
    const size_t b = (size_t)B, hwp = (size_t)y->Fp * y->Tp, nspec = b * 2 * y->Fb * y->T;
    const size_t ntok = b * C * y->H[L] * y->W[L], nout = b * S * 2 * y->Fb * y->T;
    const int Ls = a.wt * a.wf, Hb = y->H[L], Wb = y->W[L];
    const int Ns[4] = {B * Hb, B * Wb, B * y->nW, B * y->nW}, Lq[4] = {Wb, Hb, Ls, Ls};
    /* step numbers: encoder level l is two, its block (ENC + 2l) and its output's skip
     * copy and pool (ENC + 2l + 1) */
    const int IO = 0, ENC = 1, TF = 2 * L, DEC = 2 * L + 12, HEAD = 3 * L + 11, LAST = 3 * L + 16;
#define SPAN(f, t) ((((t) >= 63 ? ~0ULL : (2ULL << (t)) - 1)) & ~((1ULL << (f)) - 1))
    const unsigned long long ALL = SPAN(IO, LAST),
                             BLK = SPAN(ENC, ENC + 2 * L - 1) | SPAN(DEC, DEC + L - 1);
    range_t g[128];
    int n = 0;
    size_t cmax = 0, omax = 0, pmax = 0, xmax = ntok, persist = 2 * al(nspec);
    g[n++] = (range_t){"pr", y->pr, nspec, ALL};
    g[n++] = (range_t){"pi", y->pi, nspec, ALL};
    if (mk) {
        g[n++] = (range_t){"x0", y->enc_in[0], b * a.cin * hwp, ALL};
        persist += al(b * a.cin * hwp);
    }
    for (int l = 0; l < L; l++) {
        const size_t hw = (size_t)y->H[l] * y->W[l];
        const size_t ci = l ? a.ch[l - 1] : a.cin, co = a.ch[l];
        /* the level inputs and the bottleneck: one buffer, each live in its level only */
        if (l || !mk) {
            g[n++] = (range_t){"enc_in", y->enc_in[l], b * ci * hw,
                               SPAN(l ? ENC + 2 * l - 1 : IO, ENC + 2 * l)};
            xmax = xmax > b * ci * hw ? xmax : b * ci * hw;
        }
        cmax = cmax > (ci > co ? ci : co) * hw ? cmax : (ci > co ? ci : co) * hw;
        omax = omax > co * hw ? omax : co * hw;
    }
    g[n++] = (range_t){"bott", y->bott, ntok, SPAN(ENC + 2 * L - 1, DEC)};
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j;
        const size_t hw = (size_t)y->H[i] * y->W[i], ci = a.dec_in[j], co = a.dec_out[j];
        g[n++] =
            (range_t){"dec_cat (skip)", y->dec_cat[j], b * ci * hw, SPAN(ENC + 2 * i + 1, DEC + j)};
        persist += al(b * ci * hw);
        cmax = cmax > (ci > co ? ci : co) * hw ? cmax : (ci > co ? ci : co) * hw;
        omax = omax > co * hw ? omax : co * hw;
        pmax = pmax > (ci - a.ch[i]) * hw ? pmax : (ci - a.ch[i]) * hw;
    }
    persist += al(xmax) + al(y->n_convws);
    g[n++] = (range_t){"convws", y->convws, y->n_convws, ALL};
    if (a.nblk > 0) {
        g[n++] = (range_t){"relidx", y->relidx, (size_t)Ls * Ls, ALL};
        g[n++] = (range_t){"mask", y->mask, (size_t)y->nW * Ls * Ls, ALL};
        persist += al((size_t)Ls * Ls) + al((size_t)y->nW * Ls * Ls);
    }
    g[n++] = (range_t){"re", y->re, nspec, 1ULL << IO};
    g[n++] = (range_t){"im", y->im, nspec, 1ULL << IO};
    g[n++] = (range_t){"mag", y->mag, nspec, 1ULL << IO};
    g[n++] = (range_t){"Y", y->Y, b * cmax, BLK};
    g[n++] = (range_t){"Tb", y->Tb, b * omax, BLK};
    g[n++] = (range_t){"O", y->O, b * omax, BLK};
    g[n++] = (range_t){"P", y->P, b * pmax, SPAN(DEC, DEC + L - 1)};
    g[n++] = (range_t){"head_in", y->head_in, b * a.ch[0] * hwp, SPAN(DEC + L - 1, HEAD + 1)};
    g[n++] = (range_t){"z", y->z, b * 2 * K * S * hwp, SPAN(HEAD + 1, HEAD + 2)};
    g[n++] = (range_t){"hc", y->hc, b * S * 2 * K * y->Fs * y->T, SPAN(HEAD + 2, HEAD + 3)};
    g[n++] = (range_t){"om", y->om, nout, SPAN(HEAD + 3, HEAD + 4)};
    g[n++] = (range_t){"yr", y->yr, nout, SPAN(HEAD + 4, HEAD + 5)};
    g[n++] = (range_t){"yi", y->yi, nout, SPAN(HEAD + 4, HEAD + 5)};
    /* each block's insides: RCM by RCM inside it; their extent in the block's step */
    for (int blk = 0; blk < 2 * L; blk++) {
        const int lv = blk < L ? blk : 2 * L - 1 - blk, j = blk - L;
        const size_t px = b * y->H[lv] * y->W[lv];
        const size_t co = blk < L ? a.ch[lv] : a.dec_out[j];
        range_t q[2 * 16];
        int nq = 0;
        size_t lo = SIZE_MAX, hi = 0;
        for (int r = 0; r < R; r++) {
            q[nq++] =
                (range_t){"c1", blk < L ? y->enc_c1[lv][r] : y->dec_c1[j][r], px * co, 1ULL << r};
            if (r < R - 1)
                q[nq++] =
                    (range_t){"o", blk < L ? y->enc_o[lv][r] : y->dec_o[j][r], px * co, 3ULL << r};
        }
        for (int i = 0; i < nq; i++) {
            lo = q[i].off < lo ? q[i].off : lo;
            hi = q[i].off + q[i].n > hi ? q[i].off + q[i].n : hi;
        }
        CHECKF(disjoint(q, nq, y->work_floats, "insides"), "block %d", blk);
        g[n++] = (range_t){"insides", lo, hi - lo, 1ULL << (blk < L ? ENC + 2 * lv : DEC + j)};
    }
    /* the region's steps written out: io, the blocks (+ head_in), TFSWA, the head */
    const size_t blk = al(b * cmax) + (3 + (R > 2 ? 2 : R - 1)) * al(b * omax) + al(b * pmax) +
                       al(b * a.ch[0] * hwp);
    size_t tsv = 0;
    for (int s = 0; s < 4; s++) {
        const size_t f = tf_tblock_saved_floats(Ns[s], Lq[s], C, a.heads, a.hidden);
        tsv = tsv > f ? tsv : f;
    }
    const size_t tfs = a.nblk > 0 ? 7 * al(ntok) + al(tsv) : 0;
    size_t head = al(b * S * 2 * K * y->Fs * y->T) + 3 * al(nout);
    head = (head > blk ? head : blk) + al(b * 2 * K * S * hwp);
    size_t reg = 3 * al(nspec);
    reg = reg > blk ? reg : blk;
    reg = reg > tfs ? reg : tfs;
    reg = reg > head ? reg : head;
    CHECKF(y->work_floats == persist + reg && y->re == persist,
           "inference floats %zu vs %zu + %zu (region at %zu; io %zu, blocks %zu, TFSWA %zu, "
           "head %zu)",
           y->work_floats, persist, reg, y->re, 3 * al(nspec), blk, tfs, head);
    /* each step's extent: the blocks' buffers end with head_in, the TFSWA stack's with tsv */
    CHECKF(y->head_in + al(b * a.ch[0] * hwp) == persist + blk, "blocks end %zu vs %zu",
           y->head_in + al(b * a.ch[0] * hwp), persist + blk);
    if (a.nblk > 0)
        CHECKF(y->tsv[0][0] + al(tsv) == persist + tfs, "TFSWA end %zu vs %zu",
               y->tsv[0][0] + al(tsv), persist + tfs);
    /* the TFSWA stack, block by block */
    for (int kb = 0; kb < (a.nblk > 0 ? a.nblk : 1); kb++) {
        range_t t[160];
        memcpy(t, g, (size_t)n * sizeof *t);
        int m = n;
        if (a.nblk > 0) {
            t[m++] = (range_t){"tok[k][0]", y->tok[kb][0], ntok, 1ULL << (TF + 1)};
            if (kb + 1 < a.nblk)
                t[m++] = (range_t){"tok[k+1][0]", y->tok[kb + 1][0], ntok, 1ULL << (TF + 11)};
            t[m++] = (range_t){"tb0", y->tb[0], ntok, SPAN(TF + 1, TF + 2)};
            t[m++] = (range_t){"fsa in", y->tok[kb][1], ntok, SPAN(TF + 2, TF + 3)};
            t[m++] = (range_t){"tb1", y->tb[1], ntok, SPAN(TF + 3, TF + 10)};
            t[m++] = (range_t){"swin in", y->tok[kb][2], ntok, SPAN(TF + 4, TF + 5)};
            t[m++] = (range_t){"tb2", y->tb[2], ntok, SPAN(TF + 5, TF + 9)};
            t[m++] = (range_t){"tb3", y->tb[3], ntok, SPAN(TF + 6, TF + 10)};
            t[m++] = (range_t){"shifted swin in", y->tok[kb][3], ntok, SPAN(TF + 7, TF + 8)};
            t[m++] = (range_t){"tb4 (out)", y->tb[4], ntok, SPAN(TF + 10, TF + 11)};
            const int at[4] = {1, 3, 5, 8};
            for (int s = 0; s < 4; s++)
                t[m++] = (range_t){"tsv", y->tsv[kb][s],
                                   tf_tblock_saved_floats(Ns[s], Lq[s], C, a.heads, a.hidden),
                                   1ULL << (TF + at[s])};
        }
        CHECKF(disjoint(t, m, y->work_floats, "inference"), "TFSWA block %d", kb);
    }
#undef SPAN
    /* smaller than the training layout, which holds all of this and more */
    CHECKF(y->work_floats < yt.act_floats + yt.work_floats,
           "inference %zu floats vs training %zu + %zu", y->work_floats, yt.act_floats,
           yt.work_floats);
    printf("  inference layout (B %d, %lld samples): %.1f MiB vs training %.1f MiB\n", B,
           (long long)N, y->work_floats * 4.0 / 1048576,
           (yt.act_floats + yt.work_floats) * 4.0 / 1048576);
}

static void test_infer_layout(void) {
    tf_config c;
    tiny(&c, 2);
    check_infer_layout(&c, 2, 11025);
    c.output = TF_OUT_MASK;
    c.n_targets = 3;
    c.rcms_per_block = 3;
    check_infer_layout(&c, 3, 9000);
    c.rcms_per_block = 5;
    c.tfswa_blocks = 0;
    check_infer_layout(&c, 1, 4410);
    paper(&c);
    check_infer_layout(&c, 4, 132300);
}

/* the plan-only kernels object: every shape answers the bound; a call is an error */
static void test_bound_kernels(void) {
    tf_kernels *k = NULL;
    CHECK(tf_kernels_create_bound(&k, TF_BACKEND_CUDA, TF_DT_FP32, 12345, "plan only") == TF_OK &&
          k);
    if (!k) return;
    size_t ws = 0;
    CHECK(tf_kern_conv2d_add(k, 2, 3, 4, 5, 6, 3, 1, 1, &ws) == TF_OK && ws == 12345);
    CHECK(tf_kern_conv2d_add(k, 1, 1, 1, 1, 1, 1, 1, 0, &ws) == TF_OK && ws == 12345);
    /* bf16 arithmetic: plus the shape's bf16 operand copies, each rounded up to 256 bytes:
     * x 2*3*5*6 *2 = 360 -> 512, w 4*3*9 *2 = 216 -> 256, y 2*4*30 *2 = 480 -> 512 and, for
     * training, dw 256: 1536; forward of 1x1x1x1 k 1: three 2-byte copies -> 768 */
    tf_kernels *kb = NULL;
    CHECK(tf_kernels_create_bound(&kb, TF_BACKEND_CUDA, TF_DT_BF16, 12345, "bf16") == TF_OK && kb);
    if (kb) {
        CHECK(tf_kernels_compute(kb) == TF_DT_BF16);
        CHECK(tf_kern_conv2d_add(kb, 2, 3, 4, 5, 6, 3, 1, 1, &ws) == TF_OK && ws == 12345 + 1536);
        CHECK(tf_kern_conv2d_add(kb, 2, 3, 4, 5, 6, 3, 1, 0, &ws) == TF_OK && ws == 12345 + 1280);
        CHECK(tf_kern_conv2d_add(kb, 1, 1, 1, 1, 1, 1, 1, 0, &ws) == TF_OK && ws == 12345 + 768);
        tf_kernels_free(kb);
    }
    /* a CPU backend's bound ignores the compute dtype (its copies are its own affair) */
    CHECK(tf_kernels_create_bound(&kb, TF_BACKEND_DNNL, TF_DT_BF16, 100, "cpu") == TF_OK && kb);
    if (kb) {
        CHECK(tf_kern_conv2d_add(kb, 2, 3, 4, 5, 6, 3, 1, 1, &ws) == TF_OK && ws == 100);
        tf_kernels_free(kb);
    }
    CHECK(tf_kernels_backend(k) == TF_BACKEND_CUDA && !strcmp(tf_kernels_describe(k), "plan only"));
    CHECK(tf_kernels_status(k) == TF_OK);
    float x[4] = {0}, w[4] = {0}, y[4] = {0};
    tf_kern_conv2d_forward(k, y, x, w, NULL, 1, 1, 1, 2, 2, 1, NULL, 0);
    CHECK(tf_kernels_status(k) == TF_EINTERNAL && strstr(tf_errmsg(), "plan-only"));
    tf_kern_conv2d_backward(k, y, w, NULL, x, x, w, 1, 1, 1, 2, 2, 1, NULL, 0, 1);
    CHECK(tf_kernels_status(k) == TF_EINTERNAL);
    CHECK(tf_kernels_status(k) == TF_OK); /* cleared */
    tf_kernels_free(k);
    tf_err_clear();
}

static void test_max_batch(void) {
    const tf_device d = {TF_DEVICE_CUDA, 1};
    tf_config c;
    tiny(&c, 1);
    int prev = -1;
    const size_t MiB = 1 << 20;
    const size_t budgets[] = {100 * MiB,  400 * MiB,  500 * MiB, 700 * MiB,
                              1024 * MiB, 1500 * MiB, 3000 * MiB};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        int b = -1;
        CHECK(tf_device_plan_max_batch(&c, &d, NULL, budgets[i], &b) == TF_OK);
        CHECKF(b >= prev, "budget %zu MiB: batch %d after %d", budgets[i] / MiB, b, prev);
        prev = b;
        tf_config k = c;
        tf_device_plan p;
        if (b > 0) {
            k.batch_size = b;
            CHECK(tf_device_plan_bytes(&p, &k, &d, NULL) == TF_OK);
            CHECKF(p.total <= budgets[i], "batch %d: %zu > %zu", b, p.total, budgets[i]);
            /* tight: a budget of exactly plan(b) gives b, one byte less gives b - 1 */
            int e = -1;
            CHECK(tf_device_plan_max_batch(&c, &d, NULL, p.total, &e) == TF_OK && e == b);
            CHECK(tf_device_plan_max_batch(&c, &d, NULL, p.total - 1, &e) == TF_OK && e == b - 1);
        }
        k.batch_size = b + 1;
        CHECK(tf_device_plan_bytes(&p, &k, &d, NULL) == TF_OK);
        CHECKF(p.total > budgets[i], "batch %d + 1: %zu <= %zu", b, p.total, budgets[i]);
    }
    CHECKF(prev > 1, "3 GiB: batch %d", prev);
    /* the whole range [1, 4096]: a budget of exactly plan(b) gives b */
    const int big[] = {100, 777, 4096};
    for (int i = 0; i < 3; i++) {
        tf_config k = c;
        k.batch_size = big[i];
        tf_device_plan p;
        int e = -1;
        CHECK(tf_device_plan_bytes(&p, &k, &d, NULL) == TF_OK);
        CHECKF(tf_device_plan_max_batch(&c, &d, NULL, p.total, &e) == TF_OK && e == big[i],
               "budget plan(%d): batch %d", big[i], e);
    }
    int b = -1; /* 100 MiB: not even the 256 MiB conv workspace bound fits */
    CHECK(tf_device_plan_max_batch(&c, &d, NULL, 100 * MiB, &b) == TF_OK && b == 0);
}

static char *run(const char *args, int *status) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1 < /dev/null", tfswa, args);
    char *out = test_run_capture(cmd, status);
    CHECKF(out != NULL, "%s", cmd);
    return out;
}

static const char *FLAGS = "--preset tiny --segment_seconds 0.5 --num_workers 0 --num_threads 2 "
                           "--memory 1GiB";

static double num(const cJSON *o, const char *k) {
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static void test_cli_json(void) {
    if (!no_gpu(2)) return; /* a GPU here: chosen sizes (tools/gpu_check.sh checks those) */
    char args[1024];
    snprintf(args, sizeof args, "plan %s --device cuda:2 --json --loss mrstft", FLAGS);
    int st;
    char *out = run(args, &st);
    if (!out) return;
    cJSON *o = cJSON_Parse(out);
    CHECKF(st == 0 && o, "exit %d:\n%s", st, out);
    const cJSON *dv = cJSON_GetObjectItem(o, "device"), *r = cJSON_GetObjectItem(o, "device_bytes");
    const cJSON *h = cJSON_GetObjectItem(o, "host_bytes"),
                *mx = cJSON_GetObjectItem(o, "largest_batch");
    CHECK(cJSON_IsObject(dv) && cJSON_IsObject(r) && cJSON_IsObject(h) && cJSON_IsArray(mx));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(dv, "kind")) &&
          !strcmp(cJSON_GetObjectItem(dv, "kind")->valuestring, "cuda"));
    CHECK(num(dv, "index") == 2);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(dv, "name")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(dv, "ws_source")) &&
          !strcmp(cJSON_GetObjectItem(dv, "ws_source")->valuestring, "upper_bound"));
    CHECK(cJSON_IsBool(cJSON_GetObjectItem(o, "training_implemented")) &&
          cJSON_IsTrue(cJSON_GetObjectItem(o, "training_implemented")) == tf_device_cuda_built());
    /* the numbers are the library's, key by key */
    tf_config c;
    tiny(&c, 4); /* the tiny preset's own batch_size */
    c.loss = TF_LOSS_MRSTFT;
    c.batch_size = (int)num(o, "batch_size");
    const tf_device d = {TF_DEVICE_CUDA, 2};
    tf_device_plan p;
    CHECK(tf_device_plan_bytes(&p, &c, &d, NULL) == TF_OK);
    CHECKF(num(r, "total") == (double)p.total && num(o, "plan_bytes") == (double)p.total,
           "total %zu", p.total);
    const struct {
        const char *k;
        size_t v;
    } dk[] = {{"parameters", p.params},     {"gradients", p.grads},
              {"bn_buffers", p.buffers},    {"activations", p.activations},
              {"workspace", p.workspace},   {"conv_workspace", p.conv_workspace},
              {"trainer", p.trainer},       {"optimizer", p.optimizer},
              {"batches", p.batches},       {"loss", p.loss},
              {"cufft", p.cufft},           {"cufft_model", p.cufft_model},
              {"cufft_loss", p.cufft_loss}, {"cufft_plans", p.cufft_plans},
              {"cublas", p.cublas},         {"total", p.total}},
      hk[] = {{"loader", p.host_loader},
              {"validation", p.host_validation},
              {"checkpoint_staging", p.host_staging},
              {"model", p.host_model},
              {"total", p.host_total}};
    for (size_t i = 0; i < sizeof dk / sizeof dk[0]; i++)
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItem(r, dk[i].k)) &&
                   num(r, dk[i].k) == (double)dk[i].v,
               "device_bytes.%s %.0f vs %zu", dk[i].k, num(r, dk[i].k), dk[i].v);
    for (size_t i = 0; i < sizeof hk / sizeof hk[0]; i++)
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItem(h, hk[i].k)) &&
                   num(h, hk[i].k) == (double)hk[i].v,
               "host_bytes.%s %.0f vs %zu", hk[i].k, num(h, hk[i].k), hk[i].v);
    CHECK(p.cufft_loss > 0 && num(r, "conv_workspace") == (double)TF_KERN_CUDA_WS_LIMIT);
    const cJSON *sp = cJSON_GetObjectItem(o, "separate_device_bytes");
    CHECKF(num(sp, "total") == (double)p.sep_total && p.sep_total > 0 &&
               num(sp, "workspace") == (double)p.sep_workspace &&
               num(sp, "batch_size") == TF_DEVPLAN_SEP_BATCH,
           "separate_device_bytes.total %.0f vs %zu", num(sp, "total"), p.sep_total);
    CHECK(cJSON_GetArraySize(mx) == 4);
    for (int v = 0; v < 4 && cJSON_GetArraySize(mx) == 4; v++) {
        const cJSON *e = cJSON_GetArrayItem(mx, v);
        const cJSON *imp = cJSON_GetObjectItem(e, "implemented"),
                    *bs = cJSON_GetObjectItem(e, "batch_size");
        CHECKF(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "activations")),
                       v & 2 ? "bf16" : "fp32") &&
                   !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "checkpointing")),
                           v & 1 ? "blocks" : "off"),
               "variant %d", v);
        int b = -1; /* fp32 and bf16, checkpointing off and blocks */
        tf_config k = c;
        tf_device_plan_variant(&k, v);
        CHECK(tf_device_plan_max_batch(&k, &d, NULL, (size_t)1 << 30, &b) == TF_OK);
        CHECKF(cJSON_IsTrue(imp) && cJSON_IsNumber(bs) && cJSON_GetNumberValue(bs) == b && b > 0,
               "variant %d: %d", v, b);
    }
    cJSON_Delete(o);
    free(out);
}

static void test_cli_text(void) {
    char args[1024];
    int st;
    snprintf(args, sizeof args, "plan %s --device cuda", FLAGS);
    char *out = run(args, &st);
    if (out) {
        CHECKF(st == 0 && strstr(out, "device memory plan (cuda:0") &&
                   !strstr(out, "plan only: training on CUDA is not implemented yet") &&
                   strstr(out, "largest batch_size within the budget on the device") &&
                   strstr(out, "  fp32 activations, checkpointing off   : batch_size ") &&
                   strstr(out, "  fp32 activations, checkpointing blocks: batch_size ") &&
                   strstr(out, "  bf16 activations, checkpointing off   : batch_size ") &&
                   strstr(out, "  bf16 activations, checkpointing blocks: batch_size ") &&
                   strstr(out, "  trainer (one block) ") &&
                   strstr(out, "  host model (inference; checkpoints) ") &&
                   strstr(out, "loader batches") && strstr(out, "total (device)") &&
                   strstr(out, "  separate --batch_size 1 (device) "),
               "exit %d:\n%s", st, out);
        if (no_gpu(0))
            CHECKF(strstr(out, "cuDNN workspace: upper bound (no GPU: 256 MiB per shape limit)"),
                   "%s", out);
    }
    free(out);
    /* use_amp: bf16 storage and arithmetic, the plan's header says so */
    snprintf(args, sizeof args, "plan %s --device cuda:1 --use_amp true", FLAGS);
    out = run(args, &st);
    CHECKF(out && st == 0 &&
               strstr(out, "device memory plan (cuda:1): batch 4 x 0.50 s (22050 frames), bf16 "
                           "activations, bf16 arithmetic, checkpointing off\n"),
           "exit %d: %s", st, out ? out : "");
    free(out);
    /* --device cpu: the CPU plan, as without --device */
    snprintf(args, sizeof args, "plan %s --device cpu", FLAGS);
    char *a = run(args, &st);
    int st2;
    snprintf(args, sizeof args, "plan %s", FLAGS);
    char *b = run(args, &st2);
    CHECKF(a && b && st == 0 && st2 == 0 && !strcmp(a, b) && strstr(a, "memory plan: batch") &&
               !strstr(a, "device memory plan"),
           "cpu:\n%s\nnone:\n%s", a ? a : "", b ? b : "");
    free(a), free(b);
    /* the CPU-only flags */
    snprintf(args, sizeof args, "plan %s --device cuda:1 --measure", FLAGS);
    out = run(args, &st);
    CHECKF(out && st == 2 &&
               !strcmp(out, "tfswa: --device cuda:1: --measure, --write-config and --plot are for "
                            "--device cpu\n"),
           "exit %d: %s", st, out ? out : "");
    free(out);
    /* amp_dtype fp16: --use_amp's arithmetic on the card (the copies as bf16's); refused on
     * the CPU and without --use_amp, one line naming the key, exit 2 */
    snprintf(args, sizeof args, "plan %s --device cuda:1 --use_amp --amp_dtype fp16", FLAGS);
    out = run(args, &st);
    CHECKF(out && st == 0 &&
               strstr(out, "bf16 activations, fp16 arithmetic, checkpointing off\n") &&
               strstr(out, "of which cuDNN + 16-bit copies (upper bound)"),
           "exit %d: %s", st, out ? out : "");
    free(out);
    static const char *const refused[][2] = {
        {"--use_amp --amp_dtype fp16",
         "tfswa: key 'amp_dtype' fp16 runs on a CUDA device only (--device cuda); on the CPU "
         "--use_amp computes in bf16 or fp32\n"},
        {"--device cuda:1 --amp_dtype fp16",
         "tfswa: key 'amp_dtype' fp16 sets the arithmetic of --use_amp: add --use_amp (or "
         "compute_dtype bf16)\n"},
        {"--device cuda:1 --use_amp --amp_dtype fp8",
         "tfswa: flag --amp_dtype: 'fp8' is not one of: bf16, fp16\n"}};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "plan %s %s", FLAGS, refused[i][0]);
        out = run(args, &st);
        CHECKF(out && st == 2 && !strcmp(out, refused[i][1]), "%s: exit %d: %s", refused[i][0], st,
               out ? out : "");
        free(out);
    }
}

int main(void) {
    if (test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    RUN(test_roles_vs_dlayout);
    RUN(test_variants);
    RUN(test_bf16_conv_copies);
    RUN(test_checkpointing_layout);
    RUN(test_infer_layout);
    RUN(test_bound_kernels);
    RUN(test_max_batch);
    RUN(test_cli_json);
    RUN(test_cli_text);
    return TEST_END();
}
