/* `tfswa bench step --json`: runs the CLI (the tfswa next to this test's build folder) on
 * the tiny preset and checks the JSON contract: bench "step", the four tiny variants with
 * positive finite timings, the memory plan of each (checkpointing blocks stores fewer
 * activation bytes than off, bf16 fewer than fp32), the same first-step loss whatever
 * the memory variant (they compute the same function), ratios consistent with the
 * variants, and that a bad flag is a user error (exit 2). OMP_WAIT_POLICY=passive: on a
 * machine shared with other jobs, spinning OpenMP threads make a step several times
 * slower (this test checks the contract, not the speed). */
#include <cJSON.h>
#include <limits.h>
#include <unistd.h>

#include "test.h"
#include "train/step.h"
#include "train/train.h"
#include "util/rng.h"

static char tfswa[PATH_MAX + 16];

static double num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

typedef struct {
    const float *mix, *target;
    int B;
    int64_t N;
} fixed_io;

static tf_status fixed(void *ctx, tf_micro_batch *mb) {
    const fixed_io *io = ctx;
    mb->mix = io->mix, mb->target = io->target, mb->B = io->B, mb->N = io->N;
    return TF_OK;
}

static void test_json(void) {
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd,
             "OMP_WAIT_POLICY=passive %s bench step --json --presets tiny --seconds 0.5 --batch 1 "
             "--rounds 1 --iters 1 "
             "--threads 2",
             tfswa);
    int status;
    char *out = test_run_capture(cmd, &status);
    CHECKF(out && status == 0, "%s exited %d", cmd, status);
    if (!out) return;
    cJSON *j = cJSON_Parse(out);
    CHECKF(j != NULL, "not JSON: %.200s", out);
    free(out);
    if (!j) return;
    const cJSON *bench = cJSON_GetObjectItemCaseSensitive(j, "bench");
    CHECK(cJSON_IsString(bench) && !strcmp(bench->valuestring, "step"));
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "machine")));
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
    CHECK(num(cfg, "batch") == 1 && num(cfg, "rounds") == 1 && num(cfg, "iters") == 1);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_IsObject(res));
    static const char *const names[4] = {"tiny/fp32/off", "tiny/fp32/blocks", "tiny/bf16/off",
                                         "tiny/bf16/blocks"};
    double act[4], total[4], loss[4], ms[4];
    for (int v = 0; v < 4; v++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(res, names[v]);
        CHECKF(cJSON_IsObject(o), "no results.%s", names[v]);
        ms[v] = num(o, "ms_per_sample");
        CHECKF(isfinite(ms[v]) && ms[v] > 0, "%s ms_per_sample %g", names[v], ms[v]);
        CHECK(num(o, "ms_per_step_min") <= num(o, "ms_per_step"));
        CHECK(num(o, "samples_per_s") > 0 && isfinite(num(o, "samples_per_s")));
        CHECK(num(o, "nonfinite_steps") == 0);
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(o, "bytes");
        act[v] = num(by, "activations");
        total[v] = num(by, "total");
        CHECK(act[v] > 0 && num(by, "params") > 0 && num(by, "params") == num(by, "grads"));
        CHECK(total[v] >= num(by, "params") + num(by, "grads") + act[v] + num(by, "workspace"));
        loss[v] = num(o, "loss_step1");
        CHECK(isfinite(loss[v]) && loss[v] > 0);
    }
    CHECKF(act[1] < act[0], "blocks %g vs off %g activation bytes (fp32)", act[1], act[0]);
    CHECKF(act[3] < act[2], "blocks %g vs off %g activation bytes (bf16)", act[3], act[2]);
    CHECKF(act[2] < act[0], "bf16 %g vs fp32 %g activation bytes (off)", act[2], act[0]);
    CHECKF(act[3] < act[1], "bf16 %g vs fp32 %g activation bytes (blocks)", act[3], act[1]);
    /* checkpointing recomputes exactly: same loss; bf16 rounds only saved tensors, and the
     * first loss comes from the forward before any rounding reaches the parameters */
    CHECK(loss[1] == loss[0] && loss[3] == loss[2]);
    CHECK_NEAR(loss[2], loss[0], 1e-2);
    const cJSON *r =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "ratios"), "tiny");
    CHECK(cJSON_IsObject(r));
    CHECK_NEAR(num(r, "checkpointing_bytes"), total[1] / total[0], 1e-12);
    CHECK_NEAR(num(r, "bf16_bytes"), total[2] / total[0], 1e-12);
    CHECK(num(r, "checkpointing_time") > 0 && num(r, "bf16_time") > 0);
    CHECK(num(res, "peak_rss_bytes") > total[0] / 4);
    cJSON_Delete(j);
}

static void test_one_variant_and_errors(void) {
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd,
             "OMP_WAIT_POLICY=passive %s bench step --json --presets tiny --variant bf16/blocks "
             "--seconds 0.3 --batch 1 "
             "--rounds 1 --iters 1 --threads 2 --targets vocals",
             tfswa);
    int status;
    char *out = test_run_capture(cmd, &status);
    CHECKF(out && status == 0, "%s exited %d", cmd, status);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    free(out);
    CHECK(j != NULL);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(res, "tiny/bf16/blocks")));
    CHECK(!cJSON_GetObjectItemCaseSensitive(res, "tiny/fp32/off"));
    CHECK(num(cJSON_GetObjectItemCaseSensitive(j, "config"), "targets") == 1);
    cJSON_Delete(j);

    static const char *const bad[] = {"--variant fp16/off", "--presets tiny,nosuch", "--batch 0",
                                      "--checkpointing blocks", "--no_such_key 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s bench step --presets tiny %s 2>/dev/null", tfswa, bad[i]);
        out = test_run_capture(cmd, &status);
        CHECKF(status == 2, "%s: exit %d, expected 2", bad[i], status);
        CHECKF(out && !*out, "%s: printed %s", bad[i], out ? out : "");
        free(out);
    }
}

/* bench step runs the trainer's step: its first two losses (before and after one update
 * with clipping and Adam) equal those of tf_train_step, the function the training loop
 * calls, on the same model, fixed batch (bench's seeds) and config. A bench with its own
 * step that forgot clipping, used another learning rate or step count, or another loss
 * gives a different second loss. */
static void test_matches_trainer_step(void) {
    char cmd[PATH_MAX + 256];
    const char *flags = "--grad_clip 0.001 --learning_rate 0.01";
    snprintf(cmd, sizeof cmd,
             "OMP_WAIT_POLICY=passive %s bench step --json --presets tiny --variant fp32/off "
             "--seconds 0.3 --batch 1 --rounds 1 --iters 1 --threads 2 %s",
             tfswa, flags);
    int status;
    char *out = test_run_capture(cmd, &status);
    CHECKF(out && status == 0, "%s exited %d", cmd, status);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    free(out);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "results"), "tiny/fp32/off");
    const double b1 = num(o, "loss_step1"), b2 = num(o, "loss_step2");
    cJSON_Delete(j);
    /* the same step in-process */
    tf_config c;
    tf_config_defaults(&c);
    char *av[] = {"bench", "--preset", "tiny", "--grad_clip", "0.001", "--learning_rate", "0.01"};
    CHECK(tf_config_parse_args(&c, 7, av, NULL) == TF_OK);
    c.num_threads = 2;
    const int B = 1;
    const int64_t N = (int64_t)llround(0.3 * c.sample_rate);
    const size_t nin = (size_t)B * 2 * N, nout = (size_t)B * c.n_targets * 2 * N;
    float *mix = malloc(nin * sizeof(float)), *tgt = malloc(nout * sizeof(float));
    tf_rng r;
    tf_rng_seed(&r, 0x5eed, 1, 0, 0);
    for (size_t i = 0; i < nin; i++) mix[i] = (float)tf_rng_range(&r, -0.25, 0.25);
    tf_rng_seed(&r, 0x5eed, 2, 0, 0);
    for (size_t i = 0; i < nout; i++) tgt[i] = (float)tf_rng_range(&r, -0.1, 0.1);
    const tf_model_config mc = tf_train_model_config(&c);
    const tf_dist one = TF_DIST_SINGLE;
    tf_model *m = NULL;
    tf_trainer *t = NULL;
    CHECK(tf_model_create(&m, &mc, B, N, 2) == TF_OK);
    CHECK(m && tf_trainer_open(&t, &c, &one, m, N) == TF_OK);
    fixed_io io = {mix, tgt, B, N};
    int64_t updates = 0;
    tf_step_result s1 = {0}, s2 = {0};
    CHECK(t && tf_train_step(t, 0, &updates, fixed, &io, &s1) == TF_OK);
    CHECK(t && tf_train_step(t, 1, &updates, fixed, &io, &s2) == TF_OK);
    CHECK(s1.applied && s2.applied && updates == 2);
    CHECK(s1.grad_norm > 0.001); /* the clipping is active */
    CHECKF(fabs(b1 - s1.loss) <= 1e-9 * s1.loss, "first loss: bench %.12g, trainer %.12g", b1,
           s1.loss);
    CHECKF(fabs(b2 - s2.loss) <= 1e-9 * s2.loss, "second loss: bench %.12g, trainer %.12g", b2,
           s2.loss);
    CHECKF(fabs(s2.loss - s1.loss) > 1e-6 * s1.loss, "the update changed the loss: %.12g %.12g",
           s1.loss, s2.loss);
    tf_trainer_close(t);
    tf_model_free(m);
    free(mix), free(tgt);
}

int main(void) {
    if (test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    RUN(test_json);
    RUN(test_one_variant_and_errors);
    RUN(test_matches_trainer_step);
    return TEST_END();
}
