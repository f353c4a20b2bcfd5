/* tfswa synth OUT [--tracks N] [--test_tracks M] [--seconds S] [--seed K] ...
 * Writes a procedural multi-stem dataset in MUSDB18-HQ layout (see src/data/synth.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "data/synth.h"
#include "util/clock.h"

static const char *USAGE =
    "usage: tfswa synth OUT [--tracks N] [--test_tracks M] [--seconds S] [--seed K]\n"
    "                   [--sample_rate R] [--threads T] [--overwrite]\n"
    "\n"
    "Write procedural songs in MUSDB18-HQ layout: OUT/train/<track>/ and OUT/test/<track>/\n"
    "with mixture.wav vocals.wav drums.wav bass.wav other.wav (stereo PCM 16-bit;\n"
    "mixture = sum of the stems). The same arguments give identical files; track i does\n"
    "not depend on --tracks.\n"
    "\n"
    "  --tracks N        train tracks (default 8)\n"
    "  --test_tracks M   test tracks (default max(1, N/4))\n"
    "  --seconds S       length of each track in seconds (default 10)\n"
    "  --seed K          dataset seed, integer >= 0 (default 1)\n"
    "  --sample_rate R   sample rate in Hz (default 44100)\n"
    "  --threads T       tracks rendered in parallel (default: OpenMP default)\n"
    "  --overwrite       rewrite existing track folders instead of failing\n";

int cmd_synth(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_synth_opts o;
    tf_synth_defaults(&o);
    tf_status st = TF_OK;
    long long tracks = cli_flag_int(&a, "tracks", o.train_tracks, &st);
    if (st) return cli_fail(st);
    long long test = cli_flag_int(&a, "test_tracks", tracks / 4 > 1 ? tracks / 4 : 1, &st);
    if (st) return cli_fail(st);
    double seconds = cli_flag_double(&a, "seconds", o.seconds, &st);
    if (st) return cli_fail(st);
    long long seed = cli_flag_int(&a, "seed", (long long)o.seed, &st);
    if (st) return cli_fail(st);
    long long rate = cli_flag_int(&a, "sample_rate", o.sample_rate, &st);
    if (st) return cli_fail(st);
    long long threads = cli_flag_int(&a, "threads", 0, &st);
    if (st) return cli_fail(st);
    int overwrite = cli_flag_bool(&a, "overwrite", 0, &st);
    if (st) return cli_fail(st);
    const char *pos[2];
    int npos = cli_positional(&a, pos, 2);
    if ((st = cli_check_unused(&a))) return cli_fail(st);
    if (npos != 1) {
        fprintf(stderr, "tfswa: synth needs exactly one output folder (got %d)\n%s", npos, USAGE);
        return 2;
    }
    if (tracks < 1 || tracks > 100000)
        return cli_fail(tf_err(TF_EUSER, "--tracks: %lld is not in [1, 100000]", tracks));
    if (test < 0 || test > 100000)
        return cli_fail(tf_err(TF_EUSER, "--test_tracks: %lld is not in [0, 100000]", test));
    if (!isfinite(seconds) || seconds <= 0 || seconds > 3600)
        return cli_fail(tf_err(TF_EUSER, "--seconds: %g is not in (0, 3600]", seconds));
    if (seed < 0) return cli_fail(tf_err(TF_EUSER, "--seed: %lld is negative", seed));
    if (rate < 8000 || rate > 384000)
        return cli_fail(tf_err(TF_EUSER, "--sample_rate: %lld is not in [8000, 384000]", rate));
    if (threads < 0 || threads > 1024)
        return cli_fail(tf_err(TF_EUSER, "--threads: %lld is not in [0, 1024]", threads));
    o.train_tracks = (int)tracks;
    o.test_tracks = (int)test;
    o.seconds = seconds;
    o.seed = (uint64_t)seed;
    o.sample_rate = (int)rate;
    o.threads = (int)threads;
    o.overwrite = overwrite;

    double t0 = tf_now_s();
    if ((st = tf_synth_dataset(pos[0], &o))) return cli_fail(st);
    double wall = tf_now_s() - t0;
    int n = o.train_tracks + o.test_tracks;
    double audio = n * o.seconds;
    printf("synth: %d tracks (%d train, %d test) x %g s = %g s of audio in %.2f s "
           "(%.0fx real time) -> %s\n",
           n, o.train_tracks, o.test_tracks, o.seconds, audio, wall, wall > 0 ? audio / wall : 0.0,
           pos[0]);
    return 0;
}
