/* tfswa train [--config FILE]... [--preset NAME] [--key value]... : see train/train.h. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "train/ckpt.h"
#include "train/dist.h"
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
    "Data parallel: mpirun -np N tfswa train ...\n";

static tf_status resume_base(tf_config *cfg, const char *path) {
    char f[TF_PATH_MAX + 32];
    snprintf(f, sizeof f, "%s/config.yaml", path);
    if (tf_path_exists(f)) return tf_config_load_yaml(cfg, f);
    char dir[TF_PATH_MAX + 64];
    TF_TRY(tf_ckpt_resolve(path, dir, sizeof dir));
    return tf_ckpt_read_config(dir, cfg);
}

int cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
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
    if (!st) st = tf_config_parse_args(&cfg, argc, argv, a.used);
    if (!st) st = cli_check_unused(&a);
    if (!st) st = tf_config_validate(&cfg);
    if (!st) st = tf_train_run(&cfg, &d);
    tf_dist_finalize(&d);
    return cli_fail(st);
}
