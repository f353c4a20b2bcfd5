/* tfswa bench stream [--json] [--seconds 10] [--rt_seconds 3] [--num_threads 0]
 *                    [--presets tiny,small] [--blocks 64,256,1024,4096] [--overlap 0.25]
 * The stream API (tfswa_stream_*) with a random-weights model of each preset (4 targets,
 * its default sample rate and segment): per block size,
 *   synchronous: the song pushed as fast as it goes; real-time factor (compute seconds per
 *     audio second) and the worst push+pull call after the first chunk (the work of a
 *     whole chunk arrives inside one push: what an audio callback would wait);
 *   worker-thread mode: rt_seconds pushed at the pace of real time (a sleep per block);
 *     the worst push+pull call, and the frames that were not ready when due (underrun).
 * Goal: small preset on 2 cores at real-time factor < 0.5, and in worker-thread mode no
 * push/pull call over 1 ms. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "data/synth.h"
#include "model/model.h"
#include "tfswa.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "util/config.h"
#include "util/fsutil.h"

static const char *USAGE =
    "usage: tfswa bench stream [--json] [--seconds 10] [--rt_seconds 4] [--num_threads 0]\n"
    "                          [--presets tiny,small] [--blocks 64,256,1024,4096]\n"
    "                          [--segment 1] [--overlap 0.25]\n"
    "\n"
    "Streams synthetic audio through tfswa_stream_* with a random-weights model of each\n"
    "preset (4 targets, default rate, --segment 1 s). Per block size: latency, real-time\n"
    "factor (compute s per audio s, pushing as fast as it goes) and the worst push+pull\n"
    "call; then worker-thread mode paced in real time for rt_seconds: its latency, worst\n"
    "push+pull call and underrun frames. Goal: small on 2 cores at RTF < 0.5; worker mode\n"
    "calls <= 1 ms.\n";

static tf_status write_ckpt(const tf_config *cfg, const char *dir) {
    tf_model *m = NULL;
    const tf_model_config mc = tf_train_model_config(cfg);
    TF_TRY(tf_model_create_mode(&m, &mc, 1,
                                (int64_t)llround(cfg->segment_seconds * cfg->sample_rate),
                                cfg->num_threads, TF_MODEL_INFER));
    tf_model_init(m, 1);
    const tf_model_sizes *sz = tf_model_get_plan(m);
    tf_opt_state os = {sz->n_params, NULL, NULL, NULL};
    os.m = tf_calloc(sz->n_params, sizeof(float), "adam m");
    os.v = tf_calloc(sz->n_params, sizeof(float), "adam v");
    tf_train_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.best_metric = -INFINITY;
    tf_status st = os.m && os.v ? tf_ckpt_save(dir, m, cfg, &pr, &os) : TF_EINTERNAL;
    free(os.m), free(os.v);
    tf_model_free(m);
    return st;
}

typedef struct {
    int block;
    double rtf, worst_ms, median_ms;             /* synchronous */
    double t_latency_s, t_worst_ms, t_median_ms; /* worker-thread mode */
    int64_t t_underrun;
} row;

static double ms_since(double t0) {
    return 1e3 * (tf_now_s() - t0);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One run: x (n, 2) at rate through a stream; paced: sleep to real time per block. */
static tf_status run_one(tfswa_context *ctx, const float *x, int64_t n, int rate, int block,
                         const tfswa_stream_params *sp, int paced, double *secs, double *worst,
                         double *median, int64_t *latency, int64_t *underrun) {
    tfswa_stream *s = tfswa_stream_open(ctx, 2, rate, sp);
    if (!s) return tf_err(TF_EUSER, "%s", tfswa_last_error(ctx));
    const int K = tfswa_stream_n_outputs(s);
    const int64_t D = tfswa_stream_latency(s);
    const int64_t hop = (int64_t)ceil(tfswa_stream_segment(s) * (1 - sp->overlap) * rate);
    float *y = malloc(sizeof(float) * (size_t)K * 2 * (size_t)(block + 1));
    int64_t n_calls = n / block + 1, nt = 0;
    double *t = malloc(sizeof(double) * (size_t)n_calls);
    tf_status st = y && t ? TF_OK : tf_err(TF_EINTERNAL, "bench stream: out of memory");
    int64_t in = 0, out = 0, missing = 0;
    const double t0 = tf_now_s();
    while (!st && in + block <= n) {
        if (paced) {
            double due = t0 + (double)(in + block) / rate, now = tf_now_s();
            if (due > now) {
                struct timespec ts = {(time_t)(due - now), (long)(fmod(due - now, 1.0) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        const double c0 = tf_now_s();
        int r = tfswa_stream_push(s, x + (size_t)in * 2, block);
        int64_t k = r == TFSWA_OK ? tfswa_stream_pull(s, y, block + 1) : 0;
        const double c = ms_since(c0);
        if (r == TFSWA_ERR_AGAIN) {
            missing += block; /* the worker fell a ring behind: this block is dropped */
            continue;
        }
        if (r != TFSWA_OK || k < 0) st = tf_err(TF_EUSER, "%s", tfswa_last_error(ctx));
        in += block, out += k;
        const int64_t due = in - D > 0 ? in - D : 0;
        if (paced && out < due) missing += due - out, out = due; /* late frames */
        if (in > D + hop && nt < n_calls) t[nt++] = c; /* steady state: after the first chunk */
    }
    if (!st && tfswa_stream_flush(s) != TFSWA_OK)
        st = tf_err(TF_EUSER, "%s", tfswa_last_error(ctx));
    int64_t k;
    while (!st && (k = tfswa_stream_pull(s, y, block)) > 0) out += k;
    *secs = tf_now_s() - t0;
    *latency = D, *underrun = missing;
    *worst = 0, *median = 0;
    if (nt > 0) {
        qsort(t, (size_t)nt, sizeof *t, cmp_d);
        *worst = t[nt - 1], *median = t[nt / 2];
    }
    free(y), free(t);
    tfswa_stream_close(s);
    return st;
}

int bench_stream(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    int json = cli_flag_bool(&a, "json", 0, &st);
    double secs = st ? 0 : cli_flag_double(&a, "seconds", 10, &st);
    double rt_secs = st ? 0 : cli_flag_double(&a, "rt_seconds", 4, &st);
    long long threads = st ? 0 : cli_flag_int(&a, "num_threads", 0, &st);
    const char *presets = st ? NULL : cli_flag_str(&a, "presets", &st);
    const char *blocks = st ? NULL : cli_flag_str(&a, "blocks", &st);
    double overlap = st ? 0 : cli_flag_double(&a, "overlap", 0.25, &st);
    double segment = st ? 0 : cli_flag_double(&a, "segment", 1.0, &st);
    if (st) return cli_fail(st);
    if ((st = cli_check_unused(&a))) return cli_fail(st);
    if (!(secs > 0 && secs <= 3600) || !(rt_secs >= 0 && rt_secs <= 600))
        return cli_fail(tf_err(TF_EUSER, "--seconds in (0, 3600] and --rt_seconds in [0, 600]"));
    if (threads < 0 || threads > 4096)
        return cli_fail(tf_err(TF_EUSER, "--num_threads: %lld is not in [0, 4096]", threads));
    if (!(segment > 0 && segment <= 60))
        return cli_fail(tf_err(TF_EUSER, "--segment: %g is not in (0, 60]", segment));
    if (!(overlap >= 0 && overlap < 1))
        return cli_fail(tf_err(TF_EUSER, "--overlap: %g is not in [0, 1)", overlap));
    char pbuf[256], bbuf[256];
    snprintf(pbuf, sizeof pbuf, "%s", presets ? presets : "tiny,small");
    snprintf(bbuf, sizeof bbuf, "%s", blocks ? blocks : "64,256,1024,4096");
    int bl[16], nb = 0;
    for (char *t = strtok(bbuf, ","); t && nb < 16; t = strtok(NULL, ",")) {
        bl[nb] = atoi(t);
        if (bl[nb] < 1 || bl[nb] > 65536)
            return cli_fail(tf_err(TF_EUSER, "--blocks: '%s' is not in [1, 65536]", t));
        nb++;
    }
    const char *pn[8];
    int np = 0;
    for (char *t = strtok(pbuf, ","); t && np < 8; t = strtok(NULL, ",")) pn[np++] = t;

    char dir[] = "/tmp/tfswa_bench_stream_XXXXXX";
    if (!mkdtemp(dir)) return cli_fail(tf_err(TF_EUSER, "mkdtemp: %s", strerror(errno)));
    cJSON *c = NULL, *r = NULL, *j = json ? bench_json_open("stream", (int)threads, &c, &r) : NULL;
    if (json && !j) return cli_fail(tf_err(TF_EINTERNAL, "bench stream: out of memory"));
    cJSON *pj = json ? cJSON_AddObjectToObject(r, "presets") : NULL;
    char machine[256];
    bench_machine(machine, sizeof machine, (int)threads);
    if (!json) printf("%s\n", machine);
    for (int p = 0; p < np && !st; p++) {
        tf_config cfg;
        tf_config_defaults(&cfg);
        char *pa[3] = {"bench", "--preset", (char *)pn[p]};
        st = tf_config_set(&cfg, "targets", "vocals,drums,bass,other");
        if (!st) st = tf_config_parse_args(&cfg, 3, pa, NULL);
        if (!st) st = tf_config_validate(&cfg);
        cfg.num_threads = (int)threads;
        char ck[300];
        snprintf(ck, sizeof ck, "%s/%s", dir, pn[p]);
        if (!st) st = write_ckpt(&cfg, ck);
        size_t n_params = 0;
        const tf_model_config mc = tf_train_model_config(&cfg);
        if (!st) st = tf_model_param_count(&n_params, &mc);
        if (st) break;
        const char *cks[] = {ck};
        int status;
        tfswa_context *ctx = tfswa_open(cks, 1, (int)threads, &status);
        if (!ctx) {
            st = tf_err(TF_EUSER, "%s", tfswa_last_error(NULL));
            break;
        }
        const int rate = cfg.sample_rate;
        const int64_t n = (int64_t)llround(fmax(secs, rt_secs) * rate);
        float *buf = tf_malloc(sizeof(float) * 4 * 2 * (size_t)n, "bench stream: audio");
        float *x = tf_malloc(sizeof(float) * 2 * (size_t)n, "bench stream: audio");
        if (!buf || !x) st = TF_EINTERNAL;
        if (!st) {
            float *stems[4] = {buf, buf + 2 * n, buf + 4 * n, buf + 6 * n};
            st = tf_synth_track(stems, n, rate, 7);
            for (int64_t i = 0; i < n && !st; i++) /* (2, n) planar stems -> (n, 2) mixture */
                for (int ch = 0; ch < 2; ch++)
                    x[i * 2 + ch] = 0.5f * (stems[0][ch * n + i] + stems[1][ch * n + i] +
                                            stems[2][ch * n + i] + stems[3][ch * n + i]);
        }
        free(buf);
        tfswa_stream_params sp = tfswa_stream_default_params();
        sp.overlap = overlap;
        sp.segment = segment;
        row rows[16];
        int64_t D = 0, Dt = 0;
        double seg = 0;
        for (int b = 0; b < nb && !st; b++) {
            row *w = &rows[b];
            memset(w, 0, sizeof *w);
            w->block = bl[b];
            double wall;
            int64_t und;
            sp.threaded = false;
            if (!json) fprintf(stderr, "%s: block %d ...\n", pn[p], bl[b]);
            st = run_one(ctx, x, (int64_t)llround(secs * rate), rate, bl[b], &sp, 0, &wall,
                         &w->worst_ms, &w->median_ms, &D, &und);
            w->rtf = wall / secs;
            if (!st && rt_secs > 0) {
                sp.threaded = true;
                st = run_one(ctx, x, (int64_t)llround(rt_secs * rate), rate, bl[b], &sp, 1, &wall,
                             &w->t_worst_ms, &w->t_median_ms, &Dt, &w->t_underrun);
                w->t_latency_s = (double)Dt / rate;
            }
        }
        if (!st) {
            tfswa_stream *s = tfswa_stream_open(ctx, 2, rate, &sp);
            seg = s ? tfswa_stream_segment(s) : 0;
            tfswa_stream_close(s);
        }
        const char *desc = tfswa_describe(ctx);
        if (!st && !json) {
            printf("%s (%zu params, %d Hz, segment %g s, overlap %g, %s): latency %lld frames = "
                   "%.3f s; ",
                   pn[p], n_params, rate, seg, overlap, desc, (long long)D, (double)D / rate);
            if (rt_secs > 0)
                printf("worker-thread mode %.3f s\n", (double)Dt / rate);
            else
                printf("worker-thread mode not run (--rt_seconds 0)\n");
            printf("  block   RTF    worst call ms  median ms | worker: worst ms  median ms  "
                   "underrun frames\n");
            for (int b = 0; b < nb; b++)
                printf("  %5d  %.3f  %12.3f  %9.4f | %15.4f  %9.4f  %lld\n", rows[b].block,
                       rows[b].rtf, rows[b].worst_ms, rows[b].median_ms, rows[b].t_worst_ms,
                       rows[b].t_median_ms, (long long)rows[b].t_underrun);
        }
        if (!st && json) {
            cJSON *o = cJSON_AddObjectToObject(pj, pn[p]);
            cJSON_AddNumberToObject(o, "params", (double)n_params);
            cJSON_AddNumberToObject(o, "sample_rate", rate);
            cJSON_AddNumberToObject(o, "segment_seconds", seg);
            cJSON_AddStringToObject(o, "compute", desc);
            cJSON_AddNumberToObject(o, "latency_frames", (double)D);
            cJSON_AddNumberToObject(o, "latency_seconds", (double)D / rate);
            cJSON_AddNumberToObject(o, "threaded_latency_seconds", (double)Dt / rate);
            cJSON *arr = cJSON_AddArrayToObject(o, "blocks");
            double best = INFINITY, worst_rtf = 0;
            for (int b = 0; b < nb; b++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "block", rows[b].block);
                cJSON_AddNumberToObject(e, "rtf", rows[b].rtf);
                cJSON_AddNumberToObject(e, "worst_call_ms", rows[b].worst_ms);
                cJSON_AddNumberToObject(e, "median_call_ms", rows[b].median_ms);
                cJSON_AddNumberToObject(e, "threaded_worst_call_ms", rows[b].t_worst_ms);
                cJSON_AddNumberToObject(e, "threaded_median_call_ms", rows[b].t_median_ms);
                cJSON_AddNumberToObject(e, "threaded_underrun_frames", (double)rows[b].t_underrun);
                cJSON_AddItemToArray(arr, e);
                best = fmin(best, rows[b].rtf);
                worst_rtf = fmax(worst_rtf, rows[b].rtf);
            }
            cJSON_AddNumberToObject(o, "rtf_best", best);
            cJSON_AddNumberToObject(o, "rtf_worst", worst_rtf);
            double tw = 0;
            for (int b = 0; b < nb; b++) tw = fmax(tw, rows[b].t_worst_ms);
            cJSON_AddNumberToObject(o, "threaded_worst_call_ms", tw);
            /* the headline numbers: the small preset's (else the last one's) */
            if (!strcmp(pn[p], "small") || (p == np - 1 && !cJSON_GetObjectItem(r, "preset"))) {
                const char *keys[] = {"preset", "latency_seconds", "threaded_latency_seconds",
                                      "rtf", "threaded_worst_call_ms"};
                for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                    cJSON_DeleteItemFromObject(r, keys[k]);
                cJSON_AddStringToObject(r, "preset", pn[p]);
                cJSON_AddNumberToObject(r, "latency_seconds", (double)D / rate);
                cJSON_AddNumberToObject(r, "threaded_latency_seconds", (double)Dt / rate);
                cJSON_AddNumberToObject(r, "rtf", worst_rtf); /* the slowest block size */
                cJSON_AddNumberToObject(r, "threaded_worst_call_ms", tw);
            }
        }
        free(x);
        tfswa_close(ctx);
    }
    if (tf_remove_tree(dir)) fprintf(stderr, "tfswa: %s\n", tf_errmsg());
    if (st) {
        if (j) cJSON_Delete(j);
        return cli_fail(st);
    }
    if (!json) return 0;
    cJSON_AddNumberToObject(c, "seconds", secs);
    cJSON_AddNumberToObject(c, "rt_seconds", rt_secs);
    cJSON_AddNumberToObject(c, "overlap", overlap);
    cJSON_AddNumberToObject(c, "segment_seconds", segment);
    cJSON_AddNumberToObject(c, "num_threads", (double)threads);
    cJSON_AddStringToObject(c, "weights", "random (seeded), 4 targets, input rate = model rate");
    cJSON_AddStringToObject(c, "rtf",
                            "wall seconds of the push/pull loop (as fast as it goes, "
                            "synchronous) per audio second");
    cJSON_AddStringToObject(c, "worst_call_ms",
                            "slowest push+pull call after the first chunk (synchronous: a "
                            "whole chunk's model work lands in one push)");
    cJSON_AddStringToObject(c, "threaded",
                            "worker-thread mode, blocks pushed at real-time pace for rt_seconds; "
                            "underrun = frames not ready when due");
    return bench_json_emit(j);
}
