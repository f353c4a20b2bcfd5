/* Crash safety of training. `tfswa bench faults --kills 3 --json` (the tfswa of this
 * build) kills a tiny training run once inside a step, once inside a validation and once
 * in the middle of a checkpoint write, resumes it each time, and must report: every
 * resume worked, no checkpoint on disk fails to load, at most ckpt_every steps lost per
 * kill, each phase hit, and final weights bitwise equal to an uninterrupted run's. Then
 * the checkpoint writer's cleanup: the leftovers of a killed writer (a "<dir>.tmp-<pid>"
 * and a "<dir>.old-<pid>" of a process that no longer runs) are removed by the next write,
 * a live process's are kept. OMP_WAIT_POLICY=passive: the machine may be shared. */
#include <cJSON.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "test.h"
#include "train/train.h"
#include "util/config.h"
#include "util/fsutil.h"

static char tfswa[PATH_MAX + 16];

static double num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void test_three_kills(void) {
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive %s bench faults --kills 3 --seed 2 --json",
             tfswa);
    int status;
    char *out = test_run_capture(cmd, &status);
    CHECKF(out && status == 0, "%s exited %d", cmd, status);
    if (!out) return;
    cJSON *j = cJSON_Parse(out);
    CHECKF(j != NULL, "not JSON: %.300s", out);
    free(out);
    if (!j) return;
    const cJSON *bench = cJSON_GetObjectItemCaseSensitive(j, "bench");
    CHECK(cJSON_IsString(bench) && !strcmp(bench->valuestring, "faults"));
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "machine")));
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "results");
    const double ckpt_every = num(r, "ckpt_every");
    CHECKF(num(r, "kills") == 3, "kills %g", num(r, "kills"));
    CHECKF(num(r, "resumed") == 3, "resumed %g", num(r, "resumed"));
    CHECKF(num(r, "corrupt_checkpoints") == 0, "corrupt %g", num(r, "corrupt_checkpoints"));
    CHECK(num(r, "checkpoints_verified") >= 3);
    CHECKF(ckpt_every >= 1 && num(r, "max_steps_lost") <= ckpt_every, "lost %g, ckpt_every %g",
           num(r, "max_steps_lost"), ckpt_every);
    CHECK(num(r, "resume_step_mismatches") == 0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "final_equals_uninterrupted")));
    /* a killed writer's leftovers are cleaned up by the next write */
    CHECKF(num(r, "tmp_left_after_finish") == 0 && num(r, "old_left_after_finish") == 0,
           "left: %g tmp, %g old", num(r, "tmp_left_after_finish"),
           num(r, "old_left_after_finish"));
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(r, "kills_by_phase");
    CHECKF(num(ph, "step") >= 1 && num(ph, "validate") >= 1 && num(ph, "ckpt_write") >= 1,
           "by phase: step %g, validate %g, ckpt_write %g", num(ph, "step"), num(ph, "validate"),
           num(ph, "ckpt_write"));
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(r, "events");
    CHECK(cJSON_GetArraySize(ev) == 3);
    cJSON_Delete(j);
}

static void test_bad_flags(void) {
    char cmd[PATH_MAX + 256];
    int status;
    snprintf(cmd, sizeof cmd, "%s bench faults --kills 0 2>/dev/null", tfswa);
    free(test_run_capture(cmd, &status));
    CHECK(status == 2);
    snprintf(cmd, sizeof cmd, "%s bench faults --nope 2>/dev/null", tfswa);
    free(test_run_capture(cmd, &status));
    CHECK(status == 2);
}

/* A PID that no longer runs: a child that has exited and been waited for. */
static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    int ws;
    waitpid(p, &ws, 0);
    return (long)p;
}

/* The folder dir holding one file (a leftover is never empty: rename(2) would replace an
 * empty folder). 0 or -1. */
static int put_file(const char *dir) {
    char f[PATH_MAX + 32];
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    FILE *o = tf_mkdirs(dir) == TF_OK ? fopen(f, "w") : NULL;
    return o && fputs("x", o) >= 0 && fclose(o) == 0 ? 0 : -1;
}

static void test_writer_removes_stale_leftovers(void) {
    char root[] = "/tmp/tfswa-faults-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    tf_config c;
    tf_config_defaults(&c);
    CHECK(tf_config_load_yaml(&c, "configs/model/tiny.yaml") == TF_OK);
    tf_model_config mc = tf_train_model_config(&c);
    mc.threads = 1;
    tf_model *m = NULL;
    CHECK(tf_model_create_mode(&m, &mc, 1, 4096, 1, TF_MODEL_INFER) == TF_OK);
    if (!m) return;
    tf_ckpt_info info;
    memset(&info, 0, sizeof info);
    info.model = mc, info.sample_rate = 44100, info.segment_seconds = 1;
    for (int t = 0; t < mc.n_targets; t++) snprintf(info.targets[t], TF_NAME_MAX, "t%d", t);
    char dir[PATH_MAX], p[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/last", root);
    CHECK(tf_ckpt_write(dir, m, &info, 1, NULL, NULL) == TF_OK);
    const long dead = dead_pid(), live = (long)getppid();
    const char *kinds[4] = {"tmp", "old", "tmp", "old"};
    const long pids[4] = {dead, dead, live, live};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s.%s-%ld", dir, kinds[i], pids[i]);
        CHECK(put_file(p) == 0);
    }
    CHECK(tf_ckpt_write(dir, m, &info, 2, NULL, NULL) == TF_OK);
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s.%s-%ld", dir, kinds[i], pids[i]);
        CHECKF(tf_path_exists(p) == (pids[i] == live), "%s", p);
        if (pids[i] == live) CHECK(tf_remove_tree(p) == TF_OK);
    }
    /* a ".old-" of this very PID (a process killed earlier had it: PIDs are used again,
     * a container's first process is always the same) does not stop the next write */
    snprintf(p, sizeof p, "%s.old-%ld", dir, (long)getpid());
    CHECK(put_file(p) == 0);
    CHECKF(tf_ckpt_write(dir, m, &info, 2, NULL, NULL) == TF_OK, "%s", tf_errmsg());
    CHECK(!tf_path_exists(p));
    /* a crash between the renames left only "<dir>.old-<dead>": it is found, then the
     * next write puts dir in place and removes it */
    char found[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s.old-%ld", dir, dead);
    CHECK(rename(dir, p) == 0);
    CHECK(tf_ckpt_find(dir, found, sizeof found) == TF_OK && !strcmp(found, p));
    CHECK(tf_ckpt_write(dir, m, &info, 3, NULL, NULL) == TF_OK);
    CHECK(!tf_path_exists(p) && tf_ckpt_find(dir, found, sizeof found) == TF_OK &&
          !strcmp(found, dir));
    tf_model_free(m);
    CHECK(tf_remove_tree(root) == TF_OK);
}

int main(void) {
    if (test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    RUN(test_writer_removes_stale_leftovers);
    RUN(test_bad_flags);
    RUN(test_three_kills);
    return TEST_END();
}
