/* tfswa train [--config FILE]... [--preset NAME] [--key value]... : see train/train.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/ckpt.h"
#include "train/dist.h"
#include "train/fit.h"
#include "train/device_plan.h"
#include "train/train.h"
#include "util/config.h"
#include "util/fsutil.h"

static const char *USAGE =
    "usage: tfswa train [--config FILE]... [--preset paper|small|tiny] [options]\n"
    "\n"
    "Every configuration key is a flag (dashes or underscores; booleans also as --no_KEY).\n"
    "The memory guide's flags:\n"
    "  --data_root DIR  --batch_size N  --segment_seconds S  --n_fft N  --hop_length N\n"
    "  --use_efficient_loading  --min_mean_abs X  --persistent_workers  --prefetch_factor N\n"
    "  --num_workers N  --use_amp (bf16 activations)  --use_checkpointing (recompute blocks)\n"
    "Training: --target_stems NAME... --max_epochs N --max_steps N --learning_rate X\n"
    "  --gradient_accumulation_steps N --output_dir DIR --resume RUN_OR_CHECKPOINT --seed N\n"
    "  --num_threads N --optimizer adam|adamw --grad_clip X --ema_decay X --val_every N\n"
    "  --ckpt_every N --log_every N --steps_per_epoch N\n"
    "Memory: --fit_memory SIZE (e.g. 8GiB) chooses batch_size x gradient_accumulation_steps\n"
    "  (same product), checkpointing and precision to fit SIZE, fastest first (as `tfswa plan\n"
    "  --memory SIZE` ranks them), and says what it chose; nothing fits: exit 2.\n"
    "Device: --device cpu|cuda|cuda:N (config key device; default cpu). CUDA needs a CUDA\n"
    "  build (make CUDA=1) and a GPU; on CUDA the whole step runs on the device, with or\n"
    "  without --use_checkpointing; --use_amp stores the activations in bf16 as on the CPU\n"
    "  and computes the convolutions and GEMMs in bf16 (compute capability 8.0+), or with\n"
    "  --amp_dtype fp16 in fp16 with dynamic loss scaling (7.0+; CUDA only).\n"
    "Data parallel: mpirun -np N tfswa train ... (with --device cuda:K each rank takes its\n"
    "  own GPU, cuda:K+R for node-local rank R; the gradients are summed with NCCL).\n";

/* Prints a training run's events on stderr (user: an int, 1 when stderr is a terminal:
 * the progress line then rewrites itself with \r). */
void cli_print_train_event(void *user, const struct tf_train_event *e) {
    const int tty = user ? *(const int *)user : 0;
    const tf_config *c = e->cfg;
    switch (e->kind) {
    case TF_TRAIN_EV_PLAN:
        if (e->dplan)
            tf_device_plan_print(stderr, e->dplan, c);
        else
            tf_train_plan_print(stderr, e->plan, c);
        break;
    case TF_TRAIN_EV_RESUMED:
        if (e->path)
            fprintf(stderr, "resumed from %s at step %lld\n", e->path, (long long)e->step);
        else
            fprintf(stderr,
                    "%s was stopped before its first checkpoint: nothing to resume, starting it "
                    "over from step 0\n",
                    c->resume);
        break;
    case TF_TRAIN_EV_LOG: {
        char line[512];
        snprintf(line, sizeof line,
                 "step %lld/%lld | epoch %lld | loss %.5f | lr %.3g | %.1f samples/s | grad %.3g | "
                 "skipped %lld | rss %.0f MiB / plan %.0f MiB",
                 (long long)e->step, (long long)e->total_steps, (long long)e->epoch, e->loss, e->lr,
                 e->samples_per_s, e->grad_norm, (long long)e->skipped,
                 (double)e->rss_bytes / 1048576.0, (double)e->plan->total / 1048576.0);
        if (e->on_device) {
            const size_t n = strlen(line);
            snprintf(line + n, sizeof line - n, " | device %.0f MiB (peak %.0f) / plan %.0f MiB",
                     (double)e->dev_used_bytes / 1048576.0, (double)e->dev_peak_bytes / 1048576.0,
                     (double)e->dev_plan_bytes / 1048576.0);
        }
        if (tty)
            fprintf(stderr, "\r%s\033[K%s", line, e->last ? "\n" : "");
        else
            fprintf(stderr, "%s\n", line);
        break;
    }
    case TF_TRAIN_EV_VALID: {
        const tf_val_result *v = e->valid;
        if (tty) fputc('\n', stderr);
        fprintf(stderr, "validation step %lld (%d tracks): uSDR", (long long)e->step, v->tracks);
        for (int t = 0; t < c->n_targets; t++)
            fprintf(stderr, " %s %.2f (mix %.2f)", c->targets[t], v->usdr[t], v->usdr_mixture[t]);
        fprintf(stderr, " | mean %.3f dB%s\n", v->mean, e->best ? " (best)" : "");
        break;
    }
    case TF_TRAIN_EV_SKIPPED:
        fprintf(stderr, "%sstep %lld: non-finite %s, step skipped (%lld in a row)\n",
                tty ? "\n" : "", (long long)e->step, e->loss_finite ? "gradient" : "loss",
                (long long)e->bad_in_row);
        break;
    case TF_TRAIN_EV_DONE:
        fprintf(stderr,
                "done: %lld steps, %lld skipped, best mean uSDR %.3f dB at step %lld; peak RSS "
                "%.1f MiB\n",
                (long long)e->step, (long long)e->skipped, e->best_metric, (long long)e->best_step,
                (double)e->peak_rss_bytes / 1048576.0);
        break;
    }
    fflush(stderr);
}

static tf_status resume_base(tf_config *cfg, const char *path) {
    char f[TF_PATH_MAX + 32];
    snprintf(f, sizeof f, "%s/config.yaml", path);
    if (tf_path_exists(f)) return tf_config_load_yaml(cfg, f);
    char dir[TF_PATH_MAX + 64];
    TF_TRY(tf_ckpt_resolve(path, dir, sizeof dir));
    return tf_ckpt_read_config(dir, cfg);
}

/* --fit_memory SIZE: the fastest configuration of the same effective batch within SIZE
 * (train/fit.h, cost model), applied to cfg; every rank computes the same choice. */
static tf_status fit_memory(tf_config *cfg, const char *size, int say) {
    size_t budget = 0;
    TF_TRY(cli_parse_bytes("--fit_memory", size, &budget));
    tf_fit_candidate c[TF_FIT_MAX];
    int n = 0;
    TF_TRY(tf_fit_memory(cfg, budget, c, &n));
    if (n == 0)
        return tf_err(TF_EUSER,
                      "--fit_memory %s: no configuration with effective batch %d (batch_size x "
                      "gradient_accumulation_steps) fits, even with checkpointing and amp: lower "
                      "--batch_size or --segment_seconds (see `tfswa plan --memory %s`)",
                      size, cfg->batch_size * cfg->gradient_accumulation_steps, size);
    tf_fit_apply(cfg, &c[0]);
    if (say) {
        char d[128];
        tf_fit_describe(&c[0], d, sizeof d);
        fprintf(stderr, "fit_memory %.1f MiB: %s (plan %.1f MiB; %d configuration%s fit)\n",
                budget / 1048576.0, d, c[0].plan_bytes / 1048576.0, n, n == 1 ? "" : "s");
    }
    return TF_OK;
}

/* --device: opened here for its one-line errors; with several ranks only parsed (each rank
 * opens its own GPU, the given one + its node-local rank, in tf_train_run: none makes a
 * context on the given device) */
static tf_status check_device(const tf_dist *d, const char *given) {
    if (d->size <= 1) return cli_device_open(given, NULL);
    tf_device x;
    return tf_device_from_string("--device", given, &x);
}

int cmd_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    tf_dist d;
    tf_status st = tf_dist_init(&d, &argc, &argv);
    if (st) return cli_fail(st);
    tf_config cfg;
    tf_config_defaults(&cfg);
    cli_args a;
    cli_args_init(&a, argc, argv);
    /* --resume RUN: start from the run's resolved config.yaml (then --config files and
     * flags override it); --resume CHECKPOINT_DIR: from its model.json */
    const char *resume = cli_flag_str(&a, "resume", &st);
    if (!st && resume) st = resume_base(&cfg, resume);
    cli_args_init(&a, argc, argv); /* parse_args consumes --resume itself */
    const char *fit = st ? NULL : cli_flag_str(&a, "fit_memory", &st);
    /* --device: read here for its own error line, then set as the config key `device` */
    const char *dev = st ? NULL : cli_flag_str(&a, "device", &st);
    if (!st) st = tf_config_parse_args(&cfg, argc, argv, a.used);
    if (!st) st = cli_check_unused(&a);
    if (!st && dev && !(st = check_device(&d, dev))) st = tf_config_set(&cfg, "device", dev);
    if (!st) st = tf_config_validate(&cfg);
    /* a device from a config file: opened here too, for the same one-line errors */
    if (!st && strcmp(cfg.device, "cpu") != 0) st = check_device(&d, cfg.device);
    if (!st && fit) st = fit_memory(&cfg, fit, d.rank == 0);
    int tty = isatty(2);
    if (!st) {
        st = tf_train_run(&cfg, &d, cli_print_train_event, &tty);
        if (st && d.size > 1) {
            /* this rank failed; the others may wait for it in a collective forever: print
             * its message, then end the whole job */
            int rc = cli_fail(st);
            fprintf(stderr, "tfswa: rank %d of %d failed: stopping every rank\n", d.rank, d.size);
            fflush(stderr);
            tf_dist_abort(&d, rc);
            tf_dist_finalize(&d);
            return rc;
        }
    }
    tf_dist_finalize(&d);
    return cli_fail(st);
}
