/* The training loop on synthetic data with the tiny preset: it learns; resume is exact;
 * a non-finite step leaves weights and moments untouched; an interrupted checkpoint
 * write leaves the previous one loadable; the memory guide's command line runs end to
 * end; the library never prints (events go to the callback); a checkpoint rebuilds its
 * model from model.json alone. (2 MPI ranks = 1 rank with 2 accumulation steps:
 * tests/test_mpi.c.) */
#include <cJSON.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/index.h"
#include "data/loader.h"
#include "data/synth.h"
#include "model/model.h"
#include "nn/kernels.h"
#include "test.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "train/validate.h"
#include "util/fsutil.h"
#include "util/safetensors.h"

/* the model input of a config (a pointer to a temporary) */
#define MC(c) ((const tf_model_config[]){tf_train_model_config(c)})

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

static const tf_dist single = TF_DIST_SINGLE;

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
    if (tf_model_create(&m, MC(c), 1, 4096, 1)) return -1;
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
    CHECK(tf_model_create(&m, MC(&c), c.batch_size, (int64_t)(c.segment_seconds * c.sample_rate),
                          2) == TF_OK);
    CHECK(tf_validate(m, &c, ix, TF_SPLIT_VALID, &single, &v0) == TF_OK);
    CHECKF(tf_train_run(&c, &single, NULL, NULL) == TF_OK, "%s", tf_errmsg());
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

/* Validation through a training model keeps its buffers in the model's idle arena (the
 * plan counts no validation bytes) and scores exactly what an inference model with the
 * same weights scores with allocated buffers: buffers that overlapped the eval forward's
 * part of the arena would be overwritten by it and change the scores. A training model's
 * eval forward runs one chunk at a time, so the inference model gets batches of 1 (the
 * same sgemm shapes). The scores agree to 1e-9 (relative), not bitwise: the training
 * model's convolutions are oneDNN training primitives, which may round differently from
 * inference primitives in the last bit; a corrupted buffer changes them far more. */
static void test_validation_in_arena(void) {
    tf_config c;
    CHECK(base_cfg(&c, "valarena") == 0);
    const int64_t N = (int64_t)(c.segment_seconds * c.sample_rate);
    tf_index *ix = NULL;
    tf_model *mt = NULL, *mi = NULL;
    CHECK(tf_index_open(&ix, &c, NULL) == TF_OK);
    CHECK(tf_model_create(&mt, MC(&c), c.batch_size, N, 2) == TF_OK);
    tf_config c1 = c;
    c1.batch_size = 1;
    CHECK(c.batch_size > 1); /* the training model's batch is split into items */
    CHECK(tf_model_create_mode(&mi, MC(&c1), 1, N, 2, TF_MODEL_INFER) == TF_OK);
    if (!ix || !mt || !mi) goto out;
    /* trained-looking weights: the same random ones in both */
    memcpy(tf_model_params(mi), tf_model_params(mt),
           tf_model_get_plan(mt)->n_params * sizeof(float));
    size_t spare = 0, ispare = 0;
    unsigned char *mem = tf_model_spare(mt, &spare);
    CHECK(tf_model_spare(mi, &ispare) == NULL && ispare == 0);
    const size_t need = tf_val_arena_bytes(&c, c.n_sources);
    printf("  spare arena %zu bytes >= validation %zu bytes (plan-side bound %zu)\n", spare, need,
           tf_model_spare_bytes(tf_model_get_plan(mt)));
    CHECK(mem && spare >= need && spare >= tf_model_spare_bytes(tf_model_get_plan(mt)));
    tf_train_plan p;
    CHECK(tf_train_plan_bytes(&p, &c, 2) == TF_OK && p.validation == 0);
    /* poison the spare bytes: validation must initialise whatever it reads there */
    memset(mem, 0xff, spare);
    tf_val_result vt, vi;
    CHECK(tf_validate(mt, &c, ix, TF_SPLIT_VALID, &single, &vt) == TF_OK);
    CHECK(tf_validate(mi, &c1, ix, TF_SPLIT_VALID, &single, &vi) == TF_OK);
    CHECK(vt.tracks == vi.tracks && vt.tracks > 0);
    for (int t = 0; t < c.n_targets; t++)
        CHECKF(fabs(vt.usdr[t] - vi.usdr[t]) <= 1e-9 * fmax(1.0, fabs(vi.usdr[t])) &&
                   vt.usdr_mixture[t] == vi.usdr_mixture[t],
               "%s: %.17g vs %.17g dB (mixture %.17g vs %.17g)", c.targets[t], vt.usdr[t],
               vi.usdr[t], vt.usdr_mixture[t], vi.usdr_mixture[t]);
out:
    tf_model_free(mt);
    tf_model_free(mi);
    tf_index_close(ix);
}

/* Mean validation uSDR of the last checkpoint of a 24-step run of c (into out). */
static double train_24_usdr(tf_config c, const char *out) {
    snprintf(c.output_dir, sizeof c.output_dir, "%s/%s", root, out);
    c.max_steps = 24;
    c.learning_rate = 3e-3;
    c.val_every = 0;
    tf_index *ix = NULL;
    tf_model *m = NULL;
    tf_val_result v;
    double r = NAN;
    if (tf_index_open(&ix, &c, NULL) != TF_OK) return r;
    CHECKF(tf_train_run(&c, &single, NULL, NULL) == TF_OK, "%s: %s", out, tf_errmsg());
    char dir[TF_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/checkpoints/last", c.output_dir);
    /* scored in fp32 on the default backend, like any checkpoint */
    c.backend = TF_BACKEND_DNNL;
    c.compute_dtype = c.activation_dtype = TF_DT_FP32;
    tf_status s =
        tf_model_create(&m, MC(&c), c.batch_size, (int64_t)(c.segment_seconds * c.sample_rate), 2);
    if (s == TF_OK) s = tf_ckpt_load_weights(dir, m);
    if (s == TF_OK) s = tf_validate(m, &c, ix, TF_SPLIT_VALID, &single, &v);
    CHECKF(s == TF_OK, "%s: %s", out, tf_errmsg());
    if (s == TF_OK) r = v.mean;
    tf_model_free(m);
    tf_index_close(ix);
    return r;
}

/* --use_amp (bf16 activations and bf16 arithmetic) trains as well as fp32: within 0.3 dB of
 * the fp32 run's validation uSDR after the same 24 steps. The bf16 arithmetic is the ref
 * backend's emulation (the numerics of native bf16 on any CPU) and, where this CPU has
 * native bf16, oneDNN's too. */
static void test_bf16_arithmetic_trains(void) {
    tf_config c;
    CHECK(base_cfg(&c, "amp") == 0);
    const double fp32 = train_24_usdr(c, "amp-fp32");
    tf_config b = c;
    b.activation_dtype = b.compute_dtype = TF_DT_BF16;
    b.backend = TF_BACKEND_REF;
    const double emu = train_24_usdr(b, "amp-bf16-ref");
    printf("  24 steps: validation uSDR fp32 %.3f dB, bf16 (emulated) %.3f dB\n", fp32, emu);
    CHECKF(fabs(emu - fp32) <= 0.3, "bf16 emulated %.3f dB vs fp32 %.3f dB", emu, fp32);
    if (tf_kernels_native_bf16(TF_BACKEND_DNNL)) {
        b.backend = TF_BACKEND_DNNL;
        const double nat = train_24_usdr(b, "amp-bf16-dnnl");
        printf("  bf16 (oneDNN, native) %.3f dB\n", nat);
        CHECKF(fabs(nat - fp32) <= 0.3, "bf16 native %.3f dB vs fp32 %.3f dB", nat, fp32);
    }
}

/* A dataset error found at start (here: no training tracks) leaves no run folder behind:
 * the data is checked before anything is written. */
static void test_failed_start_writes_nothing(void) {
    tf_config c;
    CHECK(base_cfg(&c, "never") == 0);
    char empty[400];
    snprintf(empty, sizeof empty, "%s/empty-root", root);
    CHECK(mkdir(empty, 0755) == 0);
    snprintf(c.root, sizeof c.root, "%s", empty);
    CHECK(tf_train_run(&c, &single, NULL, NULL) == TF_EUSER);
    struct stat sb;
    CHECKF(stat(c.output_dir, &sb) != 0, "%s exists after a failed start", c.output_dir);
}

/* While a run writes its folder, another tfswa train on it is refused naming the holder's
 * PID; a lock file left by a dead process (no flock held) is taken over. */
static void test_run_folder_lock(void) {
    tf_config c;
    CHECK(base_cfg(&c, "locked") == 0);
    c.max_steps = 1;
    CHECK(tf_mkdirs(c.output_dir) == TF_OK);
    char lock[TF_PATH_MAX + 16];
    snprintf(lock, sizeof lock, "%s/.lock", c.output_dir);
    int f = open(lock, O_RDWR | O_CREAT, 0644);
    CHECK(f >= 0 && flock(f, LOCK_EX | LOCK_NB) == 0);
    CHECK(f >= 0 && write(f, "4242\n", 5) == 5);
    CHECK(tf_train_run(&c, &single, NULL, NULL) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "PID 4242") != NULL, "%s", tf_errmsg());
    char path[TF_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", c.output_dir);
    CHECKF(access(path, F_OK) != 0, "the refused run wrote %s", path);
    if (f >= 0) close(f); /* the holder dies: its flock goes, the file stays */
    CHECKF(tf_train_run(&c, &single, NULL, NULL) == TF_OK, "%s", tf_errmsg());
    char buf[32] = "";
    FILE *lf = fopen(lock, "r");
    CHECK(lf && fgets(buf, sizeof buf, lf));
    if (lf) fclose(lf);
    CHECKF(atol(buf) == (long)getpid(), "lock holds '%s'", buf);
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
    CHECK(tf_train_run(&a, &single, NULL, NULL) == TF_OK);
    b.max_steps = 4;
    tf_train_stop_after = 2; /* "killed" after 2 steps: only the checkpoint of step 2 */
    b.ckpt_every = 2;
    CHECK(tf_train_run(&b, &single, NULL, NULL) == TF_OK);
    tf_train_stop_after = 0;
    snprintf(b.resume, sizeof b.resume, "%s", b.output_dir);
    CHECK(tf_train_run(&b, &single, NULL, NULL) == TF_OK);
    snap sa, sb;
    CHECK(load_snap(&a, "last", &sa) == 0 && load_snap(&b, "last", &sb) == 0);
    CHECK(sa.pr.step == 4 && sb.pr.step == 4);
    CHECK(memcmp(sa.p, sb.p, sizeof(float) * sa.n) == 0);
    CHECK(memcmp(sa.m, sb.m, sizeof(float) * sa.n) == 0);
    CHECK(memcmp(sa.v, sb.v, sizeof(float) * sa.n) == 0);
    free_snap(&sa), free_snap(&sb);
}

static void on_resume(void *user, const tf_train_event *e) {
    if (e->kind == TF_TRAIN_EV_RESUMED) *(int *)user = e->path ? 1 : 2;
}

/* Killed before its first checkpoint: --resume starts the run over from step 0 (and says
 * so) and ends as an uninterrupted run does; a checkpoint that exists but cannot be read
 * is still an error, never a fresh start. */
static void test_resume_before_first_checkpoint(void) {
    tf_config a, b;
    CHECK(base_cfg(&a, "straight0") == 0 && base_cfg(&b, "early") == 0);
    a.max_steps = b.max_steps = 3;
    CHECK(tf_train_run(&a, &single, NULL, NULL) == TF_OK);
    tf_train_stop_after = 1; /* "killed" after step 1, before any checkpoint */
    b.ckpt_every = 0;
    CHECK(tf_train_run(&b, &single, NULL, NULL) == TF_OK);
    tf_train_stop_after = 0;
    char p[TF_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/checkpoints/last/model.safetensors", b.output_dir);
    CHECK(!tf_path_exists(p));
    snprintf(b.resume, sizeof b.resume, "%s", b.output_dir);
    int kind = 0;
    tf_status st = tf_train_run(&b, &single, on_resume, &kind);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(kind == 2);
    snap sa, sb;
    CHECK(load_snap(&a, "last", &sa) == 0 && load_snap(&b, "last", &sb) == 0);
    CHECK(sb.pr.step == 3 && memcmp(sa.p, sb.p, sizeof(float) * sa.n) == 0);
    free_snap(&sa), free_snap(&sb);
    /* a damaged last checkpoint is an error naming it */
    snprintf(p, sizeof p, "%s/checkpoints/last/model.safetensors", b.output_dir);
    FILE *f = fopen(p, "r+b");
    CHECK(f && fwrite("garbage!", 1, 8, f) == 8);
    if (f) fclose(f);
    kind = 0;
    CHECK(tf_train_run(&b, &single, on_resume, &kind) == TF_EUSER && kind == 0);
}

static void test_nonfinite_step_is_skipped(void) {
    tf_config a, b;
    CHECK(base_cfg(&a, "one") == 0 && base_cfg(&b, "nan") == 0);
    a.max_steps = 1;
    b.max_steps = 2;
    CHECK(tf_train_run(&a, &single, NULL, NULL) == TF_OK);
    tf_train_inject_nan_step = 1; /* the second step's loss is NaN */
    CHECK(tf_train_run(&b, &single, NULL, NULL) == TF_OK);
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
    CHECK(tf_train_run(&c, &single, NULL, NULL) == TF_EUSER &&
          strstr(tf_errmsg(), "non-finite") != NULL);
    tf_train_inject_nan_step = -1;
}

static void test_mrstft_loss_runs(void) {
    tf_config c;
    CHECK(base_cfg(&c, "mrstft") == 0);
    c.max_steps = 2;
    c.loss = TF_LOSS_MRSTFT;
    CHECKF(tf_train_run(&c, &single, NULL, NULL) == TF_OK, "%s", tf_errmsg());
    snap s;
    CHECK(load_snap(&c, "last", &s) == 0 && s.pr.updates == 2);
    free_snap(&s);
}

static void test_interrupted_checkpoint_keeps_previous(void) {
    tf_config c;
    CHECK(base_cfg(&c, "crash") == 0);
    c.max_steps = 1;
    CHECK(tf_train_run(&c, &single, NULL, NULL) == TF_OK);
    snap s1;
    CHECK(load_snap(&c, "last", &s1) == 0);
    snprintf(c.resume, sizeof c.resume, "%s", c.output_dir);
    c.max_steps = 2;
    tf_ckpt_fail_before_swap = 1; /* the step-2 checkpoint write dies before the swap */
    CHECK(tf_train_run(&c, &single, NULL, NULL) != TF_OK);
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

/* The library never prints: a run with every kind of event (plan, log lines, a skipped
 * non-finite step, validation, done) writes nothing to stdout or stderr (both redirected
 * to a file around tf_train_run) and reports each event to the callback instead. */
typedef struct {
    int n[TF_TRAIN_EV_DONE + 1];
    int64_t last_log_step;
    int last_flag, plan_ok, valid_ok;
} events;

static void on_event(void *user, const tf_train_event *e) {
    events *v = user;
    if ((unsigned)e->kind <= TF_TRAIN_EV_DONE) v->n[e->kind]++;
    if (e->kind == TF_TRAIN_EV_PLAN) v->plan_ok = e->plan && e->plan->total > 0 && e->cfg;
    if (e->kind == TF_TRAIN_EV_LOG) v->last_log_step = e->step, v->last_flag = e->last;
    if (e->kind == TF_TRAIN_EV_VALID)
        v->valid_ok = e->valid && e->valid->tracks > 0 && isfinite(e->valid->mean) && e->best;
}

static void test_library_is_silent(void) {
    tf_config c;
    CHECK(base_cfg(&c, "silent") == 0);
    c.max_steps = 3, c.log_every = 1, c.val_every = 3;
    char path[TF_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/silent.out", root);
    FILE *f = fopen(path, "w+");
    CHECK(f != NULL);
    if (!f) return;
    fflush(stdout), fflush(stderr);
    int o1 = dup(1), o2 = dup(2);
    dup2(fileno(f), 1), dup2(fileno(f), 2);
    events ev;
    memset(&ev, 0, sizeof ev);
    tf_train_inject_nan_step = 1;
    tf_status st = tf_train_run(&c, &single, on_event, &ev);
    tf_train_inject_nan_step = -1;
    fflush(stdout), fflush(stderr);
    dup2(o1, 1), dup2(o2, 2);
    close(o1), close(o2);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    char head[201] = "";
    rewind(f);
    size_t got = fread(head, 1, sizeof head - 1, f);
    head[got] = 0;
    fclose(f);
    CHECKF(n == 0, "the library printed %ld bytes: %s", n, head);
    CHECK(ev.n[TF_TRAIN_EV_PLAN] == 1 && ev.plan_ok);
    CHECKF(ev.n[TF_TRAIN_EV_LOG] == 3 && ev.last_log_step == 3 && ev.last_flag, "%d logs",
           ev.n[TF_TRAIN_EV_LOG]);
    CHECK(ev.n[TF_TRAIN_EV_SKIPPED] == 1);
    CHECK(ev.n[TF_TRAIN_EV_VALID] == 1 && ev.valid_ok);
    CHECK(ev.n[TF_TRAIN_EV_DONE] == 1 && ev.n[TF_TRAIN_EV_RESUMED] == 0);
}

/* model/checkpoint.h: a run's checkpoint rebuilds its model from model.json alone (same
 * architecture, targets, rate, segment, weights as the run's), and a bad model.json is a
 * user error naming the file and the key. */
static int rewrite_json(const char *path, const char *key, cJSON *value) {
    FILE *f = fopen(path, "rb");
    char buf[8192];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!m || !cJSON_ReplaceItemInObjectCaseSensitive(m, key, value)) return cJSON_Delete(j), -1;
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    f = fopen(path, "wb");
    int rc = f && s && fputs(s, f) >= 0 ? 0 : -1;
    if (f) fclose(f);
    free(s);
    return rc;
}

static void test_model_from_checkpoint(void) {
    tf_config c;
    CHECK(base_cfg(&c, "silent") == 0); /* the run of test_library_is_silent */
    char dir[TF_PATH_MAX + 64], path[TF_PATH_MAX + 96];
    snprintf(dir, sizeof dir, "%s/checkpoints/last", c.output_dir);
    tf_model *m = NULL, *r = NULL;
    tf_ckpt_info info;
    CHECKF(tf_model_from_checkpoint(&m, &info, dir, NULL, 1, 0, TF_MODEL_INFER) == TF_OK, "%s",
           tf_errmsg());
    const tf_model_config mc = tf_train_model_config(&c);
    CHECK(info.sample_rate == c.sample_rate && info.segment_seconds == c.segment_seconds);
    CHECK(info.model.n_targets == c.n_targets && !strcmp(info.targets[0], c.targets[0]));
    CHECK(info.model.n_levels == mc.n_levels && info.model.channels[0] == mc.channels[0] &&
          info.model.heads == mc.heads && info.model.mlp_ratio == mc.mlp_ratio &&
          info.model.n_fft == mc.n_fft && info.model.hop == mc.hop);
    CHECK(m && tf_model_create(&r, &mc, 1, 4096, 1) == TF_OK && tf_ckpt_load_weights(dir, r) == 0);
    if (m && r) {
        const size_t n = tf_model_get_plan(m)->n_params;
        CHECK(n == tf_model_get_plan(r)->n_params &&
              !memcmp(tf_model_params(m), tf_model_params(r), n * sizeof(float)));
    }
    tf_model_free(m), tf_model_free(r);
    /* bad model.json values: TF_EUSER naming the file and the key */
    char cmd[3 * TF_PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s/badckpt'", dir, root);
    CHECK(system(cmd) == 0);
    snprintf(dir, sizeof dir, "%s/badckpt", root);
    snprintf(path, sizeof path, "%s/model.json", dir);
    CHECK(rewrite_json(path, "heads", cJSON_CreateNumber(5)) == 0);
    CHECK(tf_model_from_checkpoint(&m, NULL, dir, NULL, 1, 0, TF_MODEL_INFER) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "model.json") && strstr(tf_errmsg(), "heads"), "%s", tf_errmsg());
    CHECK(rewrite_json(path, "heads", cJSON_CreateNumber(mc.heads)) == 0);
    CHECK(rewrite_json(path, "output", cJSON_CreateString("phase")) == 0);
    CHECK(tf_model_from_checkpoint(&m, NULL, dir, NULL, 1, 0, TF_MODEL_INFER) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "model.json") && strstr(tf_errmsg(), "output"), "%s", tf_errmsg());
}

/* train_state.bin keeps the device trainer's loss scale (fp16 training) in its header's
 * spare bytes: offset 96 the scale (double), 104 its finite steps since the last change
 * (int64); zero in a CPU run's file (no scaling); a value that cannot be is refused */
static void patch_state(const char *dir, double scale, int64_t good) {
    char path[TF_PATH_MAX + 96];
    snprintf(path, sizeof path, "%s/train_state.bin", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fseek(f, 96, SEEK_SET) == 0 && fwrite(&scale, 8, 1, f) == 1 &&
          fwrite(&good, 8, 1, f) == 1);
    fclose(f);
}

static void test_state_loss_scale(void) {
    tf_config c;
    CHECK(base_cfg(&c, "silent") == 0); /* the run of test_library_is_silent */
    snap s;
    memset(&s, 0, sizeof s);
    s.pr.loss_scale = -1, s.pr.loss_scale_good = -1;
    CHECK(load_snap(&c, "last", &s) == 0 && s.pr.loss_scale == 0 && s.pr.loss_scale_good == 0);
    free_snap(&s);
    char dir[TF_PATH_MAX + 64], cmd[3 * TF_PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp -r '%s/checkpoints/last' '%s/checkpoints/scaled'", c.output_dir,
             c.output_dir);
    CHECK(system(cmd) == 0);
    snprintf(dir, sizeof dir, "%s/checkpoints/scaled", c.output_dir);
    patch_state(dir, 4096.0, 17);
    memset(&s, 0, sizeof s);
    CHECK(load_snap(&c, "scaled", &s) == 0 && s.pr.loss_scale == 4096.0 &&
          s.pr.loss_scale_good == 17);
    free_snap(&s);
    const double bad[4] = {NAN, INFINITY, -2.0, 3.0}; /* a scale is 0 or a power of two */
    for (int i = 0; i < 5; i++) {
        patch_state(dir, i < 4 ? bad[i] : 8.0, i < 4 ? 0 : -1);
        memset(&s, 0, sizeof s);
        CHECK(load_snap(&c, "scaled", &s) != 0);
        CHECKF(strstr(tf_errmsg(), "corrupt header") && strstr(tf_errmsg(), "loss scale"), "%s",
               tf_errmsg());
        free_snap(&s);
    }
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
    RUN(test_validation_in_arena);
    RUN(test_bf16_arithmetic_trains);
    RUN(test_failed_start_writes_nothing);
    RUN(test_run_folder_lock);
    RUN(test_plan_matches_loader);
    RUN(test_resume_is_exact);
    RUN(test_resume_before_first_checkpoint);
    RUN(test_nonfinite_step_is_skipped);
    RUN(test_mrstft_loss_runs);
    RUN(test_interrupted_checkpoint_keeps_previous);
    RUN(test_guide_command_line);
    RUN(test_library_is_silent);
    RUN(test_model_from_checkpoint);
    RUN(test_state_loss_scale);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return TEST_END();
}
