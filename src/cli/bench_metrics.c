/* tfswa bench metrics [--seconds 30] [--threads N] [--repeats 3] [--json]
 *
 * Times BSS Eval v4 (tf_bss_eval, museval's cSDR with the MUSDB18 settings) on a
 * synthetic music-like track: 4 sources, stereo, --seconds at 44.1 kHz, window = hop = 1 s,
 * 512 taps, --threads threads (OpenMP + OpenBLAS). Prints the median and the minimum of
 * --repeats calls. The comparison with museval (values and speed, Python) is not part of
 * the CLI: build/tools/bench_metrics_vs_museval (`make tools`). */
#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "metrics/bsseval.h"
#include "util/rng.h"

#define NSRC        4
#define NCHAN       2
#define MAX_REPEATS 100

/* One music-like source (NCHAN, N): three tones and AR(1) coloured noise, panned, plus a
 * little independent noise per channel. */
static void gen_source(float *out, int64_t N, tf_rng *r) {
    double f[3], a[3], ph[3], gain[NCHAN];
    for (int h = 0; h < 3; h++) {
        f[h] = tf_rng_range(r, 60.0, 3000.0) / 44100.0;
        a[h] = tf_rng_range(r, 0.05, 0.25);
        ph[h] = tf_rng_range(r, 0.0, 6.283185307179586);
    }
    double rho = tf_rng_range(r, 0.5, 0.95), ar = 0;
    for (int c = 0; c < NCHAN; c++) gain[c] = tf_rng_range(r, 0.5, 1.0);
    for (int64_t n = 0; n < N; n++) {
        ar = rho * ar + 0.05 * tf_rng_normal(r);
        double m = ar;
        for (int h = 0; h < 3; h++) m += a[h] * sin(6.283185307179586 * f[h] * (double)n + ph[h]);
        for (int c = 0; c < NCHAN; c++)
            out[(size_t)c * N + n] = (float)(gain[c] * m + 0.02 * tf_rng_normal(r));
    }
}

/* ref, est (NSRC, NCHAN, N): references, and estimates = a short FIR of the own reference
 * + leakage of the others + noise (a plausible separation). */
static void make_case(float *ref, float *est, int64_t N) {
    tf_rng r;
    for (int j = 0; j < NSRC; j++) {
        tf_rng_seed(&r, 42, 1, (uint64_t)j, 0);
        gen_source(ref + (size_t)j * NCHAN * N, N, &r);
    }
    for (int j = 0; j < NSRC; j++) {
        tf_rng_seed(&r, 42, 2, (uint64_t)j, 0);
        double h[4] = {tf_rng_range(&r, 0.8, 1.0), tf_rng_range(&r, -0.2, 0.2),
                       tf_rng_range(&r, -0.2, 0.2), tf_rng_range(&r, -0.1, 0.1)};
        double leak = tf_rng_range(&r, 0.02, 0.08), noise = tf_rng_range(&r, 0.005, 0.03);
        for (int c = 0; c < NCHAN; c++)
            for (int64_t t = 0; t < N; t++) {
                double v = 0;
                for (int k = 0; k < 4 && k <= t; k++)
                    v += h[k] * ref[((size_t)j * NCHAN + c) * N + t - k];
                for (int i = 0; i < NSRC; i++)
                    if (i != j) v += leak * ref[((size_t)i * NCHAN + c) * N + t];
                est[((size_t)j * NCHAN + c) * N + t] = (float)(v + noise * tf_rng_normal(&r));
            }
    }
}

static const char USAGE[] =
    "usage: tfswa bench metrics [--json] [--seconds 30] [--threads N] [--repeats 3]\n"
    "Time museval-compatible BSSEval v4 (cSDR) on a synthetic 4-source stereo case.\n"
    "(The comparison with museval itself: build/tools/bench_metrics_vs_museval, `make tools`.)\n";

int bench_metrics(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    double seconds = cli_flag_double(&a, "seconds", 30.0, &st);
    long long threads = cli_flag_int(&a, "threads", omp_get_max_threads(), &st);
    long long repeats = cli_flag_int(&a, "repeats", 3, &st);
    int json = cli_flag_bool(&a, "json", 0, &st);
    if (st == TF_OK) st = cli_check_unused(&a);
    if (st != TF_OK) return cli_fail(st);
    const int rate = 44100;
    int64_t N = (int64_t)(seconds * rate + 0.5);
    if (!(seconds > 0) || N < 1 || seconds > 3600 || threads < 1 || threads > 1024 || repeats < 1 ||
        repeats > MAX_REPEATS)
        return cli_fail(tf_err(TF_EUSER, "bench metrics: need 0 < --seconds <= 3600, --threads "
                                         ">= 1 and 1 <= --repeats <= 100"));
    omp_set_num_threads((int)threads);

    tf_bss_params p = tf_bss_default_params(rate);
    int64_t nwin = tf_bss_nwin(N, p.window, p.hop);
    size_t n = (size_t)NSRC * NCHAN * N, nm = (size_t)NSRC * nwin;
    float *ref = tf_malloc(2 * n * sizeof(float), "bench metrics signals");
    double *m = tf_malloc(4 * nm * sizeof(double), "bench metrics scores");
    if (!ref || !m) {
        free(ref), free(m);
        return cli_fail(TF_EINTERNAL);
    }
    float *est = ref + n; /* ref, est: (NSRC, NCHAN, N); m: SDR, ISR, SIR, SAR (NSRC, nwin) */
    make_case(ref, est, N);

    double t[MAX_REPEATS];
    tf_bss_info info = {0, 0, 0};
    for (int i = 0; i < repeats && st == TF_OK; i++) {
        double t0 = tf_now_s();
        st = tf_bss_eval(&p, ref, est, NSRC, NCHAN, N, m, m + nm, m + 2 * nm, m + 3 * nm, &info);
        t[i] = tf_now_s() - t0;
    }
    double csdr[NSRC];
    for (int j = 0; j < NSRC && st == TF_OK; j++)
        csdr[j] = tf_bss_median(m + (size_t)j * nwin, nwin);
    free(ref), free(m);
    if (st != TF_OK) return cli_fail(st);

    double med = bench_median(t, (int)repeats), best = bench_min(t, (int)repeats);
    char machine[256];
    bench_machine(machine, sizeof machine, omp_get_max_threads());
    if (json) {
        cJSON *cfg, *res, *root = bench_json_open("metrics", omp_get_max_threads(), &cfg, &res);
        cJSON *cs = cJSON_CreateDoubleArray(csdr, NSRC);
        if (!root || !cs) {
            cJSON_Delete(root), cJSON_Delete(cs);
            return cli_fail(tf_err(TF_EINTERNAL, "bench metrics: out of memory"));
        }
        cJSON_AddStringToObject(cfg, "metric", "BSS Eval v4 (museval bss_eval, v4 images)");
        cJSON_AddNumberToObject(cfg, "threads", (double)threads);
        cJSON_AddNumberToObject(cfg, "seconds", seconds);
        cJSON_AddNumberToObject(cfg, "sources", NSRC);
        cJSON_AddNumberToObject(cfg, "channels", NCHAN);
        cJSON_AddNumberToObject(cfg, "sample_rate", rate);
        cJSON_AddNumberToObject(cfg, "window", p.window);
        cJSON_AddNumberToObject(cfg, "hop", p.hop);
        cJSON_AddNumberToObject(cfg, "filters_len", p.filters_len);
        cJSON_AddNumberToObject(cfg, "repeats", (double)repeats);
        cJSON_AddNumberToObject(res, "seconds_median", med);
        cJSON_AddNumberToObject(res, "seconds_min", best);
        cJSON_AddNumberToObject(res, "seconds_per_audio_second", med / seconds);
        cJSON_AddNumberToObject(res, "dense_fallbacks", info.dense_fallbacks);
        cJSON_AddNumberToObject(res, "backward_error", info.backward_error);
        cJSON_AddItemToObject(res, "csdr_db", cs);
        if (bench_json_emit(root))
            return cli_fail(tf_err(TF_EINTERNAL, "bench metrics: out of memory"));
    } else {
        printf("metrics bench (BSS Eval v4, %d sources, stereo, %.0f s at %d Hz), %lld threads\n"
               "machine: %s\n",
               NSRC, seconds, rate, threads, machine);
        printf("tf_bss_eval: median %.3f s, min %.3f s over %lld calls (%.4f s per audio second), "
               "dense fallbacks %d\n",
               med, best, repeats, med / seconds, info.dense_fallbacks);
        printf("museval comparison: build/tools/bench_metrics_vs_museval (make tools)\n");
    }
    return 0;
}
