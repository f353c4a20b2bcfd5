/* tfswa bench step [--json] [--presets tiny,small] [--variant fp32/off] [--seconds S]
 *                  [--batch B] [--threads N] [--rounds R] [--iters K] [--key value]...
 *
 * Time of one full optimizer step of TFSWA-ResUNet, per training sample: the trainer's own
 * step function (train/step.h tf_train_step, the one the training loop calls): zero_grad,
 * train-mode forward, the configured loss (L1 on the waveform by default) against a fixed
 * random target, backward, global gradient norm, clipping (grad_clip), Adam/AdamW update
 * (learning_rate, weight_decay, optimizer), EMA if on. One micro-batch per step
 * (gradient_accumulation_steps is set to 1). Not timed: the data loader (the batch is
 * fixed), validation, checkpoints, logging. results.*.loss_step1 / loss_step2: the losses
 * of the first two steps of round 0 (tests compare them with the trainer's).
 *
 * Variants: every preset x activations fp32|bf16 x checkpointing off|blocks (8 for the
 * default presets), or the one --variant DTYPE/CKPT per preset. They are measured
 * ALTERNATELY: R rounds; in each round every variant in turn gets a fresh model (and
 * fresh Adam moments), one untimed warm-up step, then K timed steps, and is freed again.
 * So drift of a shared machine hits every variant alike, and the peak RSS measured for a
 * variant (VmHWM reset through /proc/self/clear_refs before its turn) is its own. (So with
 * several variants, an outside ru_maxrss, e.g. /usr/bin/time -v, sees only the peak since
 * the last reset; results.peak_rss_bytes is the process peak over the whole run.)
 * Ratios between variants (results.ratios) are taken from the same run.
 *
 * Other config keys apply as in `tfswa train` (e.g. --targets vocals, --stft.hop_length
 * 441, --optimizer adamw); --preset, --checkpointing and --activation_dtype are chosen by
 * --presets and --variant instead. */
#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "infer/precision.h"
#include "util/sysmem.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/step.h"
#include "train/train.h"
#include "util/config.h"
#include "util/device.h"
#include "util/rng.h"
#if TFSWA_CUDA
#include <cuda_runtime_api.h>

#include "train/step_cuda.h"
#include "dsp/stft.h"
#endif

#define MAX_PRESETS  8
#define MAX_VARIANTS (4 * MAX_PRESETS)

/* Reset the peak RSS (VmHWM) of this process; 0 if the kernel does not allow it. */
static int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

typedef struct {
    int preset; /* index into the preset list */
    tf_dtype dt;
    tf_ckpt_mode ck;
    char name[TF_NAME_MAX + 16]; /* "tiny/fp32/off" */
    tf_model_sizes plan;
    double *ms;      /* (R * K) timed steps, round-major */
    double loss1;    /* loss of the first (warm-up) step of round 0 */
    double loss2;    /* loss of the second step of round 0 (after one update) */
    double peak_rss; /* bytes, max over rounds of the VmHWM of its turn */
    int nonfinite;   /* steps whose loss or gradient norm was not finite */
    double dev_peak; /* --device cuda: device bytes in use (cudaMemGetInfo) above the
                        count before the turn, max over its steps */
    double dev_plan; /* --device cuda: bytes the device trainer allocated */
} variant_t;

typedef struct {
    float *mix;    /* (B, 2, N) */
    float *target; /* (B, S, 2, N) */
    int B;
    int64_t N;
} io_t;

/* The fixed micro-batch: every call hands out the same mixture and targets. */
static tf_status fixed_batch(void *ctx, tf_micro_batch *mb) {
    const io_t *io = ctx;
    mb->mix = io->mix, mb->target = io->target, mb->B = io->B, mb->N = io->N;
    return TF_OK;
}

/* One variant's turn in a round: fresh model and optimizer state, a warm-up step, K timed
 * steps, each the trainer's own tf_train_step (one rank). ms (K,) receives the step times
 * in milliseconds; loss1 and loss2 the losses of the first two steps. */
#if TFSWA_CUDA
/* run_turn on the current CUDA device: the device trainer (src/train/step_cuda.c) with the
 * initial weights of a host model of the same seed */
static tf_status run_turn_cuda(const tf_config *c, io_t *io, int K, double *ms, double *loss1,
                               double *loss2, int *nonfinite, variant_t *v) {
    static const tf_dist one = TF_DIST_SINGLE;
    const tf_model_config mc = tf_train_model_config(c);
    tf_arch a;
    TF_TRY(tf_arch_from_config(&a, &mc));
    tf_model *host = NULL;
    tf_kernels *k = NULL;
    tf_stft *fs = NULL;
    tf_dtrainer *t = NULL;
    const double used0 = bench_device_bytes_in_use();
    tf_status st = tf_model_create_mode(&host, &mc, 1, io->N, 1, TF_MODEL_INFER);
    if (!st) st = tf_kernels_create(&k, TF_BACKEND_CUDA, tf_config_device_compute(c), 1);
    if (!st) st = tf_stft_create(&fs, a.n_fft, a.hop);
    if (!st)
        st = tf_dtrainer_open(&t, c, &one, &a, io->N, k, fs, tf_model_params(host),
                              tf_model_buffers(host));
    if (!st) v->dev_plan = (double)tf_dtrainer_device_bytes(t);
    int64_t updates = 0;
    tf_step_result r;
    if (!st) st = tf_dtrainer_step(t, 0, &updates, fixed_batch, io, &r);
    if (!st) *loss1 = r.loss, *nonfinite += !r.applied;
    for (int i = 0; i < K && st == TF_OK; i++) {
        double t0 = tf_now_s();
        st = tf_dtrainer_step(t, 1 + i, &updates, fixed_batch, io, &r); /* ends synchronised */
        ms[i] = 1e3 * (tf_now_s() - t0);
        const double used = bench_device_bytes_in_use() - used0;
        if (used > v->dev_peak) v->dev_peak = used;
        if (!st) *nonfinite += !r.applied;
        if (!st && i == 0) *loss2 = r.loss;
    }
    tf_dtrainer_close(t);
    if (fs) tf_stft_destroy(fs);
    tf_kernels_free(k);
    tf_model_free(host);
    return st;
}
#endif

static tf_status run_turn(const tf_config *c, io_t *io, int threads, int K, double *ms,
                          double *loss1, double *loss2, int *nonfinite) {
    static const tf_dist one = TF_DIST_SINGLE;
    tf_model *mdl = NULL;
    tf_trainer *tr = NULL;
    const tf_model_config mc = tf_train_model_config(c);
    TF_TRY(tf_model_create(&mdl, &mc, io->B, io->N, threads));
    tf_status st = tf_trainer_open(&tr, c, &one, mdl, io->N);
    int64_t updates = 0;
    tf_step_result r;
    if (!st) st = tf_train_step(tr, 0, &updates, fixed_batch, io, &r);
    if (!st) *loss1 = r.loss, *nonfinite += !r.applied;
    for (int k = 0; k < K && st == TF_OK; k++) {
        double t0 = tf_now_s();
        st = tf_train_step(tr, 1 + k, &updates, fixed_batch, io, &r);
        ms[k] = 1e3 * (tf_now_s() - t0);
        if (!st) *nonfinite += !r.applied;
        if (!st && k == 0) *loss2 = r.loss;
    }
    tf_trainer_close(tr);
    tf_model_free(mdl);
    return st;
}

static cJSON *bytes_json(const tf_model_sizes *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "params", (double)p->params);
    cJSON_AddNumberToObject(o, "grads", (double)p->grads);
    cJSON_AddNumberToObject(o, "buffers", (double)p->buffers);
    cJSON_AddNumberToObject(o, "activations", (double)p->activations);
    cJSON_AddNumberToObject(o, "workspace", (double)p->workspace);
    cJSON_AddNumberToObject(o, "total", (double)p->total);
    cJSON_AddNumberToObject(o, "adam_moments", 2.0 * (double)p->params); /* not in total */
    return o;
}

static const char *ck_name(tf_ckpt_mode k) {
    return k == TF_CKPT_BLOCKS ? "blocks" : "off";
}

/* "fp32/off" -> dtype, checkpointing */
static tf_status parse_variant(const char *s, tf_dtype *dt, tf_ckpt_mode *ck) {
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 2; k++) {
            char buf[32];
            snprintf(buf, sizeof buf, "%s/%s", tf_dtype_name((tf_dtype)d),
                     ck_name((tf_ckpt_mode)k));
            if (!strcmp(s, buf)) {
                *dt = (tf_dtype)d, *ck = (tf_ckpt_mode)k;
                return TF_OK;
            }
        }
    return tf_err(TF_EUSER,
                  "--variant '%s': expected fp32/off, fp32/blocks, bf16/off or bf16/blocks", s);
}

/* "tiny,small" -> names (each at most TF_NAME_MAX - 1 characters) */
static tf_status parse_presets(const char *s, char names[][TF_NAME_MAX], int *n) {
    *n = 0;
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= TF_NAME_MAX)
            return tf_err(TF_EUSER, "--presets '%s': expected names separated by commas", s);
        if (*n >= MAX_PRESETS)
            return tf_err(TF_EUSER, "--presets '%s': at most %d presets", s, MAX_PRESETS);
        memcpy(names[*n], p, len);
        names[*n][len] = 0;
        for (int i = 0; i < *n; i++)
            if (!strcmp(names[i], names[*n]))
                return tf_err(TF_EUSER, "--presets '%s': '%s' given twice", s, names[i]);
        (*n)++;
        if (!p[len]) return TF_OK;
        p += len + 1;
    }
}

typedef struct {
    int json, np, nv, B, R, K, threads;
    double seconds;
    int64_t N;
    char presets[MAX_PRESETS][TF_NAME_MAX];
    tf_config cfg[MAX_PRESETS];
    size_t nparams[MAX_PRESETS];
    variant_t v[MAX_VARIANTS];
    double peak_rss; /* of the process, over the whole run */
    int rss_reset;   /* per-variant peaks are meaningful */
    int cuda;        /* --device cuda[:N]: the steps run on the device trainer */
    char device[32]; /* "cpu" | "cuda:N" */
} bench_t;

/* ratio a/b of two variants' numbers, NULL-safe */
static void add_ratio(cJSON *o, const char *key, double a, double b) {
    if (b > 0 && isfinite(a / b)) cJSON_AddNumberToObject(o, key, a / b);
}

static int find_variant(const bench_t *b, int p, tf_dtype dt, tf_ckpt_mode ck) {
    for (int i = 0; i < b->nv; i++)
        if (b->v[i].preset == p && b->v[i].dt == dt && b->v[i].ck == ck) return i;
    return -1;
}

static cJSON *report_json(const bench_t *b) {
    const int RK = b->R * b->K;
    cJSON *cfg, *res, *root = bench_json_open("step", b->threads, &cfg, &res);
    if (!root) return NULL;
    const tf_config *c0 = &b->cfg[0];
    cJSON *pr = cJSON_AddArrayToObject(cfg, "presets");
    for (int p = 0; p < b->np; p++) cJSON_AddItemToArray(pr, cJSON_CreateString(b->presets[p]));
    cJSON *vn = cJSON_AddArrayToObject(cfg, "variants");
    for (int i = 0; i < b->nv; i++) cJSON_AddItemToArray(vn, cJSON_CreateString(b->v[i].name));
    cJSON_AddNumberToObject(cfg, "seconds", b->seconds);
    cJSON_AddNumberToObject(cfg, "frames", (double)b->N);
    cJSON_AddNumberToObject(cfg, "batch", b->B);
    cJSON_AddNumberToObject(cfg, "threads", b->threads);
    cJSON_AddStringToObject(cfg, "device", b->device);
    cJSON_AddNumberToObject(cfg, "rounds", b->R);
    cJSON_AddNumberToObject(cfg, "iters", b->K);
    cJSON_AddNumberToObject(cfg, "targets", c0->n_targets);
    cJSON_AddNumberToObject(cfg, "sample_rate", c0->sample_rate);
    cJSON_AddNumberToObject(cfg, "n_fft", c0->stft_window_size);
    cJSON_AddNumberToObject(cfg, "hop_length", c0->stft_hop_length);
    cJSON_AddStringToObject(cfg, "optimizer", c0->optimizer == TF_OPT_ADAMW ? "adamw" : "adam");
    cJSON_AddNumberToObject(cfg, "learning_rate", c0->learning_rate);
    cJSON_AddNumberToObject(cfg, "grad_clip", c0->grad_clip);
    cJSON_AddStringToObject(cfg, "loss", c0->loss == TF_LOSS_MRSTFT ? "mrstft" : "l1");
    cJSON_AddStringToObject(cfg, "backend", tf_backend_name(c0->backend));
    cJSON_AddStringToObject(cfg, "compute_dtype",
                            c0->compute_dtype == TF_DT_BF16 ? "bf16" : "fp32");
    cJSON_AddStringToObject(cfg, "amp_dtype", c0->amp_dtype ? "fp16" : "bf16");
    cJSON *pp = cJSON_AddObjectToObject(cfg, "params");
    for (int p = 0; p < b->np; p++)
        cJSON_AddNumberToObject(pp, b->presets[p], (double)b->nparams[p]);
    cJSON *env = cJSON_AddObjectToObject(cfg, "env");
    static const char *const ev[] = {"OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "OMP_NUM_THREADS",
                                     "OPENBLAS_NUM_THREADS"};
    for (int i = 0; i < 4; i++) {
        const char *s = getenv(ev[i]);
        if (s && *s) cJSON_AddStringToObject(env, ev[i], s);
    }

    for (int i = 0; i < b->nv; i++) {
        const variant_t *v = &b->v[i];
        const double med = bench_median(v->ms, RK), mn = bench_min(v->ms, RK);
        cJSON *o = cJSON_AddObjectToObject(res, v->name);
        cJSON_AddNumberToObject(o, "ms_per_step", med);
        cJSON_AddNumberToObject(o, "ms_per_step_min", mn);
        cJSON_AddNumberToObject(o, "ms_per_sample", med / b->B);
        cJSON_AddNumberToObject(o, "ms_per_sample_min", mn / b->B);
        cJSON_AddNumberToObject(o, "samples_per_s", 1e3 * b->B / med);
        cJSON_AddNumberToObject(o, "samples_per_s_best", 1e3 * b->B / mn);
        cJSON_AddItemToObject(o, "ms_per_step_all", cJSON_CreateDoubleArray(v->ms, RK));
        cJSON_AddNumberToObject(o, "loss_step1", v->loss1);
        cJSON_AddNumberToObject(o, "loss_step2", v->loss2);
        cJSON_AddNumberToObject(o, "nonfinite_steps", v->nonfinite);
        cJSON_AddItemToObject(o, "bytes", bytes_json(&v->plan));
        cJSON_AddStringToObject(o, "arithmetic", v->plan.arithmetic);
        if (b->rss_reset)
            cJSON_AddNumberToObject(o, "peak_rss_bytes", v->peak_rss);
        else
            cJSON_AddNullToObject(o, "peak_rss_bytes");
        if (b->cuda) {
            cJSON_AddNumberToObject(o, "device_peak_bytes", v->dev_peak);
            cJSON_AddNumberToObject(o, "device_plan_bytes", v->dev_plan);
        }
    }
    cJSON_AddNumberToObject(res, "peak_rss_bytes", b->peak_rss);
    cJSON *ra = cJSON_AddObjectToObject(res, "ratios");
    for (int p = 0; p < b->np; p++) {
        const int off = find_variant(b, p, TF_DT_FP32, TF_CKPT_OFF);
        const int blk = find_variant(b, p, TF_DT_FP32, TF_CKPT_BLOCKS);
        const int bf = find_variant(b, p, TF_DT_BF16, TF_CKPT_OFF);
        if (off < 0 || (blk < 0 && bf < 0)) continue;
        cJSON *o = cJSON_AddObjectToObject(ra, b->presets[p]);
        const variant_t *vo = &b->v[off];
        const double mo = bench_median(vo->ms, RK), no = bench_min(vo->ms, RK);
        if (blk >= 0) {
            const variant_t *vb = &b->v[blk];
            add_ratio(o, "checkpointing_time", bench_median(vb->ms, RK), mo);
            add_ratio(o, "checkpointing_time_min", bench_min(vb->ms, RK), no);
            add_ratio(o, "checkpointing_bytes", (double)vb->plan.total, (double)vo->plan.total);
            add_ratio(o, "checkpointing_activation_bytes", (double)vb->plan.activations,
                      (double)vo->plan.activations);
            if (b->rss_reset) add_ratio(o, "checkpointing_peak_rss", vb->peak_rss, vo->peak_rss);
        }
        if (bf >= 0) {
            const variant_t *vb = &b->v[bf];
            add_ratio(o, "bf16_time", bench_median(vb->ms, RK), mo);
            add_ratio(o, "bf16_time_min", bench_min(vb->ms, RK), no);
            add_ratio(o, "bf16_bytes", (double)vb->plan.total, (double)vo->plan.total);
            add_ratio(o, "bf16_activation_bytes", (double)vb->plan.activations,
                      (double)vo->plan.activations);
            if (b->rss_reset) add_ratio(o, "bf16_peak_rss", vb->peak_rss, vo->peak_rss);
        }
    }
    return root;
}

static void report_text(const bench_t *b) {
    const int RK = b->R * b->K;
    char machine[512];
    bench_machine(machine, sizeof machine, b->threads);
    printf("bench step: batch %d x %.2f s, %d rounds x %d steps per variant, %s\n", b->B,
           b->seconds, b->R, b->K, machine);
    printf("  %-20s %10s %10s %10s %9s %12s %10s %10s\n", "variant", "ms/step", "min", "ms/sample",
           "sample/s", "act. MiB", "plan MiB", "peak MiB");
    for (int i = 0; i < b->nv; i++) {
        const variant_t *v = &b->v[i];
        const double med = bench_median(v->ms, RK), mn = bench_min(v->ms, RK);
        printf("  %-20s %10.1f %10.1f %10.1f %9.3f %12.1f %10.1f %10.1f\n", v->name, med, mn,
               med / b->B, 1e3 * b->B / med, v->plan.activations / 1048576.0,
               v->plan.total / 1048576.0, b->rss_reset ? v->peak_rss / 1048576.0 : NAN);
    }
    printf("  peak RSS of the process %.1f MiB\n", b->peak_rss / 1048576.0);
    for (int i = 0; b->cuda && i < b->nv; i++)
        printf("  %s on %s: %.1f MiB of device memory in use at the peak, %.1f MiB allocated "
               "by the trainer\n",
               b->v[i].name, b->device, b->v[i].dev_peak / 1048576.0, b->v[i].dev_plan / 1048576.0);
    for (int p = 0; p < b->np; p++) {
        const int off = find_variant(b, p, TF_DT_FP32, TF_CKPT_OFF);
        const int blk = find_variant(b, p, TF_DT_FP32, TF_CKPT_BLOCKS);
        const int bf = find_variant(b, p, TF_DT_BF16, TF_CKPT_OFF);
        if (off < 0) continue;
        const double no = bench_min(b->v[off].ms, RK);
        const double to = (double)b->v[off].plan.total;
        if (blk >= 0)
            printf("  %s: checkpointing blocks/off: time %.3f (min), plan bytes %.3f\n",
                   b->presets[p], bench_min(b->v[blk].ms, RK) / no, b->v[blk].plan.total / to);
        if (bf >= 0)
            printf("  %s: bf16/fp32 activations:     time %.3f (min), plan bytes %.3f\n",
                   b->presets[p], bench_min(b->v[bf].ms, RK) / no, b->v[bf].plan.total / to);
    }
}

/* Random mixture and target, fixed seed. */
static tf_status make_io(io_t *io, int B, int S, int64_t N) {
    const size_t nin = (size_t)B * 2 * (size_t)N, nout = (size_t)B * S * 2 * (size_t)N;
    io->mix = tf_malloc(nin * sizeof(float), "bench input");
    io->target = tf_malloc(nout * sizeof(float), "bench target");
    io->B = B, io->N = N;
    if (!io->mix || !io->target) return TF_EINTERNAL;
    tf_rng r;
    tf_rng_seed(&r, 0x5eed, 1, 0, 0);
    for (size_t i = 0; i < nin; i++) io->mix[i] = (float)tf_rng_range(&r, -0.25, 0.25);
    tf_rng_seed(&r, 0x5eed, 2, 0, 0);
    for (size_t i = 0; i < nout; i++) io->target[i] = (float)tf_rng_range(&r, -0.1, 0.1);
    return TF_OK;
}

static void free_io(io_t *io) {
    free(io->mix);
    free(io->target);
}

static tf_status run_bench(bench_t *b) {
    io_t io = {0};
    tf_status st = TF_OK;
    int S = 0;
    for (int p = 0; p < b->np; p++) S = b->cfg[p].n_targets > S ? b->cfg[p].n_targets : S;
    if ((st = make_io(&io, b->B, S, b->N)) != TF_OK) goto done;
    for (int i = 0; i < b->nv; i++) {
        b->v[i].ms = tf_calloc((size_t)b->R * b->K, sizeof(double), "bench timings");
        if (!b->v[i].ms) {
            st = TF_EINTERNAL;
            goto done;
        }
    }
    b->rss_reset = 1;
    b->peak_rss = (double)tf_peak_rss_bytes();
    for (int r = 0; r < b->R && st == TF_OK; r++)
        for (int i = 0; i < b->nv && st == TF_OK; i++) {
            variant_t *v = &b->v[i];
            tf_config c = b->cfg[v->preset];
            c.activation_dtype = v->dt;
            c.checkpointing = v->ck;
            const double before = (double)tf_peak_rss_bytes();
            b->peak_rss = before > b->peak_rss ? before : b->peak_rss;
            /* one variant: nothing to separate, and external tools (time -v) keep a true
             * ru_maxrss, which a reset would lower to the last turn's peak */
            if (b->nv > 1 && !reset_peak_rss()) b->rss_reset = 0;
            double loss1 = NAN, loss2 = NAN;
#if TFSWA_CUDA
            if (b->cuda)
                st = run_turn_cuda(&c, &io, b->K, v->ms + (size_t)r * b->K, &loss1, &loss2,
                                   &v->nonfinite, v);
            else
#endif
                st = run_turn(&c, &io, b->threads, b->K, v->ms + (size_t)r * b->K, &loss1, &loss2,
                              &v->nonfinite);
            if (st != TF_OK) {
                st = tf_err_ctx(st, "bench step %s", v->name);
                break;
            }
            if (r == 0) v->loss1 = loss1, v->loss2 = loss2;
            const double peak = (double)tf_peak_rss_bytes();
            v->peak_rss = peak > v->peak_rss ? peak : v->peak_rss;
            b->peak_rss = peak > b->peak_rss ? peak : b->peak_rss;
        }
    if (st != TF_OK) goto done;
    if (b->json) {
        if (bench_json_emit(report_json(b)))
            st = tf_err(TF_EINTERNAL, "bench step: out of memory for the JSON report");
    } else {
        report_text(b);
    }
done:
    for (int i = 0; i < b->nv; i++) free(b->v[i].ms);
    free_io(&io);
    return st;
}

static const char USAGE[] =
    "usage: tfswa bench step [--json] [--presets tiny,small] [--variant DTYPE/CKPT]\n"
    "                        [--seconds 2] [--batch 2] [--threads 0] [--rounds 2] [--iters 2]\n"
    "                        [--key value]...\n"
    "Time one optimizer step (the trainer's step function) per variant: activations\n"
    "fp32|bf16 x checkpointing off|blocks, measured alternately; peak RSS per variant.\n"
    "--device cuda[:N] (CUDA builds): the device trainer's step (fp32/off unless --variant;\n"
    "bf16: bf16 activation storage; add --compute_dtype bf16 for --use_amp's bf16\n"
    "convolutions and GEMMs), with the device bytes in use\n"
    "(cudaMemGetInfo, peak over the steps) and allocated.\n";

int bench_step(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    static const char *const owned[] = {"preset", "checkpointing", "activation_dtype", "use_amp",
                                        "use_checkpointing"};
    for (int i = 0; i < 5; i++) {
        cli_args probe = a; /* present in any form: --k v, --k=v, --k, --no_k */
        if (cli_flag_bool(&probe, owned[i], -1, &st) != -1)
            return cli_fail(tf_err(TF_EUSER,
                                   "bench step: --%s is not taken here; choose with --presets "
                                   "tiny,small and --variant fp32/off",
                                   owned[i]));
    }
    st = TF_OK;
    bench_t *b = tf_calloc(1, sizeof *b, "bench state");
    if (!b) return cli_fail(TF_EINTERNAL);
    b->json = cli_flag_bool(&a, "json", 0, &st);
    const char *presets = cli_flag_str(&a, "presets", &st);
    const char *variant = cli_flag_str(&a, "variant", &st);
    b->seconds = cli_flag_double(&a, "seconds", 2.0, &st);
    long long B = cli_flag_int(&a, "batch", 2, &st);
    long long threads = cli_flag_int(&a, "threads", 0, &st);
    long long R = cli_flag_int(&a, "rounds", 2, &st);
    long long K = cli_flag_int(&a, "iters", 2, &st);
    if (st != TF_OK) goto fail;
    /* the config keys: remember which argv entries they are, to replay them per preset */
    unsigned char before[256];
    memcpy(before, a.used, sizeof before);
    tf_config base;
    tf_config_defaults(&base);
    if ((st = tf_config_parse_args(&base, a.argc, argv, a.used)) != TF_OK) goto fail;
    if ((st = cli_check_unused(&a)) != TF_OK) goto fail;
    if (!(b->seconds > 0 && b->seconds <= 600)) {
        st = tf_err(TF_EUSER, "--seconds %g: must be in (0, 600]", b->seconds);
        goto fail;
    }
    const struct {
        const char *flag;
        long long v, lo, hi;
    } lim[] = {{"batch", B, 1, 1024},
               {"rounds", R, 1, 1000},
               {"iters", K, 1, 1000},
               {"threads", threads, 0, 4096}};
    for (int i = 0; i < 4; i++)
        if (lim[i].v < lim[i].lo || lim[i].v > lim[i].hi) {
            st = tf_err(TF_EUSER, "--%s %lld: must be %lld..%lld", lim[i].flag, lim[i].v, lim[i].lo,
                        lim[i].hi);
            goto fail;
        }
    b->B = (int)B, b->R = (int)R, b->K = (int)K;
    {
        tf_device dev;
        if ((st = tf_device_from_string("--device", cli_bench_device, &dev)) != TF_OK) goto fail;
        tf_device_name(&dev, b->device, sizeof b->device);
        b->cuda = dev.kind == TF_DEVICE_CUDA;
        /* on the device one variant per run (each opens the card): fp32/off unless named */
        if (b->cuda && !variant) variant = "fp32/off";
        tf_config ac = base; /* amp_dtype fp16: the card's, with --compute_dtype bf16 */
        tf_device_name(&dev, ac.device, sizeof ac.device);
        if ((st = tf_config_check_amp(&ac)) != TF_OK) goto fail;
    }
    if ((st = parse_presets(presets ? presets : "tiny,small", b->presets, &b->np)) != TF_OK)
        goto fail;
    tf_dtype vdt = TF_DT_FP32;
    tf_ckpt_mode vck = TF_CKPT_OFF;
    if (variant && (st = parse_variant(variant, &vdt, &vck)) != TF_OK) goto fail;

    if (threads > 0) base.num_threads = (int)threads;
    if (base.num_threads > 0) omp_set_num_threads(base.num_threads);
    b->threads = base.num_threads > 0 ? base.num_threads : omp_get_max_threads();
    b->N = (int64_t)llround(b->seconds * base.sample_rate);

    /* per preset: defaults, the preset, then the same config flags again */
    char *av[3 + 256];
    int ac = 3;
    av[0] = argv[0];
    av[1] = "--preset";
    for (int i = 1; i < a.argc; i++)
        if (a.used[i] && !before[i]) av[ac++] = argv[i];
    for (int p = 0; p < b->np; p++) {
        tf_config *c = &b->cfg[p];
        tf_config_defaults(c);
        av[2] = b->presets[p];
        if ((st = tf_config_parse_args(c, ac, av, NULL)) != TF_OK) goto fail;
        c->num_threads = b->threads;
        c->gradient_accumulation_steps = 1; /* the bench times one micro-batch per step */
        c->batch_size = b->B;               /* the device trainer's micro-batch */
        const tf_model_config mc = tf_train_model_config(c);
        if ((st = tf_model_param_count(&b->nparams[p], &mc)) != TF_OK) goto fail;
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < 2; k++) {
                if (variant && (d != (int)vdt || k != (int)vck)) continue;
                variant_t *v = &b->v[b->nv++];
                v->preset = p, v->dt = (tf_dtype)d, v->ck = (tf_ckpt_mode)k;
                snprintf(v->name, sizeof v->name, "%s/%s/%s", b->presets[p], tf_dtype_name(v->dt),
                         ck_name(v->ck));
                tf_config cv = *c;
                cv.activation_dtype = v->dt;
                cv.checkpointing = v->ck;
                const tf_model_config mcv = tf_train_model_config(&cv);
                if ((st = tf_model_plan(&v->plan, &mcv, b->B, b->N, b->threads)) != TF_OK)
                    goto fail;
            }
    }
    st = run_bench(b);
fail:
    free(b);
    return st == TF_OK ? 0 : cli_fail(st);
}
