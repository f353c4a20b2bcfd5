/* tfswa demo: the whole product at small scale on the CPU, in a few minutes:
 *   1. synthesize a small dataset (12 train + 3 test tracks, MUSDB18-HQ layout)
 *   2. train the tiny preset (validation tracks come from train via valid_fraction)
 *   3. evaluate the test split with the mixture baseline and the IRM oracle
 *   4. separate one test mixture into stems
 * and check that the model beats the mixture baseline (uSDR) on every stem, and 0 dB (the
 * uSDR of a silent estimate, which alone would beat the mixture's negative uSDR). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tfswa.h"
#include "data/synth.h"
#include "infer/evaluate.h"
#include "train/dist.h"
#include "train/train.h"
#include "util/config.h"
#include "util/fsutil.h"
#include "util/clock.h"

static const char *USAGE =
    "usage: tfswa demo [--out DIR] [--seconds S] [--steps N] [--num_threads N]\n"
    "\n"
    "Synthesize a small multi-stem dataset, train the tiny TFSWA-ResUNet on it, evaluate it\n"
    "on the synthetic test split next to the mixture baseline and the ideal ratio mask oracle,\n"
    "and separate one test mixture. Everything goes to DIR (default demo-output):\n"
    "  DIR/data/                the dataset (train/, test/)\n"
    "  DIR/run/                 the training run: config.yaml, metrics.jsonl, checkpoints/\n"
    "  DIR/summary.md, .json    the evaluation (per stem: mixture, model, IRM oracle)\n"
    "  DIR/figures/*.png        spectrograms and cSDR per track\n"
    "  DIR/test/, DIR/mixture/, DIR/oracle_irm/   per-track museval JSON\n"
    "  DIR/stems/               one test mixture separated into stems\n"
    "Exits 1 unless the model's uSDR beats both the mixture baseline and 0 dB (a silent\n"
    "estimate) on every stem.\n"
    "\n"
    "  --out DIR        output folder (default demo-output)\n"
    "  --seconds S      length of each synthetic track (default 10)\n"
    "  --steps N        training steps (default 300)\n"
    "  --num_threads N  threads (default: all cores)\n";

#define DEMO_TRAIN 12
#define DEMO_TEST  3

/* The demo's training configuration: the tiny preset, short segments, a high learning rate,
 * one epoch of `steps` steps, validation at the middle and the end. The segment is 0.92 s:
 * 80 STFT frames (hop 512), exactly a multiple of the tiny model's time padding (2^4 levels x
 * window 5 = 80), so no compute goes to padding (0.5 s would be 44 frames padded to 80). */
static tf_status train_config(tf_config *c, const char *dir, long long steps, int threads) {
    tf_config_defaults(c);
    char *args[] = {"demo", "--preset", "tiny"};
    TF_TRY(tf_config_parse_args(c, 3, args, NULL));
    snprintf(c->root, sizeof c->root, "%s/data", dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/run", dir);
    c->segment_seconds = 0.92;
    c->batch_size = 4;
    c->learning_rate = 2e-3;
    c->max_steps = steps;
    c->steps_per_epoch = steps;
    c->num_workers = 1;
    c->log_every = 10;
    c->ema_decay = 0.99; /* validation, checkpoints and evaluation use the smoothed weights */
    c->val_every = (int)(steps / 3 > 0 ? steps / 3 : 1);
    c->ckpt_every = 0; /* the last step saves checkpoints/last, validation checkpoints/best */
    c->num_threads = threads;
    c->seed = 42;
    return tf_config_validate(c);
}

int cmd_demo(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    const char *dir = cli_flag_str(&a, "out", &st);
    double seconds = st ? 0 : cli_flag_double(&a, "seconds", 10.0, &st);
    long long steps = st ? 0 : cli_flag_int(&a, "steps", 300, &st);
    long long threads = st ? 0 : cli_flag_int(&a, "num_threads", 0, &st);
    if (!st) st = cli_check_unused(&a);
    if (st) return cli_fail(st);
    if (!dir) dir = "demo-output";
    if (!isfinite(seconds) || seconds < 2 || seconds > 600)
        return cli_fail(tf_err(TF_EUSER, "--seconds: %g is not in [2, 600]", seconds));
    if (steps < 1 || steps > 1000000)
        return cli_fail(tf_err(TF_EUSER, "--steps: %lld is not in [1, 1000000]", steps));
    if (threads < 0 || threads > 4096)
        return cli_fail(tf_err(TF_EUSER, "--num_threads: %lld is not in [0, 4096]", threads));
    if (strlen(dir) > TF_PATH_MAX - 64) return cli_fail(tf_err(TF_EUSER, "--out: path too long"));
    const double t0 = tf_now_s();
    double tm[4] = {0};
    if ((st = tf_mkdirs(dir))) return cli_fail(st);

    /* 1. data */
    char data[TF_PATH_MAX], run[TF_PATH_MAX], ckpt[TF_PATH_MAX + 64];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    tf_synth_opts so;
    tf_synth_defaults(&so);
    so.train_tracks = DEMO_TRAIN, so.test_tracks = DEMO_TEST, so.seconds = seconds;
    so.seed = 1, so.overwrite = 1, so.threads = (int)threads;
    printf("[1/4] synthesizing %d train + %d test tracks of %g s into %s\n", DEMO_TRAIN, DEMO_TEST,
           seconds, data);
    fflush(stdout);
    if ((st = tf_synth_dataset(data, &so))) return cli_fail(st);
    tm[0] = tf_now_s() - t0;

    /* 2. training */
    tf_config cfg;
    if ((st = train_config(&cfg, dir, steps, (int)threads))) return cli_fail(st);
    printf("[2/4] training the tiny preset for %lld steps (batch %d x %.1f s, lr %g) into %s\n",
           steps, cfg.batch_size, cfg.segment_seconds, cfg.learning_rate, run);
    fflush(stdout);
    const tf_dist single = TF_DIST_SINGLE;
    int tty = isatty(2);
    if ((st = tf_train_run(&cfg, &single, cli_print_train_event, &tty))) return cli_fail(st);
    tm[1] = tf_now_s() - t0;

    /* 3. evaluation with the best checkpoint by validation */
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/best", run);
    if (!tf_is_dir(ckpt)) snprintf(ckpt, sizeof ckpt, "%s/checkpoints/last", run);
    printf("[3/4] evaluating %s on the test split (with the IRM oracle) into %s\n", ckpt, dir);
    fflush(stdout);
    tf_evaluate_opts eo;
    tf_evaluate_defaults(&eo);
    eo.checkpoints[0] = ckpt, eo.n_checkpoints = 1;
    eo.data_root = data, eo.out_dir = dir, eo.oracle_irm = 1;
    eo.batch_size = 4, eo.num_threads = (int)threads;
    tf_evaluation e;
    if ((st = tf_evaluate(&eo, &e))) {
        tf_evaluation_free(&e);
        return cli_fail(st);
    }
    tm[2] = tf_now_s() - t0;

    /* 4. separation of one test mixture, with the public API (include/tfswa.h) */
    char name[256], song[TF_PATH_MAX + 512], stems[TF_PATH_MAX];
    tf_synth_track_name(name, sizeof name, 1, 0, so.seed);
    snprintf(song, sizeof song, "%s/test/%s/mixture.wav", data, name);
    snprintf(stems, sizeof stems, "%s/stems", dir);
    printf("[4/4] separating %s into %s\n", song, stems);
    fflush(stdout);
    const char *ckpts[1] = {ckpt};
    int status = TFSWA_OK;
    tfswa_context *ctx = tfswa_open(ckpts, 1, (int)threads, &status);
    if (ctx) {
        tfswa_separate_params sp = tfswa_default_params();
        sp.filename = "{stem}.{ext}";
        sp.overwrite = true;
        sp.batch_size = 4;
        status = tfswa_separate_file(ctx, song, stems, &sp);
        if (status == TFSWA_OK)
            printf("      %d stems, %.1f s of audio in %.1f s\n",
                   tfswa_last_summary(ctx)->n_outputs, tfswa_last_summary(ctx)->duration,
                   tfswa_last_summary(ctx)->seconds);
    }
    if (status != TFSWA_OK) {
        fprintf(stderr, "tfswa: demo: %s\n", tfswa_last_error(ctx));
        tfswa_close(ctx);
        tf_evaluation_free(&e);
        return status == TFSWA_ERR_USER ? 2 : 1;
    }
    tfswa_close(ctx);
    tm[3] = tf_now_s() - t0;

    printf("\nTest split, %d tracks (dB; uSDR: mean over tracks, cSDR: median of museval "
           "medians):\n",
           e.n_tracks);
    tf_evaluation_print_table(stdout, &e);
    printf("\nwall time: %.0f s (synth %.0f s, train %.0f s, evaluate %.0f s, separate %.0f s)\n",
           tm[3], tm[0], tm[1] - tm[0], tm[2] - tm[1], tm[3] - tm[2]);
    printf("report: %s/summary.md, figures in %s/figures, run in %s\n", dir, dir, run);
    /* uSDR of a silent estimate is 0 dB, which already beats the mixture (< 0 dB here):
     * require both */
    int bad = 0;
    for (int t = 0; t < e.n_targets; t++) {
        double m = e.agg[TF_EST_MODEL][t].usdr, x = e.agg[TF_EST_MIXTURE][t].usdr;
        if (!(m > x) || !(m > 0)) {
            fprintf(stderr,
                    "tfswa: demo: on %s the model's uSDR %.2f dB does not beat %s (%.2f dB); "
                    "train longer (--steps)\n",
                    e.targets[t], m, m > x ? "a silent estimate" : "the mixture baseline",
                    m > x ? 0.0 : x);
            bad = 1;
        }
    }
    if (!bad)
        printf("the model beats the mixture baseline and a silent estimate (0 dB uSDR) on every "
               "stem\n");
    tf_evaluation_free(&e);
    return bad;
}
