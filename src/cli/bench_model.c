/* tfswa bench model [--preset P] [--json] [--seconds S] [--batch B] [--threads N]
 *                   [--iters K] [--variants] [--key value]...
 *
 * Times one training step of TFSWA-ResUNet (train-mode forward, then forward + backward)
 * and an inference forward on random stereo input of S seconds, and reports the memory
 * plan for checkpointing off/blocks x fp32/bf16 activations. Config keys (e.g.
 * --checkpointing blocks, --activation_dtype bf16, --stft.hop_length 441) apply as in
 * `tfswa train`. --variants also times forward + backward of all four memory variants,
 * alternating between them in the same run.
 *
 * Achieved FLOP rate: the FLOPs of one training step counted layer by layer
 * (tf_model_train_flops: forward, backward-data, backward-weights and, with checkpointing,
 * the recomputed block forwards) over the best forward + backward time; and that rate as a
 * fraction of a large single-precision GEMM (cblas_sgemm, n x n x n sized to ~0.3 s, best
 * of 3) timed in the same run with the same thread count. */
#include <cblas.h>
#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "infer/precision.h"
#include "model/model.h"
#include "train/train.h"
#include "util/config.h"

static const char *VNAME[4] = {"off_fp32", "blocks_fp32", "off_bf16", "blocks_bf16"};
static void variant(tf_config *c, int v) {
    c->checkpointing = (v & 1) ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
    c->activation_dtype = (v & 2) ? TF_DT_BF16 : TF_DT_FP32;
}

static cJSON *bytes_json(const tf_model_sizes *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "parameters", (double)p->params);
    cJSON_AddNumberToObject(o, "gradients", (double)p->grads);
    cJSON_AddNumberToObject(o, "buffers", (double)p->buffers);
    cJSON_AddNumberToObject(o, "activations", (double)p->activations);
    cJSON_AddNumberToObject(o, "workspace", (double)p->workspace);
    cJSON_AddNumberToObject(o, "total", (double)p->total);
    return o;
}

typedef struct {
    float *mix, *out, *dout;
} io_t;

/* OpenBLAS (pthread build): its thread count, set for the GEMM reference */
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

/* The arithmetic dtype of the model's GEMMs, and so of the reference GEMM. Today fp32
 * (cblas_sgemm). Hook for bf16 arithmetic: when the model computes in bf16, time the
 * matching bf16 GEMM here (OpenBLAS cblas_sbgemm) and report gemm_dtype "bf16". */
static const char GEMM_DTYPE[] = "fp32";

/* GFLOP/s of C = A B (n x n, fp32, OpenBLAS on nth threads): n grown until one call takes
 * about 0.3 s (128 <= n <= 4096, a multiple of 64), then the best of 3 calls. 0 when out
 * of memory. */
static double gemm_gflops(int nth, int *n_out) {
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(nth);
    int n = 512;
    double best = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: size it; pass 1: measure */
        const size_t nn = (size_t)n * n;
        float *A = malloc(nn * sizeof(float)), *Bm = malloc(nn * sizeof(float)),
              *Cm = malloc(nn * sizeof(float));
        if (!A || !Bm || !Cm) {
            free(A);
            free(Bm);
            free(Cm);
            best = 0;
            break;
        }
        for (size_t i = 0; i < nn; i++) {
            A[i] = (float)(i % 7) * 0.25f - 0.75f;
            Bm[i] = (float)(i % 5) * 0.5f - 1.f;
        }
        double tmin = 1e30;
        for (int r = 0; r < (pass ? 3 : 2); r++) { /* pass 0: a warm-up, then the time */
            const double t0 = tf_now_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, A, n, Bm, n, 0.f,
                        Cm, n);
            const double t = tf_now_s() - t0;
            if (t < tmin) tmin = t;
        }
        free(A);
        free(Bm);
        free(Cm);
        best = 2.0 * n * (double)n * n / (tmin > 0 ? tmin : 1e-9) / 1e9;
        if (pass == 0) {
            double g = n * cbrt(0.3 / (tmin > 0 ? tmin : 1e-9));
            int m = (int)(g / 64 + 0.5) * 64;
            n = m < 128 ? 128 : m > 4096 ? 4096 : m;
        }
    }
    openblas_set_num_threads(saved);
    *n_out = n;
    return best;
}

static tf_status train_step(tf_model *m, io_t *io, int B, int64_t N, double *t_fwd, double *t_all) {
    tf_model_zero_grad(m);
    double t0 = tf_now_s();
    TF_TRY(tf_model_forward(m, io->out, io->mix, B, N, 1));
    double t1 = tf_now_s();
    TF_TRY(tf_model_backward(m, io->dout));
    double t2 = tf_now_s();
    if (t_fwd) *t_fwd = 1e3 * (t1 - t0);
    if (t_all) *t_all = 1e3 * (t2 - t0);
    return TF_OK;
}

static const char USAGE[] =
    "usage: tfswa bench model [--json] [--seconds 3] [--batch 1] [--threads 0] [--iters 3]\n"
    "                         [--variants] [--preset P] [--key value]...\n"
    "Time a train-mode forward, forward + backward and an inference forward on random\n"
    "stereo input of --seconds, and print the memory plan of the four variants (fp32|bf16\n"
    "activations x checkpointing off|blocks); --variants also times all four, alternating.\n"
    "Also: the FLOPs of one training step counted layer by layer (forward, backward-data,\n"
    "backward-weights, and with --checkpointing blocks the recomputed block forwards),\n"
    "gflops_achieved = those FLOPs / the best forward + backward time, gemm_gflops = a\n"
    "large sgemm (n^3 sized to ~0.3 s, best of 3) on the same threads in the same run, and\n"
    "fraction_of_gemm_peak = gflops_achieved / gemm_gflops (gemm_dtype: fp32).\n";

int bench_model(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_config c;
    tf_config_defaults(&c);
    tf_status st = tf_config_parse_args(&c, a.argc, argv, a.used);
    if (st != TF_OK) return cli_fail(st);
    int json = cli_flag_bool(&a, "json", 0, &st);
    double seconds = cli_flag_double(&a, "seconds", 3.0, &st);
    long long B = cli_flag_int(&a, "batch", 1, &st);
    long long threads = cli_flag_int(&a, "threads", 0, &st);
    long long iters = cli_flag_int(&a, "iters", 3, &st);
    int variants = cli_flag_bool(&a, "variants", 0, &st);
    if (st != TF_OK) return cli_fail(st);
    if ((st = cli_check_unused(&a)) != TF_OK) return cli_fail(st);
    if (!(seconds > 0 && seconds <= 600))
        return cli_fail(tf_err(TF_EUSER, "--seconds %g: must be in (0, 600]", seconds));
    if (B < 1 || B > 1024) return cli_fail(tf_err(TF_EUSER, "--batch %lld: must be 1..1024", B));
    if (iters < 1 || iters > 1000)
        return cli_fail(tf_err(TF_EUSER, "--iters %lld: must be 1..1000", iters));
    if (threads < 0 || threads > 4096)
        return cli_fail(tf_err(TF_EUSER, "--threads %lld: must be 0..4096", threads));
    if (threads > 0) c.num_threads = (int)threads;
    if (c.num_threads > 0) omp_set_num_threads(c.num_threads);
    const int nth = c.num_threads > 0 ? c.num_threads : omp_get_max_threads();
    const int64_t N = (int64_t)llround(seconds * c.sample_rate);
    const int b = (int)B;

    tf_arch arch;
    const tf_model_config mc0 = tf_train_model_config(&c);
    if ((st = tf_arch_from_config(&arch, &mc0)) != TF_OK) return cli_fail(st);
    size_t nparams = 0;
    if ((st = tf_model_param_count(&nparams, &mc0)) != TF_OK) return cli_fail(st);
    const double gflop_fwd = tf_model_forward_flops(&arch, 1, N) / 1e9;
    tf_model_sizes plans[4], iplan;
    tf_config cv = c;
    for (int v = 0; v < 4; v++) {
        variant(&cv, v);
        const tf_model_config mcv = tf_train_model_config(&cv);
        if ((st = tf_model_plan(&plans[v], &mcv, b, N, nth)) != TF_OK) return cli_fail(st);
    }
    if ((st = tf_model_plan_mode(&iplan, &mc0, b, N, nth, TF_MODEL_INFER)) != TF_OK)
        return cli_fail(st);
    tf_train_flops step_flops; /* the whole batch */
    if (tf_model_train_flops(&arch, b, N, &step_flops) <= 0)
        return cli_fail(tf_err(TF_EINTERNAL, "bench model: no FLOP count for these shapes"));

    /* random input, fixed seed */
    const size_t nin = (size_t)b * 2 * N, nout = (size_t)b * c.n_targets * 2 * N;
    io_t io = {malloc(nin * sizeof(float)), malloc(nout * sizeof(float)),
               malloc(nout * sizeof(float))};
    if (!io.mix || !io.out || !io.dout) {
        free(io.mix);
        free(io.out);
        free(io.dout);
        return cli_fail(tf_err(TF_EINTERNAL, "out of memory for the bench input"));
    }
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < nin; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        io.mix[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5) * 0.5f;
    }
    for (size_t i = 0; i < nout; i++) io.dout[i] = (i % 3 == 0 ? 1.f : -1.f) / (float)nout;

    /* the configured variant: forward, forward + backward, inference forward */
    tf_model *m[4] = {NULL, NULL, NULL, NULL};
    int nv = variants ? 4 : 1;
    for (int v = 0; v < nv && st == TF_OK; v++) {
        cv = c;
        if (variants) variant(&cv, v);
        const tf_model_config mcv = tf_train_model_config(&cv);
        st = tf_model_create(&m[v], &mcv, b, N, nth);
    }
    double *tf = calloc((size_t)iters, sizeof *tf), *ta = calloc((size_t)iters, sizeof *ta),
           *te = calloc((size_t)iters, sizeof *te), *tv = calloc((size_t)(4 * iters), sizeof *tv);
    tf_model *mc = NULL; /* model of the configured variant */
    char arith[160] = "";
    if (st == TF_OK && (!tf || !ta || !te || !tv))
        st = tf_err(TF_EINTERNAL, "out of memory for the bench timings");
    if (st == TF_OK) {
        int cur = (c.checkpointing == TF_CKPT_BLOCKS) + 2 * (c.activation_dtype == TF_DT_BF16);
        mc = variants ? m[cur] : m[0];
        snprintf(arith, sizeof arith, "%s", tf_model_get_plan(mc)->arithmetic);
        st = train_step(mc, &io, b, N, NULL, NULL); /* warm-up */
        for (long long i = 0; i < iters && st == TF_OK; i++) {
            st = train_step(mc, &io, b, N, &tf[i], &ta[i]);
            if (st != TF_OK) break;
            double t0 = tf_now_s();
            st = tf_model_forward(mc, io.out, io.mix, b, N, 0);
            te[i] = 1e3 * (tf_now_s() - t0);
        }
        /* all four variants, alternating */
        for (int v = 0; variants && v < 4 && st == TF_OK; v++)
            st = train_step(m[v], &io, b, N, NULL, NULL);
        for (long long i = 0; variants && i < iters && st == TF_OK; i++)
            for (int v = 0; v < 4 && st == TF_OK; v++)
                st = train_step(m[v], &io, b, N, NULL, &tv[v * iters + i]);
    }
    for (int v = 0; v < 4; v++) tf_model_free(m[v]);
    free(io.mix);
    free(io.out);
    free(io.dout);
    if (st != TF_OK) {
        free(tf);
        free(ta);
        free(te);
        free(tv);
        return cli_fail(st);
    }
    /* the GEMM reference, same run, same threads */
    int gemm_n = 0;
    const double gemm = gemm_gflops(nth, &gemm_n);
    if (!(gemm > 0)) {
        free(tf);
        free(ta);
        free(te);
        free(tv);
        return cli_fail(tf_err(TF_EINTERNAL, "bench model: out of memory for the GEMM reference"));
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double peak_rss = (double)ru.ru_maxrss * 1024.0;
    const int it = (int)iters;
    double fwd_min = bench_min(tf, it), all_min = bench_min(ta, it), ev_min = bench_min(te, it);
    double fwd_med = bench_median(tf, it), all_med = bench_median(ta, it),
           ev_med = bench_median(te, it);
    const double achieved = step_flops.total / 1e9 / (all_min / 1e3);
    char machine[400];
    bench_machine(machine, sizeof machine, nth);

    cJSON *cfg, *res, *root = bench_json_open("model", nth, &cfg, &res);
    if (!root) return cli_fail(tf_err(TF_EINTERNAL, "bench model: out of memory"));
    cJSON_AddStringToObject(cfg, "preset", c.preset);
    cJSON_AddItemToObject(cfg, "channels", cJSON_CreateIntArray(c.channels, c.n_levels));
    cJSON_AddNumberToObject(cfg, "rcms_per_block", c.rcms_per_block);
    cJSON_AddNumberToObject(cfg, "tfswa_blocks", c.tfswa_blocks);
    cJSON_AddNumberToObject(cfg, "heads", c.heads);
    cJSON_AddItemToObject(cfg, "window", cJSON_CreateIntArray((int[]){c.window_t, c.window_f}, 2));
    cJSON_AddNumberToObject(cfg, "mlp_ratio", c.mlp_ratio);
    cJSON_AddNumberToObject(cfg, "subbands", c.subbands);
    cJSON_AddNumberToObject(cfg, "targets", c.n_targets);
    cJSON_AddStringToObject(cfg, "output", c.output == TF_OUT_MASK ? "mask" : "magnitude");
    cJSON_AddNumberToObject(cfg, "n_fft", c.stft_window_size);
    cJSON_AddNumberToObject(cfg, "hop_length", c.stft_hop_length);
    cJSON_AddNumberToObject(cfg, "sample_rate", c.sample_rate);
    cJSON_AddNumberToObject(cfg, "seconds", seconds);
    cJSON_AddNumberToObject(cfg, "batch", b);
    cJSON_AddNumberToObject(cfg, "threads", nth);
    cJSON_AddNumberToObject(cfg, "iters", it);
    cJSON_AddStringToObject(cfg, "checkpointing",
                            c.checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off");
    cJSON_AddStringToObject(cfg, "activation_dtype",
                            c.activation_dtype == TF_DT_BF16 ? "bf16" : "fp32");
    cJSON_AddStringToObject(cfg, "backend", tf_backend_name(c.backend));
    cJSON_AddStringToObject(cfg, "arithmetic", arith);
    cJSON_AddNumberToObject(res, "params", (double)nparams);
    cJSON_AddNumberToObject(res, "forward_gflop_per_item", gflop_fwd);
    cJSON_AddNumberToObject(res, "gflops_per_audio_second", gflop_fwd / seconds);
    cJSON_AddNumberToObject(res, "forward_ms", fwd_med);
    cJSON_AddNumberToObject(res, "forward_ms_min", fwd_min);
    cJSON_AddNumberToObject(res, "forward_backward_ms", all_med);
    cJSON_AddNumberToObject(res, "forward_backward_ms_min", all_min);
    cJSON_AddNumberToObject(res, "eval_forward_ms", ev_med);
    cJSON_AddNumberToObject(res, "eval_forward_ms_min", ev_min);
    cJSON_AddNumberToObject(res, "forward_backward_gflops", 3 * gflop_fwd * b / (all_min / 1e3));
    cJSON *sf = cJSON_AddObjectToObject(res, "train_step_gflop");
    cJSON_AddNumberToObject(sf, "forward", step_flops.forward / 1e9);
    cJSON_AddNumberToObject(sf, "backward_data", step_flops.backward_data / 1e9);
    cJSON_AddNumberToObject(sf, "backward_weights", step_flops.backward_weights / 1e9);
    cJSON_AddNumberToObject(sf, "recompute", step_flops.recompute / 1e9);
    cJSON_AddNumberToObject(sf, "total", step_flops.total / 1e9);
    cJSON_AddBoolToObject(res, "flops_include_recompute", step_flops.recompute > 0);
    cJSON_AddNumberToObject(res, "gflops_achieved", achieved);
    cJSON_AddNumberToObject(res, "gemm_gflops", gemm);
    cJSON_AddNumberToObject(res, "gemm_n", gemm_n);
    cJSON_AddStringToObject(res, "gemm_dtype", GEMM_DTYPE);
    cJSON_AddNumberToObject(res, "fraction_of_gemm_peak", achieved / gemm);
    cJSON_AddNumberToObject(res, "peak_rss_bytes", peak_rss);
    cJSON *by = cJSON_AddObjectToObject(res, "bytes");
    for (int v = 0; v < 4; v++) cJSON_AddItemToObject(by, VNAME[v], bytes_json(&plans[v]));
    cJSON_AddItemToObject(by, "inference", bytes_json(&iplan));
    if (variants) {
        cJSON *vt = cJSON_AddObjectToObject(res, "variants_forward_backward_ms");
        for (int v = 0; v < 4; v++)
            cJSON_AddNumberToObject(vt, VNAME[v], bench_median(tv + v * it, it));
    }
    int rc = 0;
    if (json) {
        rc = bench_json_emit(root);
        root = NULL;
    } else {
        printf("bench model: %s, %zu parameters, %.2f GFLOP forward per item (%.2f GFLOP/s of "
               "audio)\n",
               c.preset, nparams, gflop_fwd, gflop_fwd / seconds);
        printf("  batch %d x %.2f s, %d threads (%s)\n", b, seconds, nth, machine);
        printf("  checkpointing %s, activations %s\n",
               c.checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off",
               c.activation_dtype == TF_DT_BF16 ? "bf16" : "fp32");
        printf("  forward (train)    %9.1f ms (min %.1f)\n", fwd_med, fwd_min);
        printf("  forward + backward %9.1f ms (min %.1f)\n", all_med, all_min);
        printf("  forward (eval)     %9.1f ms (min %.1f)\n", ev_med, ev_min);
        printf("  training step %.2f GFLOP (forward %.2f, backward data %.2f, weights %.2f, "
               "recompute %.2f)\n",
               step_flops.total / 1e9, step_flops.forward / 1e9, step_flops.backward_data / 1e9,
               step_flops.backward_weights / 1e9, step_flops.recompute / 1e9);
        printf("  achieved %.1f GFLOP/s = %.1f%% of a %d^3 %s GEMM at %.1f GFLOP/s\n", achieved,
               100 * achieved / gemm, gemm_n, GEMM_DTYPE, gemm);
        printf("  peak RSS %.1f MiB\n", peak_rss / 1048576.0);
        printf("  memory plan (MiB)  parameters gradients activations workspace    total\n");
        for (int v = 0; v < 4; v++)
            printf("    %-12s %12.1f %9.1f %11.1f %9.1f %8.1f%s\n", VNAME[v],
                   plans[v].params / 1048576.0, plans[v].grads / 1048576.0,
                   plans[v].activations / 1048576.0, plans[v].workspace / 1048576.0,
                   plans[v].total / 1048576.0, variants ? "" : "");
        printf("    %-12s %12.1f %9.1f %11.1f %9.1f %8.1f\n", "inference", iplan.params / 1048576.0,
               iplan.grads / 1048576.0, iplan.activations / 1048576.0, iplan.workspace / 1048576.0,
               iplan.total / 1048576.0);
        if (variants)
            for (int v = 0; v < 4; v++)
                printf("  %-12s forward + backward %.1f ms\n", VNAME[v],
                       bench_median(tv + v * it, it));
    }
    cJSON_Delete(root);
    free(tf);
    free(ta);
    free(te);
    free(tv);
    return rc ? cli_fail(tf_err(TF_EINTERNAL, "bench model: out of memory")) : 0;
}
