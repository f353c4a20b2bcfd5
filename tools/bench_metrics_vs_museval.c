/* build/tools/bench_metrics_vs_museval [--seconds 30] [--threads N] [--json]
 * (`make tools`; run from the repository root: it needs tools/pyenv.sh and
 * tests/reference/museval_ref.py)
 *
 * BSS Eval v4 (cSDR, tf_bss_eval) against museval 0.4.1, run through tools/pyenv.sh's venv
 * (the harness of tests/bss_check.c; `tfswa bench metrics` times ours alone):
 *  - max_abs_diff_db: largest |ours - museval| over every finite frame value of the
 *    standard cross-check cases (tf_bss_std_cases) and of the speed case;
 *  - speedup_vs_museval: museval's bss_eval time / ours on the speed case, 4 sources,
 *    stereo, --seconds at 44.1 kHz, window = hop = 1 s, 512 taps, both with --threads
 *    threads (OpenMP + OpenBLAS here, OPENBLAS/OMP_NUM_THREADS for museval). Ours is run
 *    before and after museval and averaged.
 * Without the museval environment it fails (exit 2) naming the reason. */
#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/bss_check.h"
#include "cli/bench_util.h"

#define MAX_CASES 16

static int fail(tf_status st) {
    fprintf(stderr, "bench_metrics_vs_museval: %s\n", tf_errmsg());
    return st == TF_EUSER ? 2 : 1;
}

static cJSON *num_or_null(double v, int ok) {
    return ok ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static void usage(void) {
    fprintf(stderr, "usage: bench_metrics_vs_museval [--seconds S] [--threads N] [--json]\n");
}

int main(int argc, char **argv) {
    tf_status st = TF_OK;
    double seconds = 30.0;
    long long threads = omp_get_max_threads();
    int json = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = strtod(argv[++i], &end);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = strtoll(argv[++i], &end, 10);
        } else {
            usage();
            return 2;
        }
        if (end && (end == argv[i] || *end)) {
            fprintf(stderr, "bench_metrics_vs_museval: %s: '%s' is not a number\n", argv[i - 1],
                    argv[i]);
            return 2;
        }
    }
    const int rate = 44100;
    int64_t N = (int64_t)(seconds * rate + 0.5);
    if (N < 1 || threads < 1 || threads > 1024) {
        fprintf(stderr, "bench_metrics_vs_museval: need --seconds > 0 and --threads >= 1\n");
        return 2;
    }
    omp_set_num_threads((int)threads);

    tf_bss_case cases[MAX_CASES + 1];
    int n = tf_bss_std_cases(cases, MAX_CASES);
    if (n < 0) return fail(TF_EINTERNAL);
    st = tf_bss_case_make(&cases[n], "speed4_stereo", TF_BSS_CASE_GOOD, 4, 2, N, rate, rate, 512,
                          42);
    if (st != TF_OK) {
        for (int i = 0; i < n; i++) tf_bss_case_free(&cases[i]);
        return fail(st);
    }
    const int ns = n; /* index of the speed case */
    n++;

    tf_bss_scores ours[MAX_CASES + 1], ref[MAX_CASES + 1];
    int have_ours = 0, have_ref = 0;
    tf_bss_info speed_info = {0, 0, 0};
    double ours_s[2] = {0, 0};
    char dir[] = "/tmp/tfswa_benchbssXXXXXX", in[64] = "", out[64] = "";
    int have_dir = 0;

    /* ours: every case, the speed case first (timed again after museval) */
    for (; have_ours < n; have_ours++) {
        int i = (have_ours + ns) % n;
        tf_bss_info info;
        if ((st = tf_bss_eval_case(&cases[i], TF_BSS_SOLVER_AUTO, &ours[i], &info)) != TF_OK) {
            for (int k = 0; k < have_ours; k++) tf_bss_scores_free(&ours[(k + ns) % n]);
            have_ours = 0;
            goto done;
        }
        if (i == ns) ours_s[0] = ours[i].seconds, speed_info = info;
    }

    {
        char root[4096], py[4096];
        tf_status e = tf_bss_find_root(root, sizeof root);
        if (e == TF_OK) e = tf_bss_pyenv(root, py, sizeof py);
        if (e == TF_OK) {
            if (!mkdtemp(dir)) {
                e = tf_err(TF_EUSER,
                           "bench_metrics_vs_museval: cannot create a directory under /tmp");
            } else {
                have_dir = 1;
                snprintf(in, sizeof in, "%s/in.bin", dir);
                snprintf(out, sizeof out, "%s/out.bin", dir);
                e = tf_bss_write_cases(in, cases, n);
                if (e == TF_OK) {
                    if (!json)
                        fprintf(stderr,
                                "bench_metrics_vs_museval: running museval (about a minute)\n");
                    e = tf_bss_run_museval(py, root, in, out, (int)threads);
                }
                if (e == TF_OK) e = tf_bss_read_scores(out, cases, n, ref);
            }
        }
        if (e != TF_OK) {
            st = e;
            goto done;
        }
        have_ref = 1;
    }

    /* ours again on the speed case, after museval */
    {
        tf_bss_scores again;
        if ((st = tf_bss_eval_case(&cases[ns], TF_BSS_SOLVER_AUTO, &again, NULL)) != TF_OK)
            goto done;
        ours_s[1] = again.seconds;
        tf_bss_scores_free(&again);
    }

    tf_bss_cmp cmp = {0}, cmp_speed = {0};
    if (have_ref) {
        for (int i = 0; i < ns; i++) tf_bss_compare(&ref[i], &ours[i], &cmp);
        tf_bss_compare(&ref[ns], &ours[ns], &cmp_speed);
    }
    double ours_mean = 0.5 * (ours_s[0] + ours_s[1]);
    double maxd = fmax(cmp.max_abs_diff, cmp_speed.max_abs_diff);
    double maxmed = fmax(cmp.max_median_diff, cmp_speed.max_median_diff);
    int64_t mism = cmp.nonfinite_mismatch + cmp_speed.nonfinite_mismatch;
    double mus_s = have_ref ? ref[ns].seconds : 0;

    char machine[256];
    bench_machine(machine, sizeof machine, omp_get_max_threads());
    if (json) {
        cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject();
        cJSON *res = cJSON_CreateObject();
        if (!root || !cfg || !res) {
            cJSON_Delete(root), cJSON_Delete(cfg), cJSON_Delete(res);
            st = tf_err(TF_EINTERNAL, "bench_metrics_vs_museval: out of memory");
            goto done;
        }
        cJSON_AddStringToObject(root, "bench", "metrics");
        cJSON_AddStringToObject(root, "machine", machine);
        cJSON_AddStringToObject(cfg, "reference", "museval 0.4.1 metrics.bss_eval (v4 images)");
        cJSON_AddNumberToObject(cfg, "threads", (double)threads);
        cJSON_AddNumberToObject(cfg, "speed_seconds", seconds);
        cJSON_AddNumberToObject(cfg, "speed_sources", 4);
        cJSON_AddNumberToObject(cfg, "speed_channels", 2);
        cJSON_AddNumberToObject(cfg, "sample_rate", rate);
        cJSON_AddNumberToObject(cfg, "window", rate);
        cJSON_AddNumberToObject(cfg, "hop", rate);
        cJSON_AddNumberToObject(cfg, "filters_len", 512);
        cJSON_AddNumberToObject(cfg, "check_cases", ns);
        cJSON_AddItemToObject(root, "config", cfg);
        cJSON_AddItemToObject(res, "max_abs_diff_db", num_or_null(maxd, have_ref));
        cJSON_AddItemToObject(res, "max_abs_diff_db_check_cases",
                              num_or_null(cmp.max_abs_diff, have_ref));
        cJSON_AddItemToObject(res, "max_abs_diff_db_speed_case",
                              num_or_null(cmp_speed.max_abs_diff, have_ref));
        cJSON_AddItemToObject(res, "max_median_diff_db", num_or_null(maxmed, have_ref));
        cJSON_AddItemToObject(res, "nonfinite_mismatches", num_or_null((double)mism, have_ref));
        cJSON_AddItemToObject(res, "values_compared",
                              num_or_null((double)(cmp.compared + cmp_speed.compared), have_ref));
        cJSON_AddItemToObject(res, "speedup_vs_museval",
                              num_or_null(mus_s / ours_mean, have_ref && ours_mean > 0));
        cJSON_AddItemToObject(res, "museval_seconds", num_or_null(mus_s, have_ref));
        cJSON_AddNumberToObject(res, "ours_seconds", ours_mean);
        cJSON_AddNumberToObject(res, "ours_seconds_before", ours_s[0]);
        cJSON_AddNumberToObject(res, "ours_seconds_after", ours_s[1]);
        cJSON_AddNumberToObject(res, "ours_dense_fallbacks", speed_info.dense_fallbacks);
        cJSON_AddNumberToObject(res, "ours_backward_error", speed_info.backward_error);
        cJSON_AddItemToObject(root, "results", res);
        char *s = cJSON_PrintUnformatted(root);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(root);
    } else {
        printf("metrics bench (BSS Eval v4 vs museval 0.4.1), %lld threads\nmachine: %s\n", threads,
               machine);
        if (have_ref) {
            printf("max |ours - museval|: %.3g dB over %d check cases + the speed case "
                   "(medians %.3g dB, non-finite mismatches %lld)\n",
                   maxd, ns, maxmed, (long long)mism);
            printf("speed case (4 sources, stereo, %.0f s): museval %.2f s, ours %.3f s "
                   "(%.3f / %.3f), speedup %.1fx\n",
                   seconds, mus_s, ours_mean, ours_s[0], ours_s[1], mus_s / ours_mean);
        }
    }

done:
    if (have_ref)
        for (int i = 0; i < n; i++) tf_bss_scores_free(&ref[i]);
    for (int k = 0; k < have_ours; k++) tf_bss_scores_free(&ours[(k + ns) % n]);
    for (int i = 0; i < n; i++) tf_bss_case_free(&cases[i]);
    if (have_dir) unlink(in), unlink(out), rmdir(dir);
    return st == TF_OK ? 0 : fail(st);
}
