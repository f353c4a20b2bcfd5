/* tfswa index --data_root ROOT [--cache PATH] [--targets a,b,c] [--sample_rate N]
 *             [--valid_fraction F] [--num_threads N]
 * Scans a dataset root (or takes it from the index cache), prints per split the number
 * of tracks and hours of audio and how many files were scanned vs cached. Problems are
 * printed one per line and the exit status is 2. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "data/index.h"

static const char usage[] =
    "usage: tfswa index --data_root ROOT [--cache PATH] [--targets a,b,c]\n"
    "                   [--sample_rate N] [--valid_fraction F] [--num_threads N]\n"
    "Scan a dataset root (MUSDB18-HQ layout, train/valid/test folders, or a folder of\n"
    "track folders), report every problem, and update the index cache (default\n"
    "ROOT/.tfswa_index, or ~/.cache/tfswa/ when ROOT is read-only).\n";

/* The data keys this command needs, until the shared config parser is in the build. */
static void data_defaults(tf_config *c) {
    memset(c, 0, sizeof *c);
    c->sample_rate = 44100;
    static const char *const t[4] = {"vocals", "drums", "bass", "other"};
    c->n_targets = 4;
    for (int i = 0; i < 4; i++) snprintf(c->targets[i], TF_NAME_MAX, "%s", t[i]);
    c->valid_fraction = 0.1;
}

/* "a,b,c" or "[a, b, c]" */
static tf_status parse_targets(tf_config *c, const char *s) {
    c->n_targets = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '[' || *p == ',') p++;
        size_t n = strcspn(p, ",]");
        while (n && p[n - 1] == ' ') n--;
        if (n) {
            if (c->n_targets == TF_MAX_TARGETS)
                return tf_err(TF_EUSER, "--targets %s: more than %d stems", s, TF_MAX_TARGETS);
            if (n >= TF_NAME_MAX) return tf_err(TF_EUSER, "--targets %s: name too long", s);
            memcpy(c->targets[c->n_targets], p, n);
            c->targets[c->n_targets++][n] = 0;
        }
        p += n;
        while (*p == ' ' || *p == ']') p++;
    }
    if (!c->n_targets) return tf_err(TF_EUSER, "--targets '%s': no stem names", s);
    return TF_OK;
}

int cmd_index(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    tf_config cfg;
    data_defaults(&cfg);
    const char *configs[16];
    if (cli_flag_all(&a, "config", configs, 16, &st) > 0 && st == TF_OK)
        st = tf_err(TF_EUSER, "--config: config files are not supported by this build yet "
                              "(give --data_root, --targets, --sample_rate as flags)");
    const char *root = cli_flag_str(&a, "data_root", &st);
    const char *root2 = cli_flag_str(&a, "root", &st);
    const char *cache = cli_flag_str(&a, "cache", &st);
    const char *targets = cli_flag_str(&a, "targets", &st);
    const char *targets2 = cli_flag_str(&a, "target_stems", &st);
    cfg.sample_rate = (int)cli_flag_int(&a, "sample_rate", cfg.sample_rate, &st);
    cfg.valid_fraction = cli_flag_double(&a, "valid_fraction", cfg.valid_fraction, &st);
    cfg.num_threads = (int)cli_flag_int(&a, "num_threads", 0, &st);
    if (st) return cli_fail(st);
    if (cli_check_unused(&a)) return cli_fail(TF_EUSER);
    if (!root) root = root2;
    if (!targets) targets = targets2;
    if (!root) {
        fputs(usage, stderr);
        return cli_fail(tf_err(TF_EUSER, "missing --data_root ROOT"));
    }
    if (strlen(root) >= sizeof cfg.root)
        return cli_fail(tf_err(TF_EUSER, "path too long: %s", root));
    snprintf(cfg.root, sizeof cfg.root, "%s", root);
    if (targets && (st = parse_targets(&cfg, targets))) return cli_fail(st);
    if (!(cfg.valid_fraction >= 0 && cfg.valid_fraction <= 1))
        return cli_fail(tf_err(TF_EUSER, "--valid_fraction %g: not in [0, 1]", cfg.valid_fraction));

    tf_index *ix;
    if ((st = tf_index_open(&ix, &cfg, cache))) return cli_fail(st);
    printf("dataset %s (%s layout, %d stems:", ix->root, ix->layout, ix->n_stems);
    for (int s = 0; s < ix->n_stems; s++) printf(" %s", ix->stem_names[s]);
    printf(", %d Hz)\n", ix->sample_rate);
    for (int sp = 0; sp < 3; sp++) {
        int n = tf_index_count(ix, (tf_split)sp);
        double h = (double)tf_index_frames(ix, (tf_split)sp) / ix->sample_rate / 3600.0;
        printf("  %-5s %5d tracks %9.3f h\n", tf_split_name((tf_split)sp), n, h);
    }
    printf("files: %lld scanned, %lld from cache\n", (long long)ix->files_scanned,
           (long long)ix->files_cached);
    if (ix->cache_path[0])
        printf("cache: %s (%s)\n", ix->cache_path, ix->cache_written ? "written" : "unchanged");
    if (ix->cache_warning[0]) fprintf(stderr, "tfswa: warning: %s\n", ix->cache_warning);
    tf_index_close(ix);
    return 0;
}
