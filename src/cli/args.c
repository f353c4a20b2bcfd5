#include <strings.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <errno.h>

#include "cli/cli.h"
#include "infer/precision.h"
#include "util/device.h"

int cli_fail(tf_status st) {
    if (st == TF_OK) return 0;
    fprintf(stderr, "tfswa: %s\n", tf_errmsg());
    return (int)st;
}

tf_status cli_precision_flags(const char *precision, const char *backend, int *p, int *b) {
    tf_precision pr = TF_PRECISION_AUTO;
    tf_backend bk = TF_BACKEND_DNNL;
    if (precision && !tf_precision_parse(precision, &pr))
        return tf_err(TF_EUSER, "--precision: '%s' is not fp32, bf16 or auto", precision);
    if (backend && !tf_backend_parse(backend, &bk))
        return tf_err(TF_EUSER, "--backend: '%s' is not dnnl or ref", backend);
    *p = (int)pr, *b = (int)bk;
    return TF_OK;
}

const char *cli_bench_device = "cpu";

tf_status cli_device_open(const char *given, const char *task) {
    if (!given) return TF_OK;
    tf_device d;
    TF_TRY(tf_device_from_string("--device", given, &d));
    tf_device_info info;
    TF_TRY(tf_device_open(&d, "--device", given, &info));
    return task ? tf_device_not_yet(&info, "--device", given, task) : TF_OK;
}

void cli_precision_report(int precision, int backend, const char *desc) {
    fprintf(stderr, "compute: %s\n", desc);
    if (tf_precision_bf16_fallback((tf_precision)precision, (tf_backend)backend))
        fprintf(stderr,
                "tfswa: --precision bf16: bf16 arithmetic is not native on this CPU for "
                "backend %s; using fp32\n",
                tf_backend_name((tf_backend)backend));
}

void cli_args_init(cli_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->argc = argc < 256 ? argc : 256;
    a->argv = argv;
}

/* Does argv token `tok` ("--some-name[=v]") name `name` (underscore form)? Returns the
 * pointer to "=value" / "" after the name, or NULL. */
static const char *match(const char *tok, const char *name) {
    if (strncmp(tok, "--", 2) != 0) return NULL;
    tok += 2;
    for (; *name; tok++, name++) {
        char c = *tok == '-' ? '_' : *tok;
        if (c != *name) return NULL;
    }
    return (*tok == 0 || *tok == '=') ? tok : NULL;
}

static const char *value_at(cli_args *a, int i, const char *rest, const char *name, tf_status *st) {
    a->used[i] = 1;
    if (*rest == '=') return rest + 1;
    if (i + 1 >= a->argc || strncmp(a->argv[i + 1], "--", 2) == 0) {
        *st = tf_err(TF_EUSER, "flag --%s needs a value", name);
        return NULL;
    }
    a->used[i + 1] = 1;
    return a->argv[i + 1];
}

const char *cli_flag_str(cli_args *a, const char *name, tf_status *st) {
    const char *v = NULL;
    for (int i = 1; i < a->argc; i++) {
        const char *rest = match(a->argv[i], name);
        if (rest) v = value_at(a, i, rest, name, st); /* last one wins */
    }
    return v;
}

int cli_flag_all(cli_args *a, const char *name, const char **out, int max, tf_status *st) {
    int n = 0;
    for (int i = 1; i < a->argc; i++) {
        const char *rest = match(a->argv[i], name);
        if (!rest) continue;
        const char *v = value_at(a, i, rest, name, st);
        if (!v) return n;
        if (n >= max) {
            *st = tf_err(TF_EUSER, "flag --%s given more than %d times", name, max);
            return n;
        }
        out[n++] = v;
    }
    return n;
}

static int parse_bool(const char *s, int *out) {
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
        return *out = 1, 1;
    if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
        return *out = 0, 1;
    return 0;
}

int cli_flag_bool(cli_args *a, const char *name, int def, tf_status *st) {
    int v = def;
    char neg[128];
    snprintf(neg, sizeof neg, "no_%s", name);
    for (int i = 1; i < a->argc; i++) {
        const char *rest = match(a->argv[i], name);
        if (rest) {
            a->used[i] = 1;
            if (*rest == '=') {
                if (!parse_bool(rest + 1, &v))
                    *st = tf_err(TF_EUSER, "flag --%s: '%s' is not a boolean", name, rest + 1);
            } else if (i + 1 < a->argc && parse_bool(a->argv[i + 1], &v)) {
                a->used[i + 1] = 1;
            } else {
                v = 1;
            }
        } else if (match(a->argv[i], neg)) {
            a->used[i] = 1;
            v = 0;
        }
    }
    return v;
}

long long cli_flag_int(cli_args *a, const char *name, long long def, tf_status *st) {
    const char *s = cli_flag_str(a, name, st);
    if (!s) return def;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        *st = tf_err(TF_EUSER, "flag --%s: '%s' is not an integer", name, s);
        return def;
    }
    return v;
}

double cli_flag_double(cli_args *a, const char *name, double def, tf_status *st) {
    const char *s = cli_flag_str(a, name, st);
    if (!s) return def;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        *st = tf_err(TF_EUSER, "flag --%s: '%s' is not a number", name, s);
        return def;
    }
    return v;
}

int cli_positional(cli_args *a, const char **out, int max) {
    int n = 0;
    for (int i = 1; i < a->argc; i++) {
        if (a->used[i] || strncmp(a->argv[i], "--", 2) == 0) continue;
        a->used[i] = 1;
        if (n < max) out[n] = a->argv[i];
        n++;
    }
    return n;
}

tf_status cli_check_unused(cli_args *a) {
    for (int i = 1; i < a->argc; i++)
        if (!a->used[i]) return tf_err(TF_EUSER, "unknown argument '%s'", a->argv[i]);
    return TF_OK;
}

int cli_wants_help(int argc, char **argv, const char *usage) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 1;
        }
    return 0;
}

tf_status cli_parse_bytes(const char *flag, const char *s, size_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return tf_err(TF_EUSER, "%s: '%s' is not a size", flag, s);
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
    return tf_err(TF_EUSER, "%s: unknown unit in '%s' (use B, KiB, MiB, GiB, TiB, or KB/MB/GB)",
                  flag, s);
}

const char *cli_flag_out(cli_args *a, tf_status *st) {
    const char *out = NULL;
    for (int i = 1; i < a->argc && *st == TF_OK; i++)
        if (!strcmp(a->argv[i], "-o")) {
            if (i + 1 >= a->argc) {
                *st = tf_err(TF_EUSER, "-o needs a folder");
                return NULL;
            }
            a->used[i] = a->used[i + 1] = 1;
            out = a->argv[++i];
        }
    const char *o2 = *st ? NULL : cli_flag_str(a, "out", st);
    return o2 ? o2 : out;
}
