/* tfswa plan --memory 8GiB [--config FILE]... [--key value]...
 * Prints the exact training memory plan of the configuration (the function training
 * itself calls before allocating) and, for every combination of activation precision and
 * checkpointing, the largest batch that fits the budget. Allocates nothing. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "train/train.h"
#include "util/config.h"

static tf_status parse_bytes(const char *s, size_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return tf_err(TF_EUSER, "--memory: '%s' is not a size", s);
    while (isspace((unsigned char)*end)) end++;
    static const struct {
        const char *u;
        double m;
    } U[] = {{"", 1},
             {"B", 1},
             {"K", 1024},
             {"KiB", 1024},
             {"KB", 1e3},
             {"M", 1048576},
             {"MiB", 1048576},
             {"MB", 1e6},
             {"G", 1073741824.0},
             {"GiB", 1073741824.0},
             {"GB", 1e9},
             {"T", 1099511627776.0},
             {"TiB", 1099511627776.0},
             {"TB", 1e12}};
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++)
        if (!strcasecmp(end, U[i].u)) {
            *out = (size_t)(v * U[i].m);
            return TF_OK;
        }
    return tf_err(TF_EUSER,
                  "--memory: unknown unit in '%s' (use B, KiB, MiB, GiB, TiB, or KB/MB/GB)", s);
}

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
    "Prints the exact memory plan of `tfswa train` with the same flags, and the\n"
    "largest batch that fits SIZE (e.g. 8GiB) for each precision/checkpointing.\n";

int cmd_plan(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    tf_config cfg;
    tf_config_defaults(&cfg);
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = tf_config_parse_args(&cfg, argc, argv, a.used);
    const char *mem = st ? NULL : cli_flag_str(&a, "memory", &st);
    size_t budget = 0;
    if (!st && !mem) st = tf_err(TF_EUSER, "plan: --memory SIZE is required (e.g. --memory 8GiB)");
    if (!st) st = parse_bytes(mem, &budget);
    if (!st) st = cli_check_unused(&a);
    if (!st) st = tf_config_validate(&cfg);
    tf_train_plan p;
    if (!st) st = tf_train_plan_bytes(&p, &cfg, cfg.num_threads);
    if (st) return cli_fail(st);
    tf_train_plan_print(stdout, &p, &cfg);
    printf("budget %.1f MiB: this configuration %s (%.1f%% of the budget)\n", budget / 1048576.0,
           p.total <= budget ? "FITS" : "does NOT fit", 100.0 * (double)p.total / (double)budget);
    printf("largest batch_size within the budget (segment %.2f s):\n", cfg.segment_seconds);
    for (int dt = 0; dt < 2; dt++)
        for (int ck = 0; ck < 2; ck++) {
            tf_config c = cfg;
            c.activation_dtype = dt ? TF_DT_BF16 : TF_DT_FP32;
            c.checkpointing = ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
            int b = 0;
            st = max_batch(&c, budget, &b);
            if (st) return cli_fail(st);
            printf("  %-4s activations, checkpointing %-6s: batch_size %d%s\n",
                   dt ? "bf16" : "fp32", ck ? "blocks" : "off", b,
                   b ? "" : " (does not fit even at 1)");
        }
    return 0;
}
