/* Fixtures shared by several test programs: see fixtures.h. */
#include "fixtures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "util/rng.h"

int test_make_small_checkpoint(const char *dir, const char *targets, uint64_t seed,
                               tf_config *out) {
    tf_config c;
    tf_config_defaults(&c);
    const char *kv[][2] = {{"sample_rate", "8000"},
                           {"stft.window_size", "256"},
                           {"stft.hop_length", "64"},
                           {"channels", "4,8"},
                           {"rcms_per_block", "1"},
                           {"tfswa_blocks", "1"},
                           {"heads", "2"},
                           {"window", "5,4"},
                           {"subbands", "4"},
                           {"segment_seconds", "0.5"},
                           {"sources", "vocals,drums,bass,other"},
                           {"targets", targets}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (tf_config_set(&c, kv[i][0], kv[i][1])) {
            fprintf(stderr, "config: %s\n", tf_errmsg());
            return 0;
        }
    c.seed = (int64_t)seed;
    tf_model *m;
    if (tf_model_create(&m, (const tf_model_config[]){tf_train_model_config(&c)}, 1, 4000, 1)) {
        fprintf(stderr, "model: %s\n", tf_errmsg());
        return 0;
    }
    tf_model_init(m, seed);
    const tf_model_sizes *sz = tf_model_get_plan(m);
    tf_opt_state os = {sz->n_params, calloc(sz->n_params, 4), calloc(sz->n_params, 4), NULL};
    tf_train_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.best_metric = -INFINITY;
    int ok = tf_ckpt_save(dir, m, &c, &pr, &os) == TF_OK;
    if (!ok) fprintf(stderr, "ckpt: %s\n", tf_errmsg());
    free(os.m), free(os.v);
    tf_model_free(m);
    if (out) *out = c;
    return ok;
}

float *test_rand_floats(size_t n, uint64_t seed) {
    float *x = malloc(n * sizeof(float) + 1);
    if (!x) return NULL;
    tf_rng r;
    tf_rng_seed(&r, seed, 0, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(2.0 * tf_rng_uniform(&r) - 1.0);
    return x;
}

double test_max_rel_err(const float *a, const float *b, size_t n) {
    double e = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d; /* NaN counts as the largest error */
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return e / m;
}
