/* Fuzz train_state.bin (train/ckpt.c tf_ckpt_load_state): the input is the train_state.bin
 * of a checkpoint of the tiny seed model, loaded once without and once with EMA state
 * (the file decides which one fits). What is accepted must be a state training can resume
 * from; anything else a user error naming the file. */
#include <math.h>

#include "fuzz/fuzz.h"
#include "train/ckpt.h"

static size_t n_params;
static float *m, *v, *raw;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!m) {
        tf_model_config mc = fz_tiny_config();
        tf_status s = tf_model_param_count(&n_params, &mc);
        FZ_ASSERT(s == TF_OK, "%s", tf_errmsg());
        m = malloc(sizeof(float) * n_params), v = malloc(sizeof(float) * n_params);
        raw = malloc(sizeof(float) * n_params);
        FZ_ASSERT(m && v && raw, "out of memory");
        char w[512];
        fz_write(w, sizeof w, "model.safetensors", NULL, 0); /* tf_ckpt_find looks for it */
    }
    char path[512];
    fz_write(path, sizeof path, "train_state.bin", data, size);
    for (int ema = 0; ema < 2; ema++) {
        tf_opt_state st = {n_params, m, v, ema ? raw : NULL};
        tf_train_progress p;
        memset(&p, 0, sizeof p);
        tf_status s = tf_ckpt_load_state(fz_dir(), &p, &st);
        if (s != TF_OK) {
            fz_check_error(s, path);
            continue;
        }
        FZ_ASSERT(p.step >= 0 && p.updates >= 0 && p.updates <= p.step && p.skipped >= 0 &&
                      p.skipped <= p.step && p.bad_in_row >= 0 && p.bad_in_row <= p.skipped &&
                      p.best_step >= -1 && p.best_step <= p.step && !isnan(p.best_metric),
                  "accepted step %lld updates %lld skipped %lld bad %lld best %g at %lld",
                  (long long)p.step, (long long)p.updates, (long long)p.skipped,
                  (long long)p.bad_in_row, p.best_metric, (long long)p.best_step);
    }
    return 0;
}
