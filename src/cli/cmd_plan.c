/* tfswa plan --memory 8GiB [--config FILE]... [--key value]... [--json] [--measure]
 *            [--write-config FILE]
 * Prints the exact training memory plan of the configuration (the function training
 * itself calls before allocating) and, for every combination of activation precision and
 * checkpointing, the largest batch that fits the budget, and the configurations of the
 * same effective batch that fit (train/fit.h), ranked. Allocates nothing unless --measure. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "train/fit.h"
#include "train/train.h"
#include "util/fsutil.h"
#include "util/config.h"

/* Largest batch in [1, 4096] whose plan fits `budget`, 0 if none. */
static tf_status max_batch(const tf_config *cfg, size_t budget, int *out) {
    tf_config c = *cfg;
    tf_train_plan p;
    int lo = 0, hi = 4096;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        c.batch_size = mid;
        TF_TRY(tf_train_plan_bytes(&p, &c, c.num_threads));
        if (p.total <= budget)
            lo = mid;
        else
            hi = mid - 1;
    }
    *out = lo;
    return TF_OK;
}

static const char USAGE[] =
    "usage: tfswa plan --memory SIZE [--config FILE]... [--preset P] [--key value]...\n"
    "                  [--json] [--measure] [--iters K] [--write-config FILE]\n"
    "Prints the exact memory plan of `tfswa train` with the same flags, the largest batch\n"
    "that fits SIZE (e.g. 8GiB) for each precision/checkpointing, and the configurations\n"
    "that fit with the same effective batch (batch_size x gradient_accumulation_steps):\n"
    "micro-batch, accumulation, checkpointing, precision, ranked by a cost model (counted\n"
    "FLOPs), or by a timed training step of each with --measure. --write-config FILE writes\n"
    "the best as a complete YAML config for `tfswa train --config FILE`.\n";

static cJSON *cand_json(const tf_fit_candidate *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "batch_size", c->micro_batch);
    cJSON_AddNumberToObject(o, "gradient_accumulation_steps", c->accumulation);
    cJSON_AddStringToObject(o, "checkpointing",
                            c->checkpointing == TF_CKPT_BLOCKS ? "blocks" : "off");
    cJSON_AddStringToObject(o, "precision", c->amp ? "amp" : "fp32");
    cJSON_AddNumberToObject(o, "plan_bytes", (double)c->plan_bytes);
    cJSON_AddNumberToObject(o, "cost_gflop", c->cost / 1e9);
    if (isnan(c->measured_s))
        cJSON_AddNullToObject(o, "measured_s");
    else
        cJSON_AddNumberToObject(o, "measured_s", c->measured_s);
    return o;
}

static tf_status write_config(const char *path, const tf_config *cfg) {
    tf_atomic_file af;
    TF_TRY(tf_atomic_open(&af, path));
    tf_status st = tf_config_write_yaml(cfg, af.f);
    if (st) {
        tf_atomic_abort(&af);
        return st;
    }
    return tf_atomic_commit(&af);
}

int cmd_plan(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    tf_config cfg;
    tf_config_defaults(&cfg);
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    const char *mem = cli_flag_str(&a, "memory", &st);
    const int json = cli_flag_bool(&a, "json", 0, &st);
    const int measure = cli_flag_bool(&a, "measure", 0, &st);
    const long long iters = cli_flag_int(&a, "iters", 2, &st);
    const char *out = cli_flag_str(&a, "write_config", &st);
    if (!st) st = tf_config_parse_args(&cfg, argc, argv, a.used);
    size_t budget = 0;
    if (!st && !mem) st = tf_err(TF_EUSER, "plan: --memory SIZE is required (e.g. --memory 8GiB)");
    if (!st) st = cli_parse_bytes("--memory", mem, &budget);
    if (!st && (iters < 1 || iters > 100))
        st = tf_err(TF_EUSER, "--iters %lld: must be 1..100", iters);
    if (!st) st = cli_check_unused(&a);
    if (!st) st = tf_config_validate(&cfg);
    tf_train_plan p;
    if (!st) st = tf_train_plan_bytes(&p, &cfg, cfg.num_threads);
    tf_fit_candidate c[TF_FIT_MAX];
    int n = 0;
    if (!st) st = tf_fit_memory(&cfg, budget, c, &n);
    if (!st && measure && n > 0) st = tf_fit_measure(&cfg, c, n, (int)iters);
    if (!st && out && n == 0)
        st = tf_err(TF_EUSER,
                    "--write-config %s: no configuration with effective batch %d fits %.1f MiB",
                    out, cfg.batch_size * cfg.gradient_accumulation_steps, budget / 1048576.0);
    if (!st && out) {
        tf_config best = cfg;
        tf_fit_apply(&best, &c[0]);
        st = write_config(out, &best);
    }
    if (st) return cli_fail(st);
    const int E = cfg.batch_size * cfg.gradient_accumulation_steps;
    if (json) {
        cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, "fits") : NULL;
        if (arr) {
            cJSON_AddNumberToObject(o, "budget_bytes", (double)budget);
            cJSON_AddNumberToObject(o, "plan_bytes", (double)p.total);
            cJSON_AddBoolToObject(o, "fits_as_given", p.total <= budget);
            cJSON_AddNumberToObject(o, "effective_batch", E);
            cJSON_AddNumberToObject(o, "segment_seconds", cfg.segment_seconds);
            cJSON_AddStringToObject(o, "ranked_by", measure ? "measured" : "cost model");
            for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cand_json(&c[i]));
            if (out) cJSON_AddStringToObject(o, "written", out);
        }
        char *s = arr ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!s) return cli_fail(tf_err(TF_EINTERNAL, "out of memory"));
        printf("%s\n", s);
        free(s);
        return 0;
    }
    tf_train_plan_print(stdout, &p, &cfg);
    printf("budget %.1f MiB: this configuration %s (%.1f%% of the budget)\n", budget / 1048576.0,
           p.total <= budget ? "FITS" : "does NOT fit", 100.0 * (double)p.total / (double)budget);
    printf("largest batch_size within the budget (segment %.2f s):\n", cfg.segment_seconds);
    for (int dt = 0; dt < 2; dt++)
        for (int ck = 0; ck < 2; ck++) {
            tf_config k = cfg;
            k.activation_dtype = dt ? TF_DT_BF16 : TF_DT_FP32;
            k.checkpointing = ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
            int b = 0;
            st = max_batch(&k, budget, &b);
            if (st) return cli_fail(st);
            printf("  %-4s activations, checkpointing %-6s: batch_size %d%s\n",
                   dt ? "bf16" : "fp32", ck ? "blocks" : "off", b,
                   b ? "" : " (does not fit even at 1)");
        }
    printf("configurations with effective batch %d that fit, fastest first (%s):\n", E,
           measure ? "measured: one timed training step each" : "cost model: counted FLOPs");
    if (n == 0) printf("  none: lower batch_size or segment_seconds\n");
    for (int i = 0; i < n; i++) {
        char d[128];
        tf_fit_describe(&c[i], d, sizeof d);
        printf("  %d. %-66s plan %8.1f MiB", i + 1, d, c[i].plan_bytes / 1048576.0);
        if (measure)
            printf("  %.3f s per effective batch\n", c[i].measured_s);
        else
            printf("  %.1f GFLOP per effective batch\n", c[i].cost / 1e9);
    }
    if (out) printf("wrote %s (the first configuration)\n", out);
    return 0;
}
