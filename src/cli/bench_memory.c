/* tfswa bench memory [--json] [--preset tiny] [--batch 1] [--steps 3] [--threads N]
 *                    [--stft 4096/1024,2048/512,2048/441] [--segments 10,6,3]
 *                    [--checkpointing off,blocks] [--precision fp32,amp] [--keep DIR]
 *                    [--key value]...
 *
 * The memory guide's comparisons, measured. Every configuration of the grid (STFT window/hop
 * x segment seconds x checkpointing x precision) runs in a child process of its own
 * (`tfswa bench memory --child ...`) that calls tf_train_run, the function `tfswa train`
 * runs: the real loader on a synthetic MUSDB18-HQ-layout dataset made once per bench,
 * --steps optimizer steps, and a full-track validation at the last step (so every role
 * of the plan is used). The child reports:
 *  - the plan by role (tf_train_plan_bytes, the function training calls before allocating);
 *  - base_rss_bytes: its resident set when the plan event arrives, before the run
 *    allocates anything of the plan (program, libraries, the parsed config);
 *  - peak_rss_bytes: its peak resident set (VmHWM) at the end of the run;
 *  - step_s: the median time of an optimizer step after the first.
 * measured_bytes = peak - base is what the run added; ratio = measured / plan total, and
 * unplanned_bytes = measured - plan. What the plan does not count shows there: oneDNN's
 * primitive objects and JIT code, OpenBLAS's and FFTW's own buffers and plans, thread
 * stacks, libsndfile's decoder state, the dataset index. On the 2-core AVX2 machine of
 * the README: 11-12.5 MiB on the tiny preset (about 6 of them oneDNN's: `--backend ref`
 * shows about 4), a visible part of a 40-70 MiB plan; 18-20 MiB on the paper preset,
 * 1.0-1.5 % of a 1.3-1.8 GiB plan (docs/MEMORY.md).
 *
 * results.activation_ratio_naive_vs_optimized: saved-activation bytes per audio second of
 * (fp32, checkpointing off, 4096/1024) over (amp, checkpointing blocks, 2048/441) at the
 * same segment (the longest segment both were run at); null when the grid lacks either. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "data/synth.h"
#include "train/dist.h"
#include "train/train.h"
#include "util/config.h"
#include "util/fsutil.h"
#include "util/sysmem.h"

#define MAX_LIST 8
#define MAX_CFG  (MAX_LIST * MAX_LIST * 2 * 2)

/* ---- the child: one configuration, one JSON line on stdout ---- */

typedef struct {
    size_t base_rss;
    double *step_s;
    int n_steps, cap;
    double last_t;
    int64_t last_step;
} child_t;

static void child_event(void *user, const tf_train_event *e) {
    child_t *c = user;
    if (e->kind == TF_TRAIN_EV_PLAN) {
        c->base_rss = tf_rss_bytes();
        c->last_t = tf_now_s();
        c->last_step = 0;
    } else if (e->kind == TF_TRAIN_EV_LOG) {
        const double t = tf_now_s();
        /* log_every is 1: one step since the last event; the first includes start-up */
        if (e->step == c->last_step + 1 && e->step > 1 && c->n_steps < c->cap)
            c->step_s[c->n_steps++] = t - c->last_t;
        c->last_t = t, c->last_step = e->step;
    } else if (e->kind == TF_TRAIN_EV_VALID) {
        c->last_t = tf_now_s(); /* validation is not a step */
    }
}

static cJSON *plan_json(const tf_train_plan *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "parameters", (double)p->model.params);
    cJSON_AddNumberToObject(o, "gradients", (double)p->model.grads);
    cJSON_AddNumberToObject(o, "buffers", (double)p->model.buffers);
    cJSON_AddNumberToObject(o, "optimizer", (double)p->optimizer);
    cJSON_AddNumberToObject(o, "activations", (double)p->model.activations);
    cJSON_AddNumberToObject(o, "workspace", (double)p->model.workspace);
    cJSON_AddNumberToObject(o, "conv_workspace", (double)p->model.conv_workspace);
    cJSON_AddNumberToObject(o, "loader", (double)p->loader);
    cJSON_AddNumberToObject(o, "validation", (double)p->validation);
    cJSON_AddNumberToObject(o, "trainer", (double)p->trainer);
    cJSON_AddNumberToObject(o, "total", (double)p->total);
    return o;
}

static int run_child(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    cli_flag_bool(&a, "child", 0, &st);
    tf_config cfg;
    tf_config_defaults(&cfg);
    if (!st) st = tf_config_parse_args(&cfg, argc, argv, a.used);
    if (!st) st = cli_check_unused(&a);
    if (!st) st = tf_config_validate(&cfg);
    if (st) return cli_fail(st);
    child_t c = {0};
    c.cap = (int)(cfg.max_steps > 0 ? cfg.max_steps : 1);
    c.step_s = tf_calloc((size_t)c.cap, sizeof(double), "step times");
    if (!c.step_s) return cli_fail(TF_EINTERNAL);
    tf_dist d = TF_DIST_SINGLE;
    tf_train_plan plan;
    st = tf_train_plan_bytes(&plan, &cfg, cfg.num_threads);
    if (!st) st = tf_train_run(&cfg, &d, child_event, &c);
    if (st) {
        free(c.step_s);
        return cli_fail(st);
    }
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddItemToObject(o, "plan", plan_json(&plan));
        cJSON_AddNumberToObject(o, "base_rss_bytes", (double)c.base_rss);
        cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)tf_peak_rss_bytes());
        cJSON_AddNumberToObject(o, "step_s", c.n_steps ? bench_median(c.step_s, c.n_steps) : NAN);
    }
    free(c.step_s);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return cli_fail(tf_err(TF_EINTERNAL, "out of memory"));
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- the parent ---- */

typedef struct {
    int win, hop;
    double seg;
    int ck;       /* 0 off, 1 blocks */
    int amp;      /* 0 fp32, 1 amp (bf16 activations and arithmetic) */
    cJSON *child; /* the child's JSON, NULL if it failed */
    char error[512];
} entry;

static tf_status parse_list(const char *flag, const char *s, double *v, int *n, int pairs, int *w,
                            int *h) {
    *n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST) return tf_err(TF_EUSER, "--%s: at most %d values", flag, MAX_LIST);
        char *end;
        errno = 0;
        if (pairs) {
            long a = strtol(t, &end, 10), b = -1;
            if (*end == '/') b = strtol(end + 1, &end, 10);
            if (errno || *end || a < 16 || a > 65536 || b < 1 || b > a)
                return tf_err(TF_EUSER, "--%s: '%s' is not WINDOW/HOP (e.g. 2048/441)", flag, t);
            w[*n] = (int)a, h[*n] = (int)b;
        } else {
            double x = strtod(t, &end);
            if (errno || *end || !(x > 0 && x <= 600))
                return tf_err(TF_EUSER, "--%s: '%s' is not a number of seconds in (0, 600]", flag,
                              t);
            v[*n] = x;
        }
        (*n)++;
    }
    if (*n == 0) return tf_err(TF_EUSER, "--%s: empty list", flag);
    return TF_OK;
}

/* which of `names` each comma-separated item of s is: bit mask */
static tf_status parse_choice(const char *flag, const char *s, const char *a, const char *b,
                              int *mask) {
    *mask = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, a))
            *mask |= 1;
        else if (!strcmp(t, b))
            *mask |= 2;
        else
            return tf_err(TF_EUSER, "--%s: '%s' is not %s or %s", flag, t, a, b);
    }
    if (!*mask) return tf_err(TF_EUSER, "--%s: empty list", flag);
    return TF_OK;
}

/* Run argv with stdout into a string (the JSON line) and stderr into `log`. */
static cJSON *spawn(char *const argv[], const char *log, char *err, size_t en) {
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(err, en, "pipe: %s", strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, en, "fork: %s", strerror(errno));
        close(fd[0]), close(fd[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lf >= 0) dup2(lf, 2), close(lf);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 > cap) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 8192);
            if (!nb) break;
            buf = nb;
        }
        ssize_t r = read(fd[0], buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    cJSON *j = NULL;
    if (buf) buf[n] = 0;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && buf) j = cJSON_Parse(buf);
    if (!j) {
        /* the child's last line of stderr says why */
        char line[400] = "", tmp[400];
        FILE *f = fopen(log, "r");
        while (f && fgets(tmp, sizeof tmp, f))
            if (tmp[0] && tmp[0] != '\n') snprintf(line, sizeof line, "%s", tmp);
        if (f) fclose(f);
        line[strcspn(line, "\n")] = 0;
        snprintf(err, en, "child %s %d: %s", WIFEXITED(ws) ? "exit status" : "signal",
                 WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), line);
    }
    free(buf);
    return j;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char USAGE[] =
    "usage: tfswa bench memory [--json] [--preset tiny] [--batch 1] [--steps 3] [--threads N]\n"
    "         [--stft 4096/1024,2048/512,2048/441] [--segments 10,6,3]\n"
    "         [--checkpointing off,blocks] [--precision fp32,amp] [--keep DIR] [--key value]...\n"
    "Runs every configuration of the grid in its own process (real training steps and a\n"
    "validation on synthetic data) and compares its measured peak memory with the plan.\n";

int bench_memory(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--child")) return run_child(argc, argv);
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    const int json = cli_flag_bool(&a, "json", 0, &st);
    const char *preset = cli_flag_str(&a, "preset", &st);
    const char *stft = cli_flag_str(&a, "stft", &st);
    const char *segs = cli_flag_str(&a, "segments", &st);
    const char *cks = cli_flag_str(&a, "checkpointing", &st);
    const char *precs = cli_flag_str(&a, "precision", &st);
    const char *keep = cli_flag_str(&a, "keep", &st);
    long long B = cli_flag_int(&a, "batch", 1, &st);
    long long K = cli_flag_int(&a, "steps", 3, &st);
    long long threads = cli_flag_int(&a, "threads", 0, &st);
    if (st) return cli_fail(st);
    unsigned char before[256];
    memcpy(before, a.used, sizeof before);
    tf_config base;
    tf_config_defaults(&base);
    if ((st = tf_config_parse_args(&base, a.argc, argv, a.used)) != TF_OK) return cli_fail(st);
    if ((st = cli_check_unused(&a)) != TF_OK) return cli_fail(st);
    if (B < 1 || B > 256) return cli_fail(tf_err(TF_EUSER, "--batch %lld: must be 1..256", B));
    if (K < 2 || K > 100) return cli_fail(tf_err(TF_EUSER, "--steps %lld: must be 2..100", K));
    if (threads < 0 || threads > 4096)
        return cli_fail(tf_err(TF_EUSER, "--threads %lld: must be 0..4096", threads));
    int nw = 0, ns = 0, ckm = 0, pm = 0, W[MAX_LIST], H[MAX_LIST];
    double S[MAX_LIST];
    if ((st =
             parse_list("stft", stft ? stft : "4096/1024,2048/512,2048/441", NULL, &nw, 1, W, H)) ||
        (st = parse_list("segments", segs ? segs : "10,6,3", S, &ns, 0, NULL, NULL)) ||
        (st = parse_choice("checkpointing", cks ? cks : "off,blocks", "off", "blocks", &ckm)) ||
        (st = parse_choice("precision", precs ? precs : "fp32,amp", "fp32", "amp", &pm)))
        return cli_fail(st);
    if (!preset) preset = "tiny";
    if (threads == 0) threads = omp_get_max_threads();
    double smax = 0;
    for (int i = 0; i < ns; i++) smax = S[i] > smax ? S[i] : smax;

    /* the dataset (and the run folders) in a temporary directory, or --keep DIR */
    char dir[TF_PATH_MAX];
    if (keep) {
        snprintf(dir, sizeof dir, "%s", keep);
        if ((st = tf_mkdirs(dir))) return cli_fail(st);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/tfswa-bench-memory-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
            return cli_fail(tf_err(TF_EUSER, "%s: cannot create: %s", dir, strerror(errno)));
    }
    char data[TF_PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data", dir);
    tf_synth_opts so;
    tf_synth_defaults(&so);
    so.train_tracks = 4, so.test_tracks = 1, so.seed = 5;
    so.seconds = smax + 2;
    so.sample_rate = base.sample_rate;
    if (!json) fprintf(stderr, "bench memory: synthetic data in %s\n", data);
    if ((st = tf_synth_dataset(data, &so))) return cli_fail(st);

    char exe[TF_PATH_MAX];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0) return cli_fail(tf_err(TF_EINTERNAL, "/proc/self/exe: %s", strerror(errno)));
    exe[el] = 0;

    entry *E = tf_calloc(MAX_CFG, sizeof *E, "bench entries");
    if (!E) return cli_fail(TF_EINTERNAL);
    int n = 0;
    for (int w = 0; w < nw; w++)
        for (int s = 0; s < ns; s++)
            for (int ck = 0; ck < 2; ck++)
                for (int amp = 0; amp < 2; amp++)
                    if ((ckm >> ck & 1) && (pm >> amp & 1))
                        E[n++] = (entry){W[w], H[w], S[s], ck, amp, NULL, ""};
    const double t0 = tf_now_s();
    for (int i = 0; i < n; i++) {
        entry *e = &E[i];
        char out[TF_PATH_MAX + 32], log[TF_PATH_MAX + 32], sw[16], sh[16], ss[32], sb[16], sk[16],
            st_[16];
        snprintf(out, sizeof out, "%s/run%02d", dir, i);
        snprintf(log, sizeof log, "%s/run%02d.log", dir, i);
        snprintf(sw, sizeof sw, "%d", e->win);
        snprintf(sh, sizeof sh, "%d", e->hop);
        snprintf(ss, sizeof ss, "%.17g", e->seg);
        snprintf(sb, sizeof sb, "%lld", B);
        snprintf(sk, sizeof sk, "%lld", K);
        snprintf(st_, sizeof st_, "%lld", threads);
        char *av[64 + 256];
        int ac = 0;
        const char *fixed[] = {exe,
                               "bench",
                               "memory",
                               "--child",
                               "--preset",
                               preset,
                               "--data_root",
                               data,
                               "--output_dir",
                               out,
                               "--stft.window_size",
                               sw,
                               "--stft.hop_length",
                               sh,
                               "--segment_seconds",
                               ss,
                               "--checkpointing",
                               e->ck ? "blocks" : "off",
                               "--activation_dtype",
                               e->amp ? "bf16" : "fp32",
                               "--compute_dtype",
                               e->amp ? "bf16" : "fp32",
                               "--batch_size",
                               sb,
                               "--max_steps",
                               sk,
                               "--val_every",
                               sk,
                               "--log_every",
                               "1",
                               "--ckpt_every",
                               "0",
                               "--valid_fraction",
                               "0.25",
                               "--num_threads",
                               st_};
        for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) av[ac++] = (char *)fixed[k];
        for (int k = 1; k < a.argc && ac < 64 + 250; k++) /* the user's config flags */
            if (a.used[k] && !before[k]) av[ac++] = argv[k];
        av[ac] = NULL;
        if (!json)
            fprintf(stderr, "  [%d/%d] stft %d/%d, segment %g s, checkpointing %s, %s ...\n", i + 1,
                    n, e->win, e->hop, e->seg, e->ck ? "blocks" : "off", e->amp ? "amp" : "fp32");
        e->child = spawn(av, log, e->error, sizeof e->error);
        if (!e->child && !json) fprintf(stderr, "    failed: %s\n", e->error);
    }
    const double wall = tf_now_s() - t0;

    /* results */
    cJSON *config, *results;
    cJSON *root = bench_json_open("memory", (int)threads, &config, &results);
    if (!root) {
        free(E);
        return cli_fail(tf_err(TF_EINTERNAL, "out of memory"));
    }
    cJSON_AddStringToObject(config, "preset", preset);
    cJSON_AddNumberToObject(config, "batch", (double)B);
    cJSON_AddNumberToObject(config, "steps", (double)K);
    cJSON_AddNumberToObject(config, "threads", (double)threads);
    cJSON_AddNumberToObject(config, "configurations", n);
    cJSON_AddStringToObject(config, "data",
                            "tfswa synth: 4 train tracks (1 of them validation), "
                            "segment max + 2 s long");
    cJSON *arr = cJSON_AddArrayToObject(results, "configs");
    double worst = 0, naive = NAN, opt = NAN, nseg = -1;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        const entry *e = &E[i];
        cJSON *o = cJSON_CreateObject();
        char name[64];
        snprintf(name, sizeof name, "%d/%d %gs %s %s", e->win, e->hop, e->seg,
                 e->ck ? "blocks" : "off", e->amp ? "amp" : "fp32");
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddNumberToObject(o, "n_fft", e->win);
        cJSON_AddNumberToObject(o, "hop", e->hop);
        cJSON_AddNumberToObject(o, "segment_seconds", e->seg);
        cJSON_AddStringToObject(o, "checkpointing", e->ck ? "blocks" : "off");
        cJSON_AddStringToObject(o, "precision", e->amp ? "amp" : "fp32");
        if (!e->child) {
            failed++;
            cJSON_AddStringToObject(o, "error", e->error);
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        const cJSON *plan = cJSON_GetObjectItemCaseSensitive(e->child, "plan");
        const double total = jnum(plan, "total"), act = jnum(plan, "activations");
        const double base_rss = jnum(e->child, "base_rss_bytes");
        const double peak = jnum(e->child, "peak_rss_bytes");
        const double meas = peak - base_rss, ratio = meas / total;
        const double act_per_s = act / ((double)B * e->seg);
        cJSON_AddItemToObject(o, "plan", cJSON_Duplicate(plan, 1));
        cJSON_AddNumberToObject(o, "base_rss_bytes", base_rss);
        cJSON_AddNumberToObject(o, "peak_rss_bytes", peak);
        cJSON_AddNumberToObject(o, "measured_bytes", meas);
        cJSON_AddNumberToObject(o, "unplanned_bytes", meas - total);
        cJSON_AddNumberToObject(o, "ratio_measured_plan", ratio);
        cJSON_AddNumberToObject(o, "step_s", jnum(e->child, "step_s"));
        cJSON_AddNumberToObject(o, "activation_bytes_per_audio_second", act_per_s);
        cJSON_AddItemToArray(arr, o);
        if (fabs(ratio - 1) > worst) worst = fabs(ratio - 1);
        if (!json)
            printf("%-28s plan %9.1f MiB (act. %8.1f, ws %8.1f)  measured %9.1f MiB  ratio %.3f  "
                   "step %.3f s\n",
                   name, total / 1048576.0, act / 1048576.0, jnum(plan, "workspace") / 1048576.0,
                   meas / 1048576.0, ratio, jnum(e->child, "step_s"));
    }
    /* naive (fp32, off, 4096/1024) over optimized (amp, blocks, 2048/441), same segment */
    for (int i = 0; i < n; i++) {
        const entry *e = &E[i];
        if (!e->child || e->win != 4096 || e->hop != 1024 || e->ck || e->amp) continue;
        for (int j = 0; j < n; j++) {
            const entry *f = &E[j];
            if (!f->child || f->win != 2048 || f->hop != 441 || !f->ck || !f->amp ||
                f->seg != e->seg || e->seg < nseg)
                continue;
            const cJSON *pe = cJSON_GetObjectItemCaseSensitive(e->child, "plan");
            const cJSON *pf = cJSON_GetObjectItemCaseSensitive(f->child, "plan");
            naive = jnum(pe, "activations") / e->seg, opt = jnum(pf, "activations") / f->seg;
            nseg = e->seg;
        }
    }
    if (nseg > 0) {
        cJSON_AddNumberToObject(results, "activation_ratio_naive_vs_optimized", naive / opt);
        cJSON_AddNumberToObject(results, "activation_ratio_segment_seconds", nseg);
    } else {
        cJSON_AddNullToObject(results, "activation_ratio_naive_vs_optimized");
    }
    cJSON_AddNumberToObject(results, "max_abs_ratio_error", worst);
    cJSON_AddNumberToObject(results, "failed", failed);
    cJSON_AddNumberToObject(results, "seconds", wall);
    if (!json) {
        printf("max |measured/plan - 1| = %.3f over %d configurations (%d failed), %.0f s\n", worst,
               n - failed, failed, wall);
        if (nseg > 0)
            printf("saved activations per audio second, fp32/off/4096/1024 over "
                   "amp/blocks/2048/441 (segment %g s): %.2f\n",
                   nseg, naive / opt);
    }
    for (int i = 0; i < n; i++) cJSON_Delete(E[i].child);
    free(E);
    if (!keep && tf_remove_tree(dir) != TF_OK && !json)
        fprintf(stderr, "bench memory: %s\n", tf_errmsg());
    int rc = json ? bench_json_emit(root) : (cJSON_Delete(root), 0);
    return rc ? 1 : (failed ? 2 : 0);
}
