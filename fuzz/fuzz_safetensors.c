/* Fuzz the safetensors reader (util/safetensors.c) and the checkpoint weight loader
 * (model/checkpoint.c tf_ckpt_load_weights) on one file: the input is model.safetensors.
 * A file the reader accepts must be self-consistent (every tensor inside the data, its
 * byte count = numel x dtype size, findable by its name, readable); a file it refuses, or
 * one that does not fit the tiny model, must be a user error naming the file. */
#include "fuzz/fuzz.h"
#include "model/checkpoint.h"
#include "util/safetensors.h"

static tf_model *model;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!model) {
        tf_model_config mc = fz_tiny_config();
        tf_status s = tf_model_create_mode(&model, &mc, 1, 256, 1, TF_MODEL_INFER);
        FZ_ASSERT(s == TF_OK, "%s", tf_errmsg());
    }
    char path[512];
    fz_write(path, sizeof path, "model.safetensors", data, size);
    tf_safetensors st;
    tf_status s = tf_st_open(&st, path);
    if (s != TF_OK) {
        fz_check_error(s, path);
    } else {
        for (size_t i = 0; i < st.n; i++) {
            const tf_st_tensor *t = &st.t[i];
            const size_t es = t->dtype == TF_ST_BF16 ? 2 : 4;
            FZ_ASSERT(t->begin <= t->end && t->end <= st.data_size &&
                          t->end - t->begin == t->numel * es,
                      "tensor %s [%zu, %zu) of %zu", t->name, t->begin, t->end, st.data_size);
            FZ_ASSERT(tf_st_find(&st, t->name) == t, "tensor %s is not unique", t->name);
            float *buf = malloc(sizeof(float) * (t->numel ? t->numel : 1));
            FZ_ASSERT(buf, "out of memory");
            s = tf_st_read_f32(&st, t->name, buf, t->ndim, t->shape);
            FZ_ASSERT(s == TF_OK, "%s", tf_errmsg());
            free(buf);
        }
        (void)tf_st_meta(&st, "format");
    }
    tf_st_close(&st);
    /* the same file as the weights of a checkpoint of the tiny model */
    s = tf_ckpt_load_weights(fz_dir(), model);
    if (s != TF_OK) fz_check_error(s, path);
    return 0;
}
