/* The training loop on synthetic data with the tiny preset: it learns; resume is exact;
 * a non-finite step leaves weights and moments untouched; an interrupted checkpoint
 * write leaves the previous one loadable; the memory guide's command line runs end to
 * end. (2 MPI ranks = 1 rank with 2 accumulation steps: tests/test_mpi.c.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/index.h"
#include "data/loader.h"
#include "data/synth.h"
#include "model/model.h"
#include "test.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "train/validate.h"
#include "util/safetensors.h"

static char root[] = "/tmp/tfswa-train-XXXXXX";
static char data[300];
static char tfswa[1024]; /* the tfswa binary of this build */

static int base_cfg(tf_config *c, const char *out) {
    tf_config_defaults(c);
    if (tf_config_load_yaml(c, "configs/model/tiny.yaml")) return -1;
    snprintf(c->root, sizeof c->root, "%s", data);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", root, out);
    c->segment_seconds = 0.5;
    c->batch_size = 2;
    c->num_workers = 1;
    c->max_steps = 4;
    c->steps_per_epoch = 3; /* crosses an epoch boundary */
    c->log_every = 100;
    c->val_every = 0;
    c->ckpt_every = 0;
    c->num_threads = 2;
    c->seed = 7;
    return tf_config_validate(c) ? -1 : 0;
}

static const tf_dist single = {0, 1, 0};

/* Parameters, m and v of a run's last checkpoint. */
typedef struct {
    size_t n;
    float *p, *m, *v;
    tf_train_progress pr;
} snap;

static int load_snap(const tf_config *c, const char *which, snap *s) {
    char dir[TF_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/checkpoints/%s", c->output_dir, which);
    tf_model *m;
    if (tf_model_create(&m, c, 1, 4096, 1)) return -1;
    s->n = tf_model_get_plan(m)->n_params;
    s->p = malloc(sizeof(float) * s->n), s->m = malloc(sizeof(float) * s->n);
    s->v = malloc(sizeof(float) * s->n);
    tf_opt_state st = {s->n, s->m, s->v, NULL};
    int rc = tf_ckpt_load_weights(dir, m) || tf_ckpt_load_state(dir, &s->pr, &st) ? -1 : 0;
    memcpy(s->p, tf_model_params(m), sizeof(float) * s->n);
    tf_model_free(m);
    return rc;
}

static void free_snap(snap *s) {
    free(s->p), free(s->m), free(s->v);
}

static void test_short_run_learns(void) {
    tf_config c;
    CHECK(base_cfg(&c, "learn") == 0);
    c.max_steps = 24;
    c.learning_rate = 3e-3;
    c.val_every = 24;
    /* the untrained model, scored the same way */
    tf_index *ix;
    tf_model *m;
    tf_val_result v0, v1;
    CHECK(tf_index_open(&ix, &c, NULL) == TF_OK);
    CHECK(tf_model_create(&m, &c, c.batch_size, (int64_t)(c.segment_seconds * c.sample_rate), 2) ==
          TF_OK);
    CHECK(tf_validate(m, &c, ix, TF_SPLIT_VALID, &single, &v0) == TF_OK);
    CHECKF(tf_train_run(&c, &single) == TF_OK, "%s", tf_errmsg());
    char dir[TF_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/checkpoints/last", c.output_dir);
    CHECK(tf_ckpt_load_weights(dir, m) == TF_OK);
    CHECK(tf_validate(m, &c, ix, TF_SPLIT_VALID, &single, &v1) == TF_OK);
    for (int t = 0; t < c.n_targets; t++)
        CHECKF(v1.usdr[t] > v1.usdr_mixture[t], "%s: model %.2f dB vs mixture %.2f dB",
               c.targets[t], v1.usdr[t], v1.usdr_mixture[t]);
    CHECKF(v1.mean > v0.mean + 0.2, "mean uSDR %.3f dB after training vs %.3f before", v1.mean,
           v0.mean);
    /* metrics.jsonl: one line per log step and per validation */
    char path[TF_PATH_MAX + 64], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c.output_dir);
    FILE *f = fopen(path, "r");
    int logs = 0, vals = 0;
    while (f && fgets(line, sizeof line, f)) {
        logs += strstr(line, "\"samples_per_s\"") != NULL && strstr(line, "\"rss_bytes\"") != NULL;
        vals += strstr(line, "\"usdr\"") != NULL;
    }
    if (f) fclose(f);
    CHECK(logs >= 1 && vals == 1);
    tf_model_free(m);
    tf_index_close(ix);
}

static void test_plan_matches_loader(void) {
    tf_config c;
    CHECK(base_cfg(&c, "plan") == 0);
    c.num_workers = 3, c.prefetch_factor = 2;
    tf_train_plan p;
    CHECK(tf_train_plan_bytes(&p, &c, 2) == TF_OK);
    tf_index *ix;
    tf_loader *l;
    CHECK(tf_index_open(&ix, &c, NULL) == TF_OK);
    CHECK(tf_loader_open(&l, &c, ix, 1) == TF_OK);
    tf_loader_counters k;
    tf_loader_stats(l, &k);
    CHECKF(k.batch_bytes == p.loader, "loader allocates %zu, plan says %zu", k.batch_bytes,
           p.loader);
    CHECK(p.total == p.model.total + p.optimizer + p.loader + p.validation + p.trainer);
    tf_loader_close(l);
    tf_index_close(ix);
}

static void test_resume_is_exact(void) {
    tf_config a, b;
    CHECK(base_cfg(&a, "straight") == 0 && base_cfg(&b, "resumed") == 0);
    a.max_steps = 4;
    CHECK(tf_train_run(&a, &single) == TF_OK);
    b.max_steps = 4;
    tf_train_stop_after = 2; /* "killed" after 2 steps: only the checkpoint of step 2 */
    b.ckpt_every = 2;
    CHECK(tf_train_run(&b, &single) == TF_OK);
    tf_train_stop_after = 0;
    snprintf(b.resume, sizeof b.resume, "%s", b.output_dir);
    CHECK(tf_train_run(&b, &single) == TF_OK);
    snap sa, sb;
    CHECK(load_snap(&a, "last", &sa) == 0 && load_snap(&b, "last", &sb) == 0);
    CHECK(sa.pr.step == 4 && sb.pr.step == 4);
    CHECK(memcmp(sa.p, sb.p, sizeof(float) * sa.n) == 0);
    CHECK(memcmp(sa.m, sb.m, sizeof(float) * sa.n) == 0);
    CHECK(memcmp(sa.v, sb.v, sizeof(float) * sa.n) == 0);
    free_snap(&sa), free_snap(&sb);
}

static void test_nonfinite_step_is_skipped(void) {
    tf_config a, b;
    CHECK(base_cfg(&a, "one") == 0 && base_cfg(&b, "nan") == 0);
    a.max_steps = 1;
    b.max_steps = 2;
    CHECK(tf_train_run(&a, &single) == TF_OK);
    tf_train_inject_nan_step = 1; /* the second step's loss is NaN */
    CHECK(tf_train_run(&b, &single) == TF_OK);
    tf_train_inject_nan_step = -1;
    snap sa, sb;
    CHECK(load_snap(&a, "last", &sa) == 0 && load_snap(&b, "last", &sb) == 0);
    CHECK(sb.pr.skipped == 1 && sb.pr.updates == 1 && sb.pr.step == 2);
    CHECK(memcmp(sa.p, sb.p, sizeof(float) * sa.n) == 0); /* weights untouched */
    CHECK(memcmp(sa.m, sb.m, sizeof(float) * sa.n) == 0); /* moments untouched */
    CHECK(memcmp(sa.v, sb.v, sizeof(float) * sa.n) == 0);
    free_snap(&sa), free_snap(&sb);
    /* N in a row stops the run with a clear message */
    tf_config c;
    CHECK(base_cfg(&c, "nan2") == 0);
    c.max_steps = 5, c.max_bad_steps = 1;
    tf_train_inject_nan_step = 0;
    CHECK(tf_train_run(&c, &single) == TF_EUSER && strstr(tf_errmsg(), "non-finite") != NULL);
    tf_train_inject_nan_step = -1;
}

static void test_mrstft_loss_runs(void) {
    tf_config c;
    CHECK(base_cfg(&c, "mrstft") == 0);
    c.max_steps = 2;
    c.loss = TF_LOSS_MRSTFT;
    CHECKF(tf_train_run(&c, &single) == TF_OK, "%s", tf_errmsg());
    snap s;
    CHECK(load_snap(&c, "last", &s) == 0 && s.pr.updates == 2);
    free_snap(&s);
}

static void test_interrupted_checkpoint_keeps_previous(void) {
    tf_config c;
    CHECK(base_cfg(&c, "crash") == 0);
    c.max_steps = 1;
    CHECK(tf_train_run(&c, &single) == TF_OK);
    snap s1;
    CHECK(load_snap(&c, "last", &s1) == 0);
    snprintf(c.resume, sizeof c.resume, "%s", c.output_dir);
    c.max_steps = 2;
    tf_ckpt_fail_before_swap = 1; /* the step-2 checkpoint write dies before the swap */
    CHECK(tf_train_run(&c, &single) != TF_OK);
    tf_ckpt_fail_before_swap = 0;
    snap s2;
    CHECK(load_snap(&c, "last", &s2) == 0); /* still loadable: the step-1 checkpoint */
    CHECK(s2.pr.step == 1 && memcmp(s1.p, s2.p, sizeof(float) * s1.n) == 0);
    free_snap(&s1), free_snap(&s2);
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_guide_command_line(void) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "%s train --data_root %s --batch_size 4 --segment_seconds 6.0 --n_fft 2048 "
             "--hop_length 512 --use_efficient_loading --min_mean_abs 0.001 --persistent_workers "
             "--prefetch_factor 2 --num_workers 4 --preset tiny --max_steps 1 --num_threads 2 "
             "--output_dir %s/guide > %s/guide.log 2>&1",
             tfswa, data, root, root);
    CHECKF(run_cmd(cmd) == 0, "%s", cmd);
    char path[400];
    snprintf(path, sizeof path, "%s/guide/config.yaml", root);
    tf_config c;
    tf_config_defaults(&c);
    CHECK(tf_config_load_yaml(&c, path) == TF_OK);
    CHECK(c.batch_size == 4 && c.segment_seconds == 6.0 && c.num_workers == 4 &&
          c.min_mean_abs == 0.001);
    snprintf(path, sizeof path, "%s/guide/checkpoints/last/model.safetensors", root);
    CHECK(access(path, R_OK) == 0);
    /* --resume RUN alone continues with the run's own config.yaml */
    snprintf(cmd, sizeof cmd, "%s train --resume %s/guide --max_steps 2 > %s/guide2.log 2>&1",
             tfswa, root, root);
    CHECKF(run_cmd(cmd) == 0, "%s", cmd);
    tf_config g;
    tf_config_defaults(&g);
    snprintf(path, sizeof path, "%s/guide/config.yaml", root);
    CHECK(tf_config_load_yaml(&g, path) == TF_OK && g.batch_size == 4 && g.max_steps == 2);
    snap s = {0};
    CHECK(load_snap(&g, "last", &s) == 0 && s.pr.step == 2);
    free_snap(&s);
    /* an unknown flag is one clear error with exit status 2 */
    snprintf(cmd, sizeof cmd, "%s train --data_root %s --batch_sise 4 2> %s/bad.log", tfswa, data,
             root);
    CHECK(run_cmd(cmd) == 2);
}

int main(void) {
    if (!mkdtemp(root) || test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    snprintf(data, sizeof data, "%s/data", root);
    tf_synth_opts o;
    tf_synth_defaults(&o);
    o.train_tracks = 5, o.test_tracks = 1, o.seconds = 4, o.seed = 11;
    if (tf_synth_dataset(data, &o)) {
        fprintf(stderr, "synth: %s\n", tf_errmsg());
        return 1;
    }
    RUN(test_short_run_learns);
    RUN(test_plan_matches_loader);
    RUN(test_resume_is_exact);
    RUN(test_nonfinite_step_is_skipped);
    RUN(test_mrstft_loss_runs);
    RUN(test_interrupted_checkpoint_keeps_previous);
    RUN(test_guide_command_line);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return TEST_END();
}
