/* tfswa index --data_root ROOT [--config FILE]... [--cache PATH] [--key value]...
 * Scans a dataset root (or takes it from the index cache), prints per split the number
 * of tracks and hours of audio and how many files were scanned vs cached. Problems are
 * printed one per line and the exit status is 2. Data keys (root, sources, sample_rate,
 * valid_fraction, num_threads) come from the shared config: defaults, --config files,
 * flags. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "data/index.h"
#include "util/config.h"

static const char usage[] =
    "usage: tfswa index --data_root ROOT [--config FILE]... [--cache PATH] [--key value]...\n"
    "Scan a dataset root (MUSDB18-HQ layout, train/valid/test folders, or a folder of\n"
    "track folders), report every problem, and update the index cache (default\n"
    "ROOT/.tfswa_index, or ~/.cache/tfswa/ when ROOT is read-only). Keys used: root,\n"
    "sources, sample_rate, valid_fraction, num_threads.\n";

int cmd_index(int argc, char **argv) {
    if (cli_wants_help(argc, argv, usage)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    const char *cache = cli_flag_str(&a, "cache", &st);
    if (st) return cli_fail(st);
    tf_config cfg;
    tf_config_defaults(&cfg);
    if ((st = tf_config_parse_args(&cfg, a.argc, argv, a.used))) return cli_fail(st);
    if ((st = cli_check_unused(&a))) return cli_fail(st);
    if (!cfg.root[0]) {
        fputs(usage, stderr);
        return cli_fail(tf_err(TF_EUSER, "missing --data_root ROOT"));
    }
    if ((st = tf_config_validate(&cfg))) return cli_fail(st);

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
