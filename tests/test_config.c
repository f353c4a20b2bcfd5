/* Configuration: defaults, YAML loading (nesting, lists, errors), flags (aliases, booleans,
 * override order, presets), range and cross-field checks, write/load round trip.
 * Run from the repository root (reads configs/data/musdb.yaml, configs/train/default.yaml). */
#include <ftw.h>
#include <sys/stat.h>
#include <stdint.h>
#include <unistd.h>

#include "test.h"
#include "util/config.h"

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tfswa_test_config_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Write text to tmpdir/name; returns the path (a static buffer per call slot). */
static const char *wfile(const char *name, const char *text) {
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return p;
}

static int has(const char *s) {
    return strstr(tf_errmsg(), s) != NULL;
}

/* Parse a command line given as a NULL-terminated list (argv[0] = "train"). */
static tf_status args(tf_config *c, unsigned char *used, int *argc_out, char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    if (argc_out) *argc_out = argc;
    unsigned char local[64] = {0};
    return tf_config_parse_args(c, argc, argv, used ? used : local);
}

static void test_defaults(void) {
    tf_config c;
    tf_config_defaults(&c);
    CHECK(c.sample_rate == 44100);
    CHECK(c.n_targets == 4 && !strcmp(c.targets[0], "vocals") && !strcmp(c.targets[1], "drums") &&
          !strcmp(c.targets[2], "bass") && !strcmp(c.targets[3], "other"));
    CHECK(c.segment_seconds == 6.0 && c.use_efficient_loading == 1 && c.min_mean_abs == 0.001);
    CHECK(c.num_workers == 4 && c.prefetch_factor == 2 && c.persistent_workers && c.pin_memory);
    CHECK(c.sampling == TF_SAMPLE_REMIX && c.aug_gain && c.aug_gain_min_db == -3 &&
          c.aug_gain_max_db == 3 && c.aug_channel_swap && c.aug_polarity &&
          c.aug_mix_same_source == 0.0);
    CHECK(c.valid_fraction == 0.1 && c.seed == 42);
    CHECK(c.stft_window_size == 2048 && c.stft_hop_length == 512);
    int ch[5] = {32, 64, 128, 256, 384};
    CHECK(c.n_levels == 5 && !memcmp(c.channels, ch, sizeof ch));
    CHECK(c.rcms_per_block == 4 && c.tfswa_blocks == 4 && c.heads == 4);
    CHECK(c.window_t == 5 && c.window_f == 4 && c.mlp_ratio == 2.0 && c.subbands == 4);
    CHECK(c.output == TF_OUT_MAGNITUDE && c.activation_dtype == TF_DT_FP32 &&
          c.checkpointing == TF_CKPT_OFF);
    CHECK(c.batch_size == 4 && c.gradient_accumulation_steps == 1 && c.max_epochs == 30 &&
          c.max_steps == 0 && c.steps_per_epoch == 1000);
    CHECK(c.optimizer == TF_OPT_ADAM && c.learning_rate == 1e-3 && c.weight_decay == 0 &&
          c.lr_decay == 0.9 && c.lr_decay_epochs == 1.5 && c.grad_clip == 5.0 && c.ema_decay == 0 &&
          c.loss == TF_LOSS_L1);
    CHECK(c.log_every == 10 && c.val_every == 500 && c.ckpt_every == 500 && c.max_bad_steps == 20 &&
          c.num_threads == 0);
    CHECK(!strcmp(c.output_dir, "runs/default") && c.resume[0] == 0);
    CHECK(tf_config_validate(&c) == TF_OK);
    CHECK(tf_config_target_index(&c, "bass") == 2);
    CHECK(tf_config_target_index(&c, "piano") == -1);
    /* the whole struct is deterministic (padding included) */
    tf_config d;
    memset(&d, 0xAB, sizeof d);
    tf_config_defaults(&d);
    CHECK(!memcmp(&c, &d, sizeof c));
}

static void test_musdb_yaml_values(void) {
    tf_config c;
    tf_config_defaults(&c);
    /* move every listed key away from its value first */
    CHECK(tf_config_set(&c, "segment_seconds", "1.5") == TF_OK);
    CHECK(tf_config_set(&c, "use_efficient_loading", "false") == TF_OK);
    CHECK(tf_config_set(&c, "min_mean_abs", "0") == TF_OK);
    CHECK(tf_config_set(&c, "persistent_workers", "no") == TF_OK);
    CHECK(tf_config_set(&c, "prefetch_factor", "7") == TF_OK);
    CHECK(tf_config_set(&c, "stft.window_size", "4096") == TF_OK);
    CHECK(tf_config_set(&c, "stft.hop_length", "1024") == TF_OK);
    CHECK(tf_config_set(&c, "root", "elsewhere") == TF_OK);
    CHECK(tf_config_set(&c, "sample_rate", "48000") == TF_OK);
    CHECK(tf_config_set(&c, "targets", "vocals") == TF_OK);
    CHECK(tf_config_set(&c, "num_workers", "0") == TF_OK);
    CHECK(tf_config_set(&c, "pin_memory", "off") == TF_OK);
    tf_status st = tf_config_load_yaml(&c, "configs/data/musdb.yaml");
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(c.segment_seconds == 6.0 && c.use_efficient_loading == 1 && c.min_mean_abs == 0.001);
    CHECK(c.persistent_workers == 1 && c.prefetch_factor == 2);
    CHECK(c.stft_window_size == 2048 && c.stft_hop_length == 512);
    CHECK(!strcmp(c.root, "data/musdb18hq") && c.sample_rate == 44100);
    CHECK(c.n_targets == 4 && tf_config_target_index(&c, "other") == 3);
    CHECK(c.num_workers == 4 && c.pin_memory == 1);
    /* both shipped files hold the defaults: loading them over defaults changes nothing */
    tf_config d, e;
    tf_config_defaults(&d);
    tf_config_defaults(&e);
    CHECK(tf_config_load_yaml(&e, "configs/data/musdb.yaml") == TF_OK);
    st = tf_config_load_yaml(&e, "configs/train/default.yaml");
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(!memcmp(&d, &e, sizeof d));
}

static void test_nested_and_dotted_keys(void) {
    tf_config c;
    tf_config_defaults(&c);
    const char *p = wfile("nested.yaml", "stft:\n"
                                         "  window_size: 1024\n"
                                         "augment:\n"
                                         "  gain: off\n"
                                         "  gain_min_db: -6.5\n"
                                         "  mix_same_source: 0.25\n"
                                         "stft.hop_length: 256\n"
                                         "sampling: aligned\n"
                                         "output: mask\n"
                                         "resume: ~\n");
    tf_status st = tf_config_load_yaml(&c, p);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(c.stft_window_size == 1024 && c.stft_hop_length == 256);
    CHECK(c.aug_gain == 0 && c.aug_gain_min_db == -6.5 && c.aug_mix_same_source == 0.25);
    CHECK(c.sampling == TF_SAMPLE_ALIGNED && c.output == TF_OUT_MASK && c.resume[0] == 0);
    /* flow mapping */
    p = wfile("flowmap.yaml", "stft: {window_size: 512, hop_length: 128}\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_OK);
    CHECK(c.stft_window_size == 512 && c.stft_hop_length == 128);
    /* a mapping for a leaf key and a scalar for a group are errors */
    p = wfile("badnest.yaml", "segment_seconds: {a: 1}\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("segment_seconds") && has("mapping"));
    p = wfile("badgroup.yaml", "stft: 5\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("'stft'"));
    /* empty file and comment-only file are fine */
    CHECK(tf_config_load_yaml(&c, wfile("empty.yaml", "")) == TF_OK);
    CHECK(tf_config_load_yaml(&c, wfile("comment.yaml", "# nothing\n")) == TF_OK);
    /* top level must be a mapping */
    CHECK(tf_config_load_yaml(&c, wfile("seq.yaml", "- a\n- b\n")) == TF_EUSER && has("mapping"));
}

static void test_block_and_flow_lists(void) {
    tf_config c;
    tf_config_defaults(&c);
    const char *p = wfile("lists.yaml", "targets:\n"
                                        "  - vocals\n"
                                        "  - bass\n"
                                        "channels: [8, 16, 24]\n"
                                        "window:\n"
                                        "  - 3\n"
                                        "  - 2\n");
    tf_status st = tf_config_load_yaml(&c, p);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(c.n_targets == 2 && !strcmp(c.targets[0], "vocals") && !strcmp(c.targets[1], "bass"));
    CHECK(c.targets[2][0] == 0);
    CHECK(c.n_levels == 3 && c.channels[0] == 8 && c.channels[1] == 16 && c.channels[2] == 24 &&
          c.channels[3] == 0);
    CHECK(c.window_t == 3 && c.window_f == 2);
    p = wfile("lists2.yaml", "targets: [drums]\nchannels:\n  - 4\nwindow: [7, 1]\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_OK);
    CHECK(c.n_targets == 1 && !strcmp(c.targets[0], "drums") && c.targets[1][0] == 0);
    CHECK(c.n_levels == 1 && c.channels[0] == 4 && c.window_t == 7 && c.window_f == 1);
    /* tf_config_set list forms */
    CHECK(tf_config_set(&c, "targets", "a,b") == TF_OK && c.n_targets == 2);
    CHECK(tf_config_set(&c, "targets", "[x, y, z]") == TF_OK && c.n_targets == 3 &&
          !strcmp(c.targets[2], "z"));
    CHECK(tf_config_set(&c, "channels", "[1,2, 3 ,4]") == TF_OK && c.n_levels == 4 &&
          c.channels[3] == 4);
    CHECK(tf_config_set(&c, "window", "5,4") == TF_OK && c.window_t == 5 && c.window_f == 4);
    /* list errors */
    CHECK(tf_config_set(&c, "targets", "a,,b") == TF_EUSER && has("empty"));
    CHECK(tf_config_set(&c, "targets", "[]") == TF_EUSER && has("targets"));
    CHECK(tf_config_set(&c, "targets", "a,b,a") == TF_EUSER && has("'a'") && has("twice"));
    CHECK(tf_config_set(&c, "targets", "1,2,3,4,5,6,7,8,9") == TF_EUSER && has("9"));
    CHECK(tf_config_set(&c, "targets", "voc/als") == TF_EUSER && has("voc/als"));
    CHECK(tf_config_set(&c, "channels", "1,2,3,4,5,6,7,8,9") == TF_EUSER && has("channels"));
    CHECK(tf_config_set(&c, "channels", "8,0") == TF_EUSER && has("channels") && has("0"));
    CHECK(tf_config_set(&c, "window", "5") == TF_EUSER && has("window"));
    CHECK(tf_config_set(&c, "window", "[5, 4") == TF_EUSER && has("]"));
    p = wfile("seqscalar.yaml", "sample_rate: [44100]\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("sample_rate") && has("list"));
    p = wfile("nestedseq.yaml", "channels: [[1, 2]]\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("channels"));
}

static void test_booleans_yaml(void) {
    tf_config c;
    tf_config_defaults(&c);
    const char *t[] = {"true", "yes", "on", "1", "True"}, *f[] = {"false", "no", "off", "0", "NO"};
    char buf[64];
    for (int i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "pin_memory: %s\n", f[i]);
        CHECK(tf_config_load_yaml(&c, wfile("b.yaml", buf)) == TF_OK && c.pin_memory == 0);
        snprintf(buf, sizeof buf, "pin_memory: %s\n", t[i]);
        CHECK(tf_config_load_yaml(&c, wfile("b.yaml", buf)) == TF_OK && c.pin_memory == 1);
    }
    CHECK(tf_config_load_yaml(&c, wfile("b.yaml", "pin_memory: maybe\n")) == TF_EUSER &&
          has("pin_memory") && has("maybe"));
}

static void test_null_rejected_for_numbers(void) {
    tf_config c, before;
    tf_config_defaults(&c);
    memcpy(&before, &c, sizeof c);
    const char *p = wfile("null.yaml", "sample_rate: ~\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("sample_rate") && has("null"));
    p = wfile("null2.yaml", "learning_rate: null\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("learning_rate"));
    p = wfile("null3.yaml", "batch_size:\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("batch_size"));
    /* a quoted "~" is a string, fine for a string key */
    p = wfile("null4.yaml", "resume: \"~\"\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_OK && !strcmp(c.resume, "~"));
    /* failed loads leave c unchanged */
    tf_config_defaults(&c);
    p = wfile("partial.yaml", "batch_size: 9\nsample_rate: ~\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER);
    CHECK(!memcmp(&c, &before, sizeof c));
}

static void test_unknown_key_names_file_key_and_suggestion(void) {
    tf_config c;
    tf_config_defaults(&c);
    const char *p = wfile("x.yaml", "segment_seconds: 3.0\nsegmnt_seconds: 4.0\n");
    tf_status st = tf_config_load_yaml(&c, p);
    CHECK(st == TF_EUSER);
    CHECK(has(p) && has("unknown key 'segmnt_seconds'") && has("did you mean 'segment_seconds'?"));
    CHECK(!strchr(tf_errmsg(), '\n'));
    p = wfile("y.yaml", "stft:\n  windw_size: 1024\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("stft.windw_size") &&
          has("'stft.window_size'"));
    /* an alias name used as a YAML key suggests the real key */
    p = wfile("z.yaml", "n_fft: 1024\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("'n_fft'") && has("'stft.window_size'"));
    /* far from everything: no suggestion */
    p = wfile("w.yaml", "completely_wrong: 1\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("completely_wrong") &&
          !has("did you mean"));
    CHECK(tf_config_set(&c, "batchsize", "3") == TF_EUSER && has("'batch_size'"));
    /* duplicate key in one file */
    p = wfile("dup.yaml", "stft:\n  hop_length: 256\nstft.hop_length: 128\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("stft.hop_length") && has("twice"));
}

static void test_bad_values_name_key_and_value(void) {
    tf_config c;
    tf_config_defaults(&c);
    const char *p = wfile("musdb.yaml", "segment_seconds: abc\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER);
    char want[600];
    snprintf(want, sizeof want, "%s: key 'segment_seconds': 'abc' is not a number", p);
    CHECKF(!strcmp(tf_errmsg(), want), "got '%s'", tf_errmsg());
    CHECK(tf_config_set(&c, "batch_size", "2.5") == TF_EUSER && has("batch_size") && has("'2.5'") &&
          has("integer"));
    CHECK(tf_config_set(&c, "batch_size", "99999999999999") == TF_EUSER && has("batch_size"));
    CHECK(tf_config_set(&c, "optimizer", "sgd") == TF_EUSER && has("optimizer") && has("'sgd'") &&
          has("adam, adamw"));
    CHECK(tf_config_set(&c, "learning_rate", "nan") == TF_EUSER && has("nan"));
    CHECK(tf_config_set(&c, "learning_rate", "1e400") == TF_EUSER && has("1e400"));
    CHECK(tf_config_set(&c, "preset", "../etc") == TF_EUSER && has("preset"));
    char longv[2000];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    CHECK(tf_config_set(&c, "root", longv) == TF_EUSER && has("root") && has("too long"));
    CHECK(tf_config_set(&c, "output_dir", "") == TF_EUSER && has("output_dir"));
    CHECK(tf_config_set(&c, "root", "data/\xff\xfe") == TF_EUSER && has("UTF-8"));
    /* enum values are case-insensitive; learning_rate accepts exponents */
    CHECK(tf_config_set(&c, "activation_dtype", "BF16") == TF_OK &&
          c.activation_dtype == TF_DT_BF16);
    CHECK(tf_config_set(&c, "learning_rate", "3e-4") == TF_OK && c.learning_rate == 3e-4);
}

static void test_out_of_range(void) {
    tf_config c, before;
    tf_config_defaults(&c);
    memcpy(&before, &c, sizeof c);
    struct {
        const char *key, *value;
    } bad[] = {
        {"sample_rate", "1000"},
        {"sample_rate", "400000"},
        {"segment_seconds", "0"},
        {"segment_seconds", "601"},
        {"min_mean_abs", "-0.1"},
        {"num_workers", "257"},
        {"num_workers", "-1"},
        {"prefetch_factor", "0"},
        {"stft.window_size", "1000"},
        {"stft.window_size", "8"},
        {"stft.window_size", "131072"},
        {"stft.hop_length", "0"},
        {"batch_size", "0"},
        {"gradient_accumulation_steps", "0"},
        {"heads", "0"},
        {"subbands", "0"},
        {"learning_rate", "0"},
        {"learning_rate", "-1e-3"},
        {"lr_decay", "1.5"},
        {"ema_decay", "1"},
        {"valid_fraction", "1"},
        {"augment.mix_same_source", "2"},
        {"seed", "-1"},
        {"steps_per_epoch", "0"},
        {"max_steps", "-5"},
        {"mlp_ratio", "0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tf_status st = tf_config_set(&c, bad[i].key, bad[i].value);
        CHECKF(st == TF_EUSER && has(bad[i].key) && has(bad[i].value), "%s=%s -> %d '%s'",
               bad[i].key, bad[i].value, (int)st, tf_errmsg());
    }
    CHECK(!memcmp(&c, &before, sizeof c)); /* failed sets change nothing */
    CHECK(tf_config_set(&c, "sample_rate", "1000") == TF_EUSER && has("[8000, 384000]"));
    CHECK(tf_config_set(&c, "segment_seconds", "0") == TF_EUSER && has("(0, 600]"));
    CHECK(tf_config_set(&c, "stft.window_size", "1000") == TF_EUSER && has("power of two"));
    const char *p = wfile("range.yaml", "sample_rate: 1000\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has(p) && has("sample_rate") && has("1000"));
    /* bounds themselves are accepted */
    CHECK(tf_config_set(&c, "sample_rate", "8000") == TF_OK);
    CHECK(tf_config_set(&c, "segment_seconds", "600") == TF_OK);
    CHECK(tf_config_set(&c, "num_workers", "0") == TF_OK);
    CHECK(tf_config_set(&c, "stft.window_size", "65536") == TF_OK);
}

static void test_validate_cross_fields(void) {
    tf_config c;
    tf_config_defaults(&c);
    c.stft_hop_length = 4096;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("stft.hop_length") && has("4096") &&
          has("2048"));
    tf_config_defaults(&c);
    c.heads = 5;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("heads") && has("5") && has("384"));
    tf_config_defaults(&c);
    c.subbands = 3;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("subbands") && has("1024"));
    tf_config_defaults(&c);
    c.aug_gain_min_db = 4;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("augment.gain_min_db") && has("4") &&
          has("augment.gain_max_db"));
    tf_config_defaults(&c);
    c.segment_seconds = 0.01;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("segment_seconds") && has("0.01"));
    tf_config_defaults(&c);
    c.max_epochs = 0;
    c.max_steps = 0;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("max_epochs"));
    c.max_steps = 100;
    CHECK(tf_config_validate(&c) == TF_OK);
    /* per-key ranges are checked too (fields set directly) */
    tf_config_defaults(&c);
    c.batch_size = 0;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("batch_size") && has("0"));
    tf_config_defaults(&c);
    c.n_levels = 0;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("channels"));
    tf_config_defaults(&c);
    strcpy(c.targets[1], "vocals");
    CHECK(tf_config_validate(&c) == TF_EUSER && has("targets") && has("vocals"));
    tf_config_defaults(&c);
    c.output = (tf_output_mode)7;
    CHECK(tf_config_validate(&c) == TF_EUSER && has("output"));
}

static void test_flags_override_yaml_wherever_they_stand(void) {
    tf_config c;
    tf_config_defaults(&c);
    const char *p = wfile("ov.yaml", "batch_size: 8\nsegment_seconds: 3.0\nheads: 2\n");
    char *argv[] = {"train", "--batch_size", "2", "--config", (char *)p, "--heads=8", NULL};
    unsigned char used[8] = {0};
    int argc;
    tf_status st = args(&c, used, &argc, argv);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(c.batch_size == 2 && c.segment_seconds == 3.0 && c.heads == 8);
    for (int i = 1; i < argc; i++) CHECK(used[i] == 1);
    CHECK(used[0] == 0);
    /* several --config files load in order; a later file overrides an earlier one */
    const char *q = wfile("ov2.yaml", "batch_size: 5\n");
    tf_config_defaults(&c);
    char *argv2[] = {"train", "--config=" /* filled below */, "--config", (char *)q, NULL};
    char first[600];
    snprintf(first, sizeof first, "--config=%s", p);
    argv2[1] = first;
    CHECK(args(&c, NULL, NULL, argv2) == TF_OK && c.batch_size == 5 && c.heads == 2);
    /* a later flag wins over an earlier one */
    char *argv3[] = {"train", "--batch_size", "3", "--batch-size", "6", NULL};
    CHECK(args(&c, NULL, NULL, argv3) == TF_OK && c.batch_size == 6);
}

static void test_dashes_underscores_dots(void) {
    tf_config c;
    tf_config_defaults(&c);
    char *argv[] = {"train",
                    "--data-root",
                    "/d/musdb",
                    "--segment-seconds=4.5",
                    "--stft-window-size",
                    "1024",
                    "--stft.hop_length",
                    "256",
                    "--augment-gain-min-db",
                    "-6",
                    "--augment_gain_max_db=6",
                    "--gradient-accumulation-steps",
                    "3",
                    NULL};
    tf_status st = args(&c, NULL, NULL, argv);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(!strcmp(c.root, "/d/musdb") && c.segment_seconds == 4.5);
    CHECK(c.stft_window_size == 1024 && c.stft_hop_length == 256);
    CHECK(c.aug_gain_min_db == -6 && c.aug_gain_max_db == 6);
    CHECK(c.gradient_accumulation_steps == 3);
    CHECK(tf_config_set(&c, "batch-size", "7") == TF_OK && c.batch_size == 7);
}

static void test_aliases(void) {
    tf_config c;
    tf_config_defaults(&c);
    char *argv[] = {
        "train", "--data_root", "data/musdb18",        "--n_fft",        "1024",   "--hop_length",
        "441",   "--use_amp",   "--use_checkpointing", "--target_stems", "vocals", NULL};
    tf_status st = args(&c, NULL, NULL, argv);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(!strcmp(c.root, "data/musdb18") && c.stft_window_size == 1024 &&
          c.stft_hop_length == 441);
    CHECK(c.activation_dtype == TF_DT_BF16 && c.checkpointing == TF_CKPT_BLOCKS);
    CHECK(c.n_targets == 1 && !strcmp(c.targets[0], "vocals"));
    char *argv2[] = {"train",
                     "--no_use_amp",
                     "--no-use-checkpointing",
                     "--targets",
                     "drums,bass",
                     "--window_size",
                     "512",
                     NULL};
    st = args(&c, NULL, NULL, argv2);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(c.activation_dtype == TF_DT_FP32 && c.checkpointing == TF_CKPT_OFF);
    CHECK(c.n_targets == 2 && !strcmp(c.targets[1], "bass") && c.stft_window_size == 512);
    char *argv3[] = {"train", "--use_amp=true", "--use_checkpointing", "false", NULL};
    CHECK(args(&c, NULL, NULL, argv3) == TF_OK && c.activation_dtype == TF_DT_BF16 &&
          c.checkpointing == TF_CKPT_OFF);
    /* the enums stay settable by name */
    char *argv4[] = {"train", "--activation_dtype", "fp32", "--checkpointing=blocks", NULL};
    CHECK(args(&c, NULL, NULL, argv4) == TF_OK && c.activation_dtype == TF_DT_FP32 &&
          c.checkpointing == TF_CKPT_BLOCKS);
}

static void test_boolean_flags(void) {
    tf_config c;
    tf_config_defaults(&c);
    char *a1[] = {"train", "--no_persistent_workers", "--no-pin-memory", "--no_augment.gain", NULL};
    CHECK(args(&c, NULL, NULL, a1) == TF_OK && !c.persistent_workers && !c.pin_memory &&
          !c.aug_gain);
    char *a2[] = {"train", "--persistent_workers", "--pin_memory",
                  "true",  "--augment-gain=yes",   NULL};
    CHECK(args(&c, NULL, NULL, a2) == TF_OK && c.persistent_workers && c.pin_memory && c.aug_gain);
    char *a3[] = {"train",
                  "--use_efficient_loading=false",
                  "--persistent_workers",
                  "false",
                  "--pin_memory",
                  "0",
                  NULL};
    unsigned char used[8] = {0};
    CHECK(args(&c, used, NULL, a3) == TF_OK && !c.use_efficient_loading && !c.persistent_workers &&
          !c.pin_memory);
    for (int i = 1; i < 6; i++) CHECK(used[i]);
    /* a bare boolean does not swallow a following non-boolean token */
    char *a4[] = {"separate", "--pin_memory", "song.wav", NULL};
    memset(used, 0, sizeof used);
    CHECK(args(&c, used, NULL, a4) == TF_OK && c.pin_memory == 1 && used[1] && !used[2]);
    char *a5[] = {"train", "--pin_memory=maybe", NULL};
    CHECK(args(&c, NULL, NULL, a5) == TF_EUSER && has("--pin_memory") && has("maybe"));
    char *a6[] = {"train", "--no_batch_size", NULL};
    CHECK(args(&c, NULL, NULL, a6) == TF_EUSER && has("batch_size"));
    char *a7[] = {"train", "--no_pin_memory=true", NULL};
    CHECK(args(&c, NULL, NULL, a7) == TF_EUSER && has("--no_pin_memory"));
}

static void test_list_flag_space_separated(void) {
    tf_config c;
    tf_config_defaults(&c);
    char *argv[] = {"train",
                    "--target_stems",
                    "vocals",
                    "drums",
                    "--batch_size",
                    "2",
                    "--channels",
                    "8",
                    "16,24",
                    "--window",
                    "3",
                    "2",
                    NULL};
    unsigned char used[16] = {0};
    int argc;
    tf_status st = args(&c, used, &argc, argv);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(c.n_targets == 2 && !strcmp(c.targets[0], "vocals") && !strcmp(c.targets[1], "drums"));
    CHECK(c.batch_size == 2);
    CHECK(c.n_levels == 3 && c.channels[0] == 8 && c.channels[1] == 16 && c.channels[2] == 24);
    CHECK(c.window_t == 3 && c.window_f == 2);
    for (int i = 1; i < argc; i++) CHECK(used[i]);
    char *a2[] = {"train", "--targets=[bass, other]", NULL};
    CHECK(args(&c, NULL, NULL, a2) == TF_OK && c.n_targets == 2 && !strcmp(c.targets[1], "other"));
    char *a3[] = {"train", "--channels", "8", "x", NULL};
    CHECK(args(&c, NULL, NULL, a3) == TF_EUSER && has("--channels") && has("'x'"));
}

static void test_unknown_flags_left_unmarked(void) {
    tf_config c;
    tf_config_defaults(&c);
    char *argv[] = {"separate", "song.wav", "--overlap", "0.25",         "--batch_size",
                    "2",        "-o",       "out",       "--weird-flag", NULL};
    unsigned char used[16] = {0};
    int argc;
    CHECK(args(&c, used, &argc, argv) == TF_OK && c.batch_size == 2);
    CHECK(!used[1] && !used[2] && !used[3] && used[4] && used[5] && !used[6] && !used[7] &&
          !used[8]);
    /* entries the caller already marked are skipped */
    char *a2[] = {"train", "--batch_size", "9", NULL};
    unsigned char u2[4] = {0, 1, 1, 0};
    CHECK(tf_config_parse_args(&c, 3, a2, u2) == TF_OK && c.batch_size == 2);
    /* with used == NULL an unknown flag is an error, with a suggestion */
    char *a3[] = {"train", "--batch_sise", "3", NULL};
    CHECK(tf_config_parse_args(&c, 3, a3, NULL) == TF_EUSER && has("--batch_sise") &&
          has("batch_size"));
}

static void test_missing_value(void) {
    tf_config c, before;
    tf_config_defaults(&c);
    memcpy(&before, &c, sizeof c);
    char *a1[] = {"train", "--batch_size", NULL};
    CHECK(args(&c, NULL, NULL, a1) == TF_EUSER && has("--batch_size") && has("needs a value"));
    char *a2[] = {"train", "--segment-seconds", "--batch_size", "3", NULL};
    CHECK(args(&c, NULL, NULL, a2) == TF_EUSER && has("--segment-seconds"));
    char *a3[] = {"train", "--config", NULL};
    CHECK(args(&c, NULL, NULL, a3) == TF_EUSER && has("--config") && has("needs a value"));
    char *a4[] = {"train", "--targets", "--batch_size", "3", NULL};
    CHECK(args(&c, NULL, NULL, a4) == TF_EUSER && has("--targets"));
    char *a5[] = {"train", "--root=", NULL};
    CHECK(args(&c, NULL, NULL, a5) == TF_EUSER && has("--root"));
    char *a6[] = {"train", "--batch_size", "2", "--sample_rate", "5", NULL};
    CHECK(args(&c, NULL, NULL, a6) == TF_EUSER && has("--sample_rate") && has("5"));
    CHECK(!memcmp(&c, &before, sizeof c)); /* failed parses change nothing */
}

static void test_yaml_syntax_error_names_line(void) {
    tf_config c;
    tf_config_defaults(&c);
    const char *p = wfile("syntax.yaml", "batch_size: 2\nheads: 4\n- x\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER);
    CHECKF(has(p) && has("line 3"), "%s", tf_errmsg());
    p = wfile("syntax2.yaml", "batch_size: 2\ntargets: [vocals, drums\nheads: 4\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has(p) && has("line "));
    p = wfile("tab.yaml", "stft:\n\twindow_size: 1024\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has(p) && has("line 2"));
    /* anchors and aliases */
    p = wfile("alias.yaml", "heads: &h 4\nbatch_size: *h\n");
    CHECK(tf_config_load_yaml(&c, p) == TF_EUSER && has("batch_size") && has("alias"));
    /* missing file and directory */
    CHECK(tf_config_load_yaml(&c, "/nonexistent/dir/cfg.yaml") == TF_EUSER &&
          has("/nonexistent/dir/cfg.yaml"));
    CHECK(tf_config_load_yaml(&c, tmpdir) == TF_EUSER && has(tmpdir));
}

static void test_round_trip(void) {
    tf_config c, d;
    tf_config_defaults(&c);
    /* a config far from the defaults, with awkward strings and doubles */
    const char *kv[][2] = {
        {"root", "/data/my \"musdb\" \\ dir: #1 'q' é ünï 日本"},
        {"sample_rate", "48000"},
        {"targets", "-lead,b_2,C-3"},
        {"segment_seconds", "0.1"},
        {"use_efficient_loading", "false"},
        {"min_mean_abs", "3.3333333333333335e-05"},
        {"num_workers", "0"},
        {"prefetch_factor", "5"},
        {"persistent_workers", "false"},
        {"pin_memory", "false"},
        {"sampling", "aligned"},
        {"augment.gain", "false"},
        {"augment.gain_min_db", "-0.0"},
        {"augment.gain_max_db", "1e-300"},
        {"augment.channel_swap", "false"},
        {"augment.polarity", "false"},
        {"augment.mix_same_source", "0.7"},
        {"valid_fraction", "0.30000000000000004"},
        {"seed", "9223372036854775807"},
        {"stft.window_size", "4096"},
        {"stft.hop_length", "441"},
        {"preset", "my-preset_2"},
        {"channels", "3,5,7"},
        {"rcms_per_block", "2"},
        {"tfswa_blocks", "0"},
        {"heads", "7"},
        {"window", "9,1"},
        {"mlp_ratio", "2.6666666666666665"},
        {"subbands", "16"},
        {"output", "mask"},
        {"activation_dtype", "bf16"},
        {"checkpointing", "blocks"},
        {"batch_size", "16"},
        {"gradient_accumulation_steps", "4"},
        {"max_epochs", "0"},
        {"max_steps", "123456789012"},
        {"steps_per_epoch", "77"},
        {"optimizer", "adamw"},
        {"learning_rate", "0.00030000000000000003"},
        {"weight_decay", "0.01"},
        {"lr_decay", "1"},
        {"lr_decay_epochs", "1e-05"},
        {"grad_clip", "1e+300"},
        {"ema_decay", "0.999"},
        {"loss", "mrstft"},
        {"log_every", "1"},
        {"val_every", "0"},
        {"ckpt_every", "2147483647"},
        {"max_bad_steps", "3"},
        {"output_dir", "runs/x\ty\nz"},
        {"resume", ""},
        {"num_threads", "2"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        tf_status st = tf_config_set(&c, kv[i][0], kv[i][1]);
        CHECKF(st == TF_OK, "%s: %s", kv[i][0], tf_errmsg());
    }
    CHECK(signbit(c.aug_gain_min_db));
    char path[512];
    snprintf(path, sizeof path, "%s/rt.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    CHECK(f && tf_config_write_yaml(&c, f) == TF_OK);
    if (f) fclose(f);
    tf_config_defaults(&d);
    tf_status st = tf_config_load_yaml(&d, path);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(!memcmp(&c, &d, sizeof c));
    CHECK(!strcmp(c.root, d.root) && !strcmp(c.output_dir, d.output_dir));
    CHECK(d.seed == INT64_MAX && d.max_steps == 123456789012LL && d.valid_fraction == 0.1 + 0.2);
    /* the defaults round-trip too, and the file nests stft: and augment: */
    tf_config_defaults(&c);
    f = fopen(path, "w");
    CHECK(f && tf_config_write_yaml(&c, f) == TF_OK);
    if (f) fclose(f);
    memset(&d, 0, sizeof d);
    CHECK(tf_config_load_yaml(&d, path) == TF_OK && !memcmp(&c, &d, sizeof c));
    f = fopen(path, "r");
    char text[8192] = {0};
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    CHECK(strstr(text, "\nstft:\n  window_size: 2048\n  hop_length: 512\n"));
    CHECK(strstr(text, "\naugment:\n  gain: true\n  gain_min_db: -3.0\n"));
    CHECK(strstr(text, "\ntargets: [vocals, drums, bass, other]\n"));
    CHECK(strstr(text, "\nchannels: [32, 64, 128, 256, 384]\n"));
    CHECK(strstr(text, "\nsegment_seconds: 6.0\n") && strstr(text, "\nmin_mean_abs: 0.001\n"));
}

static void test_presets_from_config_dir(void) {
    char mdir[600];
    snprintf(mdir, sizeof mdir, "%s/model", tmpdir);
    CHECK(mkdir(mdir, 0700) == 0);
    wfile("model/tiny.yaml", "channels: [4, 8]\nheads: 2\ntfswa_blocks: 1\nbatch_size: 3\n");
    wfile("model/small.yaml", "channels: [16, 32, 64]\n");
    setenv("TFSWA_CONFIG_DIR", tmpdir, 1);
    CHECK(tf_config_find_dir() && !strcmp(tf_config_find_dir(), tmpdir));
    const char *p = wfile("after.yaml", "heads: 1\n");
    tf_config c;
    tf_config_defaults(&c);
    /* preset first, then --config, then flags, regardless of order on the line */
    char *argv[] = {"train", "--batch_size", "5", "--config", (char *)p, "--preset", "tiny", NULL};
    unsigned char used[8] = {0};
    tf_status st = args(&c, used, NULL, argv);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    CHECK(c.n_levels == 2 && c.channels[1] == 8 && c.tfswa_blocks == 1);
    CHECK(c.heads == 1 && c.batch_size == 5 && !strcmp(c.preset, "tiny"));
    for (int i = 1; i < 7; i++) CHECK(used[i]);
    /* missing preset: names the path tried and lists what exists */
    tf_config_defaults(&c);
    char *a2[] = {"train", "--preset=huge", NULL};
    CHECK(args(&c, NULL, NULL, a2) == TF_EUSER);
    char want[700];
    snprintf(want, sizeof want, "%s/model/huge.yaml", tmpdir);
    CHECKF(has(want) && has("small, tiny"), "%s", tf_errmsg());
    char *a3[] = {"train", "--preset", "../x", NULL};
    CHECK(args(&c, NULL, NULL, a3) == TF_EUSER && has("../x"));
    /* an error inside a preset file names that file */
    wfile("model/broken.yaml", "heads: many\n");
    char *a4[] = {"train", "--preset", "broken", NULL};
    CHECK(args(&c, NULL, NULL, a4) == TF_EUSER && has("broken.yaml") && has("'many'"));
    unsetenv("TFSWA_CONFIG_DIR");
    /* without the variable: ./configs (the tests run from the repository root) */
    CHECK(tf_config_find_dir() && !strcmp(tf_config_find_dir(), "configs"));
}

int main(void) {
    make_tmpdir();
    RUN(test_defaults);
    RUN(test_musdb_yaml_values);
    RUN(test_nested_and_dotted_keys);
    RUN(test_block_and_flow_lists);
    RUN(test_booleans_yaml);
    RUN(test_null_rejected_for_numbers);
    RUN(test_unknown_key_names_file_key_and_suggestion);
    RUN(test_bad_values_name_key_and_value);
    RUN(test_out_of_range);
    RUN(test_validate_cross_fields);
    RUN(test_flags_override_yaml_wherever_they_stand);
    RUN(test_dashes_underscores_dots);
    RUN(test_aliases);
    RUN(test_boolean_flags);
    RUN(test_list_flag_space_separated);
    RUN(test_unknown_flags_left_unmarked);
    RUN(test_missing_value);
    RUN(test_yaml_syntax_error_names_line);
    RUN(test_round_trip);
    RUN(test_presets_from_config_dir);
    nftw(tmpdir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return TEST_END();
}
