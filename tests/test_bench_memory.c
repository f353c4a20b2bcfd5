/* `tfswa bench memory --json` on the tiny preset: 8 configurations (STFT 4096/1024 and
 * 2048/441 x checkpointing off/blocks x fp32/amp), each in its own process running real
 * training steps and a validation. Checks:
 *  - every configuration ran, and its plan roles add up to its total;
 *  - the measured growth of the process is at least the plan (every planned byte is
 *    used: a plan larger than what training touches fails here) and at most the plan plus
 *    16 MiB, the bound on what the plan leaves out (library code and buffers: measured
 *    11-13 MiB on a 2-core AVX2 machine; a role left out of the plan, or one that grows
 *    with the configuration, fails here), and varies by at most 3 MiB between
 *    configurations (measured 1 MiB: a role whose plan is off by a share shows as spread);
 *  - checkpointing and amp each store fewer activation bytes;
 *  - results.activation_ratio_naive_vs_optimized is the ratio of the two configurations'
 *    activation bytes per audio second;
 *  - bad flags are user errors (exit 2).
 * Under AddressSanitizer the resident set includes shadow memory: the bounds are not
 * checked there (the rest is). */
#include <cJSON.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static char tfswa[PATH_MAX + 16];

static double num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : "";
}

/* the configuration with these settings, or NULL */
static const cJSON *find(const cJSON *arr, int nfft, const char *ck, const char *prec) {
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        if (num(c, "n_fft") == nfft && !strcmp(str(c, "checkpointing"), ck) &&
            !strcmp(str(c, "precision"), prec))
            return c;
    }
    return NULL;
}

static void test_json(void) {
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd,
             "%s bench memory --json --stft 4096/1024,2048/441 --segments 0.5 --steps 2 "
             "--threads 2",
             tfswa);
    int status = -1;
    char *out = test_run_capture(cmd, &status);
    CHECKF(status == 0, "exit status %d", status);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    CHECKF(j != NULL, "not JSON: %.300s", out ? out : "(null)");
    free(out);
    if (!j) return;
    CHECK(!strcmp(str(j, "bench"), "memory"));
    CHECK(strstr(str(j, "machine"), "cpus") != NULL);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "results");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "configs");
    CHECK(cJSON_GetArraySize(arr) == 8 && num(r, "failed") == 0);
    static const char *const roles[] = {"parameters", "gradients",   "buffers",
                                        "optimizer",  "activations", "workspace",
                                        "loader",     "validation",  "trainer"};
    const cJSON *c;
    int bad_sum = 0, bad_bound = 0;
    double un_min = INFINITY, un_max = -INFINITY;
    cJSON_ArrayForEach(c, arr) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "plan");
        double sum = 0;
        for (size_t i = 0; i < sizeof roles / sizeof *roles; i++) sum += num(p, roles[i]);
        bad_sum += !(sum == num(p, "total") && sum > 0);
        const double un = num(c, "unplanned_bytes");
        printf("  %-24s plan %6.1f MiB, measured %6.1f MiB, unplanned %5.1f MiB, step %.3f s\n",
               str(c, "name"), num(p, "total") / 1048576.0, num(c, "measured_bytes") / 1048576.0,
               un / 1048576.0, num(c, "step_s"));
        CHECK(num(c, "step_s") > 0);
        un_min = fmin(un_min, un), un_max = fmax(un_max, un);
        if (!UNDER_ASAN && !(un >= 0 && un <= 16.0 * 1048576.0)) {
            bad_bound++;
            printf("    outside [plan, plan + 16 MiB]\n");
        }
    }
    CHECK(bad_sum == 0);
    CHECKF(bad_bound == 0, "%d configurations outside [plan, plan + 16 MiB]", bad_bound);
    /* what the plan leaves out does not grow with the configuration */
    CHECKF(UNDER_ASAN || un_max - un_min <= 3.0 * 1048576.0, "unplanned bytes vary by %.1f MiB",
           (un_max - un_min) / 1048576.0);
    for (int w = 0; w < 2; w++) {
        const int nfft = w ? 2048 : 4096;
        const cJSON *of = find(arr, nfft, "off", "fp32"), *oa = find(arr, nfft, "off", "amp");
        const cJSON *bf = find(arr, nfft, "blocks", "fp32"), *ba = find(arr, nfft, "blocks", "amp");
        CHECK(of && oa && bf && ba);
        if (!(of && oa && bf && ba)) continue;
        const char *k = "activation_bytes_per_audio_second";
        CHECK(num(bf, k) < num(of, k) && num(ba, k) < num(oa, k)); /* checkpointing */
        CHECK(num(oa, k) < num(of, k) && num(ba, k) < num(bf, k)); /* amp */
    }
    const cJSON *naive = find(arr, 4096, "off", "fp32"), *opt = find(arr, 2048, "blocks", "amp");
    if (naive && opt) {
        const char *k = "activation_bytes_per_audio_second";
        const double want = num(naive, k) / num(opt, k);
        const double got = num(r, "activation_ratio_naive_vs_optimized");
        printf("  activation ratio naive/optimized %.3f\n", got);
        CHECKF(fabs(got - want) <= 1e-9 * want && got > 1, "%g vs %g", got, want);
    }
    cJSON_Delete(j);
}

static void test_bad_flags(void) {
    static const char *const bad[] = {"--segments 0",     "--stft 2048",         "--stft 2048/4096",
                                      "--precision fp16", "--checkpointing all", "--steps 1",
                                      "--no_such_flag 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char cmd[PATH_MAX + 128];
        snprintf(cmd, sizeof cmd, "%s bench memory %s 2>/dev/null", tfswa, bad[i]);
        int status = -1;
        free(test_run_capture(cmd, &status));
        CHECKF(status == 2, "'%s': exit status %d", bad[i], status);
    }
}

int main(void) {
    if (test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    RUN(test_bad_flags);
    RUN(test_json);
    return TEST_END();
}
