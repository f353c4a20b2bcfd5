/* tfswa bench metrics [--seconds 30] [--threads N] [--no_museval] [--json]
 *
 * BSS Eval v4 (cSDR) against museval 0.4.1, run through tools/pyenv.sh's venv:
 *  - max_abs_diff_db: largest |ours - museval| over every finite frame value of the
 *    standard cross-check cases (tf_bss_std_cases) and of the speed case;
 *  - speedup_vs_museval: museval's bss_eval time / ours on the speed case, 4 sources,
 *    stereo, --seconds at 44.1 kHz, window = hop = 1 s, 512 taps, both with --threads
 *    threads (OpenMP + OpenBLAS here, OPENBLAS/OMP_NUM_THREADS for museval). Ours is run
 *    before and after museval and averaged.
 * Without the museval environment the museval keys are null and "note" says why. */
#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "metrics/bss_check.h"

#define MAX_CASES 16

static cJSON *num_or_null(double v, int ok) {
    return ok ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

int bench_metrics(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    double seconds = cli_flag_double(&a, "seconds", 30.0, &st);
    long long threads = cli_flag_int(&a, "threads", omp_get_max_threads(), &st);
    int use_museval = !cli_flag_bool(&a, "no_museval", 0, &st);
    int json = cli_flag_bool(&a, "json", 0, &st);
    if (st == TF_OK) st = cli_check_unused(&a);
    if (st != TF_OK) return cli_fail(st);
    const int rate = 44100;
    int64_t N = (int64_t)(seconds * rate + 0.5);
    if (N < 1 || threads < 1 || threads > 1024)
        return cli_fail(tf_err(TF_EUSER, "bench metrics: need --seconds > 0 and --threads >= 1"));
    omp_set_num_threads((int)threads);

    tf_bss_case cases[MAX_CASES + 1];
    int n = tf_bss_std_cases(cases, MAX_CASES);
    if (n < 0) return cli_fail(TF_EINTERNAL);
    st = tf_bss_case_make(&cases[n], "speed4_stereo", TF_BSS_CASE_GOOD, 4, 2, N, rate, rate, 512,
                          42);
    if (st != TF_OK) {
        for (int i = 0; i < n; i++) tf_bss_case_free(&cases[i]);
        return cli_fail(st);
    }
    const int ns = n; /* index of the speed case */
    n++;

    tf_bss_scores ours[MAX_CASES + 1], ref[MAX_CASES + 1];
    int have_ours = 0, have_ref = 0;
    tf_bss_info speed_info = {0, 0, 0};
    double ours_s[2] = {0, 0};
    char note[1024] = "";
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

    if (use_museval) {
        char root[4096], py[4096];
        tf_status e = tf_bss_find_root(root, sizeof root);
        if (e == TF_OK) e = tf_bss_pyenv(root, py, sizeof py);
        if (e == TF_OK) {
            if (!mkdtemp(dir)) {
                e = tf_err(TF_EUSER, "bench metrics: cannot create a directory under /tmp");
            } else {
                have_dir = 1;
                snprintf(in, sizeof in, "%s/in.bin", dir);
                snprintf(out, sizeof out, "%s/out.bin", dir);
                e = tf_bss_write_cases(in, cases, n);
                if (e == TF_OK) {
                    if (!json) fprintf(stderr, "bench metrics: running museval (about a minute)\n");
                    e = tf_bss_run_museval(py, root, in, out, (int)threads);
                }
                if (e == TF_OK) e = tf_bss_read_scores(out, cases, n, ref);
            }
        }
        if (e == TF_OK)
            have_ref = 1;
        else
            snprintf(note, sizeof note, "museval unavailable: %s", tf_errmsg());
    } else {
        snprintf(note, sizeof note, "museval not run (--no_museval)");
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
            st = tf_err(TF_EINTERNAL, "bench metrics: out of memory");
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
        if (note[0]) cJSON_AddStringToObject(res, "note", note);
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
        } else {
            printf("%s\nspeed case (4 sources, stereo, %.0f s): ours %.3f s\n", note, seconds,
                   ours_mean);
        }
    }

done:
    if (have_ref)
        for (int i = 0; i < n; i++) tf_bss_scores_free(&ref[i]);
    for (int k = 0; k < have_ours; k++) tf_bss_scores_free(&ours[(k + ns) % n]);
    for (int i = 0; i < n; i++) tf_bss_case_free(&cases[i]);
    if (have_dir) unlink(in), unlink(out), rmdir(dir);
    return st == TF_OK ? 0 : cli_fail(st);
}
