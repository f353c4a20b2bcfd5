/* Fuzz model.json (model/checkpoint.c tf_ckpt_read_info, train/ckpt.c tf_ckpt_read_config):
 * the input is the model.json of a checkpoint directory whose model.safetensors holds the
 * tiny seed model's weights. A model.json that is accepted and describes a small enough
 * model is built and loaded with those weights, so an architecture that disagrees with the
 * weights must be a user error naming the tensor's file. */
#include "fuzz/fuzz.h"
#include "model/checkpoint.h"
#include "train/ckpt.h"
#include "util/config.h"

#define MAX_MODEL_BYTES ((size_t)64 << 20)

static char dir[300], weights[512];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) { /* the checkpoint folder: the tiny model's weights, written once */
        snprintf(dir, sizeof dir, "%s/ckpt", fz_dir());
        snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
        tf_model_config mc = fz_tiny_config();
        tf_model *m = NULL;
        tf_status s = tf_mkdirs(dir);
        if (!s) s = tf_model_create_mode(&m, &mc, 1, 256, 1, TF_MODEL_INFER);
        if (!s) s = tf_model_save(m, weights, NULL, 0);
        FZ_ASSERT(s == TF_OK, "%s", tf_errmsg());
        tf_model_free(m);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/model.json", dir);
    FILE *f = fopen(path, "wb");
    FZ_ASSERT(f && (!size || fwrite(data, 1, size, f) == size) && !fclose(f), "cannot write %s",
              path);
    tf_ckpt_info info;
    memset(&info, 0, sizeof info);
    info.model.backend = TF_BACKEND_REF, info.model.threads = 1;
    tf_status s = tf_ckpt_read_info(dir, &info);
    if (s != TF_OK) {
        fz_check_error(s, path);
        return 0;
    }
    FZ_ASSERT(info.model.n_targets >= 1 && info.model.n_targets <= TF_MAX_TARGETS &&
                  info.sample_rate > 0 && info.segment_seconds > 0,
              "accepted a model.json with %d targets, rate %d", info.model.n_targets,
              info.sample_rate);
    tf_config cfg;
    tf_config_defaults(&cfg);
    s = tf_ckpt_read_config(dir, &cfg);
    if (s != TF_OK) fz_check_error(s, path);
    /* build the model it describes (when small) and load the tiny weights into it */
    tf_model_sizes plan;
    const int64_t frames = 4 * (int64_t)info.model.n_fft;
    if (tf_model_plan_mode(&plan, &info.model, 1, frames, 1, TF_MODEL_INFER) != TF_OK ||
        plan.total > MAX_MODEL_BYTES)
        return 0;
    tf_model *m = NULL;
    s = tf_model_from_checkpoint(&m, NULL, dir, &info.model, 1, frames, TF_MODEL_INFER);
    if (s != TF_OK) fz_check_error(s, dir);
    tf_model_free(m);
    return 0;
}
