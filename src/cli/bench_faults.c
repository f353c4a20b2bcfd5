/* tfswa bench faults [--json] [--kills N] [--seed K] [--threads T] [--out DIR]
 * Crash safety of training: a tiny-preset run on synthetic data is killed with SIGKILL
 * --kills times at random moments, each time resumed with `tfswa train --resume RUN`.
 * The kills are spread over three phases: inside a training step, inside a validation,
 * and in the middle of a checkpoint write. Step and validation kills land at a random
 * delay after the phase's start (uniform over 0.9 x the phase's shortest length in an
 * uninterrupted reference run); a checkpoint write lasts milliseconds, so there the
 * child stops itself at one of the write's stages (TFSWA_FAULT_PAUSE, see util/fault.h;
 * the stages in turn) and is killed there. At the kill's moment the child is first frozen
 * (SIGSTOP) and every fault mark it wrote is read (TFSWA_FAULT_MARKS): if it has already
 * left the phase the kill is called off (SIGCONT) and aimed at the next such phase, so
 * each kill lands where it was aimed, and is counted for the phase of the last mark. Each
 * phase gets the next kill while it has fewer hits than the others.
 * After every kill each checkpoint left on disk is loaded with the real code (model.json,
 * model.safetensors, train_state.bin with its checksum; the weights' step equals the
 * state's); temporary folders left behind are counted. steps lost = the steps the killed
 * child had completed minus the step the next resume starts from. At the end the run's
 * final checkpoint is compared byte for byte with the reference run's (same seed, same
 * checkpoint steps).
 * Goals: resumed == kills, corrupt_checkpoints == 0, max_steps_lost <= ckpt_every,
 * final_equals_uninterrupted. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "data/synth.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "util/config.h"
#include "util/fsutil.h"
#include "util/safetensors.h"

static const char *USAGE =
    "usage: tfswa bench faults [--json] [--kills 20] [--seed 1] [--threads 2] [--out DIR]\n"
    "\n"
    "Kills a tiny-preset training run on synthetic data with SIGKILL --kills times (inside a\n"
    "step, inside a validation, in the middle of a checkpoint write, in turn), resumes it\n"
    "with `tfswa train --resume RUN` each time, checks that every checkpoint left on disk\n"
    "loads and verifies, and compares the final weights with those of an uninterrupted run\n"
    "of the same seed. Files go to a temporary folder (removed), or to --out DIR (kept:\n"
    "data/, reference/, run/ and logs/ with each child's stderr).\n";

enum { PH_STEP, PH_VALIDATE, PH_CKPT, PH_N };
static const char *const PH_NAME[PH_N] = {"step", "validate", "ckpt_write"};
/* the stages of a checkpoint write a kill is aimed at (util/fault.h), in the order the
 * kills take them: the riskiest first (between the two renames of the swap), then a half
 * written file in the temporary folder, the new folder in place with the old one not yet
 * removed, the weights alone written, the temporary folder complete */
enum { N_POINTS = 5 };
static const char *const POINTS[N_POINTS] = {"swap", "tmp_partial", "swapped", "tmp_model",
                                             "tmp_done"};
enum { MAX_SAMPLES = 1024 };

/* The bench's configuration. */
typedef struct {
    int kills, threads, ckpt_every, val_every, steps_per_epoch;
    int64_t max_steps;
    uint64_t seed;
    char exe[PATH_MAX], dir[PATH_MAX], data[PATH_MAX + 16], ref[PATH_MAX + 16], run[PATH_MAX + 16],
        logs[PATH_MAX + 16];
} bench;

/* One child process of `tfswa train`: what to do to it and what came of it. */
typedef struct {
    /* the plan */
    int kill;              /* 0: let it finish */
    int phase;             /* the phase aimed at (PH_*) */
    int64_t at_step;       /* step: kill inside this step; validate: inside the first validation
                              at a step >= this; ckpt_write: the pause's step */
    int point;             /* ckpt_write: index in POINTS */
    const char *ckpt_name; /* ckpt_write: "last", or NULL: the first checkpoint written */
    double delay_max;      /* step, validate: the kill comes U[0, delay_max) s after the start */
    /* the outcome */
    int killed, wstatus;
    int64_t resumed_step; /* "resumed from ... at step N" (-1: none) */
    int64_t reached;      /* steps completed, the most the child showed */
    int hit_phase;        /* the phase of the last mark before the kill */
    char hit_point[24], hit_what[24];
    int64_t hit_step;
    double delay, seconds;
    int retries; /* kills called off: the child had left the phase when frozen */
    /* phase lengths (reference run) */
    double step_s[MAX_SAMPLES], val_s[MAX_SAMPLES];
    int n_step, n_val;
} child;

/* splitmix64: the kill schedule's random numbers */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* A parsed fault mark ("tfswa-fault: PHASE POINT STEP [WHAT] [(paused)]"). */
typedef struct {
    int phase;
    char point[24], what[24];
    int64_t step;
    double t;
} mark;

static int parse_mark(const char *line, mark *m) {
    char ph[24];
    long long s;
    m->what[0] = 0;
    int n = sscanf(line, "tfswa-fault: %23s %23s %lld %23s", ph, m->point, &s, m->what);
    if (n < 3) return 0;
    if (n < 4 || m->what[0] == '(') m->what[0] = 0;
    m->phase = -1;
    for (int i = 0; i < PH_N; i++)
        if (!strcmp(ph, PH_NAME[i])) m->phase = i;
    m->step = s;
    return m->phase >= 0;
}

/* Handle one line of the child's stderr. */
static void on_line(child *c, const char *line, double t, mark *last, int *trigger,
                    int *have_last) {
    long long a, b;
    char path[PATH_MAX];
    if (sscanf(line, "resumed from %4095s at step %lld", path, &a) == 2) c->resumed_step = a;
    if (sscanf(line, "step %lld/%lld |", &a, &b) == 2 && a > c->reached) c->reached = a;
    mark m;
    if (!parse_mark(line, &m)) return;
    m.t = t;
    if (m.step > c->reached) c->reached = m.step;
    /* phase lengths: step begin -> next step begin; validate begin -> end */
    if (*have_last && last->phase == PH_STEP && m.phase == PH_STEP && c->n_step < MAX_SAMPLES)
        c->step_s[c->n_step++] = t - last->t;
    if (*have_last && last->phase == PH_VALIDATE && !strcmp(last->point, "begin") &&
        m.phase == PH_VALIDATE && !strcmp(m.point, "end") && c->n_val < MAX_SAMPLES)
        c->val_s[c->n_val++] = t - last->t;
    *last = m, *have_last = 1;
    if (!c->kill || *trigger) return;
    if (c->phase == PH_STEP && m.phase == PH_STEP && m.step >= c->at_step) *trigger = 1;
    if (c->phase == PH_VALIDATE && m.phase == PH_VALIDATE && !strcmp(m.point, "begin") &&
        m.step >= c->at_step)
        *trigger = 1;
    if (c->phase == PH_CKPT && m.phase == PH_CKPT && !strcmp(m.point, POINTS[c->point]) &&
        m.step >= c->at_step && strstr(line, "(paused)"))
        *trigger = 1;
}

/* The child's stderr, read line by line. */
typedef struct {
    child *c;
    int fd, eof;
    FILE *lf; /* copy of everything read */
    double t0;
    char line[4096];
    size_t ll;
    mark last; /* the last fault mark */
    int have_last, trigger, frozen;
    double trigger_t; /* when the trigger's mark was read (s since t0) */
} reader;

/* Read once (blocking when nothing is there) and handle the complete lines. */
static void reader_read(reader *r) {
    char buf[8192];
    ssize_t n = read(r->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
        r->eof = 1;
        return;
    }
    fwrite(buf, 1, (size_t)n, r->lf);
    const double t = tf_now_s() - r->t0;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n' && buf[i] != '\r') {
            if (r->ll < sizeof r->line - 1) r->line[r->ll++] = buf[i];
            continue;
        }
        r->line[r->ll] = 0, r->ll = 0;
        const int was = r->trigger;
        /* while the child is frozen for the check no new kill is planned */
        if (r->frozen) r->trigger = 1;
        on_line(r->c, r->line, t, &r->last, &r->trigger, &r->have_last);
        if (r->frozen) r->trigger = was;
        if (r->trigger && !was) r->trigger_t = t;
    }
}

/* Read what is in the pipe now without waiting (the child is frozen or dead). */
static void reader_drain(reader *r, int frozen) {
    r->frozen = frozen;
    struct pollfd p = {r->fd, POLLIN, 0};
    while (!r->eof && poll(&p, 1, 0) > 0) reader_read(r);
    r->frozen = 0;
}

/* Run `tfswa ARGV...` with stderr into a pipe (copied to log), kill it as c plans, wait for
 * it. TF_EINTERNAL when it could not be run or did not reach its kill within limit_s. */
static tf_status run_child(const bench *bn, char *const argv[], child *c, const char *log,
                           uint64_t *rs, double limit_s) {
    c->killed = 0, c->wstatus = 0, c->resumed_step = -1, c->reached = 0, c->hit_phase = -1;
    c->hit_point[0] = c->hit_what[0] = 0, c->hit_step = -1, c->delay = 0, c->retries = 0;
    FILE *lf = fopen(log, "w");
    if (!lf) return tf_err(TF_EUSER, "%s: cannot write: %s", log, strerror(errno));
    int fd[2];
    if (pipe2(fd, O_CLOEXEC) != 0) {
        fclose(lf);
        return tf_err(TF_EINTERNAL, "pipe: %s", strerror(errno));
    }
    char pause_env[64] = "";
    if (c->kill && c->phase == PH_CKPT)
        snprintf(pause_env, sizeof pause_env, "%s@%lld%s%s", POINTS[c->point],
                 (long long)c->at_step, c->ckpt_name ? ":" : "", c->ckpt_name ? c->ckpt_name : "");
    fflush(stdout), fflush(stderr);
    const double t0 = tf_now_s();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]), fclose(lf);
        return tf_err(TF_EINTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 1) < 0 || dup2(fd[1], 2) < 0) _exit(126);
        setenv("TFSWA_FAULT_MARKS", "1", 1);
        if (pause_env[0])
            setenv("TFSWA_FAULT_PAUSE", pause_env, 1);
        else
            unsetenv("TFSWA_FAULT_PAUSE");
        execv(bn->exe, argv);
        _exit(127);
    }
    close(fd[1]);
    reader rd;
    memset(&rd, 0, sizeof rd);
    rd.c = c, rd.fd = fd[0], rd.lf = lf, rd.t0 = t0;
    double t_kill = -1;
    int ws = 0, reaped = 0;
    tf_status st = TF_OK;
    while (!rd.eof) {
        double now = tf_now_s() - t0;
        if (!c->killed && t_kill >= 0 && now >= t_kill) {
            /* Freeze the child, read every mark it wrote, and kill it only if it is still
             * in the phase aimed at (a frozen process killed is one killed at the moment it
             * froze); if it has moved on, let it go and aim at the next such phase. */
            int w = 0;
            kill(pid, SIGSTOP);
            while (waitpid(pid, &w, WUNTRACED) < 0 && errno == EINTR) {
            }
            if (!WIFSTOPPED(w)) { /* it ended on its own meanwhile */
                ws = w, reaped = 1;
                reader_drain(&rd, 0);
                break;
            }
            reader_drain(&rd, 1);
            const mark *l = &rd.last;
            const int inside = rd.have_last && l->phase == c->phase && strcmp(l->point, "end") != 0;
            if (inside || c->retries >= 50) {
                kill(pid, SIGKILL);
                c->killed = 1;
                c->hit_phase = rd.have_last ? l->phase : -1;
                snprintf(c->hit_point, sizeof c->hit_point, "%s", rd.have_last ? l->point : "");
                snprintf(c->hit_what, sizeof c->hit_what, "%s", rd.have_last ? l->what : "");
                c->hit_step = rd.have_last ? l->step : -1;
            } else {
                c->retries++;
                c->at_step = l->step + 1;
                rd.trigger = 0, t_kill = -1;
            }
            kill(pid, SIGCONT);
            continue;
        }
        if (!c->killed && now > limit_s) {
            kill(pid, SIGKILL);
            c->killed = 1;
            st = tf_err(TF_EINTERNAL,
                        "bench faults: the child did not reach its %s kill (step %lld) within "
                        "%.0f s (see %s)",
                        PH_NAME[c->phase], (long long)c->at_step, limit_s, log);
        }
        int wait_ms = 200;
        if (!c->killed && t_kill >= 0) wait_ms = (int)ceil((t_kill - now) * 1000.0);
        struct pollfd p = {fd[0], POLLIN, 0};
        int r = poll(&p, 1, wait_ms < 0 ? 0 : wait_ms);
        if (r <= 0) continue;
        const int was = rd.trigger;
        reader_read(&rd);
        if (rd.trigger && !was) {
            c->delay = c->phase == PH_CKPT ? 0.02 * rng_unit(rs) : c->delay_max * rng_unit(rs);
            t_kill = rd.trigger_t + c->delay;
        }
    }
    /* killed: the rest of what it wrote (nothing after the kill) */
    while (!rd.eof) reader_read(&rd);
    close(fd[0]);
    fclose(lf);
    while (!reaped && waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    c->wstatus = ws;
    c->seconds = tf_now_s() - t0;
    if (!st && c->kill && !c->killed)
        st = tf_err(TF_EINTERNAL,
                    "bench faults: the child ended (status %d) before its %s kill at step %lld "
                    "(see %s)",
                    ws, PH_NAME[c->phase], (long long)c->at_step, log);
    if (!st && c->killed && !(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL))
        st = tf_err(TF_EINTERNAL, "bench faults: the child was not killed (status %d, see %s)", ws,
                    log);
    /* a kill after a phase's end mark lands in the loop's own work: count it as the step */
    if (c->killed && c->hit_phase != PH_STEP && !strcmp(c->hit_point, "end"))
        c->hit_phase = PH_STEP;
    (void)bn;
    return st;
}

/* Load and verify one checkpoint directory with the code training uses: model.json and
 * model.safetensors into a model of the run's configuration, train_state.bin (header,
 * sizes, checksum), and the weights' "step" metadata equal to the state's step. */
static tf_status verify_ckpt(const char *dir, const tf_config *cfg, int64_t *step) {
    tf_model_config mc = tf_train_model_config(cfg);
    mc.threads = 1;
    tf_model *m = NULL;
    TF_TRY(tf_model_from_checkpoint(&m, NULL, dir, &mc, 1, 0, TF_MODEL_INFER));
    const size_t n = tf_model_get_plan(m)->n_params;
    tf_model_free(m);
    tf_opt_state os = {n, NULL, NULL, NULL};
    os.m = tf_malloc(sizeof(float) * n, "adam m");
    os.v = tf_malloc(sizeof(float) * n, "adam v");
    if (cfg->ema_decay > 0) os.raw = tf_malloc(sizeof(float) * n, "raw weights");
    tf_status st = os.m && os.v && (os.raw || cfg->ema_decay <= 0) ? TF_OK : TF_EINTERNAL;
    tf_train_progress pr;
    memset(&pr, 0, sizeof pr);
    if (!st) st = tf_ckpt_load_state(dir, &pr, &os);
    free(os.m), free(os.v), free(os.raw);
    TF_TRY(st);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tf_safetensors sf;
    TF_TRY(tf_st_open(&sf, path));
    const char *s = tf_st_meta(&sf, "step");
    char *end = NULL;
    long long ms = s ? strtoll(s, &end, 10) : -1;
    int ok = s && end && *end == 0 && ms == pr.step;
    tf_st_close(&sf);
    if (!ok)
        return tf_err(TF_EUSER, "%s: weights of step %s, train state of step %lld", dir,
                      s ? s : "(none)", (long long)pr.step);
    *step = pr.step;
    return TF_OK;
}

typedef struct {
    int verified, corrupt, tmp, old;
} disk_state;

/* Verify every checkpoint of the run folder (checkpoints/NAME and NAME.old-PID); count the
 * temporary folders and files (".tmp-") left in the run folder and checkpoints/. */
static void verify_run(const char *run, const tf_config *cfg, disk_state *ds, cJSON *errors) {
    memset(ds, 0, sizeof *ds);
    char sub[2][PATH_MAX + 32];
    snprintf(sub[0], sizeof sub[0], "%s", run);
    snprintf(sub[1], sizeof sub[1], "%s/checkpoints", run);
    for (int k = 0; k < 2; k++) {
        DIR *d = opendir(sub[k]);
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            if (strstr(e->d_name, ".tmp-")) {
                ds->tmp++;
                continue;
            }
            if (k == 0) continue;
            if (strstr(e->d_name, ".old-")) ds->old++;
            char p[2 * PATH_MAX + 512];
            snprintf(p, sizeof p, "%s/%s", sub[k], e->d_name);
            int64_t step;
            if (verify_ckpt(p, cfg, &step)) {
                ds->corrupt++;
                fprintf(stderr, "tfswa: bench faults: corrupt checkpoint: %s\n", tf_errmsg());
                if (errors) cJSON_AddItemToArray(errors, cJSON_CreateString(tf_errmsg()));
            } else {
                ds->verified++;
            }
        }
        closedir(d);
    }
}

/* 1 when the two files have the same bytes. */
static int same_file(const char *a, const char *b) {
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int same = f && g;
    char x[65536], y[65536];
    while (same) {
        size_t n = fread(x, 1, sizeof x, f), m = fread(y, 1, sizeof y, g);
        if (n != m || memcmp(x, y, n) != 0) same = 0;
        if (n < sizeof x) break;
    }
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

static int same_ckpt(const char *ra, const char *rb, const char *which) {
    static const char *const files[3] = {"model.safetensors", "train_state.bin", "model.json"};
    for (int i = 0; i < 3; i++) {
        char a[PATH_MAX + 64], b[PATH_MAX + 64];
        snprintf(a, sizeof a, "%s/checkpoints/%s/%s", ra, which, files[i]);
        snprintf(b, sizeof b, "%s/checkpoints/%s/%s", rb, which, files[i]);
        if (!same_file(a, b)) return 0;
    }
    return 1;
}

/* The training command line of a fresh run into out (argv of at most 40 entries). */
static void train_argv(const bench *bn, const char *outdir, char store[][64], char **argv) {
    int k = 0;
    argv[k++] = (char *)bn->exe;
    argv[k++] = "train";
    argv[k++] = "--preset", argv[k++] = "tiny";
    argv[k++] = "--data_root", argv[k++] = (char *)bn->data;
    argv[k++] = "--output_dir", argv[k++] = (char *)outdir;
    argv[k++] = "--segment_seconds", argv[k++] = "0.5";
    argv[k++] = "--batch_size", argv[k++] = "2";
    argv[k++] = "--num_workers", argv[k++] = "1";
    argv[k++] = "--ema_decay", argv[k++] = "0.99";
    argv[k++] = "--log_every", argv[k++] = "1";
    snprintf(store[0], 64, "%d", bn->threads);
    snprintf(store[1], 64, "%lld", (long long)bn->max_steps);
    snprintf(store[2], 64, "%d", bn->steps_per_epoch);
    snprintf(store[3], 64, "%d", bn->val_every);
    snprintf(store[4], 64, "%d", bn->ckpt_every);
    snprintf(store[5], 64, "%llu", (unsigned long long)bn->seed);
    argv[k++] = "--num_threads", argv[k++] = store[0];
    argv[k++] = "--max_steps", argv[k++] = store[1];
    argv[k++] = "--steps_per_epoch", argv[k++] = store[2];
    argv[k++] = "--val_every", argv[k++] = store[3];
    argv[k++] = "--ckpt_every", argv[k++] = store[4];
    argv[k++] = "--seed", argv[k++] = store[5];
    argv[k] = NULL;
}

/* The config the children train with (for loading their checkpoints here). */
static tf_status child_config(const bench *bn, tf_config *cfg) {
    char store[6][64], *argv[48];
    train_argv(bn, bn->run, store, argv);
    int argc = 0;
    while (argv[argc]) argc++;
    tf_config_defaults(cfg);
    TF_TRY(tf_config_parse_args(cfg, argc - 1, argv + 1, NULL));
    return tf_config_validate(cfg);
}

static double median_or0(const double *v, int n) {
    return n > 0 ? bench_median(v, n) : 0;
}

int bench_faults(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    bench bn;
    memset(&bn, 0, sizeof bn);
    int json = cli_flag_bool(&a, "json", 0, &st);
    long long kills = st ? 0 : cli_flag_int(&a, "kills", 20, &st);
    long long seed = st ? 0 : cli_flag_int(&a, "seed", 1, &st);
    long long threads = st ? 0 : cli_flag_int(&a, "threads", 2, &st);
    const char *out = st ? NULL : cli_flag_str(&a, "out", &st);
    if (!st) st = cli_check_unused(&a);
    if (st) return cli_fail(st);
    if (kills < 1 || kills > 1000)
        return cli_fail(tf_err(TF_EUSER, "--kills: %lld is not in [1, 1000]", kills));
    if (seed < 0) return cli_fail(tf_err(TF_EUSER, "--seed: %lld is negative", seed));
    if (threads < 1 || threads > 1024)
        return cli_fail(tf_err(TF_EUSER, "--threads: %lld is not in [1, 1024]", threads));
    bn.kills = (int)kills, bn.seed = (uint64_t)seed, bn.threads = (int)threads;
    bn.ckpt_every = 3, bn.val_every = 5, bn.steps_per_epoch = 8;
    /* each kill moves the run ~2 steps on (0..9): room for all of them, then the last
     * stretch */
    bn.max_steps = 3 * (int64_t)bn.kills + 15;
    ssize_t k = readlink("/proc/self/exe", bn.exe, sizeof bn.exe - 1);
    if (k <= 0) return cli_fail(tf_err(TF_EINTERNAL, "/proc/self/exe: %s", strerror(errno)));
    bn.exe[k] = 0;
    if (out) {
        if (tf_path_exists(out))
            return cli_fail(tf_err(TF_EUSER, "--out %s: already exists (give a new folder)", out));
        if ((st = tf_mkdirs(out))) return cli_fail(st);
        snprintf(bn.dir, sizeof bn.dir, "%s", out);
    } else {
        snprintf(bn.dir, sizeof bn.dir, "/tmp/tfswa_bench_faults_XXXXXX");
        if (!mkdtemp(bn.dir)) return cli_fail(tf_err(TF_EUSER, "mkdtemp: %s", strerror(errno)));
    }
    snprintf(bn.data, sizeof bn.data, "%s/data", bn.dir);
    snprintf(bn.ref, sizeof bn.ref, "%s/reference", bn.dir);
    snprintf(bn.run, sizeof bn.run, "%s/run", bn.dir);
    snprintf(bn.logs, sizeof bn.logs, "%s/logs", bn.dir);
    const double T0 = tf_now_s();
    tf_config cfg;
    st = tf_mkdirs(bn.logs);
    tf_synth_opts so;
    tf_synth_defaults(&so);
    so.train_tracks = 6, so.test_tracks = 1, so.seconds = 4, so.seed = 3, so.threads = 1;
    if (!st) st = tf_synth_dataset(bn.data, &so);
    if (!st) st = child_config(&bn, &cfg);

    /* 1. the uninterrupted reference run: its final checkpoint and the phase lengths */
    child *ref = calloc(1, sizeof(child)), *c = calloc(1, sizeof(child));
    if (!ref || !c) st = st ? st : tf_err(TF_EINTERNAL, "bench faults: out of memory");
    char store[6][64], *targv[48], log[PATH_MAX + 64];
    uint64_t rs = bn.seed * 0x2545f4914f6cdd1dull + 17;
    if (!json && !st)
        fprintf(stderr, "bench faults: reference run of %lld steps in %s ...\n",
                (long long)bn.max_steps, bn.dir);
    if (!st) {
        train_argv(&bn, bn.ref, store, targv);
        snprintf(log, sizeof log, "%s/reference.log", bn.logs);
        st = run_child(&bn, targv, ref, log, &rs, 3600);
        if (!st && !(WIFEXITED(ref->wstatus) && WEXITSTATUS(ref->wstatus) == 0))
            st = tf_err(TF_EINTERNAL, "bench faults: the reference run failed (see %s)", log);
    }
    const double ref_s = ref ? ref->seconds : 0;
    const double step_s = ref ? median_or0(ref->step_s, ref->n_step) : 0;
    const double val_s = ref ? median_or0(ref->val_s, ref->n_val) : 0;
    /* a kill U[0, 0.9 x the shortest instance) after the start lands inside the phase even
     * when this one runs faster than the reference's typical */
    const double step_win = ref && ref->n_step ? 0.9 * bench_min(ref->step_s, ref->n_step) : 0;
    const double val_win = ref && ref->n_val ? 0.9 * bench_min(ref->val_s, ref->n_val) : 0;

    /* 2. the killed run */
    int hits[PH_N] = {0, 0, 0}, point_hits[N_POINTS] = {0};
    int resumed = 0, corrupt = 0, verified = 0, max_tmp = 0, max_old = 0, mismatches = 0;
    int from_old = 0, done_kills = 0, called_off = 0;
    int64_t max_lost = 0, sum_lost = 0, prev_reached = 0, start_step = 0;
    cJSON *events = cJSON_CreateArray(), *errors = cJSON_CreateArray();
    cJSON *prev_ev = NULL;
    if (!events || !errors) st = st ? st : tf_err(TF_EINTERNAL, "bench faults: out of memory");
    for (int kill_i = 0; kill_i <= bn.kills && !st; kill_i++) {
        const int last_run = kill_i == bn.kills; /* the resume that runs to the end */
        char *rargv[5] = {bn.exe, "train", "--resume", bn.run, NULL};
        memset(c, 0, offsetof(child, step_s));
        if (!last_run) {
            c->kill = 1;
            /* the phase with the fewest hits so far (ties in turn) */
            int best = -1;
            for (int j = 0; j < PH_N; j++) {
                int ph = (kill_i + j) % PH_N;
                if (best < 0 || hits[ph] < hits[best]) best = ph;
            }
            c->phase = best;
            /* not before the first checkpoint: `--resume` needs one */
            const int64_t lo = start_step + (kill_i == 0 ? bn.ckpt_every + 1 : 0);
            if (best == PH_STEP) {
                c->at_step = lo + (int64_t)(rng_next(&rs) % (uint64_t)(2 * bn.ckpt_every));
                c->delay_max = step_win;
            } else if (best == PH_VALIDATE) {
                c->at_step = lo + (int64_t)(rng_next(&rs) % (uint64_t)bn.val_every);
                c->delay_max = val_win;
            } else {
                c->at_step = lo + 1 + (int64_t)(rng_next(&rs) % (uint64_t)bn.ckpt_every);
                c->point = (int)(hits[PH_CKPT] % N_POINTS); /* each in turn */
                /* every other one in "last" (the one --resume takes), else in whichever
                 * comes first ("best" after a better validation, or "last") */
                c->ckpt_name = hits[PH_CKPT] % 2 == 0 ? "last" : NULL;
            }
            if (c->at_step >= bn.max_steps - 1)
                st = tf_err(TF_EINTERNAL,
                            "bench faults: the run reached step %lld before kill %d (raise "
                            "max_steps)",
                            (long long)start_step, kill_i + 1);
        }
        if (st) break;
        snprintf(log, sizeof log, "%s/%02d.log", bn.logs, kill_i);
        if (kill_i == 0) {
            train_argv(&bn, bn.run, store, targv);
            st = run_child(&bn, targv, c, log, &rs, 600);
        } else {
            tf_status rst = run_child(&bn, rargv, c, log, &rs, 600);
            if (c->resumed_step < 0) { /* the resume itself failed: a result, not a fault */
                fprintf(stderr, "tfswa: bench faults: resume %d failed (see %s)\n", kill_i, log);
                break;
            }
            st = rst;
        }
        if (st) break;
        /* the resume of the previous kill */
        if (kill_i > 0) {
            if (c->resumed_step >= 0) {
                resumed++;
                if (c->resumed_step != start_step) mismatches++;
                const int64_t lost = prev_reached - c->resumed_step;
                if (lost > max_lost) max_lost = lost;
                sum_lost += lost;
                if (prev_ev) {
                    cJSON_AddNumberToObject(prev_ev, "resumed_step", (double)c->resumed_step);
                    cJSON_AddNumberToObject(prev_ev, "steps_lost", (double)lost);
                }
            }
        }
        if (last_run) {
            if (!(WIFEXITED(c->wstatus) && WEXITSTATUS(c->wstatus) == 0))
                fprintf(stderr, "tfswa: bench faults: the final resume failed (see %s)\n", log);
            break;
        }
        done_kills++;
        called_off += c->retries;
        int ph = c->hit_phase >= 0 ? c->hit_phase : PH_STEP;
        hits[ph]++;
        if (ph == PH_CKPT)
            for (int j = 0; j < N_POINTS; j++)
                if (!strcmp(c->hit_point, POINTS[j])) point_hits[j]++;
        prev_reached = c->reached;
        /* every checkpoint on disk loads and verifies; the one --resume will take */
        disk_state ds;
        verify_run(bn.run, &cfg, &ds, errors);
        corrupt += ds.corrupt, verified += ds.verified;
        if (ds.tmp > max_tmp) max_tmp = ds.tmp;
        if (ds.old > max_old) max_old = ds.old;
        char rdir[PATH_MAX + 64];
        int64_t next = -1;
        if (!tf_ckpt_resolve(bn.run, rdir, sizeof rdir) && !verify_ckpt(rdir, &cfg, &next)) {
            if (strstr(rdir, ".old-")) from_old++;
        }
        start_step = next;
        cJSON *ev = cJSON_CreateObject();
        if (ev) {
            cJSON_AddNumberToObject(ev, "kill", kill_i + 1);
            cJSON_AddStringToObject(ev, "aimed", PH_NAME[c->phase]);
            cJSON_AddStringToObject(ev, "phase", PH_NAME[ph]);
            cJSON_AddStringToObject(ev, "point", c->hit_point);
            if (ph == PH_CKPT) cJSON_AddStringToObject(ev, "checkpoint", c->hit_what);
            cJSON_AddNumberToObject(ev, "mark_step", (double)c->hit_step);
            cJSON_AddNumberToObject(ev, "steps_done", (double)c->reached);
            cJSON_AddNumberToObject(ev, "delay_s", c->delay);
            cJSON_AddNumberToObject(ev, "called_off", c->retries);
            cJSON_AddNumberToObject(ev, "child_seconds", c->seconds);
            cJSON_AddNumberToObject(ev, "checkpoints_verified", ds.verified);
            cJSON_AddNumberToObject(ev, "corrupt", ds.corrupt);
            cJSON_AddNumberToObject(ev, "tmp_left", ds.tmp);
            cJSON_AddNumberToObject(ev, "old_left", ds.old);
            cJSON_AddStringToObject(ev, "resume_from", rdir + strlen(bn.run) + 1);
            cJSON_AddItemToArray(events, ev);
        }
        prev_ev = ev;
        if (!json)
            fprintf(stderr,
                    "kill %2d: aimed at %-10s -> killed in %-10s %-11s %-4s at step %3lld (%lld "
                    "steps done); %d checkpoints verified, %d corrupt, %d temporary left; "
                    "resume from step %lld\n",
                    kill_i + 1, PH_NAME[c->phase], PH_NAME[ph], c->hit_point,
                    ph == PH_CKPT ? c->hit_what : "", (long long)c->hit_step, (long long)c->reached,
                    ds.verified, ds.corrupt, ds.tmp, (long long)next);
        if (next < 0) {
            fprintf(stderr, "tfswa: bench faults: nothing to resume from after kill %d\n",
                    kill_i + 1);
            break;
        }
    }
    /* 3. the end: compare with the reference; what the finished run leaves behind */
    int final_eq = 0, best_eq = 0;
    disk_state fin;
    memset(&fin, 0, sizeof fin);
    if (!st) {
        final_eq = c && WIFEXITED(c->wstatus) && WEXITSTATUS(c->wstatus) == 0 &&
                   same_ckpt(bn.ref, bn.run, "last");
        best_eq = same_ckpt(bn.ref, bn.run, "best");
        verify_run(bn.run, &cfg, &fin, errors);
        corrupt += fin.corrupt, verified += fin.verified;
    }
    const double total_s = tf_now_s() - T0;
    if (!out && tf_remove_tree(bn.dir)) fprintf(stderr, "tfswa: %s\n", tf_errmsg());
    free(ref), free(c);
    if (st) {
        cJSON_Delete(events), cJSON_Delete(errors);
        return cli_fail(st);
    }
    if (!json) {
        printf("bench faults: %d kills (step %d, validate %d, ckpt_write %d), %d resumed; %d "
               "checkpoints verified, %d corrupt; max steps lost %lld (ckpt_every %d); final "
               "weights %s the uninterrupted run's; %d temporary and %d .old folders left after "
               "the finished run; %.1f s\n",
               done_kills, hits[PH_STEP], hits[PH_VALIDATE], hits[PH_CKPT], resumed, verified,
               corrupt, (long long)max_lost, bn.ckpt_every,
               final_eq ? "equal (bitwise)" : "DIFFER from", fin.tmp, fin.old, total_s);
        printf("goals: resumed %d/%d, corrupt_checkpoints 0, max_steps_lost <= %d, final equal: "
               "%s\n",
               resumed, bn.kills, bn.ckpt_every,
               resumed == bn.kills && corrupt == 0 && max_lost <= bn.ckpt_every && final_eq
                   ? "all met"
                   : "NOT met");
        cJSON_Delete(events), cJSON_Delete(errors);
        return 0;
    }
    cJSON *cj, *r, *j = bench_json_open("faults", bn.threads, &cj, &r);
    if (!j) {
        cJSON_Delete(events), cJSON_Delete(errors);
        return cli_fail(tf_err(TF_EINTERNAL, "bench faults: out of memory"));
    }
    cJSON_AddStringToObject(cj, "preset", "tiny");
    cJSON_AddStringToObject(cj, "data", "tfswa synth: 6 tracks x 4 s (seed 3), 44.1 kHz");
    cJSON_AddNumberToObject(cj, "segment_seconds", cfg.segment_seconds);
    cJSON_AddNumberToObject(cj, "batch_size", cfg.batch_size);
    cJSON_AddNumberToObject(cj, "max_steps", (double)bn.max_steps);
    cJSON_AddNumberToObject(cj, "steps_per_epoch", bn.steps_per_epoch);
    cJSON_AddNumberToObject(cj, "val_every", bn.val_every);
    cJSON_AddNumberToObject(cj, "ckpt_every", bn.ckpt_every);
    cJSON_AddNumberToObject(cj, "ema_decay", cfg.ema_decay);
    cJSON_AddNumberToObject(cj, "num_threads", bn.threads);
    cJSON_AddNumberToObject(cj, "seed", (double)bn.seed);
    cJSON_AddNumberToObject(cj, "kills", bn.kills);
    cJSON *pts = cJSON_AddArrayToObject(cj, "ckpt_write_points");
    for (int i = 0; i < N_POINTS && pts; i++)
        cJSON_AddItemToArray(pts, cJSON_CreateString(POINTS[i]));
    cJSON_AddStringToObject(
        cj, "kill",
        "SIGKILL from the bench; step/validate: U[0, 0.9 x the shortest "
        "such phase of the reference run) after the phase's start mark; ckpt_write: at "
        "a stage of the write where the child pauses (ckpt_write_points in "
        "turn; every other one in checkpoints/last, the others in the first checkpoint "
        "written, last or best); the child is frozen (SIGSTOP) and its marks read "
        "first: a kill whose child has left the phase is called off and aimed at the next "
        "one (kills_called_off)");
    cJSON_AddNumberToObject(r, "kills", done_kills);
    cJSON_AddNumberToObject(r, "resumed", resumed);
    cJSON_AddNumberToObject(r, "corrupt_checkpoints", corrupt);
    cJSON_AddNumberToObject(r, "checkpoints_verified", verified);
    cJSON_AddNumberToObject(r, "max_steps_lost", (double)max_lost);
    cJSON_AddNumberToObject(r, "mean_steps_lost", resumed ? (double)sum_lost / resumed : 0);
    cJSON_AddNumberToObject(r, "ckpt_every", bn.ckpt_every);
    cJSON_AddBoolToObject(r, "final_equals_uninterrupted", final_eq);
    cJSON_AddBoolToObject(r, "best_equals_uninterrupted", best_eq);
    cJSON *kp = cJSON_AddObjectToObject(r, "kills_by_phase");
    for (int i = 0; i < PH_N && kp; i++) cJSON_AddNumberToObject(kp, PH_NAME[i], hits[i]);
    cJSON *kpt = cJSON_AddObjectToObject(r, "ckpt_write_kills_by_point");
    for (int i = 0; i < N_POINTS && kpt; i++)
        cJSON_AddNumberToObject(kpt, POINTS[i], point_hits[i]);
    cJSON_AddNumberToObject(r, "resume_step_mismatches", mismatches);
    cJSON_AddNumberToObject(r, "kills_called_off", called_off);
    cJSON_AddNumberToObject(r, "resumed_from_old", from_old);
    cJSON_AddNumberToObject(r, "max_tmp_left_after_kill", max_tmp);
    cJSON_AddNumberToObject(r, "max_old_left_after_kill", max_old);
    cJSON_AddNumberToObject(r, "tmp_left_after_finish", fin.tmp);
    cJSON_AddNumberToObject(r, "old_left_after_finish", fin.old);
    cJSON_AddNumberToObject(r, "step_seconds", step_s);
    cJSON_AddNumberToObject(r, "validate_seconds", val_s);
    cJSON_AddNumberToObject(r, "step_kill_window_seconds", step_win);
    cJSON_AddNumberToObject(r, "validate_kill_window_seconds", val_win);
    cJSON_AddNumberToObject(r, "reference_seconds", ref_s);
    cJSON_AddNumberToObject(r, "seconds", total_s);
    cJSON_AddItemToObject(r, "errors", errors);
    cJSON_AddItemToObject(r, "events", events);
    return bench_json_emit(j);
}
