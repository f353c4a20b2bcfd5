/* The stream API (tfswa_stream_*): the pulled output with the stated latency removed is
 * bitwise tfswa_separate_buffer on the whole input (blocks 1, 7, 512, 4096 and random;
 * resampled input; mono; stems and instrumental; worker-thread mode; the real network);
 * exactly max(0, pushed - latency) frames come out as pushing goes; max_latency picks
 * the longest segment that fits or fails naming the smallest latency; misuse is an error. */
#include <cJSON.h>
#include <dirent.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "infer/api_internal.h"
#include "infer/separate.h"
#include "model/model.h"
#include "fixtures.h"
#include "test.h"
#include "util/fsutil.h"
#include "tfswa.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "util/rng.h"

#define MC(c) ((const tf_model_config[]){tf_train_model_config(c)})

/* ---------------------------------------------------------------- a fake model */

/* out[b, s, c, i] = gain[s] * mix[b, c, i] + 0.25 * mix[b, c, L - 1 - i]: the time
 * reversal makes every output sample depend on where its chunk starts, so a stream that
 * grouped chunks differently from the whole-buffer path would differ. */
typedef struct {
    int S;
    float gain[TF_MAX_TARGETS];
} fake;

static tf_status fake_forward(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    fake *f = ctx;
    for (int b = 0; b < nb; b++)
        for (int s = 0; s < f->S; s++)
            for (int c = 0; c < 2; c++) {
                const float *x = mix + ((size_t)b * 2 + c) * L;
                float *y = out + (((size_t)b * f->S + s) * 2 + c) * L;
                for (int64_t i = 0; i < L; i++) y[i] = f->gain[s] * x[i] + 0.25f * x[L - 1 - i];
            }
    return TF_OK;
}

static void fake_close(void *ctx) {
    free(ctx);
}

/* "vocals,drums" (gains 1, 0.5) at `rate`, training segment `seg` */
static tfswa_context *open_fake(int rate, double seg) {
    tf_sep_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "fake");
    fake *f = calloc(1, sizeof *f);
    f->S = 2, f->gain[0] = 1, f->gain[1] = 0.5f;
    snprintf(m.targets[0], TF_NAME_MAX, "vocals");
    snprintf(m.targets[1], TF_NAME_MAX, "drums");
    m.n_targets = 2;
    m.sample_rate = rate;
    m.segment_seconds = seg;
    m.min_frames = 64;
    m.forward = fake_forward, m.close = fake_close, m.ctx = f;
    int st;
    tfswa_context *ctx = tf_api_open_models(&m, 1, 1, &st);
    if (!ctx) fprintf(stderr, "open: %s\n", tfswa_last_error(NULL));
    return ctx;
}

/* ---------------------------------------------------------------- helpers */

static float *noise(int64_t count, uint64_t seed, float amp) {
    float *x = malloc(sizeof(float) * (size_t)count);
    tf_rng r;
    tf_rng_seed(&r, seed, 1, 2, 3);
    for (int64_t i = 0; i < count; i++) x[i] = amp * (float)tf_rng_range(&r, -1, 1);
    return x;
}

/* Block sizes: > 0 fixed; 0 random in [1, 3000] */
static int64_t next_block(int64_t bs, tf_rng *g) {
    return bs > 0 ? bs : 1 + (int64_t)tf_rng_below(g, 3000);
}

typedef struct {
    int64_t frames_ok; /* 0 when the output count ever differed from max(0, pushed - D) */
    int64_t latency;
    double segment;
} stream_run;

/* Stream x ((n, ch) interleaved) in blocks through a stream opened with sp; out gets
 * (n, K, ch) interleaved. Returns 0 on success. */
static int run_stream(tfswa_context *ctx, const float *x, int ch, int64_t n, int rate,
                      const tfswa_stream_params *sp, int64_t bs, float *out, int K,
                      stream_run *info) {
    tfswa_stream *s = tfswa_stream_open(ctx, ch, rate, sp);
    if (!s) {
        fprintf(stderr, "  stream open: %s\n", tfswa_last_error(ctx));
        return 1;
    }
    if (tfswa_stream_n_outputs(s) != K) {
        fprintf(stderr, "  %d outputs, expected %d\n", tfswa_stream_n_outputs(s), K);
        tfswa_stream_close(s);
        return 1;
    }
    const int64_t D = tfswa_stream_latency(s);
    info->latency = D, info->segment = tfswa_stream_segment(s), info->frames_ok = 1;
    tf_rng g;
    tf_rng_seed(&g, 77, (uint64_t)bs, 0, 0);
    int64_t in = 0, got = 0;
    const size_t fr = (size_t)K * ch;
    int rc = 0;
    while (in < n && !rc) {
        int64_t b = next_block(bs, &g);
        if (b > n - in) b = n - in;
        int r = tfswa_stream_push(s, x + (size_t)in * ch, b);
        if (r == TFSWA_ERR_AGAIN && sp->threaded) {
            usleep(200); /* the worker is behind: pull and try again */
        } else if (r != TFSWA_OK) {
            fprintf(stderr, "  push: %s\n", tfswa_last_error(ctx));
            rc = 1;
            break;
        } else {
            in += b;
        }
        int64_t k;
        while ((k = tfswa_stream_pull(s, out + (size_t)got * fr, n - got)) > 0) got += k;
        if (k < 0) rc = 1;
        int64_t want = in - D > 0 ? in - D : 0;
        if (!sp->threaded && got != want) {
            if (info->frames_ok)
                fprintf(stderr, "  %lld frames out after %lld in (latency %lld)\n", (long long)got,
                        (long long)in, (long long)D);
            info->frames_ok = 0;
        }
        if (sp->threaded && got > want) info->frames_ok = 0;
    }
    if (!rc && tfswa_stream_flush(s) != TFSWA_OK) {
        fprintf(stderr, "  flush: %s\n", tfswa_last_error(ctx));
        rc = 1;
    }
    int64_t k;
    while (!rc && (k = tfswa_stream_pull(s, out + (size_t)got * fr, n - got)) > 0) got += k;
    float extra[64];
    if (!rc && tfswa_stream_pull(s, extra, 1) != 0) rc = 1; /* nothing beyond n frames */
    if (got != n) {
        fprintf(stderr, "  %lld frames out of %lld\n", (long long)got, (long long)n);
        rc = 1;
    }
    tfswa_stream_close(s);
    return rc;
}

/* planar (ch, n) from interleaved (n, ch) */
static float *planar(const float *x, int ch, int64_t n) {
    float *y = malloc(sizeof(float) * (size_t)ch * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < ch; c++) y[(size_t)c * n + i] = x[(size_t)i * ch + c];
    return y;
}

/* Number of samples where stream out (n, K, ch) and buffer out (K, ch, n) differ in bits */
static int64_t count_diff(const float *st, const float *buf, int K, int ch, int64_t n,
                          double *maxd) {
    int64_t d = 0;
    *maxd = 0;
    for (int j = 0; j < K; j++)
        for (int c = 0; c < ch; c++)
            for (int64_t i = 0; i < n; i++) {
                float a = st[((size_t)i * K + j) * ch + c], b = buf[((size_t)j * ch + c) * n + i];
                if (memcmp(&a, &b, sizeof a)) {
                    d++;
                    *maxd = fmax(*maxd, fabs((double)a - b));
                }
            }
    return d;
}

/* Stream with every block size and compare with tfswa_separate_buffer bitwise. */
static void check_equal(tfswa_context *ctx, int ch, int rate, int64_t n,
                        const tfswa_stream_params *sp, const int64_t *sizes, int n_sizes) {
    float *x = noise((int64_t)ch * n, 5 + (uint64_t)rate, 0.5f);
    float *xp = planar(x, ch, n);
    tfswa_separate_params bp = tfswa_default_params();
    bp.overlap = sp->overlap, bp.stems = sp->stems, bp.instrumental = sp->instrumental;
    bp.n_threads = sp->n_threads;
    const int K = tfswa_n_outputs(ctx, &bp);
    float *ref = malloc(sizeof(float) * (size_t)K * ch * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)K * ch * (size_t)n);
    double seg = -1;
    for (int t = 0; t < n_sizes; t++) {
        stream_run info = {0, 0, 0};
        memset(out, 0xff, sizeof(float) * (size_t)K * ch * (size_t)n); /* NaN: unwritten */
        int rc = run_stream(ctx, x, ch, n, rate, sp, sizes[t], out, K, &info);
        CHECKF(rc == 0, "block %lld", (long long)sizes[t]);
        CHECKF(info.frames_ok, "block %lld: output count != pushed - latency %lld",
               (long long)sizes[t], (long long)info.latency);
        if (rc) continue;
        if (info.segment != seg) { /* the reference with the stream's segment */
            seg = info.segment;
            bp.segment = seg;
            int r = tfswa_separate_buffer(ctx, xp, ch, n, rate, ref, &bp);
            CHECKF(r == TFSWA_OK, "separate_buffer: %s", tfswa_last_error(ctx));
        }
        double maxd;
        int64_t d = count_diff(out, ref, K, ch, n, &maxd);
        CHECKF(d == 0,
               "block %lld (rate %d, ch %d, latency %lld): %lld of %lld samples differ, max %g",
               (long long)sizes[t], rate, ch, (long long)info.latency, (long long)d,
               (long long)K * ch * n, maxd);
    }
    free(x), free(xp), free(ref), free(out);
}

static const int64_t all_sizes[] = {1, 7, 512, 4096, 0};

/* ---------------------------------------------------------------- tests */

/* model rate in; latency = chunk - 1 exactly */
static void test_same_rate_bitwise(void) {
    tfswa_context *ctx = open_fake(8000, 0.1);
    CHECK(ctx);
    if (!ctx) return;
    tfswa_stream_params sp = tfswa_stream_default_params();
    sp.overlap = 0.25;
    check_equal(ctx, 2, 8000, 8000 * 3 + 123, &sp, all_sizes, 5);
    tfswa_stream *s = tfswa_stream_open(ctx, 2, 8000, &sp);
    CHECK(s && tfswa_stream_latency(s) == 800 - 1);
    tfswa_stream_close(s);
    /* a song shorter than the latency: everything comes out at flush */
    check_equal(ctx, 2, 8000, 300, &sp, all_sizes, 5);
    tfswa_close(ctx);
}

/* other input rates: soxr in and out, its delay inside the stated latency */
static void test_resampled_bitwise(void) {
    tfswa_context *ctx = open_fake(8000, 0.1);
    CHECK(ctx);
    if (!ctx) return;
    tfswa_stream_params sp = tfswa_stream_default_params();
    sp.overlap = 0.5;
    check_equal(ctx, 2, 44100, 44100 * 2 + 77, &sp, all_sizes, 5);
    check_equal(ctx, 2, 11025, 11025 * 2, &sp, all_sizes, 5);
    tfswa_close(ctx);
}

/* mono, a selected stem, the instrumental */
static void test_mono_stems_instrumental(void) {
    tfswa_context *ctx = open_fake(8000, 0.1);
    CHECK(ctx);
    if (!ctx) return;
    tfswa_stream_params sp = tfswa_stream_default_params();
    sp.stems = 2; /* drums */
    sp.instrumental = true;
    const int64_t sizes[] = {1, 513, 0};
    check_equal(ctx, 1, 8000, 8000 * 2 + 5, &sp, sizes, 3);
    check_equal(ctx, 2, 22050, 22050 * 2 + 5, &sp, sizes, 3);
    sp.stems = 0;
    sp.instrumental = false;
    check_equal(ctx, 1, 16000, 16000 * 2, &sp, sizes, 3);
    tfswa_close(ctx);
}

/* worker-thread mode: the same bits; latency one hop more; pushes never wait */
static void test_threaded(void) {
    tfswa_context *ctx = open_fake(8000, 0.1);
    CHECK(ctx);
    if (!ctx) return;
    tfswa_stream_params sp = tfswa_stream_default_params();
    tfswa_stream *s = tfswa_stream_open(ctx, 2, 8000, &sp);
    int64_t D0 = s ? tfswa_stream_latency(s) : -1;
    tfswa_stream_close(s);
    sp.threaded = true;
    sp.max_block = 5000; /* small rings: the pushes meet TFSWA_ERR_AGAIN */
    s = tfswa_stream_open(ctx, 2, 8000, &sp);
    CHECKF(s && tfswa_stream_latency(s) == D0 + 600, "latency %lld, sync %lld",
           (long long)(s ? tfswa_stream_latency(s) : -1), (long long)D0);
    tfswa_stream_close(s);
    check_equal(ctx, 2, 8000, 8000 * 3, &sp, all_sizes, 5);
    sp.instrumental = true;
    const int64_t sizes[] = {7, 0};
    check_equal(ctx, 2, 44100, 44100 * 2, &sp, sizes, 2);
    tfswa_close(ctx);
}

/* max_latency: the longest segment that fits; an impossible bound names the smallest */
static void test_max_latency(void) {
    tfswa_context *ctx = open_fake(8000, 0.5);
    CHECK(ctx);
    if (!ctx) return;
    const int rates[] = {8000, 44100};
    for (int k = 0; k < 2; k++) {
        const int rate = rates[k];
        tfswa_stream_params sp = tfswa_stream_default_params();
        sp.max_latency = 0.3;
        tfswa_stream *s = tfswa_stream_open(ctx, 2, rate, &sp);
        CHECKF(s, "%s", tfswa_last_error(ctx));
        if (!s) continue;
        const int64_t D = tfswa_stream_latency(s);
        const double seg = tfswa_stream_segment(s);
        tfswa_stream_close(s);
        CHECKF(D <= 0.3 * rate && seg < 0.5, "rate %d: latency %lld, segment %g", rate,
               (long long)D, seg);
        /* one frame longer does not fit */
        sp.max_latency = 0;
        sp.segment = seg + 1.0 / 8000;
        s = tfswa_stream_open(ctx, 2, rate, &sp);
        CHECK(s && tfswa_stream_latency(s) > 0.3 * rate);
        tfswa_stream_close(s);
        /* the same with a segment given that is too long: fails */
        sp.max_latency = 0.3;
        s = tfswa_stream_open(ctx, 2, rate, &sp);
        CHECK(!s && strstr(tfswa_last_error(ctx), "smallest latency possible"));
        /* impossible: the smallest chunk (64 frames) has a latency above 1 ms */
        sp.segment = 0;
        sp.max_latency = 0.001;
        s = tfswa_stream_open(ctx, 2, rate, &sp);
        CHECKF(!s && strstr(tfswa_last_error(ctx), "smallest latency possible is"), "%s",
               tfswa_last_error(ctx));
        /* ... and that smallest latency is accepted */
        const char *e = strstr(tfswa_last_error(ctx), "possible is ");
        double dmin = e ? atof(e + 12) : 1;
        sp.max_latency = dmin + 0.5 / rate;
        s = tfswa_stream_open(ctx, 2, rate, &sp);
        CHECKF(s && tfswa_stream_latency(s) <= dmin * rate + 0.5, "dmin %.9g: %s", dmin,
               s ? "" : tfswa_last_error(ctx));
        tfswa_stream_close(s);
    }
    /* the bitwise result holds at the chosen segment */
    tfswa_stream_params sp = tfswa_stream_default_params();
    sp.max_latency = 0.05;
    const int64_t sizes[] = {64, 0};
    check_equal(ctx, 2, 8000, 8000 * 2, &sp, sizes, 2);
    tfswa_close(ctx);
}

static void test_misuse(void) {
    tfswa_context *ctx = open_fake(8000, 0.1);
    CHECK(ctx);
    if (!ctx) return;
    tfswa_stream_params sp = tfswa_stream_default_params();
    CHECK(!tfswa_stream_open(ctx, 3, 8000, &sp) && strstr(tfswa_last_error(ctx), "3 channels"));
    CHECK(!tfswa_stream_open(ctx, 2, 0, &sp) && strstr(tfswa_last_error(ctx), "sample rate 0"));
    sp.overlap = 1;
    CHECK(!tfswa_stream_open(ctx, 2, 8000, &sp) && strstr(tfswa_last_error(ctx), "overlap 1"));
    sp.overlap = 0.25;
    sp.stems = 8;
    CHECK(!tfswa_stream_open(ctx, 2, 8000, &sp) && strstr(tfswa_last_error(ctx), "stems"));
    sp.stems = 0;
    sp.max_block = 1000;
    tfswa_stream *s = tfswa_stream_open(ctx, 2, 8000, &sp);
    CHECK(s);
    if (!s) return;
    /* one stream per context; no separate while it is open */
    CHECK(!tfswa_stream_open(ctx, 2, 8000, &sp) && strstr(tfswa_last_error(ctx), "already open"));
    float x[2 * 4000] = {0}, y[2 * 2 * 4000];
    tfswa_separate_params bp = tfswa_default_params();
    CHECK(tfswa_separate_buffer(ctx, x, 2, 100, 8000, y, &bp) == TFSWA_ERR_USER);
    /* not pulling: the ring (latency + max_block) fills, nothing is taken */
    int r = TFSWA_OK;
    int64_t pushed = 0;
    while (r == TFSWA_OK && pushed < 100000) {
        r = tfswa_stream_push(s, x, 500);
        if (r == TFSWA_OK) pushed += 500;
    }
    CHECKF(r == TFSWA_ERR_AGAIN && pushed >= 1000 && pushed < 10000, "r %d after %lld", r,
           (long long)pushed);
    CHECK(tfswa_stream_pull(s, y, 4000) > 0);
    CHECK(tfswa_stream_push(s, x, 500) == TFSWA_OK);
    CHECK(tfswa_stream_push(s, NULL, 5) == TFSWA_ERR_USER);
    CHECK(tfswa_stream_pull(s, y, -1) == -1);
    CHECK(tfswa_stream_flush(s) == TFSWA_OK);
    CHECK(tfswa_stream_push(s, x, 1) == TFSWA_ERR_USER &&
          strstr(tfswa_last_error(ctx), "after flush"));
    tfswa_stream_close(s);
    /* closed: the context separates again */
    CHECK(tfswa_separate_buffer(ctx, x, 2, 100, 8000, y, &bp) == TFSWA_OK);
    tfswa_close(ctx);
}

/* ---------------------------------------------------------------- the real model */

static char tmpdir_[256];
static void test_real_model(void) {
    snprintf(tmpdir_, sizeof tmpdir_, "/tmp/tfswa_stream_XXXXXX");
    if (!mkdtemp(tmpdir_)) {
        CHECK(0);
        return;
    }
    char ck[512];
    snprintf(ck, sizeof ck, "%s/ck", tmpdir_);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 3, NULL));
    const char *cks[] = {ck};
    int st;
    tfswa_context *ctx = tfswa_open(cks, 1, 1, &st);
    CHECKF(ctx, "%s", tfswa_last_error(NULL));
    if (ctx) {
        tfswa_stream_params sp = tfswa_stream_default_params();
        sp.segment = 0.25;
        check_equal(ctx, 2, 8000, 8000 * 2 + 11, &sp, all_sizes, 5);
        sp.instrumental = true;
        sp.stems = 1;
        const int64_t sizes[] = {7, 0};
        check_equal(ctx, 2, 44100, 44100, &sp, sizes, 2);
        sp.threaded = true;
        check_equal(ctx, 1, 8000, 8000 * 2, &sp, sizes, 2);
        tfswa_close(ctx);
    }
    if (tf_remove_tree(tmpdir_) != TF_OK) tf_err_clear();
}

/* ---------------------------------------------------------------- the CLI */

static float *read_floats(const char *path, int64_t *count) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *x = malloc((size_t)n + 4);
    *count = (int64_t)(fread(x, 1, (size_t)n, f) / 4);
    fclose(f);
    return x;
}

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* song.wav -> raw f32 (tfswa's own audio reader, as sox would) | tfswa stream | raw ->
 * vocals.wav: the stem equals tfswa_separate_buffer bitwise; several stems interleave in
 * stem order; -o writes one raw file per stem; s16 in and out. */
static void test_cli_pipe(void) {
    snprintf(tmpdir_, sizeof tmpdir_, "/tmp/tfswa_stream_XXXXXX");
    if (!mkdtemp(tmpdir_)) {
        CHECK(0);
        return;
    }
    const char *dir = tmpdir_;
    char ck[512], exe[1024], song[512], raw[600], cmd[8192], outp[600], log[600];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 4, NULL));
    CHECK(test_build_path(exe, sizeof exe, "tfswa") == 0 && access(exe, X_OK) == 0);
    const int rate = 44100;
    const int64_t n = rate + 1234;
    float *xi = noise(2 * n, 9, 0.5f), *xp = planar(xi, 2, n);
    snprintf(song, sizeof song, "%s/song.wav", dir);
    CHECK(tf_audio_write_file(song, xp, 2, n, rate, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    /* decode to raw interleaved f32 */
    float *dec = NULL;
    tf_audio_info info;
    CHECK(tf_audio_read_all(song, &dec, &info) == TF_OK && info.frames == n);
    float *rawi = malloc(sizeof(float) * 2 * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) rawi[i * 2 + c] = dec ? dec[(size_t)c * n + i] : 0;
    snprintf(raw, sizeof raw, "%s/song.raw", dir);
    CHECK(write_bytes(raw, rawi, sizeof(float) * 2 * (size_t)n));
    snprintf(log, sizeof log, "%s/log.txt", dir);

    const char *cks[] = {ck};
    int st;
    tfswa_context *ctx = tfswa_open(cks, 1, 1, &st);
    CHECK(ctx);
    tfswa_separate_params bp = tfswa_default_params();
    bp.instrumental = true;
    float *ref = malloc(sizeof(float) * 3 * 2 * (size_t)n); /* vocals, drums, instrumental */
    float *rawp = planar(rawi, 2, n);
    CHECK(ctx && tfswa_separate_buffer(ctx, rawp, 2, n, rate, ref, &bp) == TFSWA_OK);
    if (ctx) tfswa_close(ctx);

    /* one stem: plain PCM, then to a wav with tfswa's writer */
    const char *modes[] = {"", "--threaded --block 7"};
    for (int m = 0; m < 2; m++) {
        snprintf(outp, sizeof outp, "%s/vocals%d.raw", dir, m);
        snprintf(cmd, sizeof cmd,
                 "cat '%s' | '%s' stream --checkpoint '%s' --stems vocals --rate 44100 "
                 "--channels 2 --num_threads 1 %s > '%s' 2> '%s'",
                 raw, exe, ck, modes[m], outp, log);
        CHECKF(system(cmd) == 0, "%s", cmd);
        int64_t cnt = 0;
        float *y = read_floats(outp, &cnt);
        CHECKF(y && cnt == 2 * n, "%lld samples", (long long)cnt);
        int64_t d = 0;
        for (int64_t i = 0; y && cnt == 2 * n && i < n; i++)
            for (int c = 0; c < 2; c++) d += memcmp(&y[i * 2 + c], &ref[(size_t)c * n + i], 4) != 0;
        CHECKF(d == 0, "mode '%s': %lld samples differ", modes[m], (long long)d);
        if (y && cnt == 2 * n && m == 0) {
            float *yp = planar(y, 2, n);
            char wav[600];
            snprintf(wav, sizeof wav, "%s/vocals.wav", dir);
            CHECK(tf_audio_write_file(wav, yp, 2, n, rate, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
            tf_audio_info wi;
            CHECK(tf_audio_probe(wav, &wi) == TF_OK && wi.frames == n && wi.rate == rate);
            free(yp);
        }
        free(y);
    }
    /* the README's pipe with sox, where sox is installed */
    if (system("command -v sox > /dev/null 2>&1") == 0) {
        char wav[600];
        snprintf(wav, sizeof wav, "%s/vocals_sox.wav", dir);
        snprintf(cmd, sizeof cmd,
                 "sox '%s' -t raw -r 44100 -e float -b 32 -c 2 - | '%s' stream --checkpoint '%s' "
                 "--stems vocals 2> '%s' | sox -t raw -r 44100 -e float -b 32 -c 2 - '%s'",
                 song, exe, ck, log, wav);
        CHECKF(system(cmd) == 0, "%s", cmd);
        tf_audio_info wi;
        CHECK(tf_audio_probe(wav, &wi) == TF_OK && wi.frames == n && wi.rate == rate);
    } else {
        printf("  (sox absent: the pipe ran with tfswa's own audio reader and writer only)\n");
    }
    FILE *lf = fopen(log, "r");
    char line[1024] = "";
    CHECK(lf && fgets(line, sizeof line, lf) && strstr(line, "latency"));
    if (lf) fclose(lf);

    /* several stems interleaved in stem order; the same as files with -o */
    snprintf(outp, sizeof outp, "%s/all.raw", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' stream --checkpoint '%s' --instrumental --rate 44100 --num_threads 1 "
             "--block 333 < '%s' > '%s' 2> '%s' && '%s' stream --checkpoint '%s' "
             "--instrumental --num_threads 1 -o '%s/o' < '%s' 2> '%s'",
             exe, ck, raw, outp, log, exe, ck, dir, raw, log);
    CHECKF(system(cmd) == 0, "%s", cmd);
    int64_t cnt = 0;
    float *y = read_floats(outp, &cnt);
    CHECKF(y && cnt == 3 * 2 * n, "%lld samples", (long long)cnt);
    int64_t d = 0;
    for (int64_t i = 0; y && cnt == 6 * n && i < n; i++)
        for (int j = 0; j < 3; j++)
            for (int c = 0; c < 2; c++)
                d += memcmp(&y[(i * 3 + j) * 2 + c], &ref[((size_t)j * 2 + c) * n + i], 4) != 0;
    CHECKF(d == 0, "interleaved: %lld samples differ", (long long)d);
    free(y);
    const char *names[] = {"vocals", "drums", "instrumental"};
    for (int j = 0; j < 3; j++) {
        snprintf(outp, sizeof outp, "%s/o/%s.raw", dir, names[j]);
        y = read_floats(outp, &cnt);
        CHECKF(y && cnt == 2 * n, "%s: %lld samples", names[j], (long long)cnt);
        d = 0;
        for (int64_t i = 0; y && cnt == 2 * n && i < n; i++)
            for (int c = 0; c < 2; c++)
                d += memcmp(&y[i * 2 + c], &ref[((size_t)j * 2 + c) * n + i], 4) != 0;
        CHECKF(d == 0, "-o %s: %lld samples differ", names[j], (long long)d);
        free(y);
    }

    /* s16 in and out: within one quantization step of the separation of the s16 input */
    int16_t *q = malloc(2 * 2 * (size_t)n);
    for (int64_t i = 0; i < 2 * n; i++) q[i] = (int16_t)lrintf(rawi[i] * 32767.0f);
    snprintf(raw, sizeof raw, "%s/song16.raw", dir);
    CHECK(write_bytes(raw, q, 2 * 2 * (size_t)n));
    for (int64_t i = 0; i < 2 * n; i++) rawi[i] = (float)q[i] / 32768.0f;
    free(rawp);
    rawp = planar(rawi, 2, n);
    ctx = tfswa_open(cks, 1, 1, &st);
    bp.instrumental = false, bp.stems = 2;
    CHECK(ctx && tfswa_separate_buffer(ctx, rawp, 2, n, rate, ref, &bp) == TFSWA_OK);
    if (ctx) tfswa_close(ctx);
    snprintf(outp, sizeof outp, "%s/drums16.raw", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' stream --checkpoint '%s' --stems drums --format s16 --num_threads 1 < '%s' > "
             "'%s' 2> '%s'",
             exe, ck, raw, outp, log);
    CHECKF(system(cmd) == 0, "%s", cmd);
    FILE *f = fopen(outp, "rb");
    int16_t *o16 = malloc(2 * 2 * (size_t)n + 2);
    size_t got = f ? fread(o16, 2, 2 * (size_t)n + 1, f) : 0;
    if (f) fclose(f);
    CHECKF(got == 2 * (size_t)n, "%zu samples", got);
    double worst = 0;
    for (int64_t i = 0; got == 2 * (size_t)n && i < n; i++)
        for (int c = 0; c < 2; c++) {
            double v = fmax(-32768, fmin(32767, ref[(size_t)c * n + i] * 32768.0));
            worst = fmax(worst, fabs(o16[i * 2 + c] - v));
        }
    CHECKF(worst <= 0.5 + 1e-6, "s16: %g steps off", worst);
    free(q), free(o16);

    /* user errors: exit 2, one line naming the flag */
    snprintf(cmd, sizeof cmd,
             "'%s' stream --checkpoint '%s' --stems guitar < '%s' > /dev/null 2> '%s'", exe, ck,
             raw, log);
    int r = system(cmd);
    CHECK(WIFEXITED(r) && WEXITSTATUS(r) == 2);
    lf = fopen(log, "r");
    CHECK(lf && fgets(line, sizeof line, lf) && strstr(line, "'guitar'"));
    if (lf) fclose(lf);
    snprintf(cmd, sizeof cmd,
             "'%s' stream --checkpoint '%s' --max_latency 0.001 < '%s' > /dev/null 2> '%s'", exe,
             ck, raw, log);
    r = system(cmd);
    CHECK(WIFEXITED(r) && WEXITSTATUS(r) == 2);
    lf = fopen(log, "r");
    CHECK(lf && fgets(line, sizeof line, lf) && strstr(line, "smallest latency possible"));
    if (lf) fclose(lf);

    free(xi), free(xp), free(dec), free(rawi), free(rawp), free(ref);
    if (tf_remove_tree(tmpdir_) != TF_OK) tf_err_clear();
}

/* examples/stream.c feeds a file in small blocks: its stems equal tfswa_separate_buffer */
static void test_example_program(void) {
    snprintf(tmpdir_, sizeof tmpdir_, "/tmp/tfswa_stream_XXXXXX");
    if (!mkdtemp(tmpdir_)) {
        CHECK(0);
        return;
    }
    const char *dir = tmpdir_;
    char ck[512], exe[1024], song[512], cmd[4096], path[600];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(test_make_small_checkpoint(ck, "vocals,drums", 6, NULL));
    CHECK(test_build_path(exe, sizeof exe, "examples/stream") == 0 && access(exe, X_OK) == 0);
    const int rate = 16000;
    const int64_t n = 20000;
    float *x = noise(n, 12, 0.4f);
    snprintf(song, sizeof song, "%s/song.wav", dir);
    CHECK(tf_audio_write_file(song, x, 1, n, rate, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' 100 > /dev/null", exe, song, dir, ck);
    CHECKF(system(cmd) == 0, "%s", cmd);
    const char *cks[] = {ck};
    int st;
    tfswa_context *ctx = tfswa_open(cks, 1, 0, &st);
    float *ref = malloc(sizeof(float) * 2 * (size_t)n);
    tfswa_separate_params bp = tfswa_default_params();
    CHECK(ctx && tfswa_separate_buffer(ctx, x, 1, n, rate, ref, &bp) == TFSWA_OK);
    if (ctx) tfswa_close(ctx);
    const char *names[] = {"vocals", "drums"};
    for (int j = 0; j < 2; j++) {
        snprintf(path, sizeof path, "%s/%s.wav", dir, names[j]);
        float *y = NULL;
        tf_audio_info info;
        CHECKF(tf_audio_read_all(path, &y, &info) == TF_OK && info.frames == n &&
                   info.channels == 1 && info.rate == rate,
               "%s", path);
        int64_t d = 0;
        for (int64_t i = 0; y && info.frames == n && i < n; i++)
            d += memcmp(&y[i], &ref[(size_t)j * n + i], 4) != 0;
        CHECKF(d == 0, "%s: %lld samples differ", names[j], (long long)d);
        free(y);
    }
    free(x), free(ref);
    if (tf_remove_tree(tmpdir_) != TF_OK) tf_err_clear();
}

/* tfswa bench stream --json: the stated latency, a real-time factor and the worker-mode
 * call times for the preset and block asked for */
static void test_bench_json(void) {
    char exe[1024], cmd[2048], out[256];
    CHECK(test_build_path(exe, sizeof exe, "tfswa") == 0 && access(exe, X_OK) == 0);
    snprintf(out, sizeof out, "/tmp/tfswa_bench_stream_%d.json", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "'%s' bench stream --json --seconds 1 --rt_seconds 1 --presets tiny --blocks 256 "
             "--segment 0.25 --num_threads 1 > '%s' 2> /dev/null",
             exe, out);
    CHECKF(system(cmd) == 0, "%s", cmd);
    FILE *f = fopen(out, "r");
    char buf[16384] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    remove(out);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    CHECKF(j, "%s", buf);
    if (!j) return;
    const cJSON *r = cJSON_GetObjectItem(j, "results");
    const cJSON *m = cJSON_GetObjectItem(j, "machine");
    CHECK(cJSON_IsString(m) && strstr(m->valuestring, "cpus"));
    const cJSON *lat = cJSON_GetObjectItem(r, "latency_seconds");
    CHECK(cJSON_IsNumber(lat) && fabs(lat->valuedouble - (0.25 - 1.0 / 44100)) < 1e-9);
    const cJSON *tl = cJSON_GetObjectItem(r, "threaded_latency_seconds");
    CHECK(cJSON_IsNumber(tl) && fabs(tl->valuedouble - (0.25 - 1.0 / 44100 + 0.1875)) < 1e-4);
    const cJSON *rtf = cJSON_GetObjectItem(r, "rtf");
    CHECK(cJSON_IsNumber(rtf) && rtf->valuedouble > 0 && rtf->valuedouble < 100);
    const cJSON *b = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "presets"), "tiny"),
                            "blocks"),
        0);
    const cJSON *w = cJSON_GetObjectItem(b, "worst_call_ms");
    const cJSON *tw = cJSON_GetObjectItem(b, "threaded_worst_call_ms");
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(b, "block")) &&
          cJSON_GetObjectItem(b, "block")->valueint == 256);
    /* a synchronous call that completes a chunk runs the model: slower than any worker-mode
     * call, which only copies */
    CHECK(cJSON_IsNumber(w) && cJSON_IsNumber(tw) && w->valuedouble > 0 &&
          tw->valuedouble < w->valuedouble);
    cJSON_Delete(j);
}

int main(void) {
    RUN(test_same_rate_bitwise);
    RUN(test_resampled_bitwise);
    RUN(test_mono_stems_instrumental);
    RUN(test_threaded);
    RUN(test_max_latency);
    RUN(test_misuse);
    RUN(test_real_model);
    RUN(test_cli_pipe);
    RUN(test_example_program);
    RUN(test_bench_json);
    return TEST_END();
}
