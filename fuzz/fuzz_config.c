/* Fuzz the YAML config reader (util/config.c tf_config_load_yaml over libyaml): the input is
 * a config file given with --config. What is accepted is validated and written back as YAML
 * (tf_config_write_yaml), which must read back to the same config; a refused file is a
 * user error naming it. */
#include "fuzz/fuzz.h"
#include "util/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512], back[512];
    fz_write(path, sizeof path, "config.yaml", data, size);
    static tf_config c, d;
    tf_config_defaults(&c);
    tf_status s = tf_config_load_yaml(&c, path);
    if (s != TF_OK) {
        fz_check_error(s, path);
        return 0;
    }
    (void)tf_config_validate(&c);
    /* every value a file can set is one the writer reproduces exactly */
    fz_path(back, sizeof back, "back.yaml");
    FILE *f = fopen(back, "wb");
    FZ_ASSERT(f, "cannot write %s", back);
    s = tf_config_write_yaml(&c, f);
    FZ_ASSERT(fclose(f) == 0 && s == TF_OK, "%s", tf_errmsg());
    tf_config_defaults(&d);
    s = tf_config_load_yaml(&d, back);
    FZ_ASSERT(s == TF_OK, "%s", tf_errmsg());
    FZ_ASSERT(!memcmp(&c, &d, sizeof c), "%s does not read back to the same config", back);
    return 0;
}
