/* Helpers shared by the fuzz harnesses (fuzz/fuzz_*.c). Each harness defines
 * LLVMFuzzerTestOneInput and is linked either with libFuzzer (`make fuzz`, clang) or with
 * fuzz/driver.c (the corpus replay of `make test`, any compiler). Readers that take a path
 * get the input through a file in a private temporary folder (in /dev/shm when there is
 * one), so the real code path runs. */
#ifndef TFSWA_FUZZ_H
#define TFSWA_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "util/err.h"
#include "util/fsutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A harness's own assertion: print and abort, so libFuzzer and the replay both see a crash. */
#define FZ_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz assertion failed: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char fz_dir_[256];

static void fz_cleanup_(void) {
    if (fz_dir_[0]) tf_remove_tree(fz_dir_);
}

/* This process's temporary folder (created on first use, removed at exit). */
static inline const char *fz_dir(void) {
    if (fz_dir_[0]) return fz_dir_;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(fz_dir_, sizeof fz_dir_, "%s/tfswa_fuzz_XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(fz_dir_)) {
        perror(fz_dir_);
        abort();
    }
    atexit(fz_cleanup_);
    return fz_dir_;
}

/* out = "<fz_dir>/<name>". */
static inline void fz_path(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", fz_dir(), name);
}

/* Write data to "<fz_dir>/<name>" (replacing it); the path goes to out. */
static inline void fz_write(char *out, size_t n, const char *name, const uint8_t *data,
                            size_t size) {
    fz_path(out, n, name);
    FILE *f = fopen(out, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(out);
        abort();
    }
}

/* Every failure of a reader must be a user error whose message names the file (or another
 * given string): never an internal error, never silence. FUZZ_VERBOSE=1 prints it. */
static inline void fz_check_error(tf_status s, const char *must_name) {
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "refused (%d): %s\n", (int)s, tf_errmsg());
    FZ_ASSERT(s == TF_EUSER, "status %d (want TF_EUSER): %s", (int)s, tf_errmsg());
    FZ_ASSERT(tf_errmsg()[0] && strstr(tf_errmsg(), must_name), "message '%s' does not name '%s'",
              tf_errmsg(), must_name);
}

/* The tiny architecture of the seed checkpoint (fuzz/make_seeds.sh trains it): 1262
 * parameters, so a whole checkpoint is a few KB. */
static inline tf_model_config fz_tiny_config(void) {
    tf_model_config mc;
    memset(&mc, 0, sizeof mc);
    mc.n_levels = 2, mc.channels[0] = 2, mc.channels[1] = 4;
    mc.rcms_per_block = 1, mc.tfswa_blocks = 1, mc.heads = 1;
    mc.window_t = 2, mc.window_f = 2, mc.mlp_ratio = 1.0, mc.subbands = 1;
    mc.n_targets = 1, mc.n_fft = 64, mc.hop = 32, mc.output = TF_OUT_MAGNITUDE;
    mc.backend = TF_BACKEND_REF, mc.threads = 1;
    return mc;
}

#endif
