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
#include "train/device_plan.h"
#include "train/fit.h"
#include "train/train.h"
#include "util/fsutil.h"
#include "util/image.h"
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

static void line(tf_image *im, int x0, int y0, int x1, int y1, uint32_t c) {
    const int n = abs(x1 - x0) > abs(y1 - y0) ? abs(x1 - x0) : abs(y1 - y0);
    for (int i = 0; i <= n; i++) {
        const int x = n ? x0 + (x1 - x0) * i / n : x0, y = n ? y0 + (y1 - y0) * i / n : y0;
        tf_image_fill(im, x - 1, y - 1, x + 1, y + 1, c); /* 2 px wide */
    }
}

/* PNG of the plan total (MiB) against batch_size for fp32/bf16 x checkpointing off/blocks,
 * with the budget as a horizontal line: (640, 400). */
static tf_status plot(const char *path, const tf_config *cfg, size_t budget) {
    enum { W = 640, H = 400, L = 70, R = 170, T = 30, B = 40 };
    int bmax = 8;
    double ymax = budget / 1048576.0;
    double y[4][65];
    for (int v = 0; v < 4; v++) {
        tf_config k = *cfg;
        k.activation_dtype = v & 1 ? TF_DT_BF16 : TF_DT_FP32;
        k.checkpointing = v & 2 ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        int b = 0;
        TF_TRY(max_batch(&k, budget, &b));
        if (b + b / 4 + 1 > bmax) bmax = b + b / 4 + 1;
    }
    if (bmax > 64) bmax = 64;
    for (int v = 0; v < 4; v++)
        for (int b = 1; b <= bmax; b++) {
            tf_config k = *cfg;
            k.activation_dtype = v & 1 ? TF_DT_BF16 : TF_DT_FP32;
            k.checkpointing = v & 2 ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
            k.batch_size = b;
            tf_train_plan p;
            TF_TRY(tf_train_plan_bytes(&p, &k, k.num_threads));
            y[v][b] = p.total / 1048576.0;
            if (y[v][b] > ymax) ymax = y[v][b];
        }
    ymax *= 1.05;
    tf_image im;
    TF_TRY(tf_image_create(&im, W, H, TF_RGB(255, 255, 255)));
    const uint32_t ink = TF_RGB(0, 0, 0), grid = TF_RGB(225, 225, 225);
    const int pw = W - L - R, ph = H - T - B;
#define PX(b) (L + (int)((double)((b)-1) / (bmax - 1) * pw))
#define PY(m) (T + ph - (int)((m) / ymax * ph))
    char t[96];
    for (int i = 0; i <= 4; i++) { /* y grid and labels */
        const double m = ymax * i / 4;
        tf_image_fill(&im, L, PY(m), L + pw, PY(m) + 1, grid);
        snprintf(t, sizeof t, "%.0f", m);
        tf_image_text(&im, L - 6 - tf_text_width(t, 1), PY(m) - 3, t, 1, ink);
    }
    for (int b = 1; b <= bmax; b += (bmax + 7) / 8) {
        tf_image_fill(&im, PX(b), T, PX(b) + 1, T + ph, grid);
        snprintf(t, sizeof t, "%d", b);
        tf_image_text(&im, PX(b) - tf_text_width(t, 1) / 2, T + ph + 6, t, 1, ink);
    }
    tf_image_fill(&im, L, T, L + 1, T + ph + 1, ink);
    tf_image_fill(&im, L, T + ph, L + pw + 1, T + ph + 1, ink);
    tf_image_text(&im, L + pw / 2 - 30, H - 14, "BATCH SIZE", 1, ink);
    snprintf(t, sizeof t, "PLANNED PEAK MEMORY (MIB), SEGMENT %.1f S", cfg->segment_seconds);
    tf_image_text(&im, L, 10, t, 1, ink);
    const uint32_t col[4] = {TF_RGB(68, 1, 84), TF_RGB(59, 82, 139), TF_RGB(33, 145, 140),
                             TF_RGB(94, 201, 98)};
    static const char *const name[4] = {"FP32", "AMP", "FP32 + CKPT", "AMP + CKPT"};
    for (int v = 0; v < 4; v++) {
        for (int b = 1; b < bmax; b++)
            line(&im, PX(b), PY(y[v][b]), PX(b + 1), PY(y[v][b + 1]), col[v]);
        tf_image_fill(&im, L + pw + 14, T + 10 + 16 * v, L + pw + 30, T + 13 + 16 * v, col[v]);
        tf_image_text(&im, L + pw + 36, T + 8 + 16 * v, name[v], 1, ink);
    }
    const uint32_t red = TF_RGB(200, 30, 30);
    for (int x = L; x < L + pw; x += 8)
        tf_image_fill(&im, x, PY(budget / 1048576.0), x + 4, PY(budget / 1048576.0) + 2, red);
    tf_image_fill(&im, L + pw + 14, T + 74, L + pw + 30, T + 76, red);
    tf_image_text(&im, L + pw + 36, T + 72, "BUDGET", 1, ink);
#undef PX
#undef PY
    tf_status st = tf_image_write_png(&im, path);
    tf_image_free(&im);
    return st;
}

static const char USAGE[] =
    "usage: tfswa plan --memory SIZE [--config FILE]... [--preset P] [--key value]...\n"
    "                  [--json] [--measure] [--iters K] [--write-config FILE] [--plot PNG]\n"
    "Prints the exact memory plan of `tfswa train` with the same flags, the largest batch\n"
    "that fits SIZE (e.g. 8GiB) for each precision/checkpointing, and the configurations\n"
    "that fit with the same effective batch (batch_size x gradient_accumulation_steps):\n"
    "micro-batch, accumulation, checkpointing, precision, ranked by a cost model (counted\n"
    "FLOPs), or by a timed training step of each with --measure. --write-config FILE writes\n"
    "the best as a complete YAML config for `tfswa train --config FILE`. --plot PNG draws the\n"
    "plan against batch_size for fp32/amp x checkpointing off/blocks, with the budget.\n"
    "--device cpu|cuda|cuda:N: where training would run (default cpu). For cuda it prints\n"
    "the DEVICE plan (one allocation per role, device and host bytes) and the largest batch\n"
    "per precision/checkpointing; in any build: without a GPU the cuDNN workspace is its\n"
    "upper bound (256 MiB per shape limit), on a GPU the one cuDNN chooses. The device model\n"
    "implements fp32 activations without checkpointing only (the other variants print \"not\n"
    "implemented on cuda yet\"); --measure, --write-config and --plot are for --device cpu.\n";

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

/* The device plan (train/device_plan.h) of cfg on the CUDA device d: text or JSON. */
static int plan_device(const tf_config *cfg, const tf_device *d, size_t budget, int json,
                       int cpu_only_flags) {
    char given[32];
    tf_device_name(d, given, sizeof given);
    if (cpu_only_flags)
        return cli_fail(tf_err(TF_EUSER,
                               "--device %s: --measure, --write-config and --plot are "
                               "for --device cpu",
                               given));
    /* open the card where this build can: a GPU gives cuDNN's own workspace sizes, no GPU
     * the upper bound; a device out of range stays an error */
    tf_device_info info;
    const tf_device_info *ip = NULL;
    char note[600] = "";
    if (tf_device_cuda_built()) {
        tf_status st = tf_device_open(d, "--device", given, &info);
        if (!st)
            ip = &info;
        else if (strstr(tf_errmsg(), "no CUDA device"))
            snprintf(note, sizeof note, "%s", tf_errmsg());
        else
            return cli_fail(st);
    } else {
        snprintf(note, sizeof note, "this tfswa was built without CUDA");
    }
    tf_device_plan p;
    tf_status st = tf_device_plan_bytes(&p, cfg, d, ip);
    if (st == TF_EUSER) st = tf_err_ctx(st, "--device %s", given);
    int mb[TF_DEVPLAN_VARIANTS] = {0, 0, 0, 0}; /* fp32/bf16 x checkpointing off/blocks */
    char why[TF_DEVPLAN_VARIANTS][256];
    if (!st) st = tf_device_plan_variants(cfg, d, ip, budget, mb, why);
    if (st) return cli_fail(st);
    if (json) {
        cJSON *o = cJSON_CreateObject(), *dv = o ? cJSON_AddObjectToObject(o, "device") : NULL;
        cJSON *r = dv ? cJSON_AddObjectToObject(o, "device_bytes") : NULL;
        cJSON *h = r ? cJSON_AddObjectToObject(o, "host_bytes") : NULL;
        cJSON *mx = h ? cJSON_AddArrayToObject(o, "largest_batch") : NULL;
        if (mx) {
            cJSON_AddStringToObject(dv, "kind", "cuda");
            cJSON_AddNumberToObject(dv, "index", d->index);
            if (p.dev_name[0])
                cJSON_AddStringToObject(dv, "name", p.dev_name);
            else
                cJSON_AddNullToObject(dv, "name");
            cJSON_AddStringToObject(dv, "ws_source", p.ws_chosen ? "chosen" : "upper_bound");
            cJSON_AddStringToObject(dv, "ws_detail", p.ws_source);
            if (note[0]) cJSON_AddStringToObject(dv, "not_opened", note);
            if (p.dev_free_bytes)
                cJSON_AddNumberToObject(dv, "free_bytes", (double)p.dev_free_bytes);
            /* the device trainer is linked into CUDA builds only */
            cJSON_AddBoolToObject(o, "training_implemented", tf_device_cuda_built());
            cJSON_AddNumberToObject(o, "budget_bytes", (double)budget);
            cJSON_AddNumberToObject(o, "plan_bytes", (double)p.total);
            cJSON_AddBoolToObject(o, "fits_as_given", p.total <= budget);
            cJSON_AddNumberToObject(o, "segment_seconds", cfg->segment_seconds);
            cJSON_AddNumberToObject(o, "batch_size", cfg->batch_size);
            cJSON_AddStringToObject(o, "conv_arithmetic", tf_dtype_name(p.conv_dtype));
            const struct {
                const char *k;
                size_t v;
            } dr[] = {{"parameters", p.params},     {"gradients", p.grads},
                      {"bn_buffers", p.buffers},    {"activations", p.activations},
                      {"workspace", p.workspace},   {"conv_workspace", p.conv_workspace},
                      {"trainer", p.trainer},       {"optimizer", p.optimizer},
                      {"batches", p.batches},       {"loss", p.loss},
                      {"cufft", p.cufft},           {"cufft_model", p.cufft_model},
                      {"cufft_loss", p.cufft_loss}, {"cufft_plans", p.cufft_plans},
                      {"cublas", p.cublas},         {"total", p.total}},
              hr[] = {{"loader", p.host_loader},
                      {"validation", p.host_validation},
                      {"checkpoint_staging", p.host_staging},
                      {"model", p.host_model},
                      {"total", p.host_total}};
            for (size_t i = 0; i < sizeof dr / sizeof dr[0]; i++)
                cJSON_AddNumberToObject(r, dr[i].k, (double)dr[i].v);
            for (size_t i = 0; i < sizeof hr / sizeof hr[0]; i++)
                cJSON_AddNumberToObject(h, hr[i].k, (double)hr[i].v);
            /* separation on the device (tfswa separate --batch_size TF_DEVPLAN_SEP_BATCH) */
            cJSON *sp = cJSON_AddObjectToObject(o, "separate_device_bytes");
            if (sp) {
                cJSON_AddNumberToObject(sp, "batch_size", TF_DEVPLAN_SEP_BATCH);
                cJSON_AddNumberToObject(sp, "workspace", (double)p.sep_workspace);
                cJSON_AddNumberToObject(sp, "total", (double)p.sep_total);
            }
            cJSON_AddBoolToObject(h, "loader_pinned", p.host_pinned);
            for (int v = 0; v < TF_DEVPLAN_VARIANTS; v++) {
                cJSON *e = cJSON_CreateObject();
                if (!e) break;
                cJSON_AddStringToObject(e, "activations", v & 2 ? "bf16" : "fp32");
                cJSON_AddStringToObject(e, "checkpointing", v & 1 ? "blocks" : "off");
                cJSON_AddBoolToObject(e, "implemented", mb[v] >= 0);
                if (mb[v] >= 0) {
                    cJSON_AddNumberToObject(e, "batch_size", mb[v]);
                } else {
                    cJSON_AddNullToObject(e, "batch_size");
                    cJSON_AddStringToObject(e, "reason", why[v]);
                }
                cJSON_AddItemToArray(mx, e);
            }
        }
        char *s = mx ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!s) return cli_fail(tf_err(TF_EINTERNAL, "out of memory"));
        printf("%s\n", s);
        free(s);
        return 0;
    }
    if (note[0]) printf("%s not opened: %s\n", given, note);
    tf_device_plan_print(stdout, &p, cfg);
    printf("budget %.1f MiB: this configuration %s on the device (%.1f%% of the budget)\n",
           budget / 1048576.0, p.total <= budget ? "FITS" : "does NOT fit",
           100.0 * (double)p.total / (double)budget);
    tf_device_plan_print_variants(stdout, cfg, mb);
    return 0;
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
    const char *png = cli_flag_str(&a, "plot", &st);
    const char *dev = st ? NULL : cli_flag_str(&a, "device", &st);
    if (!st) st = tf_config_parse_args(&cfg, argc, argv, a.used);
    tf_device d = {TF_DEVICE_CPU, 0};
    if (!st && dev) st = tf_device_from_string("--device", dev, &d);
    if (!st && dev && d.kind == TF_DEVICE_CPU) st = cli_device_open(dev, NULL);
    if (!st && dev) st = tf_config_set(&cfg, "device", dev);
    size_t budget = 0;
    if (!st && !mem) st = tf_err(TF_EUSER, "plan: --memory SIZE is required (e.g. --memory 8GiB)");
    if (!st) st = cli_parse_bytes("--memory", mem, &budget);
    if (!st && (iters < 1 || iters > 100))
        st = tf_err(TF_EUSER, "--iters %lld: must be 1..100", iters);
    if (!st) st = cli_check_unused(&a);
    if (!st) st = tf_config_validate(&cfg);
    if (!st) st = tf_config_check_amp(&cfg);
    if (!st && !dev) st = tf_device_from_string("device", cfg.device, &d); /* from a config */
    if (st) return cli_fail(st);
    if (d.kind == TF_DEVICE_CUDA) return plan_device(&cfg, &d, budget, json, measure || out || png);
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
    if (!st && png) st = plot(png, &cfg, budget);
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
           measure ? "measured: one timed training step each"
                   : "cost model: GFLOP x precision factor");
    if (n == 0) printf("  none: lower batch_size or segment_seconds\n");
    for (int i = 0; i < n; i++) {
        char d[128];
        tf_fit_describe(&c[i], d, sizeof d);
        printf("  %d. %-66s plan %8.1f MiB", i + 1, d, c[i].plan_bytes / 1048576.0);
        if (measure)
            printf("  %.3f s per effective batch\n", c[i].measured_s);
        else
            printf("  cost %.0f\n", c[i].cost / 1e9);
    }
    if (out) printf("wrote %s (the first configuration)\n", out);
    if (png) printf("wrote %s\n", png);
    return 0;
}
