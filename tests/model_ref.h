/* Helpers shared by test_model.c and test_model_ref.c: presets, and the PyTorch reference
 * tests/reference/tfswa_ref.py run with /usr/bin/python3 (a missing torch FAILS the
 * tests that need it). */
#ifndef TFSWA_TESTS_MODEL_REF_H
#define TFSWA_TESTS_MODEL_REF_H
#include <stdint.h>

#include "model/model.h"
#include "test.h"
#include "train/train.h"
#include "util/config.h"
#include "util/safetensors.h"

/* the model input of a config (a pointer to a temporary) */
#define MC(c) ((const tf_model_config[]){tf_train_model_config(c)})

/* configs/model/<name>.yaml with 1 target and 2 threads */
static inline tf_config preset_config(const char *name) {
    tf_config c;
    tf_config_defaults(&c);
    char p[128];
    snprintf(p, sizeof p, "configs/model/%s.yaml", name);
    tf_status s = tf_config_load_yaml(&c, p);
    if (s != TF_OK) fprintf(stderr, "  %s\n", tf_errmsg());
    c.n_targets = 1;
    c.num_threads = 2;
    return c;
}

/* The reference's model arguments for c (the architecture, STFT and output mode); targets
 * as given (a comma list for `count`). */
static inline void ref_model_args(char *out, size_t n, const tf_config *c, const char *targets) {
    char ch[128] = "";
    for (int l = 0; l < c->n_levels; l++)
        snprintf(ch + strlen(ch), sizeof ch - strlen(ch), "%s%d", l ? "," : "", c->channels[l]);
    snprintf(out, n,
             "--channels %s --rcms %d --tfswa %d --heads %d --window %d,%d --mlp-ratio %g "
             "--subbands %d --targets %s --n-fft %d --hop %d --output %s",
             ch, c->rcms_per_block, c->tfswa_blocks, c->heads, c->window_t, c->window_f,
             c->mlp_ratio, c->subbands, targets, c->stft_window_size, c->stft_hop_length,
             c->output == TF_OUT_MASK ? "mask" : "magnitude");
}

/* Run `tfswa_ref.py gen` for c (batch B of N samples, seed) into out; extra: more flags
 * (e.g. "--forward-only"). Returns 0 on success. */
static inline int run_reference(const tf_config *c, int B, int N, const char *out, int seed,
                                const char *extra) {
    char margs[512], tg[16], cmd[1024];
    snprintf(tg, sizeof tg, "%d", c->n_targets);
    ref_model_args(margs, sizeof margs, c, tg);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/reference/tfswa_ref.py gen --out %s %s --batch %d "
             "--samples %d --seed %d %s",
             out, margs, B, N, seed, extra ? extra : "");
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr,
                "  the PyTorch reference failed (exit %d): /usr/bin/python3 with torch "
                "(Debian python3-torch) is required by this test\n  %s\n",
                rc, cmd);
    return rc;
}

static inline float *read_all(tf_safetensors *st, const char *name, size_t *n) {
    const tf_st_tensor *t = tf_st_find(st, name);
    if (!t) return NULL;
    float *x = malloc((t->numel ? t->numel : 1) * sizeof *x);
    if (x && tf_st_read_f32(st, name, x, -1, NULL) != TF_OK) {
        free(x);
        return NULL;
    }
    if (n) *n = t->numel;
    return x;
}

/* max|a - b| / max|b| (NaN propagates) */
static inline double rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

/* L1 loss (mean) and its gradient */
static inline double l1_loss(float *dout, const float *y, const float *t, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - t[i];
        s += fabs(d);
        dout[i] = (float)((d > 0) - (d < 0)) / (float)n;
    }
    return s / n;
}

#endif
