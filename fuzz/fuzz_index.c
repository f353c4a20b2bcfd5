/* Fuzz the dataset index cache (data/index.c: the "<root>/.tfswa_index" file read by
 * tf_index_open): the input is the cache file of a fixed tiny dataset (two tracks of short
 * WAV stems with fixed mtimes, written once per process), so cache entries can match real
 * files. The harness sets the cache's payload checksum itself (bytes 40..47, FNV-1a of the
 * bytes after the 64-byte header) so the fuzzer reaches the entry parser; a wrong checksum
 * only makes the cache ignored. Whatever the cache says, the index must be consistent
 * (rates, channels, envelope lengths and values) or a user error naming the dataset. */
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

#include "audio/audio.h"
#include "data/index.h"
#include "fuzz/fuzz.h"

#define RATE   8000
#define FRAMES 2100 /* 2 envelope blocks of RATE / 4 frames */

static char root[300];

static void make_file(const char *rel, int channels, int64_t frames, float amp) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    float *x = malloc(sizeof(float) * 2 * (size_t)frames);
    FZ_ASSERT(x, "out of memory");
    for (int64_t i = 0; i < 2 * frames; i++) x[i] = amp * (float)((i * 37 % 101) - 50) / 50.f;
    tf_status s = tf_audio_write_file(p, x, channels, frames, RATE, TF_FMT_WAV, TF_SUBTYPE_PCM16);
    FZ_ASSERT(s == TF_OK, "%s", tf_errmsg());
    free(x);
    /* a fixed mtime, far from now (not "racy"), that the seed cache records */
    const struct timespec t[2] = {{1000000000, 123}, {1000000000, 123}};
    FZ_ASSERT(utimensat(AT_FDCWD, p, t, 0) == 0, "utimensat %s", p);
}

static void setup(void) {
    snprintf(root, sizeof root, "%s/data", fz_dir());
    char d[600];
    snprintf(d, sizeof d, "%s/a", root);
    FZ_ASSERT(tf_mkdirs(d) == TF_OK, "%s", tf_errmsg());
    snprintf(d, sizeof d, "%s/b", root);
    FZ_ASSERT(tf_mkdirs(d) == TF_OK, "%s", tf_errmsg());
    make_file("a/vocals.wav", 2, FRAMES, 0.5f);
    make_file("a/bass.wav", 1, FRAMES, 0.25f);
    make_file("a/drums.wav", 2, 100, 0.1f); /* not a source: its entry is kept while unchanged */
    make_file("b/vocals.wav", 2, FRAMES, 0.3f);
    make_file("b/bass.wav", 2, FRAMES, 0.2f);
    make_file("b/mixture.wav", 2, FRAMES, 0.6f);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!root[0]) setup();
    uint8_t *c = malloc(size ? size : 1);
    FZ_ASSERT(c, "out of memory");
    memcpy(c, data, size);
    if (size >= 64) {
        uint64_t h = fnv1a(c + 64, size - 64);
        memcpy(c + 40, &h, 8);
    }
    char cache[512];
    fz_write(cache, sizeof cache, "index", c, size);
    free(c);
    static tf_config cfg;
    tf_config_defaults(&cfg);
    snprintf(cfg.root, sizeof cfg.root, "%s", root);
    cfg.n_sources = 2;
    snprintf(cfg.sources[0], TF_NAME_MAX, "vocals");
    snprintf(cfg.sources[1], TF_NAME_MAX, "bass");
    cfg.n_targets = 1;
    snprintf(cfg.targets[0], TF_NAME_MAX, "vocals");
    cfg.sample_rate = RATE, cfg.valid_fraction = 0.5, cfg.num_threads = 1;
    tf_index *ix = NULL;
    tf_status s = tf_index_open(&ix, &cfg, cache);
    if (s != TF_OK) {
        fz_check_error(s, root);
        return 0;
    }
    FZ_ASSERT(ix->n_tracks == 2, "%d tracks", ix->n_tracks);
    for (int t = 0; t < ix->n_tracks; t++) {
        const tf_track *tr = &ix->tracks[t];
        FZ_ASSERT(tr->frames > 0, "track %s: %lld frames", tr->name, (long long)tr->frames);
        for (int k = -1; k < ix->n_stems; k++) {
            const tf_stem_file *f = k < 0 ? &tr->mixture : &tr->stems[k];
            if (!f->path) continue;
            FZ_ASSERT(f->frames == tr->frames && f->rate == RATE &&
                          (f->channels == 1 || f->channels == 2) &&
                          f->n_env == (f->frames + ix->env_block - 1) / ix->env_block,
                      "%s: %lld frames of %lld, %d Hz, %d channels, %lld envelope blocks", f->path,
                      (long long)f->frames, (long long)tr->frames, f->rate, f->channels,
                      (long long)f->n_env);
            for (int64_t i = 0; i < f->n_env; i++)
                FZ_ASSERT(isfinite(f->env[i]) && f->env[i] >= 0, "%s: envelope block %lld is %g",
                          f->path, (long long)i, f->env[i]);
        }
    }
    tf_index_close(ix);
    if (getenv("TFSWA_FUZZ_SAVE_CACHE")) { /* fuzz/make_seeds.sh: keep the real cache */
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", cache, getenv("TFSWA_FUZZ_SAVE_CACHE"));
        FZ_ASSERT(system(cmd) == 0, "%s", cmd);
    }
    return 0;
}
