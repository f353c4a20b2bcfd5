/* The one configuration of tfswa: data, STFT, model, training. Filled from defaults,
 * then YAML files (libyaml) in order, then command-line flags; each layer overrides the
 * previous one. Keys are flat names, with dotted names for YAML nesting
 * (`stft: {window_size: 2048}` is the key `stft.window_size`). Unknown keys and bad
 * values are TF_EUSER errors naming the file, key and value.
 *
 * Every field below lists its key. Flags: `--key value`, `--key=value`, dashes or
 * underscores (`--data-root` == `--data_root`); booleans also as `--key` (true) and
 * `--no_key` (false). Aliases of REQUEST.md: --data_root = root, --n_fft =
 * stft.window_size, --hop_length = stft.hop_length, --use_amp = activation_dtype bf16 and
 * compute_dtype bf16,
 * --use_checkpointing = checkpointing blocks, --target_stems / --targets = targets. */
#ifndef TFSWA_CONFIG_H
#define TFSWA_CONFIG_H
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"
#include "util/model_types.h" /* limits, tf_output_mode, tf_dtype, tf_ckpt_mode */

typedef enum { TF_SAMPLE_REMIX = 0, TF_SAMPLE_ALIGNED = 1 } tf_sampling;
typedef enum { TF_OPT_ADAM = 0, TF_OPT_ADAMW = 1 } tf_optimizer;
typedef enum { TF_LOSS_L1 = 0, TF_LOSS_MRSTFT = 1 } tf_loss;

typedef struct {
    /* ---- data ---- */
    char root[TF_PATH_MAX]; /* root: dataset root (MUSDB18-HQ layout or track folders) */
    int sample_rate;        /* sample_rate: 44100 */
    int n_targets;          /* targets: what the model predicts, e.g. [vocals] */
    char targets[TF_MAX_TARGETS][TF_NAME_MAX];
    int n_sources;                             /* sources: the stems that sum to the mixture (the */
    char sources[TF_MAX_TARGETS][TF_NAME_MAX]; /* dataset's files); targets ⊆ sources */
    double segment_seconds;                    /* segment_seconds: 6.0 */
    int use_efficient_loading;                 /* use_efficient_loading: true */
    double min_mean_abs;                       /* min_mean_abs: 0.001 (0 disables) */
    int num_workers;                           /* num_workers: 4 (0 = synchronous) */
    int prefetch_factor;                       /* prefetch_factor: 2 (batches per worker) */
    int persistent_workers;                    /* persistent_workers: true */
    int pin_memory;                            /* pin_memory: true */
    tf_sampling sampling;                      /* sampling: remix | aligned */
    int aug_gain;                              /* augment.gain: true */
    double aug_gain_min_db;                    /* augment.gain_min_db: -3 */
    double aug_gain_max_db;                    /* augment.gain_max_db: 3 */
    int aug_channel_swap;                      /* augment.channel_swap: true */
    int aug_polarity;                          /* augment.polarity: true */
    double aug_mix_same_source; /* augment.mix_same_source: 0.0 (probability; paper's mix-audio) */
    double valid_fraction;      /* valid_fraction: 0.1 (roots without MUSDB names or valid/) */
    int64_t seed;               /* seed: 42 */
    /* ---- STFT ---- */
    int stft_window_size; /* stft.window_size: 2048 (n_fft) */
    int stft_hop_length;  /* stft.hop_length: 512 */
    /* ---- model ---- */
    char preset[TF_NAME_MAX]; /* preset: paper | small | tiny (loads configs/model/<p>.yaml) */
    int n_levels;             /* channels: list, one per encoder level, e.g. [32,64,128,256,384] */
    int channels[TF_MAX_LEVELS];
    int rcms_per_block;         /* rcms_per_block: 4 */
    int tfswa_blocks;           /* tfswa_blocks: 4 */
    int heads;                  /* heads: 4 */
    int window_t, window_f;     /* window: [5, 4] (time x frequency) */
    double mlp_ratio;           /* mlp_ratio: 2.0 */
    int subbands;               /* subbands: 4 */
    tf_output_mode output;      /* output: magnitude | mask */
    tf_dtype activation_dtype;  /* activation_dtype: fp32 | bf16 */
    tf_ckpt_mode checkpointing; /* checkpointing: off | blocks */
    tf_dtype compute_dtype;     /* compute_dtype: fp32 | bf16 (bf16 where the CPU has it) */
    int amp_dtype;              /* amp_dtype: bf16 | fp16 (0, 1): --use_amp's arithmetic on
                                   CUDA (fp16: dynamic loss scaling; storage stays bf16) */
    tf_backend backend;         /* backend: dnnl | ref (nn/kernels.h; cuda: chosen by device) */
    char device[16];            /* device: cpu | cuda | cuda:N (util/device.h) */
    /* ---- training ---- */
    int batch_size;                  /* batch_size: 4 */
    int gradient_accumulation_steps; /* gradient_accumulation_steps: 1 */
    int max_epochs;                  /* max_epochs: 30 */
    int64_t max_steps;               /* max_steps: 0 (0 = by epochs) */
    int64_t steps_per_epoch;         /* steps_per_epoch: 1000 */
    tf_optimizer optimizer;          /* optimizer: adam | adamw */
    double learning_rate;            /* learning_rate: 1e-3 */
    double weight_decay;             /* weight_decay: 0 */
    double lr_decay;                 /* lr_decay: 0.9 */
    double lr_decay_epochs;          /* lr_decay_epochs: 1.5 */
    double grad_clip;                /* grad_clip: 5.0 (0 = off) */
    double ema_decay;                /* ema_decay: 0 (0 = off) */
    tf_loss loss;                    /* loss: l1 | mrstft */
    int log_every;                   /* log_every: 10 */
    int val_every;                   /* val_every: 500 (steps) */
    int ckpt_every;                  /* ckpt_every: 500 (steps) */
    int max_bad_steps;               /* max_bad_steps: 20 (non-finite steps in a row) */
    char output_dir[TF_PATH_MAX];    /* output_dir: runs/default */
    char resume[TF_PATH_MAX];        /* resume: "" */
    int num_threads;                 /* num_threads: 0 (= all cores) */
} tf_config;

/* The defaults listed above (the whole struct is zeroed first, so memcmp compares). */
void tf_config_defaults(tf_config *c);
/* Merge one YAML file into c. Nested mappings flatten to dotted keys; list keys take flow
 * or block sequences; booleans are true/false/yes/no/on/off/1/0; `~`/null is an error for
 * numeric keys and "" for strings; a key given twice in one file is an error. Each key is
 * range-checked as it is set. On error c is left unchanged and the message names the
 * file and key and value (syntax errors: file and line). */
tf_status tf_config_load_yaml(tf_config *c, const char *path);
/* Set one key from its string form (as in a flag or YAML scalar; lists as "a,b", "a b" or
 * "[a, b]"). Key as written in the table above (dashes accepted for underscores).
 * Range-checked; on error c is unchanged. */
tf_status tf_config_set(tf_config *c, const char *key, const char *value);
/* Check every key's range and the cross-field constraints (hop <= window, heads divide the
 * bottleneck channels, subbands divide window_size/2, gain_min_db <= gain_max_db, the
 * segment holds at least one STFT window, max_epochs or max_steps > 0). */
tf_status tf_config_validate(const tf_config *c);
/* The arithmetic of the CUDA kernels: compute_dtype, or TF_DT_FP16 for compute_dtype bf16
 * with amp_dtype fp16. */
tf_dtype tf_config_device_compute(const tf_config *c);
/* amp_dtype fp16 needs device cuda and --use_amp (compute_dtype bf16): TF_EUSER naming the
 * key otherwise (train, plan and bench step check it; a checkpoint's config with it still
 * separates anywhere). */
tf_status tf_config_check_amp(const tf_config *c);
/* Write the fully resolved config (every key) as YAML that tf_config_load_yaml reads back
 * to a byte-identical struct (c must pass the per-key checks of tf_config_validate). */
tf_status tf_config_write_yaml(const tf_config *c, FILE *f);
/* Index of a target name in c->targets, or -1. */
int tf_config_target_index(const tf_config *c, const char *name);

/* Apply the command line of a subcommand (argv[0] is the subcommand name) to c:
 *  (a) every `--preset NAME` loads <config dir>/model/NAME.yaml (and sets c->preset),
 *      then every `--config FILE` is loaded, in order;
 *  (b) then every other `--key value` / `--key=value` whose key is known (dashes, dots
 *      and underscores are the same: --data-root, --stft-window-size), plus the aliases
 *      listed at the top of this file and --window_size = stft.window_size. Booleans:
 *      `--key`, `--key true|false`, `--key=false`, `--no_key`. List keys also take the
 *      following non-flag tokens: `--target_stems vocals drums`.
 * So flags override YAML wherever they stand. Consumed entries are marked in used[]
 * (argc entries; entries already marked are skipped); unknown flags and positional
 * arguments are left unmarked for the caller to handle (e.g. pass cli_args.used). With
 * used == NULL an unknown flag is an error instead. Does not call tf_config_validate.
 * On error c is unchanged. */
tf_status tf_config_parse_args(tf_config *c, int argc, char **argv, unsigned char *used);
/* The configuration directory: $TFSWA_CONFIG_DIR, else ./configs if it exists, else
 * <dir of the executable>/../configs if it exists (build/tfswa -> configs), else
 * <dir of the executable>/../share/tfswa/configs (an installed PREFIX/bin/tfswa); NULL if none.
 * Returns a per-thread buffer valid until the next call. */
const char *tf_config_find_dir(void);

#endif
