/* Separation pipeline (infer/separate.h) and the public API (include/tfswa.h): overlap-add
 * through the real path with identity/gain models, streaming file path == buffer path,
 * resampling keeps the length and rate, mono in -> mono out, overwrite protection, PCM
 * clipping counts, instrumental = mixture - vocals, several models, templates, progress
 * and cancel, constant memory; --backend / --precision and tfswa_open_with. */
#include <dirent.h>
#include <fcntl.h>
#include <sndfile.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audio/audio.h"
#include "infer/api_internal.h"
#include "infer/precision.h"
#include "infer/separate.h"
#include "model/model.h"
#include "nn/kernels.h"
#include "fixtures.h"
#include "test.h"
#include "test_child.h"
#include "train/train.h"
#include "tfswa.h"
#include "train/ckpt.h"
#include "util/fsutil.h"
#include "util/rng.h"

/* the model input of a config (a pointer to a temporary) */
#define MC(c) ((const tf_model_config[]){tf_train_model_config(c)})

/* ---------------------------------------------------------------- fake models */

/* out[b, s] = gain[s] * mix[b] (gain 1: identity) */
typedef struct {
    int S;
    float gain[TF_MAX_TARGETS];
    int calls, max_nb, prepared_batch;
    int64_t prepared_frames, max_L;
} fake;

static tf_status fake_prepare(void *ctx, int batch, int64_t frames, int threads) {
    fake *f = ctx;
    (void)threads;
    f->prepared_batch = batch, f->prepared_frames = frames;
    return TF_OK;
}

static tf_status fake_forward(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    fake *f = ctx;
    if (nb > f->prepared_batch || L != f->prepared_frames)
        return tf_err(TF_EINTERNAL, "fake model: batch %d x %lld beyond the prepared %d x %lld", nb,
                      (long long)L, f->prepared_batch, (long long)f->prepared_frames);
    f->calls++;
    if (nb > f->max_nb) f->max_nb = nb;
    for (int b = 0; b < nb; b++)
        for (int s = 0; s < f->S; s++)
            for (int64_t i = 0; i < 2 * L; i++)
                out[((size_t)b * f->S + s) * 2 * L + i] = f->gain[s] * mix[(size_t)b * 2 * L + i];
    return TF_OK;
}

static void fake_close(void *ctx) {
    free(ctx);
}

static tf_sep_model fake_model(const char *name, int rate, double seg, const char *targets,
                               const float *gains) {
    tf_sep_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    fake *f = calloc(1, sizeof *f);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", targets);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        snprintf(m.targets[m.n_targets], TF_NAME_MAX, "%s", t);
        f->gain[m.n_targets] = gains[m.n_targets];
        m.n_targets++;
    }
    f->S = m.n_targets;
    m.sample_rate = rate;
    m.segment_seconds = seg;
    m.prepare = fake_prepare, m.forward = fake_forward, m.close = fake_close, m.ctx = f;
    return m;
}

/* one fake model "vocals,drums" with gains (1, 0.5) at `rate`, segment 0.1 s */
static tfswa_context *open_vd(int rate, float gv, float gd) {
    float g[2] = {gv, gd};
    tf_sep_model m = fake_model("fake", rate, 0.1, "vocals,drums", g);
    int st;
    tfswa_context *ctx = tf_api_open_models(&m, 1, 1, &st);
    if (!ctx) fprintf(stderr, "open: %s\n", tfswa_last_error(NULL));
    return ctx;
}

/* ---------------------------------------------------------------- helpers */

static float *noise(int ch, int64_t n, uint64_t seed, float amp) {
    float *x = malloc(sizeof(float) * (size_t)ch * (size_t)n);
    tf_rng r;
    tf_rng_seed(&r, seed, 1, 2, 3);
    for (int64_t i = 0; i < ch * n; i++) x[i] = amp * (float)tf_rng_range(&r, -1, 1);
    return x;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static char tmpdir_[256];
static const char *mktmp(void) {
    snprintf(tmpdir_, sizeof tmpdir_, "/tmp/tfswa_sep_XXXXXX");
    return mkdtemp(tmpdir_);
}

static void rmrf(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        remove(path);
        return;
    }
    struct dirent *e;
    char sub[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rmrf(sub);
    }
    closedir(d);
    rmdir(path);
}

static int count_files(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 1;
    int n = 0;
    struct dirent *e;
    char sub[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        n += count_files(sub);
    }
    closedir(d);
    return n;
}

/* read a file as (channels, n) planar (mono stays mono) */
static float *read_planar(const char *path, tf_audio_info *info) {
    float *x2;
    if (tf_audio_read_all(path, &x2, info)) return NULL;
    return x2; /* (2, n); for mono both rows are the channel */
}

/* ---------------------------------------------------------------- tests */

/* Identity-like model through the real overlap-add path: input back for inputs shorter
 * than a chunk, exactly one chunk, and many chunks; with batches and with shifts. */
static void test_identity_lengths(void) {
    tfswa_context *ctx = open_vd(8000, 1.0f, 0.5f);
    CHECK(ctx != NULL);
    if (!ctx) return;
    const int64_t lens[] = {100, 800, 800 * 7 + 123, 1};
    for (int li = 0; li < 4; li++)
        for (int shifts = 0; shifts <= 2; shifts += 2)
            for (int batch = 1; batch <= 3; batch += 2) {
                const int64_t n = lens[li];
                float *x = noise(2, n, (uint64_t)n, 0.5f);
                float *y = malloc(sizeof(float) * 2 * 2 * (size_t)n);
                tfswa_separate_params p = tfswa_default_params();
                p.batch_size = batch, p.shifts = shifts, p.overlap = 0.25;
                int st = tfswa_separate_buffer(ctx, x, 2, n, 8000, y, &p);
                CHECKF(st == TFSWA_OK, "%s", tfswa_last_error(ctx));
                double e0 = max_abs_diff(y, x, 2 * n);
                double e1 = 0;
                for (int64_t i = 0; i < 2 * n; i++) e1 = fmax(e1, fabs(y[2 * n + i] - 0.5 * x[i]));
                CHECKF(e0 < 1e-6 && e1 < 1e-6, "n %lld shifts %d batch %d: err %g %g", (long long)n,
                       shifts, batch, e0, e1);
                CHECK(tfswa_last_summary(ctx)->frames == n);
                free(x), free(y);
            }
    tfswa_close(ctx);
}

/* Results do not depend on how the input is cut into blocks (internal block size). */
static void test_block_independence(void) {
    float g[2] = {1.0f, -0.25f};
    tf_sep_model m = fake_model("fake", 8000, 0.05, "vocals,drums", g);
    tf_separator *s;
    CHECK(tf_separator_create(&s, &m, 1, 1) == TF_OK);
    const int64_t n = 5000;
    float *x = noise(2, n, 7, 0.5f);
    float *a = malloc(sizeof(float) * 4 * (size_t)n), *b = malloc(sizeof(float) * 4 * (size_t)n);
    for (int rate = 8000; rate <= 11025; rate += 3025) {
        tf_sep_params p;
        tf_sep_params_default(&p);
        p.shifts = 3;
        p.batch_size = 2;
        p.block = 16384;
        CHECK(tf_separate_buffer(s, x, 2, n, rate, a, &p, NULL) == TF_OK);
        p.block = 37;
        tf_status st = tf_separate_buffer(s, x, 2, n, rate, b, &p, NULL);
        CHECKF(st == TF_OK, "%s", tf_errmsg());
        CHECKF(memcmp(a, b, sizeof(float) * 4 * (size_t)n) == 0, "rate %d: max diff %g", rate,
               max_abs_diff(a, b, 4 * n));
    }
    free(x), free(a), free(b);
    tf_separator_free(s);
}

/* The streaming file path gives exactly what the whole-buffer path gives. */
static void test_file_equals_buffer(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    tfswa_context *ctx = open_vd(8000, 0.75f, 0.5f);
    const int rates[2] = {8000, 11025};
    for (int k = 0; k < 2; k++) {
        const int64_t n = 9000 + 17 * k;
        float *x = noise(2, n, 11 + (uint64_t)k, 0.4f);
        char in[512], out[512], path[1024];
        snprintf(in, sizeof in, "%s/song%d.wav", dir, k);
        snprintf(out, sizeof out, "%s/out", dir);
        CHECK(tf_audio_write_file(in, x, 2, n, rates[k], TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
        tfswa_separate_params p = tfswa_default_params();
        p.shifts = 2, p.batch_size = 2, p.overlap = 0.5, p.instrumental = true;
        int st = tfswa_separate_file(ctx, in, out, &p);
        CHECKF(st == TFSWA_OK, "%s", tfswa_last_error(ctx));
        const int no = tfswa_n_outputs(ctx, &p);
        CHECK(no == 3);
        float *y = malloc(sizeof(float) * (size_t)no * 2 * (size_t)n);
        CHECK(tfswa_separate_buffer(ctx, x, 2, n, rates[k], y, &p) == TFSWA_OK);
        for (int j = 0; j < no; j++) {
            CHECK(tfswa_output_path(ctx, &p, in, out, j, path, sizeof path) == TFSWA_OK);
            tf_audio_info info;
            float *z = read_planar(path, &info);
            CHECKF(z != NULL, "%s", path);
            if (!z) continue;
            CHECK(info.frames == n && info.rate == rates[k] && info.channels == 2);
            CHECKF(memcmp(z, y + (size_t)j * 2 * n, sizeof(float) * 2 * (size_t)n) == 0,
                   "%s: max diff %g", path, max_abs_diff(z, y + (size_t)j * 2 * n, 2 * n));
            free(z);
        }
        snprintf(path, sizeof path, "%s/out/song%d/instrumental.wav", dir, k);
        CHECK(tf_path_exists(path));
        free(x), free(y);
    }
    tfswa_close(ctx);
    rmrf(dir);
}

/* Resampling: 48 kHz and 22.05 kHz inputs through a 16 kHz model keep their frame count
 * and rate; an identity model gives the input back (aligned, no delay) without its 10 kHz
 * component, which the model rate cannot hold (so the model really ran at 16 kHz). */
static void test_resample_length(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    float g[1] = {1.0f};
    tf_sep_model m = fake_model("fake16k", 16000, 0.25, "vocals", g);
    int st;
    tfswa_context *ctx = tf_api_open_models(&m, 1, 1, &st);
    CHECK(ctx && tfswa_sample_rate(ctx) == 16000);
    const int rates[2] = {48000, 22050};
    for (int k = 0; k < 2; k++) {
        const int rate = rates[k];
        const int64_t n = rate * 7 / 10 + 3;
        float *x = malloc(sizeof(float) * 2 * (size_t)n), *lo = malloc(sizeof(float) * 2 * n);
        for (int64_t i = 0; i < n; i++) {
            double t = (double)i / rate, hi = 0.2 * sin(2 * M_PI * 10000 * t);
            lo[i] = (float)(0.5 * sin(2 * M_PI * 440 * t));
            lo[n + i] = (float)(0.3 * sin(2 * M_PI * 1000 * t + 1));
            x[i] = (float)(lo[i] + hi), x[n + i] = (float)(lo[n + i] - hi);
        }
        char in[512], out[512], path[1024];
        snprintf(in, sizeof in, "%s/r%d.wav", dir, rate);
        snprintf(out, sizeof out, "%s/sep", dir);
        CHECK(tf_audio_write_file(in, x, 2, n, rate, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
        tfswa_separate_params p = tfswa_default_params();
        p.overlap = 0.25;
        st = tfswa_separate_file(ctx, in, out, &p);
        CHECKF(st == TFSWA_OK, "%s", tfswa_last_error(ctx));
        snprintf(path, sizeof path, "%s/sep/r%d/vocals.wav", dir, rate);
        tf_audio_info info;
        float *y = read_planar(path, &info);
        CHECK(y != NULL);
        if (y) {
            CHECKF(info.frames == n && info.rate == rate, "%lld frames at %d Hz",
                   (long long)info.frames, info.rate);
            /* interior (away from the filter's edge effects): the input back */
            double e = 0;
            for (int c = 0; c < 2; c++)
                for (int64_t i = rate / 20; i < n - rate / 20; i++)
                    e = fmax(e, fabs(y[c * n + i] - lo[c * n + i]));
            CHECKF(e < 1e-3, "rate %d: interior error %g", rate, e);
            free(y);
        }
        const tfswa_summary *s = tfswa_last_summary(ctx);
        CHECK(s->frames == n && s->sample_rate == rate && s->channels == 2);
        CHECK(s->peak_rss_bytes > 0 && s->rtf > 0);
        free(x), free(lo);
    }
    tfswa_close(ctx);
    rmrf(dir);
}

/* Mono in -> mono out (the two output channels averaged); identity gives the input. */
static void test_mono(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    tfswa_context *ctx = open_vd(8000, 1.0f, 0.5f);
    const int64_t n = 3001;
    float *x = noise(1, n, 5, 0.5f);
    char in[512], path[1024];
    snprintf(in, sizeof in, "%s/mono.wav", dir);
    CHECK(tf_audio_write_file(in, x, 1, n, 8000, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    tfswa_separate_params p = tfswa_default_params();
    p.instrumental = true;
    CHECK(tfswa_separate_file(ctx, in, dir, &p) == TFSWA_OK);
    const char *names[3] = {"vocals", "drums", "instrumental"};
    const float gains[3] = {1.0f, 0.5f, 0.0f};
    for (int j = 0; j < 3; j++) {
        snprintf(path, sizeof path, "%s/mono/%s.wav", dir, names[j]);
        tf_audio_info info;
        CHECK(tf_audio_probe(path, &info) == TF_OK);
        CHECKF(info.channels == 1 && info.frames == n, "%s: %d channels, %lld frames", path,
               info.channels, (long long)info.frames);
        float *y = read_planar(path, &info);
        double e = 0;
        for (int64_t i = 0; y && i < n; i++) e = fmax(e, fabs(y[i] - gains[j] * x[i]));
        CHECKF(y && e < 1e-6, "%s: error %g", names[j], e);
        free(y);
    }
    /* buffer API: mono in, (S, 1, n) out */
    float *y = malloc(sizeof(float) * 3 * (size_t)n);
    CHECK(tfswa_separate_buffer(ctx, x, 1, n, 8000, y, &p) == TFSWA_OK);
    CHECK(max_abs_diff(y, x, n) < 1e-6);
    free(x), free(y);
    tfswa_close(ctx);
    rmrf(dir);
}

/* Compressed inputs libsndfile decodes (MP3, Ogg Vorbis): outputs have the decoded frame
 * count and rate; an identity model gives the decoded audio back. */
static void test_compressed_inputs(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    tfswa_context *ctx = open_vd(8000, 1.0f, 0.5f);
    const int fmts[2] = {SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III,
                         SF_FORMAT_OGG | SF_FORMAT_VORBIS};
    const char *exts[2] = {"mp3", "ogg"};
    const int64_t n = 22050;
    float *x = malloc(sizeof(float) * 2 * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        x[2 * i] = (float)(0.4 * sin(i * 0.05)), x[2 * i + 1] = (float)(0.3 * sin(i * 0.031));
    for (int k = 0; k < 2; k++) {
        char in[512], path[1024];
        snprintf(in, sizeof in, "%s/song.%s", dir, exts[k]);
        SF_INFO si = {.samplerate = 22050, .channels = 2, .format = fmts[k]};
        SNDFILE *sf = sf_open(in, SFM_WRITE, &si);
        CHECKF(sf != NULL, "%s: %s", in, sf_strerror(NULL));
        if (!sf) continue;
        CHECK(sf_writef_float(sf, x, n) == n);
        sf_close(sf);
        tf_audio_info info;
        CHECK(tf_audio_probe(in, &info) == TF_OK);
        float *dec = read_planar(in, &info);
        tfswa_separate_params p = tfswa_default_params();
        p.filename = "{track}_{trackext}/{stem}.{ext}";
        int st = tfswa_separate_file(ctx, in, dir, &p);
        CHECKF(st == TFSWA_OK, "%s", tfswa_last_error(ctx));
        snprintf(path, sizeof path, "%s/song_%s/vocals.wav", dir, exts[k]);
        tf_audio_info oi;
        float *y = read_planar(path, &oi);
        CHECKF(y && oi.frames == info.frames && oi.rate == 22050 && info.frames >= n / 2,
               "%s: %lld frames (decoded %lld)", exts[k], (long long)oi.frames,
               (long long)info.frames);
        /* 22.05 kHz through the 8 kHz model: low frequencies come back */
        double e = 0;
        for (int64_t i = 2000; y && dec && i < oi.frames - 2000; i++)
            e = fmax(e, fabs(y[i] - dec[i]));
        CHECKF(e < 2e-3, "%s: error %g", exts[k], e);
        free(y), free(dec);
    }
    free(x);
    tfswa_close(ctx);
    rmrf(dir);
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* Existing outputs are left alone (error naming the file, before any work), and replaced
 * with overwrite. */
static void test_overwrite(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    tfswa_context *ctx = open_vd(8000, 1.0f, 0.5f);
    const int64_t n = 2000;
    float *x = noise(2, n, 9, 0.5f);
    char in[512], voc[1024], drums[1024];
    snprintf(in, sizeof in, "%s/a.wav", dir);
    CHECK(tf_audio_write_file(in, x, 2, n, 8000, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    snprintf(voc, sizeof voc, "%s/o/a/vocals.wav", dir);
    snprintf(drums, sizeof drums, "%s/o/a/drums.wav", dir);
    char out[512];
    snprintf(out, sizeof out, "%s/o", dir);
    tfswa_separate_params p = tfswa_default_params();
    CHECK(tfswa_separate_file(ctx, in, out, &p) == TFSWA_OK);
    /* replace vocals by a marker, remove drums */
    FILE *f = fopen(voc, "wb");
    CHECK(f && fputs("marker", f) >= 0);
    if (f) fclose(f);
    CHECK(remove(drums) == 0);
    int called = 0;
    p.progress_callback = NULL;
    int st = tfswa_separate_file(ctx, in, out, &p);
    CHECK(st == TFSWA_ERR_EXISTS);
    CHECKF(strstr(tfswa_last_error(ctx), voc) != NULL, "%s", tfswa_last_error(ctx));
    CHECK(file_size(voc) == 6);    /* untouched */
    CHECK(!tf_path_exists(drums)); /* no work was done */
    CHECK(count_files(dir) == 2);  /* a.wav + the marker: no temporaries */
    (void)called;
    p.overwrite = true;
    st = tfswa_separate_file(ctx, in, out, &p);
    CHECKF(st == TFSWA_OK, "%s", tfswa_last_error(ctx));
    CHECK(file_size(voc) > 6 && tf_path_exists(drums));
    /* the input itself is never an output */
    tfswa_separate_params q = tfswa_default_params();
    q.overwrite = true, q.stems = 1, q.filename = "{track}.{ext}";
    st = tfswa_separate_file(ctx, in, dir, &q);
    CHECK(st == TFSWA_ERR_USER);
    CHECKF(strstr(tfswa_last_error(ctx), "input") != NULL, "%s", tfswa_last_error(ctx));
    free(x);
    tfswa_close(ctx);
    rmrf(dir);
}

/* PCM_16: samples beyond full scale are clipped (saturated, never wrapped) and counted. */
static void test_pcm16_clipping(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    tfswa_context *ctx = open_vd(8000, 3.0f, 0.5f);
    const int64_t n = 4000;
    float *x = noise(2, n, 13, 0.6f);
    int64_t expect = 0; /* vocals = 3x: |3x| beyond range; drums 0.5x never */
    for (int64_t i = 0; i < 2 * n; i++) {
        float v = 3.0f * x[i];
        expect += v >= 32767.f / 32768.f + 1e-4f || v < -1.f - 1e-4f;
    }
    char in[512];
    snprintf(in, sizeof in, "%s/c.wav", dir);
    CHECK(tf_audio_write_file(in, x, 2, n, 8000, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    tfswa_separate_params p = tfswa_default_params();
    p.subtype = TFSWA_SUBTYPE_PCM_16;
    CHECK(tfswa_separate_file(ctx, in, dir, &p) == TFSWA_OK);
    int64_t clipped = tfswa_last_summary(ctx)->clipped;
    /* samples within 1e-4 of the limit may go either way after overlap-add rounding */
    CHECKF(llabs(clipped - expect) <= 8 && expect > 1000, "clipped %lld, expected ~%lld",
           (long long)clipped, (long long)expect);
    char path[1024];
    snprintf(path, sizeof path, "%s/c/vocals.wav", dir);
    tf_audio_info info;
    float *y = read_planar(path, &info);
    CHECK(y != NULL);
    int wrapped = 0;
    for (int64_t i = 0; y && i < 2 * n; i++) {
        float v = 3.0f * x[i];
        if (v > 1.0f && y[i] < 0.99f) wrapped++;
        if (v < -1.0f && y[i] > -0.99f) wrapped++;
    }
    CHECK(wrapped == 0);
    free(y), free(x);
    tfswa_close(ctx);
    rmrf(dir);
}

/* instrumental = mixture - vocals, also when vocals itself is not written, with and
 * without resampling; an error without a vocals target. */
static void test_instrumental(void) {
    tfswa_context *ctx = open_vd(8000, 0.3f, 0.2f);
    const int64_t n = 6000;
    float *x = noise(2, n, 21, 0.5f), *ref = malloc(sizeof(float) * 2 * (size_t)n);
    /* at the model rate the fake model's vocals are 0.3 x: the instrumental is 0.7 x */
    for (int64_t i = 0; i < 2 * n; i++) ref[i] = x[i] - 0.3f * x[i];
    for (int rate = 8000; rate <= 44100; rate += 36100) {
        tfswa_separate_params p = tfswa_default_params();
        p.instrumental = true;
        float *all = malloc(sizeof(float) * 3 * 2 * (size_t)n);
        CHECK(tfswa_separate_buffer(ctx, x, 2, n, rate, all, &p) == TFSWA_OK);
        CHECK(!strcmp(tfswa_output_name(ctx, &p, 2), "instrumental"));
        /* every one of the 2 n samples: the written vocals subtracted from the mixture */
        int64_t wrong = 0;
        for (int64_t i = 0; i < 2 * n; i++) wrong += all[4 * n + i] != x[i] - all[i];
        CHECKF(wrong == 0, "rate %d: %lld of %lld instrumental samples != mixture - vocals", rate,
               (long long)wrong, (long long)(2 * n));
        if (rate == 8000) { /* no resampling: against the reference, all 2 n samples */
            double e = max_abs_diff(all + 4 * n, ref, 2 * n);
            CHECKF(e < 1e-6, "instrumental vs 0.7 x: max error %g", e);
        }
        /* drums + instrumental only */
        p.stems = 1u << tfswa_target_index(ctx, "drums");
        CHECK(tfswa_n_outputs(ctx, &p) == 2);
        CHECK(!strcmp(tfswa_output_name(ctx, &p, 0), "drums"));
        float *two = malloc(sizeof(float) * 2 * 2 * (size_t)n);
        CHECK(tfswa_separate_buffer(ctx, x, 2, n, rate, two, &p) == TFSWA_OK);
        CHECK(memcmp(two, all + 2 * n, sizeof(float) * 2 * (size_t)n) == 0);
        CHECK(memcmp(two + 2 * n, all + 4 * n, sizeof(float) * 2 * (size_t)n) == 0);
        if (rate == 8000) {
            double e = max_abs_diff(two + 2 * n, ref, 2 * n);
            CHECKF(e < 1e-6, "drums + instrumental: instrumental vs 0.7 x: max error %g", e);
        }
        free(all), free(two);
    }
    float g[1] = {1};
    tf_sep_model m = fake_model("drums-only", 8000, 0.1, "drums", g);
    int st;
    tfswa_context *c2 = tf_api_open_models(&m, 1, 1, &st);
    tfswa_separate_params p = tfswa_default_params();
    p.instrumental = true;
    float y[4 * 10];
    CHECK(tfswa_separate_buffer(c2, x, 2, 10, 8000, y, &p) == TFSWA_ERR_USER);
    CHECK(strstr(tfswa_last_error(c2), "vocals") != NULL);
    tfswa_close(c2);
    tfswa_close(ctx);
    free(x), free(ref);
}

/* Several models: targets concatenated in model order; the same target twice is an error
 * naming both models; different rates are an error. */
static void test_multi_model(void) {
    float ga[1] = {0.25f}, gb[2] = {0.5f, -1.0f};
    tf_sep_model m[2] = {fake_model("ckA", 8000, 0.1, "vocals", ga),
                         fake_model("ckB", 8000, 0.07, "drums,bass", gb)};
    int st;
    tfswa_context *ctx = tf_api_open_models(m, 2, 1, &st);
    CHECK(ctx && st == TFSWA_OK);
    if (!ctx) return;
    CHECK(tfswa_n_targets(ctx) == 3);
    CHECK(!strcmp(tfswa_target_name(ctx, 0), "vocals") &&
          !strcmp(tfswa_target_name(ctx, 2), "bass"));
    CHECK(tfswa_target_name(ctx, 3) == NULL && tfswa_target_index(ctx, "other") == -1);
    const int64_t n = 2500;
    float *x = noise(2, n, 3, 0.5f), *y = malloc(sizeof(float) * 3 * 2 * (size_t)n);
    tfswa_separate_params p = tfswa_default_params();
    p.batch_size = 2;
    CHECK(tfswa_separate_buffer(ctx, x, 2, n, 8000, y, &p) == TFSWA_OK);
    const float g[3] = {0.25f, 0.5f, -1.0f};
    double e = 0;
    for (int s = 0; s < 3; s++)
        for (int64_t i = 0; i < 2 * n; i++) e = fmax(e, fabs(y[s * 2 * n + i] - g[s] * x[i]));
    CHECKF(e < 1e-6, "%g", e);
    tfswa_close(ctx);
    free(x), free(y);

    tf_sep_model d[2] = {fake_model("ckA", 8000, 0.1, "vocals,drums", gb),
                         fake_model("ckB", 8000, 0.1, "bass,drums", gb)};
    tfswa_context *bad = tf_api_open_models(d, 2, 1, &st);
    CHECK(!bad && st == TFSWA_ERR_USER);
    const char *msg = tfswa_last_error(NULL);
    CHECKF(strstr(msg, "drums") && strstr(msg, "ckA") && strstr(msg, "ckB"), "%s", msg);
    tf_sep_model r[2] = {fake_model("ckA", 8000, 0.1, "vocals", ga),
                         fake_model("ckC", 16000, 0.1, "drums", ga)};
    bad = tf_api_open_models(r, 2, 1, &st);
    CHECK(!bad && st == TFSWA_ERR_USER && strstr(tfswa_last_error(NULL), "ckC"));
}

/* File name templates and parameter errors. */
static void test_template(void) {
    tfswa_context *ctx = open_vd(8000, 1, 1);
    tfswa_separate_params p = tfswa_default_params();
    char path[1024];
    CHECK(tfswa_output_path(ctx, &p, "/x/My Song.mp3", "out", 1, path, sizeof path) == 0);
    CHECKF(!strcmp(path, "out/My Song/drums.wav"), "%s", path);
    p.filename = "{track}_{trackext}-{stem}.{ext}";
    p.ext = TFSWA_EXT_FLAC;
    CHECK(tfswa_output_path(ctx, &p, "a/b.c/song.flac", "/o", 0, path, sizeof path) == 0);
    CHECKF(!strcmp(path, "/o/song_flac-vocals.flac"), "%s", path);
    CHECK(tfswa_output_path(ctx, &p, "noext", "/o", 0, path, sizeof path) == 0);
    CHECKF(!strcmp(path, "/o/noext_-vocals.flac"), "%s", path);
    p.filename = "{track}/{stems}.{ext}";
    CHECK(tfswa_output_path(ctx, &p, "s.wav", "o", 0, path, sizeof path) == TFSWA_ERR_USER);
    CHECK(strstr(tfswa_last_error(ctx), "{stems}") != NULL);
    p.filename = "{track}.{ext}"; /* two stems into one file */
    CHECK(tfswa_check_outputs(ctx, "s.wav", "o", &p) == TFSWA_ERR_USER);
    CHECK(strstr(tfswa_last_error(ctx), "{stem}") != NULL);
    p = tfswa_default_params();
    p.ext = TFSWA_EXT_FLAC, p.subtype = TFSWA_SUBTYPE_FLOAT;
    CHECK(tfswa_check_outputs(ctx, "s.wav", "o", &p) == TFSWA_ERR_USER);
    p = tfswa_default_params();
    p.overlap = 1.0;
    CHECK(tfswa_check_outputs(ctx, "s.wav", "o", &p) == TFSWA_ERR_USER);
    CHECK(strstr(tfswa_last_error(ctx), "overlap") != NULL);
    p = tfswa_default_params();
    p.stems = 1u << 5;
    CHECK(tfswa_check_outputs(ctx, "s.wav", "o", &p) == TFSWA_ERR_USER);
    /* missing input: one message naming it */
    p = tfswa_default_params();
    CHECK(tfswa_separate_file(ctx, "/nonexistent/in.wav", "/tmp", &p) == TFSWA_ERR_USER);
    CHECK(strstr(tfswa_last_error(ctx), "/nonexistent/in.wav") != NULL);
    CHECK(!strcmp(tfswa_error_string(TFSWA_ERR_EXISTS), "output exists"));
    tfswa_close(ctx);
}

typedef struct {
    int calls, cancel_at;
    double last;
    int monotonic;
} prog;

static int on_progress(double f, void *u) {
    prog *p = u;
    if (f < p->last || f < 0 || f > 1) p->monotonic = 0;
    p->last = f;
    return ++p->calls == p->cancel_at;
}

/* Progress is monotonic and ends at 1; cancelling leaves no file behind. */
static void test_progress_cancel(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    tfswa_context *ctx = open_vd(8000, 1, 1);
    const int64_t n = 40000;
    float *x = noise(2, n, 4, 0.5f);
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/p.wav", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    CHECK(tf_audio_write_file(in, x, 2, n, 8000, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    prog pr = {0, 0, 0, 1};
    tfswa_separate_params p = tfswa_default_params();
    p.progress_callback = on_progress, p.progress_callback_user_data = &pr;
    CHECK(tfswa_separate_file(ctx, in, out, &p) == TFSWA_OK);
    CHECK(pr.calls >= 3 && pr.monotonic && pr.last == 1.0);
    rmrf(out);
    prog pc = {0, 2, 0, 1};
    p.progress_callback_user_data = &pc;
    CHECK(tfswa_separate_file(ctx, in, out, &p) == TFSWA_ERR_CANCELLED);
    CHECK(count_files(out) == 0); /* the folder may exist, no (temporary) file in it */
    free(x);
    tfswa_close(ctx);
    rmrf(dir);
}

/* The pipeline's buffers do not grow with the song: same bytes for 1 s and 60 s. */
static void test_constant_memory(void) {
    float g[2] = {1, 1};
    tf_sep_model m = fake_model("fake", 8000, 0.5, "vocals,drums", g);
    tf_separator *s;
    CHECK(tf_separator_create(&s, &m, 1, 1) == TF_OK);
    size_t bytes[2];
    for (int k = 0; k < 2; k++) {
        const int64_t n = k ? 60 * 11025 : 11025;
        float *x = noise(2, n, 1, 0.1f), *y = malloc(sizeof(float) * 4 * (size_t)n);
        tf_sep_params p;
        tf_sep_params_default(&p);
        p.shifts = 2;
        tf_sep_summary sum;
        CHECK(tf_separate_buffer(s, x, 2, n, 11025, y, &p, &sum) == TF_OK);
        bytes[k] = sum.engine_bytes;
        free(x), free(y);
    }
    CHECKF(bytes[0] == bytes[1] && bytes[0] > 0, "%zu vs %zu", bytes[0], bytes[1]);
    tf_separator_free(s);
}

/* ---------------------------------------------------------------- the real model */

/* Direct forward of the checkpoint's model on one zero-padded chunk (1, 2, L). */
static void direct_forward(const tf_config *c, const char *ck, const float *x, int64_t n, int64_t L,
                           float *y /* (S, 2, L) */) {
    tf_model *m;
    float *mix = calloc(2 * (size_t)L, sizeof(float));
    for (int ch = 0; ch < 2; ch++) memcpy(mix + ch * L, x + ch * n, sizeof(float) * (size_t)n);
    if (tf_model_create(&m, MC(c), 1, L, 1) == TF_OK) {
        if (tf_ckpt_load_weights(ck, m) == TF_OK) tf_model_forward(m, y, mix, 1, L, 0);
        tf_model_free(m);
    }
    free(mix);
}

/* The real network through the real path: a song shorter than a chunk gives exactly the
 * model's output on the zero-padded chunk; a long song runs (file == buffer); several
 * checkpoints combine; a run folder resolves to its checkpoints/last. */
static void test_real_model(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    char ck[2][512];
    snprintf(ck[0], sizeof ck[0], "%s/voc", dir);
    snprintf(ck[1], sizeof ck[1], "%s/run/checkpoints/last", dir);
    tf_config c0, c1;
    CHECK(test_make_small_checkpoint(ck[0], "vocals", 3, &c0));
    char runs[512];
    snprintf(runs, sizeof runs, "%s/run/checkpoints", dir);
    CHECK(tf_mkdirs(runs) == TF_OK);
    CHECK(test_make_small_checkpoint(ck[1], "drums,bass", 4, &c1));
    snprintf(ck[1], sizeof ck[1], "%s/run", dir); /* the run folder */
    const char *cks[2] = {ck[0], ck[1]};
    int st;
    tfswa_context *ctx = tfswa_open(cks, 2, 1, &st);
    CHECKF(ctx != NULL, "%s", tfswa_last_error(NULL));
    if (!ctx) return;
    CHECK(tfswa_n_targets(ctx) == 3 && tfswa_sample_rate(ctx) == 8000);
    CHECK(!strcmp(tfswa_target_name(ctx, 2), "bass"));
    /* shorter than a chunk (0.5 s = 4000 frames) */
    const int64_t n = 2400, L = 4000;
    float *x = noise(2, n, 17, 0.3f), *y = malloc(sizeof(float) * 3 * 2 * (size_t)n);
    tfswa_separate_params p = tfswa_default_params();
    CHECKF(tfswa_separate_buffer(ctx, x, 2, n, 8000, y, &p) == TFSWA_OK, "%s",
           tfswa_last_error(ctx));
    float *r0 = calloc(2 * (size_t)L, sizeof(float)), *r1 = calloc(4 * (size_t)L, sizeof(float));
    direct_forward(&c0, ck[0], x, n, L, r0);
    snprintf(runs, sizeof runs, "%s/run/checkpoints/last", dir);
    direct_forward(&c1, runs, x, n, L, r1);
    double e = 0, ref = 0;
    for (int ch = 0; ch < 2; ch++)
        for (int64_t i = 0; i < n; i++) {
            e = fmax(e, fabs(y[ch * n + i] - r0[ch * L + i]));
            e = fmax(e, fabs(y[(2 + ch) * n + i] - r1[ch * L + i]));
            e = fmax(e, fabs(y[(4 + ch) * n + i] - r1[(2 + ch) * L + i]));
            ref = fmax(ref, fabs(r0[ch * L + i]) + fabs(r1[ch * L + i]));
        }
    CHECKF(e <= 1e-6 * fmax(1, ref) && ref > 0, "error %g (scale %g)", e, ref);
    /* a longer song, resampled (11025 Hz), with batches and shifts: file == buffer */
    const int64_t n2 = 3 * 11025 + 7;
    float *x2 = noise(2, n2, 19, 0.3f), *y2 = malloc(sizeof(float) * 3 * 2 * (size_t)n2);
    char in[512], path[1024];
    snprintf(in, sizeof in, "%s/long.wav", dir);
    CHECK(tf_audio_write_file(in, x2, 2, n2, 11025, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    p.batch_size = 3, p.shifts = 2, p.overlap = 0.5;
    CHECKF(tfswa_separate_file(ctx, in, dir, &p) == TFSWA_OK, "%s", tfswa_last_error(ctx));
    CHECK(tfswa_separate_buffer(ctx, x2, 2, n2, 11025, y2, &p) == TFSWA_OK);
    for (int j = 0; j < 3; j++) {
        tfswa_output_path(ctx, &p, in, dir, j, path, sizeof path);
        tf_audio_info info;
        float *z = read_planar(path, &info);
        CHECKF(z && info.frames == n2 && info.rate == 11025, "%s", path);
        CHECK(z && memcmp(z, y2 + (size_t)j * 2 * n2, sizeof(float) * 2 * (size_t)n2) == 0);
        free(z);
    }
    tfswa_close(ctx);
    /* the same target from two checkpoints: an error naming both */
    const char *dup[2] = {ck[0], ck[0]};
    CHECK(tfswa_open(dup, 2, 1, &st) == NULL && st == TFSWA_ERR_USER);
    CHECKF(strstr(tfswa_last_error(NULL), "vocals") && strstr(tfswa_last_error(NULL), ck[0]), "%s",
           tfswa_last_error(NULL));
    /* a segment shorter than the STFT window (256 samples) is refused, naming it */
    ctx = tfswa_open(cks, 1, 1, &st);
    p = tfswa_default_params();
    p.segment = 0.02;
    CHECK(ctx && tfswa_separate_buffer(ctx, x, 2, n, 8000, y, &p) == TFSWA_ERR_USER);
    CHECK(ctx && strstr(tfswa_last_error(ctx), "STFT window") != NULL);
    tfswa_close(ctx);
    const char *none[1] = {in};
    CHECK(tfswa_open(none, 1, 1, &st) == NULL && st == TFSWA_ERR_USER);
    free(x), free(y), free(r0), free(r1), free(x2), free(y2);
    rmrf(dir);
}

/* ------------------------------------------------------- precision and backend */

/* Count of lines of a text file and whether it contains `needle` (-1: unreadable). */
static int file_lines(const char *path, const char *needle, int *found) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int n = 0;
    *found = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        if (needle && strstr(line, needle)) *found = 1;
    }
    fclose(f);
    return n;
}

/* Separate `n` frames of x (stereo, 8 kHz) with options o into y (2 stems): 0 on success. */
static int sep_with(const char *ck, const tfswa_options *o, const float *x, int64_t n, float *y,
                    char *desc, size_t dn) {
    int st;
    tfswa_context *ctx = tfswa_open_with(&ck, 1, o, &st);
    if (!ctx) {
        fprintf(stderr, "  open: %s\n", tfswa_last_error(NULL));
        return -1;
    }
    tfswa_separate_params p = tfswa_default_params();
    p.overlap = 0.5;
    int r = tfswa_separate_buffer(ctx, x, 2, n, 8000, y, &p);
    if (r) fprintf(stderr, "  separate: %s\n", tfswa_last_error(ctx));
    snprintf(desc, dn, "%s", tfswa_describe(ctx));
    tfswa_close(ctx);
    return r;
}

/* --backend / --precision and tfswa_open_with: the oneDNN and reference kernels give the
 * same separation (fp32) within a measured bound; tfswa_describe names what computes; auto
 * is fp32 until the bf16 cSDR delta is measured; bf16 where it is not native runs fp32
 * (bitwise the fp32 result) and the CLI says so in one line; bad values are refused
 * naming them (API: TFSWA_ERR_USER; CLI: exit 2, one line). */
static void test_precision_backend(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    char ck[512];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 8, NULL));
    const int64_t n = 2 * 8000 + 123; /* several 0.5 s chunks */
    float *x = noise(2, n, 29, 0.3f);
    float *y[4];
    for (int k = 0; k < 4; k++) y[k] = malloc(sizeof(float) * 2 * 2 * (size_t)n);
    char desc[4][512];
    tfswa_options o = tfswa_default_options();
    o.n_threads = 1;
    CHECK(o.precision == TFSWA_PRECISION_AUTO && o.backend == TFSWA_BACKEND_DNNL);
    o.precision = TFSWA_PRECISION_FP32;
    CHECK(sep_with(ck, &o, x, n, y[0], desc[0], sizeof desc[0]) == 0);
    o.backend = TFSWA_BACKEND_REF;
    CHECK(sep_with(ck, &o, x, n, y[1], desc[1], sizeof desc[1]) == 0);
    CHECKF(!strncmp(desc[0], "dnnl (", 6) && strstr(desc[0], "fp32 arithmetic (precision fp32)"),
           "%s", desc[0]);
    CHECKF(!strncmp(desc[1], "ref (", 5) && strstr(desc[1], "(precision fp32)"), "%s", desc[1]);
    /* dnnl vs ref, fp32: the same sums in another order (oneDNN's convolution vs im2col +
     * sgemm). Measured max |diff| / peak: 1.5e-7 (2.2e-8 / 0.147; oneDNN 2.6.3, isa avx2,
     * 1 thread), about one fp32 ulp of the peak. Bound 1e-5: ~65x margin for other ISAs
     * (avx512 blocking) and thread counts, still far below any audible or cSDR-visible
     * difference (-100 dB re peak). */
    double d = 0, peak = 0;
    for (int64_t i = 0; i < 4 * n; i++) {
        d = fmax(d, fabs(y[0][i] - y[1][i]));
        peak = fmax(peak, fabs(y[1][i]));
    }
    fprintf(stderr, "  dnnl vs ref (fp32): max |diff| %.3g, peak %.3g, ratio %.3g\n", d, peak,
            d / peak);
    CHECKF(peak > 0 && d <= 1e-5 * peak, "dnnl vs ref: max |diff| %g, peak %g", d, peak);
    /* auto (the default, tfswa_open): bf16 where native (the demo model's measured bf16
     * cSDR delta is within the bound), fp32 elsewhere and on the ref backend */
    const int nat = tf_kernels_native_bf16(TF_BACKEND_DNNL);
    CHECK(TF_BF16_DEMO_MAX_CSDR_DELTA_DB <= TF_BF16_AUTO_MAX_CSDR_DELTA_DB);
    CHECK(tf_precision_resolve(TF_PRECISION_AUTO, TF_BACKEND_DNNL) ==
          (nat ? TF_DT_BF16 : TF_DT_FP32));
    CHECK(tf_precision_resolve(TF_PRECISION_AUTO, TF_BACKEND_REF) == TF_DT_FP32);
    CHECK(tf_precision_resolve(TF_PRECISION_BF16, TF_BACKEND_DNNL) == TF_DT_BF16);
    CHECK(tf_precision_resolve(TF_PRECISION_FP32, TF_BACKEND_DNNL) == TF_DT_FP32);
    CHECK(sep_with(ck, NULL, x, n, y[2], desc[2], sizeof desc[2]) == 0);
    CHECKF(strstr(desc[2], "dnnl (") &&
               strstr(desc[2], nat ? "bf16 arithmetic" : "fp32 arithmetic") &&
               strstr(desc[2], "(precision auto)"),
           "%s", desc[2]);
    if (!nat) CHECK(memcmp(y[0], y[2], sizeof(float) * 4 * (size_t)n) == 0);
    /* bf16 asked for */
    const int native = tf_kernels_native_bf16(TF_BACKEND_DNNL);
    o.backend = TFSWA_BACKEND_DNNL, o.precision = TFSWA_PRECISION_BF16;
    CHECK(sep_with(ck, &o, x, n, y[3], desc[3], sizeof desc[3]) == 0);
    if (!native) {
        CHECKF(strstr(desc[3], "fp32 arithmetic") && strstr(desc[3], "(precision bf16)"), "%s",
               desc[3]);
        CHECK(memcmp(y[0], y[3], sizeof(float) * 4 * (size_t)n) == 0);
    } else {
        CHECKF(strstr(desc[3], "bf16 arithmetic"), "%s", desc[3]);
    }
    /* bad options through the API */
    int st = 0;
    o = tfswa_default_options();
    o.precision = 3;
    const char *cks[1] = {ck};
    CHECK(tfswa_open_with(cks, 1, &o, &st) == NULL && st == TFSWA_ERR_USER);
    CHECKF(strstr(tfswa_last_error(NULL), "precision 3"), "%s", tfswa_last_error(NULL));
    o = tfswa_default_options();
    o.backend = -1;
    CHECK(tfswa_open_with(cks, 1, &o, &st) == NULL && st == TFSWA_ERR_USER);
    CHECKF(strstr(tfswa_last_error(NULL), "backend -1"), "%s", tfswa_last_error(NULL));

    /* the CLI */
    char exe[1024], in[512], cmd[4096], log[512], path[2][1024];
    CHECK(test_build_path(exe, sizeof exe, "tfswa") == 0 && access(exe, X_OK) == 0);
    snprintf(in, sizeof in, "%s/song.wav", dir);
    CHECK(tf_audio_write_file(in, x, 2, n, 8000, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    const char *runs[][2] = {{"ref", "fp32"}, {"dnnl", "fp32"}, {"dnnl", "bf16"}};
    for (int k = 0; k < 3; k++) {
        snprintf(log, sizeof log, "%s/log%d.txt", dir, k);
        snprintf(cmd, sizeof cmd,
                 "'%s' separate '%s' -o '%s/out%d' --checkpoint '%s' --num_threads 1 "
                 "--backend %s --precision %s >/dev/null 2>'%s'",
                 exe, in, dir, k, ck, runs[k][0], runs[k][1], log);
        int rc = system(cmd);
        CHECKF(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s", cmd);
        int found = 0, lines = file_lines(log, "compute: ", &found);
        CHECKF(found, "%s: no 'compute:' line", log);
        char want[64];
        snprintf(want, sizeof want, "compute: %s (", runs[k][0]);
        file_lines(log, want, &found);
        CHECKF(found, "%s: no '%s'", log, want);
        int fb = 0;
        file_lines(log, "bf16 arithmetic is not native", &fb);
        const int want_fb = k == 2 && !native;
        CHECKF(fb == want_fb && lines == 1 + want_fb, "%s: %d lines, fallback line %d", log, lines,
               fb);
    }
    /* fallback: the fp32 result, bit for bit (the FLOAT samples; the files' PEAK chunks
     * hold a time stamp) */
    for (int k = 1; k <= 2; k++)
        snprintf(path[k - 1], sizeof path[k - 1], "%s/out%d/song/vocals.wav", dir, k);
    if (!native) {
        tf_audio_info i1, i2;
        float *a = read_planar(path[0], &i1), *b = read_planar(path[1], &i2);
        CHECKF(a && b && i1.frames == n && i2.frames == n &&
                   memcmp(a, b, sizeof(float) * 2 * (size_t)n) == 0,
               "%s != %s", path[0], path[1]);
        free(a), free(b);
    }
    /* bad values: exit 2, one line naming the flag and the value */
    const char *bad[][3] = {{"separate", "--precision", "fp16"},
                            {"separate", "--backend", "cuda"},
                            {"evaluate", "--precision", "fp16"},
                            {"evaluate", "--backend", "cuda"}};
    for (int k = 0; k < 4; k++) {
        snprintf(log, sizeof log, "%s/bad%d.txt", dir, k);
        const int ev = !strcmp(bad[k][0], "evaluate"); /* --data_root, no input */
        snprintf(cmd, sizeof cmd,
                 "'%s' %s %s%s%s -o '%s/outbad' --checkpoint '%s' %s%s%s %s %s >/dev/null 2>'%s'",
                 exe, bad[k][0], ev ? "" : "'", ev ? "" : in, ev ? "" : "'", dir, ck,
                 ev ? "--data_root '" : "", ev ? dir : "", ev ? "'" : "", bad[k][1], bad[k][2],
                 log);
        int rc = system(cmd);
        CHECKF(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "%s: status %d", cmd, rc);
        char want[128];
        snprintf(want, sizeof want, "%s: '%s'", bad[k][1], bad[k][2]);
        int found = 0, lines = file_lines(log, want, &found);
        CHECKF(found && lines == 1, "%s: %d lines, '%s' %s", log, lines, want,
               found ? "found" : "missing");
    }
    for (int k = 0; k < 4; k++) free(y[k]);
    free(x);
    if (t_cur_failed_)
        fprintf(stderr, "  kept %s (logs)\n", dir);
    else
        rmrf(dir);
}

/* `seconds` of stereo noise at `rate` written block by block as PCM_16 (the song is
 * never held in memory). */
static int write_noise_file(const char *path, int rate, double seconds, uint64_t seed) {
    const int64_t total = (int64_t)(seconds * rate), blk = 8192;
    float *x = noise(2, blk, seed, 0.3f); /* (2, blk), reused for every block */
    tf_audio_writer *w;
    if (!x || tf_audio_writer_open(&w, path, rate, 2, TF_FMT_WAV, TF_SUBTYPE_PCM16)) {
        free(x);
        return -1;
    }
    tf_status st = TF_OK;
    for (int64_t done = 0; done < total && !st; done += blk)
        st = tf_audio_writer_write(w, x, total - done < blk ? total - done : blk, blk);
    tf_status c = tf_audio_writer_close(w, st == TF_OK);
    free(x);
    return st || c ? -1 : 0;
}

/* argv[0] run as a child (stdout and stderr into `log`); returns its peak resident set
 * as the kernel counts it (wait4's ru_maxrss, KiB), or -1 when it did not exit with 0. */
static long child_maxrss(char *const argv[], const char *log) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    return test_wait_maxrss(pid);
}

/* Measured, not counted by the code itself: `tfswa separate` (this build, the tiny 8 kHz
 * model, resampling 48 kHz <-> 8 kHz, instrumental, 3 outputs, 1 thread) peaks at the same
 * resident set (the kernel's ru_maxrss) for a 3 s and a 30 s song, within 10 %. The
 * process holds the binary, its libraries, the model and the pipeline's buffers (about
 * 17 MiB); holding the song would add 11 MiB for the 30 s input alone (float, 48 kHz), or
 * 3.7 MiB for two stems at the model rate. Under AddressSanitizer too (~30 MiB), with its
 * quarantine off in the child. */
static void test_constant_memory_rss(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    char exe[1024], ck[512], in[2][512], out[512], log[512];
    CHECK(test_build_path(exe, sizeof exe, "tfswa") == 0 && access(exe, X_OK) == 0);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 6, NULL));
    const double seconds[2] = {3, 30};
    long kib[2] = {-1, -1}, parent = -1;
#ifdef __SANITIZE_ADDRESS__
    /* ASan keeps freed blocks in a quarantine (256 MiB by default): its resident pages grow
     * with the number of blocks freed, not with what is held. Off in the measured child
     * (its shadow memory stays, proportional to what is mapped). */
    char asan_old[1024], asan[1200];
    const char *old = getenv("ASAN_OPTIONS");
    int had_old = old != NULL;
    snprintf(asan_old, sizeof asan_old, "%s", old ? old : "");
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
             asan_old, asan_old[0] ? ":" : "");
    CHECK(setenv("ASAN_OPTIONS", asan, 1) == 0);
#endif
    for (int k = 0; k < 2; k++) {
        snprintf(in[k], sizeof in[k], "%s/song%d.wav", dir, k);
        CHECK(write_noise_file(in[k], 48000, seconds[k], 31 + (uint64_t)k) == 0);
        snprintf(out, sizeof out, "%s/out", dir);
        snprintf(log, sizeof log, "%s/log%d.txt", dir, k);
        // clang-format off
        char *argv[] = {exe, "separate", in[k], "-o", out, "--checkpoint", ck, "--instrumental",
                        "--num_threads", "1", "--subtype", "PCM_16", NULL};
        // clang-format on
        parent = test_self_anon_kib();
        kib[k] = child_maxrss(argv, log);
        CHECKF(kib[k] > 0, "tfswa separate failed: see %s", log);
        char path[1024];
        snprintf(path, sizeof path, "%s/song%d/instrumental.wav", out, k);
        tf_audio_info info;
        CHECKF(tf_audio_probe(path, &info) == TF_OK && info.frames == (int64_t)(seconds[k] * 48000),
               "%s", path);
    }
#ifdef __SANITIZE_ADDRESS__
    if (had_old)
        setenv("ASAN_OPTIONS", asan_old, 1);
    else
        unsetenv("ASAN_OPTIONS");
#endif
    fprintf(stderr, "  tfswa separate peak RSS: %.0f s %ld KiB, %.0f s %ld KiB (parent %ld KiB)\n",
            seconds[0], kib[0], seconds[1], kib[1], parent);
    CHECKF(parent >= 0 && parent < kib[0] * 0.8,
           "this process's RssAnon (%ld KiB) could hide the child's peak (%ld KiB)", parent,
           kib[0]);
    CHECKF(kib[0] > 0 && kib[1] <= kib[0] * 1.10, "peak RSS %ld KiB for %.0f s, %ld KiB for %.0f s",
           kib[0], seconds[0], kib[1], seconds[1]);
    if (t_cur_failed_)
        fprintf(stderr, "  kept %s (logs)\n", dir);
    else
        rmrf(dir);
}

/* examples/separate.c (built by make next to the tests) separates a file. */
static void test_example_program(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    char exe[2100], self[1024], ck[512], in[512], cmd[4096], path[1024];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(k > 0);
    if (k <= 0) return;
    self[k] = 0;
    *strrchr(self, '/') = 0; /* build/tests */
    snprintf(exe, sizeof exe, "%s/../examples/separate", self);
    CHECKF(access(exe, X_OK) == 0, "%s missing (run make)", exe);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 5, NULL));
    snprintf(in, sizeof in, "%s/my song.wav", dir);
    const int64_t n = 5000;
    float *x = noise(1, n, 23, 0.3f);
    CHECK(tf_audio_write_file(in, x, 1, n, 16000, TF_FMT_WAV, TF_SUBTYPE_PCM16) == TF_OK);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s/out' '%s' >/dev/null 2>&1", exe, in, dir, ck);
    CHECK(system(cmd) == 0);
    const char *stems[2] = {"vocals", "drums"};
    for (int j = 0; j < 2; j++) {
        snprintf(path, sizeof path, "%s/out/my song/%s.wav", dir, stems[j]);
        tf_audio_info info;
        CHECKF(tf_audio_probe(path, &info) == TF_OK && info.frames == n && info.rate == 16000 &&
                   info.channels == 1,
               "%s", path);
    }
    CHECK(system(cmd) != 0); /* outputs exist now: refused */
    free(x);
    rmrf(dir);
}

/* An input whose outputs cannot be written (the disk fills up: simulated with a file-size
 * limit, RLIMIT_FSIZE) fails cleanly: no file of it under its final name nor a temporary
 * one left, a line naming it, the next input still separated, exit status 2. */
static void test_failed_input_goes_on(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    char ck[512], big[512], small[512], out[512], log[512], exe[1024];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 9, NULL));
    snprintf(big, sizeof big, "%s/big.wav", dir);
    snprintf(small, sizeof small, "%s/small.wav", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    /* float outputs at 8 kHz stereo: 64 KB per stem-second; the limit is 256 KB */
    CHECK(write_noise_file(big, 8000, 10, 3) == 0 && write_noise_file(small, 8000, 1, 4) == 0);
    CHECK(test_build_path(exe, sizeof exe, "tfswa") == 0);
    char *argv[] = {exe, "separate",  big,     small,           "-o", out, "--checkpoint",
                    ck,  "--subtype", "FLOAT", "--num_threads", "1",  NULL};
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {256 * 1024, 256 * 1024};
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
        execv(exe, argv);
        _exit(127);
    }
    int ws = 0;
    CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
    CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 2, "exit status %d (signal %d)",
           WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/big", out);
    CHECKF(access(path, F_OK) != 0 || count_files(path) == 0, "%s holds %d files after the failure",
           path, count_files(path));
    snprintf(path, sizeof path, "%s/small", out);
    CHECKF(count_files(path) == 2, "%s holds %d files (expected the 2 stems)", path,
           count_files(path));
    int found = 0;
    file_lines(log, "big.wav failed (no output written)", &found);
    CHECKF(found, "%s: no line naming the failed input", log);
    file_lines(log, "1 of 2 inputs failed", &found);
    CHECKF(found, "%s: no summary line", log);
    rmrf(dir);
}

/* argv run as a child, stdout and stderr into `log`: its exit status, or -1. */
static int run_logged(char *const argv[], const char *log) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) return -1;
    return WEXITSTATUS(ws);
}

/* Copy the first `keep` of src's bytes to dst: a file cut short as by a failed download or a
 * full disk (its header still says the whole length). */
static int truncate_copy(const char *src, const char *dst, double keep) {
    FILE *f = fopen(src, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n);
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    FILE *g = got == (size_t)n ? fopen(dst, "wb") : NULL;
    int ok = g && fwrite(b, 1, (size_t)(n * keep), g) == (size_t)(n * keep);
    if (g) ok = (fclose(g) == 0) && ok;
    free(b);
    return ok ? 0 : -1;
}

/* Truncated WAV and FLAC inputs fail with a line naming the file (libsndfile alone would
 * shorten the WAV silently and zero-fill the FLAC). */
static void test_truncated_inputs(void) {
    const char *dir = mktmp();
    CHECK(dir != NULL);
    if (!dir) return;
    char ck[512], full[512], fullf[512], tw[512], tfl[512], good[512], out[512], log[512],
        exe[1024];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 9, NULL));
    snprintf(full, sizeof full, "%s/full.wav", dir);
    snprintf(fullf, sizeof fullf, "%s/full.flac", dir);
    snprintf(tw, sizeof tw, "%s/cutw.wav", dir);
    snprintf(tfl, sizeof tfl, "%s/cutf.flac", dir);
    snprintf(good, sizeof good, "%s/good.wav", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    CHECK(write_noise_file(full, 8000, 2, 5) == 0 && write_noise_file(good, 8000, 1, 6) == 0);
    {
        float *x = noise(2, 16000, 7, 0.3f); /* (2, 16000) */
        CHECK(x && tf_audio_write_file(fullf, x, 2, 16000, 8000, TF_FMT_FLAC, TF_SUBTYPE_PCM16) ==
                       TF_OK);
        free(x);
    }
    CHECK(truncate_copy(full, tw, 0.5) == 0 && truncate_copy(fullf, tfl, 0.5) == 0);
    /* the library reader refuses both, naming the file */
    tf_audio_reader *r = NULL;
    CHECK(tf_audio_reader_open(&r, tw) == TF_EUSER && r == NULL);
    CHECKF(strstr(tf_errmsg(), tw) && strstr(tf_errmsg(), "truncated"), "%s", tf_errmsg());
    CHECK(test_build_path(exe, sizeof exe, "tfswa") == 0);
    /* the WAV is refused when the inputs are probed, before any work: nothing is written */
    char *argv_w[] = {exe, "separate",      good, tw,  "-o", out, "--checkpoint",
                      ck,  "--num_threads", "1",  NULL};
    CHECK(run_logged(argv_w, log) == 2);
    int found = 0;
    file_lines(log, "cutw.wav: truncated", &found);
    CHECKF(found, "%s: no line naming the truncated WAV", log);
    CHECKF(access(out, F_OK) != 0 || count_files(out) == 0, "%s holds %d files", out,
           count_files(out));
    /* the FLAC's header is whole: decoding stops half-way, that input fails, the next goes on */
    char *argv_f[] = {exe, "separate",      tfl, good, "-o", out, "--checkpoint",
                      ck,  "--num_threads", "1", NULL};
    CHECK(run_logged(argv_f, log) == 2);
    const char *want[] = {"cutf.flac failed (no output written)", "cutf.flac: truncated",
                          "1 of 2 inputs failed"};
    for (int i = 0; i < 3; i++) {
        file_lines(log, want[i], &found);
        CHECKF(found, "%s: no line '%s'", log, want[i]);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/cutf", out);
    CHECKF(access(path, F_OK) != 0 || count_files(path) == 0, "%s holds %d files", path,
           count_files(path));
    snprintf(path, sizeof path, "%s/good", out);
    CHECKF(count_files(path) == 2, "%s holds %d files (expected the 2 stems)", path,
           count_files(path));
    if (getenv("KEEP")) return;
    rmrf(dir);
}

int main(void) {
    RUN(test_constant_memory_rss); /* first: this process is still small (see test_self_anon_kib) */
    RUN(test_identity_lengths);
    RUN(test_block_independence);
    RUN(test_file_equals_buffer);
    RUN(test_resample_length);
    RUN(test_mono);
    RUN(test_compressed_inputs);
    RUN(test_overwrite);
    RUN(test_pcm16_clipping);
    RUN(test_instrumental);
    RUN(test_multi_model);
    RUN(test_template);
    RUN(test_progress_cancel);
    RUN(test_constant_memory);
    RUN(test_real_model);
    RUN(test_precision_backend);
    RUN(test_failed_input_goes_on);
    RUN(test_truncated_inputs);
    RUN(test_example_program);
    return TEST_END();
}
