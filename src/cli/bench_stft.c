/* tfswa bench stft [--signals 8] [--seconds 3] [--sample_rate 44100] [--n_fft 2048]
 *                  [--hop 441] [--threads 2] [--reps 10] [--json]
 * Times STFT, ISTFT and their adjoints on random signals (S, N); median and min over reps
 * after one warm-up call. */
#include <cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "dsp/stft.h"
#include "util/rng.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { OP_STFT, OP_ISTFT, OP_ISTFT_BW, OP_STFT_BW, N_OPS };
static const char *op_names[N_OPS] = {"stft", "istft", "istft_backward", "stft_backward"};

static const char USAGE[] =
    "usage: tfswa bench stft [--json] [--signals 8] [--seconds 3] [--sample_rate 44100]\n"
    "                        [--n_fft 2048] [--hop 441] [--threads 2] [--reps 10]\n"
    "Time STFT, ISTFT and their adjoints on --signals signals of --seconds.\n";

int bench_stft(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    long long S = cli_flag_int(&a, "signals", 8, &st);
    double seconds = cli_flag_double(&a, "seconds", 3.0, &st);
    long long sr = cli_flag_int(&a, "sample_rate", 44100, &st);
    long long n_fft = cli_flag_int(&a, "n_fft", 2048, &st);
    long long hop = cli_flag_int(&a, "hop", 441, &st);
    long long threads = cli_flag_int(&a, "threads", 2, &st);
    long long reps = cli_flag_int(&a, "reps", 10, &st);
    int json = cli_flag_bool(&a, "json", 0, &st);
    if (st == TF_OK) st = cli_check_unused(&a);
    if (st != TF_OK) return cli_fail(st);
    int64_t N = (int64_t)(seconds * (double)sr + 0.5);
    if (S < 1 || S > 4096 || N < 1 || threads < 1 || reps < 1 || n_fft > 65536)
        return cli_fail(tf_err(TF_EUSER, "bench stft: need --signals in [1, 4096], --seconds * "
                                         "--sample_rate >= 1, --threads >= 1, --reps >= 1"));
    tf_stft *sf = NULL;
    st = tf_stft_create(&sf, (int)n_fft, (int)hop);
    if (st != TF_OK) return cli_fail(st);
    int64_t T = tf_stft_frames(sf, N);
    size_t ns = (size_t)S * N, nc = (size_t)S * tf_stft_bins(sf) * T;
    float *x = malloc(ns * sizeof(float)), *y = malloc(ns * sizeof(float));
    float *re = malloc(nc * sizeof(float)), *im = malloc(nc * sizeof(float));
    float *dre = calloc(nc, sizeof(float)), *dim = calloc(nc, sizeof(float));
    double *times = malloc((size_t)reps * N_OPS * sizeof(double));
    if (!x || !y || !re || !im || !dre || !dim || !times) {
        st = tf_err(TF_EINTERNAL, "bench stft: out of memory");
        goto done;
    }
    tf_rng r;
    tf_rng_seed(&r, 1, 2, 3, 4);
    for (size_t i = 0; i < ns; i++) x[i] = (float)tf_rng_range(&r, -1, 1);
    omp_set_num_threads((int)threads);
    for (long long k = -1; k < reps; k++) { /* k = -1: warm-up (pool, caches, threads) */
        double t[N_OPS + 1];
        t[0] = 1e3 * tf_now_s();
        if ((st = tf_stft_forward(sf, re, im, x, (int)S, N))) goto done;
        t[1] = 1e3 * tf_now_s();
        if ((st = tf_istft_forward(sf, y, re, im, (int)S, N))) goto done;
        t[2] = 1e3 * tf_now_s();
        if ((st = tf_istft_backward(sf, dre, dim, y, (int)S, N))) goto done;
        t[3] = 1e3 * tf_now_s();
        if ((st = tf_stft_backward(sf, y, dre, dim, (int)S, N))) goto done;
        t[4] = 1e3 * tf_now_s();
        if (k >= 0)
            for (int o = 0; o < N_OPS; o++) times[o * reps + k] = t[o + 1] - t[o];
    }
    double med[N_OPS], mn[N_OPS];
    for (int o = 0; o < N_OPS; o++) {
        qsort(times + o * reps, (size_t)reps, sizeof(double), cmp_d);
        med[o] = times[o * reps + reps / 2];
        mn[o] = times[o * reps];
    }
    char machine[256];
    bench_machine(machine, sizeof machine, omp_get_max_threads());
    if (json) {
        cJSON *cfg, *res, *root = bench_json_open("stft", omp_get_max_threads(), &cfg, &res);
        if (!root) {
            st = tf_err(TF_EINTERNAL, "bench stft: out of memory");
            goto done;
        }
        cJSON_AddNumberToObject(cfg, "signals", (double)S);
        cJSON_AddNumberToObject(cfg, "seconds", seconds);
        cJSON_AddNumberToObject(cfg, "sample_rate", (double)sr);
        cJSON_AddNumberToObject(cfg, "samples", (double)N);
        cJSON_AddNumberToObject(cfg, "n_fft", (double)n_fft);
        cJSON_AddNumberToObject(cfg, "hop", (double)hop);
        cJSON_AddNumberToObject(cfg, "frames", (double)T);
        cJSON_AddNumberToObject(cfg, "threads", (double)threads);
        cJSON_AddNumberToObject(cfg, "reps", (double)reps);
        char key[64];
        for (int o = 0; o < N_OPS; o++) {
            snprintf(key, sizeof key, "%s_ms_median", op_names[o]);
            cJSON_AddNumberToObject(res, key, med[o]);
            snprintf(key, sizeof key, "%s_ms_min", op_names[o]);
            cJSON_AddNumberToObject(res, key, mn[o]);
        }
        cJSON_AddNumberToObject(res, "stft_plus_istft_ms_median", med[OP_STFT] + med[OP_ISTFT]);
        if (bench_json_emit(root)) st = tf_err(TF_EINTERNAL, "bench stft: out of memory");
    } else {
        printf("stft bench: %lld signals x %lld samples, n_fft %lld hop %lld, %lld frames, "
               "%lld threads, %lld reps\nmachine: %s\n",
               S, (long long)N, n_fft, hop, (long long)T, threads, reps, machine);
        for (int o = 0; o < N_OPS; o++)
            printf("  %-15s median %8.2f ms   min %8.2f ms\n", op_names[o], med[o], mn[o]);
        printf("  stft + istft    median %8.2f ms\n", med[OP_STFT] + med[OP_ISTFT]);
    }
done:
    free(x), free(y), free(re), free(im), free(dre), free(dim), free(times);
    tf_stft_destroy(sf);
    return st == TF_OK ? 0 : cli_fail(st);
}
