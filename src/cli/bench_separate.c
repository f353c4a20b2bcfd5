/* tfswa bench separate [--json] [--short_seconds 60] [--long_seconds 1200] [--preset tiny]
 *                      [--segment S] [--overlap F] [--batch_size N] [--num_threads N] [--keep]
 * Peak resident memory and time per audio second separating a short and a long synthetic
 * song with a random-weights model (default: the tiny preset, 4 targets), each run in its
 * own child process (fork; peak RSS and CPU time from wait4), so the two peaks compare.
 * Goal: rss_ratio_long_over_short <= 1.1 (memory does not grow with the song).
 * Then the short song is separated by one process alone and by two at once (each with all
 * cores): concurrent_slowdown = mean wall of the two / wall alone; goal <= 2.5 (a fair
 * share of the cores gives 2; threads spinning in libgomp gave ~30). */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audio/audio.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "infer/precision.h"
#include "data/synth.h"
#include "model/model.h"
#include "tfswa.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "util/config.h"
#include "util/device.h"
#include "util/fsutil.h"

static const char *USAGE =
    "usage: tfswa bench separate [--json] [--short_seconds 60] [--long_seconds 1200]\n"
    "                            [--preset tiny] [--targets vocals,drums,bass,other]\n"
    "                            [--segment S] [--overlap 0.25] [--batch_size 1]\n"
    "                            [--num_threads 0] [--precision fp32|bf16|auto]\n"
    "                            [--backend dnnl|ref] [--keep] [--device cpu|cuda[:N]]\n"
    "                            [model keys...]\n"
    "\n"
    "Separates a short and a long synthetic song (30 s of tfswa synth material looped) with\n"
    "a random-weights model, each in its own process, and reports peak RSS and time per\n"
    "audio second; then separates the short song in one process alone and in two processes\n"
    "at once (each with --num_threads) and reports concurrent_slowdown (wall of the two\n"
    "over wall alone; a fair share of the cores is 2). Files go to a temporary folder\n"
    "(removed unless --keep). --device cuda[:N]: the separations run on that GPU (each child\n"
    "process opens it), and each run also reports the device bytes in use after it\n"
    "(cudaMemGetInfo), with and without what the CUDA context alone takes.\n";

/* Child: the checkpoint (random weights) and the two input files. */
static tf_status prepare(const tf_config *cfg, const char *dir, const char *ckpt,
                         const char *const files[2], const double secs[2]) {
    tf_model *m = NULL;
    const int rate = cfg->sample_rate;
    const tf_model_config mc = tf_train_model_config(cfg);
    TF_TRY(tf_model_create_mode(&m, &mc, 1, (int64_t)llround(cfg->segment_seconds * rate),
                                cfg->num_threads, TF_MODEL_INFER));
    const tf_model_sizes *sz = tf_model_get_plan(m);
    tf_opt_state os = {sz->n_params, NULL, NULL, NULL};
    os.m = tf_calloc(sz->n_params, sizeof(float), "adam m");
    os.v = tf_calloc(sz->n_params, sizeof(float), "adam v");
    tf_train_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.best_metric = -INFINITY;
    pr.seed = (uint64_t)cfg->seed;
    tf_status st = os.m && os.v ? tf_ckpt_save(ckpt, m, cfg, &pr, &os) : TF_EINTERNAL;
    free(os.m), free(os.v);
    tf_model_free(m);
    TF_TRY(st);
    /* 30 s of material, looped */
    const int64_t n = 30 * (int64_t)rate;
    float *buf = tf_malloc(sizeof(float) * 5 * 2 * (size_t)n, "synth material");
    if (!buf) return TF_EINTERNAL;
    float *stems[4] = {buf, buf + 2 * n, buf + 4 * n, buf + 6 * n}, *mix = buf + 8 * n;
    st = tf_synth_track(stems, n, rate, 7);
    for (int64_t i = 0; i < 2 * n && !st; i++)
        mix[i] = 0.5f * (stems[0][i] + stems[1][i] + stems[2][i] + stems[3][i]);
    for (int k = 0; k < 2 && !st; k++) {
        tf_audio_writer *w;
        st = tf_audio_writer_open(&w, files[k], rate, 2, TF_FMT_WAV, TF_SUBTYPE_PCM16);
        int64_t total = (int64_t)llround(secs[k] * rate);
        for (int64_t done = 0; done < total && !st;) {
            int64_t m2 = total - done < n ? total - done : n;
            st = tf_audio_writer_write(w, mix, m2, n);
            done += m2;
        }
        if (w) {
            tf_status c = tf_audio_writer_close(w, st == TF_OK);
            if (!st) st = c;
        }
    }
    free(buf);
    (void)dir;
    return st;
}

typedef struct {
    double duration, seconds, cpu_seconds; /* from the child's summary */
    int64_t hwm;                           /* child's VmHWM (bytes) */
    int status;
    char compute[192];            /* tfswa_describe: backend, ISA, arithmetic, precision */
    char err[256];                /* the error message when status != 0 */
    double dev_context, dev_used; /* --device cuda: device bytes in use with the CUDA context
                                     only, and after the separation (model still open) */
} child_result;

/* Start fn in a child process; the child writes a child_result into a pipe (*fd_out). */
static tf_status start_child(int (*fn)(void *, child_result *), void *arg, pid_t *pid_out,
                             int *fd_out) {
    int fd[2];
    if (pipe(fd) != 0) return tf_err(TF_EINTERNAL, "pipe: %s", strerror(errno));
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return tf_err(TF_EINTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fd[0]);
        child_result r;
        memset(&r, 0, sizeof r);
        r.status = fn(arg, &r);
        if (r.status) snprintf(r.err, sizeof r.err, "%s", tf_errmsg());
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 3);
    }
    close(fd[1]);
    *pid_out = pid, *fd_out = fd[0];
    return TF_OK;
}

/* Read the result of a child that exited with wait status wst. */
static tf_status finish_child(int fd, int wst, child_result *res) {
    memset(res, 0, sizeof *res);
    ssize_t got = read(fd, res, sizeof *res);
    close(fd);
    if (got != (ssize_t)sizeof *res || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
        return tf_err(TF_EINTERNAL, "bench separate: child process failed (status %d)", wst);
    if (res->status)
        return tf_err(res->status, "%s", res->err[0] ? res->err : "bench separate: a run failed");
    return TF_OK;
}

/* Run fn in a child process and wait for it. */
static tf_status in_child(int (*fn)(void *, child_result *), void *arg, child_result *res,
                          struct rusage *ru) {
    pid_t pid;
    int fd, wst = 0;
    TF_TRY(start_child(fn, arg, &pid, &fd));
    if (wait4(pid, &wst, 0, ru) < 0) {
        close(fd);
        return tf_err(TF_EINTERNAL, "wait4: %s", strerror(errno));
    }
    return finish_child(fd, wst, res);
}

/* Run fn(args[i]) in n (<= 2) child processes started together; wall[i]: seconds from
 * the start of child i to its exit. */
static tf_status in_children(int (*fn)(void *, child_result *), void *const args[], int n,
                             double wall[]) {
    pid_t pid[2] = {-1, -1};
    int fd[2] = {-1, -1}, wst[2] = {0, 0}, started = 0;
    double t0[2];
    tf_status st = TF_OK;
    for (; started < n && !st; started++) {
        t0[started] = tf_now_s();
        st = start_child(fn, args[started], &pid[started], &fd[started]);
    }
    if (st) started--;
    for (int left = started; left > 0; left--) {
        int w = 0;
        pid_t p = waitpid(-1, &w, 0);
        double t = tf_now_s();
        if (p < 0) {
            st = st ? st : tf_err(TF_EINTERNAL, "waitpid: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < started; i++)
            if (p == pid[i]) wst[i] = w, wall[i] = t - t0[i];
    }
    for (int i = 0; i < started; i++) {
        child_result r;
        tf_status s = finish_child(fd[i], wst[i], &r);
        if (!st) st = s;
    }
    return st;
}

typedef struct {
    const tf_config *cfg;
    const char *dir, *ckpt;
    const char *files[2];
    double secs[2];
} prep_arg;

static int prep_fn(void *a, child_result *r) {
    prep_arg *p = a;
    (void)r;
    return (int)prepare(p->cfg, p->dir, p->ckpt, p->files, p->secs);
}

typedef struct {
    const char *ckpt, *in, *out;
    tfswa_separate_params params;
    tfswa_options opt;
} run_arg;

static int run_fn(void *a, child_result *r) {
    run_arg *p = a;
    int status;
    const int cuda = p->opt.device == TFSWA_DEVICE_CUDA;
    if (cuda) { /* the device first (cuda:N), then its reading with the context alone */
        const tf_device d = {TF_DEVICE_CUDA, p->opt.device_index};
        tf_status st = tf_device_open(&d, "--device", NULL, NULL);
        if (st) return (int)st;
        r->dev_context = bench_device_bytes_in_use();
    }
    tfswa_context *ctx = tfswa_open_with(&p->ckpt, 1, &p->opt, &status);
    if (!ctx) return tf_err(status, "%s", tfswa_last_error(NULL));
    snprintf(r->compute, sizeof r->compute, "%s", tfswa_describe(ctx));
    int rc = tfswa_separate_file(ctx, p->in, p->out, &p->params);
    if (rc) {
        tf_err(TF_EUSER, "%s", tfswa_last_error(ctx));
    } else {
        const tfswa_summary *s = tfswa_last_summary(ctx);
        r->duration = s->duration, r->seconds = s->seconds, r->cpu_seconds = s->cpu_seconds;
        r->hwm = s->peak_rss_bytes;
        if (cuda) r->dev_used = bench_device_bytes_in_use();
    }
    tfswa_close(ctx);
    return rc ? (rc == TFSWA_ERR_INTERNAL ? 1 : 2) : 0;
}

/* Child: can the device be opened here (a CUDA build may still find no GPU)? */
static int probe_fn(void *a, child_result *r) {
    (void)r;
    tf_device d;
    tf_status st = tf_device_from_string("--device", (const char *)a, &d);
    if (!st) st = tf_device_open(&d, "--device", (const char *)a, NULL);
    return (int)st;
}

static void rmrf(const char *path) {
    if (tf_remove_tree(path)) fprintf(stderr, "tfswa: %s\n", tf_errmsg());
}

int bench_separate(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    int json = cli_flag_bool(&a, "json", 0, &st);
    double secs[2] = {60, 1200};
    if (!st) secs[0] = cli_flag_double(&a, "short_seconds", 60, &st);
    if (!st) secs[1] = cli_flag_double(&a, "long_seconds", 1200, &st);
    double seg = st ? 0 : cli_flag_double(&a, "segment", 0, &st);
    double overlap = st ? 0 : cli_flag_double(&a, "overlap", 0.25, &st);
    long long batch = st ? 0 : cli_flag_int(&a, "batch_size", 1, &st);
    long long threads = st ? 0 : cli_flag_int(&a, "num_threads", 0, &st);
    int keep = st ? 0 : cli_flag_bool(&a, "keep", 0, &st);
    const char *prec = st ? NULL : cli_flag_str(&a, "precision", &st);
    if (st) return cli_fail(st);
    /* the model: tiny preset and the four MUSDB targets unless flags say otherwise */
    tf_config cfg;
    tf_config_defaults(&cfg);
    if ((st = tf_config_set(&cfg, "targets", "vocals,drums,bass,other"))) return cli_fail(st);
    int has_preset = 0;
    for (int i = 1; i < argc; i++) has_preset |= !strncmp(argv[i], "--preset", 8);
    if (!has_preset) {
        char *pa[3] = {argv[0], "--preset", "tiny"};
        if ((st = tf_config_parse_args(&cfg, 3, pa, NULL))) return cli_fail(st);
    }
    if ((st = tf_config_parse_args(&cfg, a.argc, argv, a.used))) return cli_fail(st);
    if ((st = cli_check_unused(&a))) return cli_fail(st);
    if (!(secs[0] > 0 && secs[1] >= secs[0] && secs[1] <= 36000))
        return cli_fail(tf_err(TF_EUSER,
                               "--short_seconds/--long_seconds: need 0 < %g <= %g "
                               "<= 36000",
                               secs[0], secs[1]));
    if (threads < 0 || batch < 1)
        return cli_fail(tf_err(TF_EUSER, "--num_threads >= 0 and --batch_size >= 1 needed"));
    cfg.num_threads = (int)threads;
    if (seg > 0) cfg.segment_seconds = seg;
    /* the separations: --precision, and the backend key (which also trains the model) */
    tfswa_options opt = tfswa_default_options();
    opt.n_threads = (int)threads;
    if ((st =
             cli_precision_flags(prec, tf_backend_name(cfg.backend), &opt.precision, &opt.backend)))
        return cli_fail(st);
    tf_device dev = {TF_DEVICE_CPU, 0};
    if ((st = tf_device_from_string("--device", cli_bench_device, &dev))) return cli_fail(st);
    if (dev.kind == TF_DEVICE_CUDA) {
        opt.device = TFSWA_DEVICE_CUDA;
        opt.device_index = dev.index;
        child_result pr;
        struct rusage ru0;
        if ((st = in_child(probe_fn, (void *)cli_bench_device, &pr, &ru0))) return cli_fail(st);
    }
    if ((st = tf_config_validate(&cfg))) return cli_fail(st);
    size_t n_params = 0;
    const tf_model_config mc = tf_train_model_config(&cfg);
    if ((st = tf_model_param_count(&n_params, &mc))) return cli_fail(st);

    char dir[] = "/tmp/tfswa_bench_sep_XXXXXX";
    if (!mkdtemp(dir)) return cli_fail(tf_err(TF_EUSER, "mkdtemp: %s", strerror(errno)));
    char ckpt[256], fin[2][256], out[256];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
    snprintf(fin[0], sizeof fin[0], "%s/short.wav", dir);
    snprintf(fin[1], sizeof fin[1], "%s/long.wav", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    if (!json)
        fprintf(stderr, "writing the model and %g s + %g s of audio to %s ...\n", secs[0], secs[1],
                dir);
    prep_arg pa = {&cfg, dir, ckpt, {fin[0], fin[1]}, {secs[0], secs[1]}};
    child_result res[2];
    struct rusage ru[2], rp;
    st = in_child(prep_fn, &pa, &res[0], &rp);
    tfswa_separate_params p = tfswa_default_params();
    p.overlap = overlap, p.batch_size = (int)batch, p.segment = cfg.segment_seconds;
    p.subtype = TFSWA_SUBTYPE_PCM_16;
    p.n_threads = (int)threads;
    for (int k = 0; k < 2 && !st; k++) {
        run_arg ra = {ckpt, fin[k], out, p, opt};
        p.overwrite = true;
        ra.params.overwrite = true;
        if (!json) fprintf(stderr, "separating %g s ...\n", secs[k]);
        st = in_child(run_fn, &ra, &res[k], &ru[k]);
    }
    /* Sharing the machine: the short song separated by one process alone, then by two
     * processes at once, each with all cores (the waiting policy of src/cli/wait_policy.c) */
    char outc[3][256];
    run_arg rc[3];
    void *rcp[3];
    for (int i = 0; i < 3; i++) {
        snprintf(outc[i], sizeof outc[i], "%s/out%d", dir, i);
        rc[i] = (run_arg){ckpt, fin[0], outc[i], p, opt};
        rc[i].params.overwrite = true;
        rcp[i] = &rc[i];
    }
    double single_s = 0, conc_s[2] = {0, 0};
    if (!st && !json) fprintf(stderr, "separating %g s alone, then twice at once ...\n", secs[0]);
    if (!st) st = in_children(run_fn, rcp, 1, &single_s);
    if (!st) st = in_children(run_fn, rcp + 1, 2, conc_s);
    const double concurrent_s = 0.5 * (conc_s[0] + conc_s[1]);
    const double slowdown = concurrent_s / single_s;
    if (!keep) rmrf(dir);
    if (st) return cli_fail(st);

    double rss[2], cpu[2], spa[2], cpa[2];
    for (int k = 0; k < 2; k++) {
        rss[k] = (double)ru[k].ru_maxrss * 1024.0;
        cpu[k] = (double)ru[k].ru_utime.tv_sec + 1e-6 * (double)ru[k].ru_utime.tv_usec +
                 (double)ru[k].ru_stime.tv_sec + 1e-6 * (double)ru[k].ru_stime.tv_usec;
        spa[k] = res[k].seconds / res[k].duration;
        cpa[k] = res[k].cpu_seconds / res[k].duration;
    }
    char machine[256];
    bench_machine(machine, sizeof machine, 0);
    if (!json) {
        const char *nm[2] = {"short", "long"};
        for (int k = 0; k < 2; k++)
            printf("%-5s %7.0f s audio: peak RSS %7.1f MiB, %.4f s and %.4f CPU s per audio "
                   "second (process CPU %.1f s)\n",
                   nm[k], res[k].duration, rss[k] / 1048576.0, spa[k], cpa[k], cpu[k]);
        printf("concurrent_slowdown %.3f (goal <= 2.5): %g s audio in %.2f s alone, %.2f s and "
               "%.2f s as two processes at once\n",
               slowdown, secs[0], single_s, conc_s[0], conc_s[1]);
        printf("rss_ratio_long_over_short %.4f (goal <= 1.1); tiny random-weights model, %s\n",
               rss[1] / rss[0], machine);
        if (dev.kind == TF_DEVICE_CUDA) {
            for (int k = 0; k < 2; k++)
                printf("%-5s on %s: %.1f MiB of device memory in use after the separation "
                       "(%.1f MiB over the CUDA context's)\n",
                       nm[k], cli_bench_device, res[k].dev_used / 1048576.0,
                       (res[k].dev_used - res[k].dev_context) / 1048576.0);
            printf("device_ratio_long_over_short %.4f (goal <= 1.1); %s\n",
                   res[1].dev_used / res[0].dev_used, res[0].compute);
        }
        return 0;
    }
    cJSON *c, *r, *j = bench_json_open("separate", 0, &c, &r);
    if (!j) return cli_fail(tf_err(TF_EINTERNAL, "bench separate: out of memory"));
    cJSON_AddStringToObject(c, "model", cfg.preset[0] ? cfg.preset : "custom");
    cJSON_AddStringToObject(c, "weights", "random (untrained, seeded), written with tf_ckpt_save");
    cJSON_AddNumberToObject(c, "params", (double)n_params);
    cJSON_AddStringToObject(c, "compute", res[0].compute);
    cJSON_AddStringToObject(c, "device", cli_bench_device);
    cJSON *t = cJSON_AddArrayToObject(c, "targets");
    for (int i = 0; i < cfg.n_targets; i++)
        cJSON_AddItemToArray(t, cJSON_CreateString(cfg.targets[i]));
    cJSON_AddNumberToObject(c, "sample_rate", cfg.sample_rate);
    cJSON_AddNumberToObject(c, "segment_seconds", cfg.segment_seconds);
    cJSON_AddNumberToObject(c, "overlap", overlap);
    cJSON_AddNumberToObject(c, "batch_size", (double)batch);
    cJSON_AddNumberToObject(c, "shifts", 0);
    cJSON_AddNumberToObject(c, "num_threads", (double)threads);
    cJSON_AddStringToObject(c, "input", "tfswa synth material (30 s) looped, stereo PCM_16 WAV");
    cJSON_AddStringToObject(c, "output", "4 stems, PCM_16 WAV");
    cJSON_AddNumberToObject(c, "short_seconds", secs[0]);
    cJSON_AddNumberToObject(c, "long_seconds", secs[1]);
    cJSON_AddStringToObject(c, "rss", "ru_maxrss of each run's own child process (wait4)");
    const char *nm[2] = {"short", "long"};
    for (int k = 0; k < 2; k++) {
        cJSON *o = cJSON_AddObjectToObject(r, nm[k]);
        cJSON_AddNumberToObject(o, "audio_seconds", res[k].duration);
        cJSON_AddNumberToObject(o, "wall_seconds", res[k].seconds);
        cJSON_AddNumberToObject(o, "cpu_seconds", res[k].cpu_seconds);
        cJSON_AddNumberToObject(o, "peak_rss_bytes", rss[k]);
        cJSON_AddNumberToObject(o, "peak_rss_mib", rss[k] / 1048576.0);
        cJSON_AddNumberToObject(o, "seconds_per_audio_second", spa[k]);
        cJSON_AddNumberToObject(o, "cpu_seconds_per_audio_second", cpa[k]);
        if (dev.kind == TF_DEVICE_CUDA) {
            cJSON_AddNumberToObject(o, "device_bytes_in_use", res[k].dev_used);
            cJSON_AddNumberToObject(o, "device_bytes_over_context",
                                    res[k].dev_used - res[k].dev_context);
        }
    }
    if (dev.kind == TF_DEVICE_CUDA) {
        cJSON_AddNumberToObject(r, "device_ratio_long_over_short",
                                res[1].dev_used / res[0].dev_used);
        cJSON_AddStringToObject(c, "device_memory",
                                "cudaMemGetInfo (total - free) in each run's own child process, "
                                "after the separation with the model still open; "
                                "over_context: minus the reading before the model was opened "
                                "(the CUDA context alone)");
    }
    cJSON_AddNumberToObject(r, "rss_ratio_long_over_short", rss[1] / rss[0]);
    cJSON_AddNumberToObject(r, "peak_rss_short_bytes", rss[0]);
    cJSON_AddNumberToObject(r, "peak_rss_long_bytes", rss[1]);
    cJSON_AddNumberToObject(r, "seconds_per_audio_second", spa[1]);
    cJSON_AddNumberToObject(r, "cpu_seconds_per_audio_second", cpa[1]);
    cJSON_AddNumberToObject(r, "concurrent_slowdown", slowdown);
    cJSON_AddNumberToObject(r, "single_s", single_s);
    cJSON_AddNumberToObject(r, "concurrent_s", concurrent_s);
    cJSON *cw = cJSON_AddArrayToObject(r, "concurrent_wall_s");
    for (int i = 0; i < 2 && cw; i++) cJSON_AddItemToArray(cw, cJSON_CreateNumber(conc_s[i]));
    cJSON_AddStringToObject(c, "concurrent",
                            "short song separated by one child process alone (single_s, fork "
                            "to exit), then by two started together (concurrent_s: mean of "
                            "their walls), each with num_threads threads; concurrent_slowdown "
                            "= concurrent_s / single_s (fair share of the cores: 2)");
    (void)cpu;
    return bench_json_emit(j);
}
