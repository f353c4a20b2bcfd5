/* Dataset index: layouts and splits, envelopes against samples computed here, the cache
 * (hits, invalidation, added/removed files, corruption), problem reports, and whole-track
 * streaming. Fixtures are tiny WAV/FLAC files at 8 kHz (env_block 2000) in a temp dir. */
#include <fcntl.h>
#include <sndfile.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "data/index.h"
#include "data/loader.h"
#include "util/config.h"
#include "data/valtrack.h"
#include "test.h"
#include "util/fsutil.h"

#define RATE 8000
#define EB   (RATE / 4)

static char g_tmp[256];

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w) {
    (void)s, (void)f, (void)w;
    return remove(p);
}
static void rm_rf(const char *p) {
    nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void new_root(char *root, size_t n, const char *name) {
    snprintf(root, n, "%s/%s", g_tmp, name);
    rm_rf(root);
    CHECK(tf_mkdirs(root) == TF_OK);
}

static void make_cfg(tf_config *c, const char *root, int n_targets) {
    static const char *const t[4] = {"vocals", "drums", "bass", "other"};
    memset(c, 0, sizeof *c);
    snprintf(c->root, sizeof c->root, "%s", root);
    c->sample_rate = RATE;
    c->n_sources = n_targets;
    for (int i = 0; i < n_targets; i++) snprintf(c->sources[i], TF_NAME_MAX, "%s", t[i]);
    c->valid_fraction = 0;
    c->num_threads = 2;
}

/* Deterministic samples on the 16-bit grid (k / 32768), so WAV FLOAT, WAV PCM16 and
 * FLAC PCM16 all read back exactly these values. */
static float sample(uint32_t seed, int64_t i, int c) {
    uint32_t h = seed * 2654435761u ^ (uint32_t)(i * 2246822519u) ^ (uint32_t)(c * 3266489917u);
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    int k = (int)(h % 20001) - 10000; /* |x| <= 0.305 */
    return (float)k / 32768.f;
}

/* planar (ch, frames) buffer of sample(seed, ...) */
static float *test_signal(uint32_t seed, int ch, int64_t frames) {
    float *x = malloc(sizeof(float) * (size_t)(ch * frames + 1));
    for (int c = 0; c < ch; c++)
        for (int64_t i = 0; i < frames; i++) x[c * frames + i] = sample(seed, i, c);
    return x;
}

static void set_mtime(const char *path, time_t sec, long nsec) {
    struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

/* Write root/rel (".wav" FLOAT or ".flac" PCM16 by extension), mtime 100 s in the past
 * (fresh files are "racy" and would be rescanned). */
static void put(const char *root, const char *rel, int64_t frames, int ch, int rate,
                uint32_t seed) {
    char path[1024], dir[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    tf_dirname(path, dir, sizeof dir);
    CHECK(tf_mkdirs(dir) == TF_OK);
    float *x = test_signal(seed, ch, frames);
    int flac = strstr(rel, ".flac") != NULL;
    CHECK(tf_audio_write_file(path, x, ch, frames, rate, flac ? TF_FMT_FLAC : TF_FMT_WAV,
                              flac ? TF_SUBTYPE_PCM16 : TF_SUBTYPE_FLOAT) == TF_OK);
    free(x);
    set_mtime(path, time(NULL) - 100, 123456789);
}

/* A track folder with stems (and optionally a mixture) of `frames` frames. */
static void put_track(const char *root, const char *dir, int n_stems, int64_t frames, int mixture,
                      uint32_t seed) {
    static const char *const t[4] = {"vocals", "drums", "bass", "other"};
    char rel[512];
    for (int s = 0; s < n_stems; s++) {
        snprintf(rel, sizeof rel, "%s/%s.wav", dir, t[s]);
        put(root, rel, frames, 2, RATE, seed * 16 + (uint32_t)s);
    }
    if (mixture) {
        snprintf(rel, sizeof rel, "%s/mixture.wav", dir);
        put(root, rel, frames, 2, RATE, seed * 16 + 15);
    }
}

static const tf_track *find(const tf_index *ix, const char *name) {
    for (int t = 0; t < ix->n_tracks; t++)
        if (!strcmp(ix->tracks[t].name, name)) return &ix->tracks[t];
    return NULL;
}

static int same_index(const tf_index *a, const tf_index *b) {
    if (a->n_tracks != b->n_tracks || a->n_stems != b->n_stems) return 0;
    for (int t = 0; t < a->n_tracks; t++) {
        const tf_track *x = &a->tracks[t], *y = &b->tracks[t];
        if (strcmp(x->name, y->name) || strcmp(x->dir, y->dir) || x->split != y->split ||
            x->frames != y->frames)
            return 0;
        for (int s = -1; s < a->n_stems; s++) {
            const tf_stem_file *f = s < 0 ? &x->mixture : &x->stems[s];
            const tf_stem_file *g = s < 0 ? &y->mixture : &y->stems[s];
            if (!f->path != !g->path) return 0;
            if (!f->path) continue;
            if (strcmp(f->path, g->path) || f->frames != g->frames || f->rate != g->rate ||
                f->channels != g->channels || f->n_env != g->n_env ||
                memcmp(f->env, g->env, sizeof(float) * (size_t)f->n_env))
                return 0;
        }
    }
    return 1;
}

static void test_musdb_layout_splits(void) {
    char root[512];
    new_root(root, sizeof root, "musdb");
    put_track(root, "train/B track", 2, 3000, 1, 1);
    put_track(root, "train/Actions - One Minute Smile", 2, 3000, 1, 2);
    put_track(root, "train/A track", 2, 3000, 1, 3);
    put_track(root, "test/T track", 2, 4000, 1, 4);
    tf_config cfg;
    make_cfg(&cfg, root, 2);
    cfg.valid_fraction = 0.5; /* not used: the official names decide */
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, &cfg, NULL);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) return;
    CHECK(!strcmp(ix->layout, "musdb18"));
    CHECK(ix->n_tracks == 4 && ix->n_stems == 2 && ix->env_block == EB);
    CHECK(tf_index_count(ix, TF_SPLIT_TRAIN) == 2);
    CHECK(tf_index_count(ix, TF_SPLIT_VALID) == 1);
    CHECK(tf_index_count(ix, TF_SPLIT_TEST) == 1);
    const tf_track *a = &ix->tracks[tf_index_track_of(ix, TF_SPLIT_TRAIN, 0)];
    const tf_track *b = &ix->tracks[tf_index_track_of(ix, TF_SPLIT_TRAIN, 1)];
    const tf_track *v = &ix->tracks[tf_index_track_of(ix, TF_SPLIT_VALID, 0)];
    const tf_track *t = &ix->tracks[tf_index_track_of(ix, TF_SPLIT_TEST, 0)];
    CHECK(!strcmp(a->name, "A track") && !strcmp(b->name, "B track"));
    CHECK(!strcmp(v->name, "Actions - One Minute Smile") && v->split == TF_SPLIT_VALID);
    CHECK(!strcmp(t->name, "T track") && t->frames == 4000 && t->split == TF_SPLIT_TEST);
    char want[1024];
    snprintf(want, sizeof want, "%s/train/A track", root);
    CHECK(!strcmp(a->dir, want));
    snprintf(want, sizeof want, "%s/train/A track/drums.wav", root);
    CHECK(a->stems[1].path && !strcmp(a->stems[1].path, want));
    CHECK(a->mixture.path != NULL);
    CHECK(tf_index_track_of(ix, TF_SPLIT_VALID, 1) == -1);
    CHECK(tf_index_frames(ix, TF_SPLIT_TRAIN) == 6000);
    tf_index_close(ix);
}

static void test_valid_folder_split(void) {
    char root[512];
    new_root(root, sizeof root, "splits");
    put_track(root, "train/Actions - One Minute Smile", 1, 3000, 0, 1); /* stays train */
    put_track(root, "train/Z", 1, 3000, 0, 2);
    put_track(root, "valid/V2", 1, 3000, 0, 3);
    put_track(root, "valid/V1", 1, 3000, 0, 4);
    put_track(root, "test/T", 1, 3000, 0, 5);
    tf_config cfg;
    make_cfg(&cfg, root, 1);
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, &cfg, NULL);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) return;
    CHECK(!strcmp(ix->layout, "splits"));
    CHECK(tf_index_count(ix, TF_SPLIT_TRAIN) == 2);
    CHECK(tf_index_count(ix, TF_SPLIT_VALID) == 2);
    CHECK(tf_index_count(ix, TF_SPLIT_TEST) == 1);
    CHECK(!strcmp(ix->tracks[tf_index_track_of(ix, TF_SPLIT_VALID, 0)].name, "V1"));
    CHECK(!strcmp(ix->tracks[tf_index_track_of(ix, TF_SPLIT_VALID, 1)].name, "V2"));
    CHECK(find(ix, "Actions - One Minute Smile")->split == TF_SPLIT_TRAIN);
    CHECK(!find(ix, "Actions - One Minute Smile")->mixture.path);
    tf_index_close(ix);
    tf_split sp;
    CHECK(tf_split_parse("valid", &sp) == TF_OK && sp == TF_SPLIT_VALID);
    CHECK(tf_split_parse("dev", &sp) == TF_EUSER && strstr(tf_errmsg(), "dev"));
}

static void test_plain_folder_valid_fraction(void) {
    char root[512], name[64];
    new_root(root, sizeof root, "plain");
    for (int i = 0; i < 24; i++) {
        snprintf(name, sizeof name, "song %02d", i);
        put_track(root, name, 1, 600, 0, 100 + (uint32_t)i);
    }
    tf_config cfg;
    make_cfg(&cfg, root, 1);
    cfg.valid_fraction = 0.3;
    tf_index *a = NULL, *b = NULL, *c = NULL;
    CHECK(tf_index_open(&a, &cfg, NULL) == TF_OK);
    CHECK(tf_index_open(&b, &cfg, NULL) == TF_OK); /* from the cache: same decision */
    put_track(root, "song 24 (added)", 1, 600, 0, 999);
    CHECK(tf_index_open(&c, &cfg, NULL) == TF_OK);
    if (!a || !b || !c) goto out;
    CHECK(!strcmp(a->layout, "folder"));
    int nv = tf_index_count(a, TF_SPLIT_VALID);
    CHECKF(nv >= 3 && nv <= 13, "%d valid of 24 at 0.3", nv);
    CHECK(tf_index_count(a, TF_SPLIT_TEST) == 0);
    CHECK(same_index(a, b));
    CHECK(c->n_tracks == 25);
    for (int t = 0; t < a->n_tracks; t++) /* adding a track moves no other track */
        CHECK(find(c, a->tracks[t].name)->split == a->tracks[t].split);
    /* sorted by name within each split */
    for (int sp = 0; sp < 3; sp++)
        for (int i = 1; i < tf_index_count(c, (tf_split)sp); i++)
            CHECK(strcmp(c->tracks[tf_index_track_of(c, (tf_split)sp, i - 1)].name,
                         c->tracks[tf_index_track_of(c, (tf_split)sp, i)].name) < 0);
out:
    tf_index_close(a), tf_index_close(b), tf_index_close(c);
    /* fraction 0: all train; tiny fraction: still one valid track */
    tf_index *z = NULL;
    cfg.valid_fraction = 0;
    CHECK(tf_index_open(&z, &cfg, NULL) == TF_OK);
    if (z) CHECK(tf_index_count(z, TF_SPLIT_TRAIN) == 25 && tf_index_count(z, TF_SPLIT_VALID) == 0);
    tf_index_close(z);
    z = NULL;
    cfg.valid_fraction = 1e-9;
    CHECK(tf_index_open(&z, &cfg, NULL) == TF_OK);
    if (z) CHECK(tf_index_count(z, TF_SPLIT_VALID) == 1);
    tf_index_close(z);
}

/* mean |x| over both channels per block, from the generated samples, in double */
static void check_env(const tf_stem_file *f, uint32_t seed, int ch, int64_t frames) {
    CHECK(f->frames == frames && f->rate == RATE && f->channels == ch);
    int64_t nb = (frames + EB - 1) / EB;
    CHECK(f->n_env == nb);
    if (f->n_env != nb) return;
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * EB, hi = lo + EB < frames ? lo + EB : frames;
        double s = 0;
        for (int64_t i = lo; i < hi; i++)
            s += ch == 2 ? 0.5 * (fabs(sample(seed, i, 0)) + fabs(sample(seed, i, 1)))
                         : fabs(sample(seed, i, 0));
        CHECK_NEAR(f->env[b], s / (double)(hi - lo), 1e-6);
    }
}

static void test_envelope_matches_samples(void) {
    char root[512];
    new_root(root, sizeof root, "env");
    put(root, "song/vocals.wav", 5000, 2, RATE, 11); /* 2 full blocks + 1000 */
    put(root, "song/drums.flac", 5000, 1, RATE, 12); /* mono FLAC */
    put(root, "song/mixture.flac", 5000, 2, RATE, 13);
    put(root, "short/vocals.wav", 1999, 1, RATE, 14); /* one partial block only */
    put(root, "short/drums.wav", 1999, 2, RATE, 15);
    tf_config cfg;
    make_cfg(&cfg, root, 2);
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, &cfg, NULL);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) return;
    CHECK(ix->files_scanned == 5 && ix->files_cached == 0);
    const tf_track *s = find(ix, "song"), *sh = find(ix, "short");
    CHECK(s && sh);
    if (!s || !sh) goto out;
    check_env(&s->stems[0], 11, 2, 5000);
    check_env(&s->stems[1], 12, 1, 5000);
    check_env(&s->mixture, 13, 2, 5000);
    check_env(&sh->stems[0], 14, 1, 1999);
    check_env(&sh->stems[1], 15, 2, 1999);
out:
    tf_index_close(ix);
}

static void test_cache_hit_and_default_location(void) {
    char root[512], cpath[1024];
    new_root(root, sizeof root, "hit");
    put_track(root, "train/one", 2, 3000, 1, 1);
    put_track(root, "test/two", 2, 2500, 0, 2);
    tf_config cfg;
    make_cfg(&cfg, root, 2);
    tf_index *a = NULL, *b = NULL;
    CHECK(tf_index_open(&a, &cfg, NULL) == TF_OK);
    snprintf(cpath, sizeof cpath, "%s/.tfswa_index", root);
    CHECK(tf_path_exists(cpath));
    strcat(cfg.root, "/"); /* trailing slash: same root, same cache */
    CHECK(tf_index_open(&b, &cfg, NULL) == TF_OK);
    if (a && b) {
        CHECK(a->files_scanned == 5 && a->files_cached == 0 && a->cache_written == 1);
        CHECK(b->files_scanned == 0 && b->files_cached == 5 && b->cache_written == 0);
        CHECK(!strcmp(a->cache_path, cpath) && !strcmp(b->cache_path, cpath));
        CHECK(same_index(a, b));
        CHECK(a->n_tracks == 2); /* the hidden cache file is no track */
    }
    tf_index_close(a), tf_index_close(b);
}

static int64_t reopen_scanned(const tf_config *cfg, const char *cache, tf_index **keep) {
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, cfg, cache);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) return -1;
    int64_t n = ix->files_scanned;
    if (keep)
        *keep = ix;
    else
        tf_index_close(ix);
    return n;
}

static void test_cache_invalidation(void) {
    char root[512], cache[1024], path[1024];
    new_root(root, sizeof root, "inval");
    snprintf(cache, sizeof cache, "%s/elsewhere.idx", g_tmp);
    remove(cache);
    put_track(root, "a", 2, 3000, 0, 1);
    put_track(root, "b", 2, 3000, 0, 2);
    tf_config cfg;
    make_cfg(&cfg, root, 2);
    CHECK(reopen_scanned(&cfg, cache, NULL) == 4);
    CHECK(reopen_scanned(&cfg, cache, NULL) == 0);
    snprintf(path, sizeof path, "%s/.tfswa_index", root);
    CHECK(!tf_path_exists(path)); /* explicit cache path: nothing written in the root */

    /* mtime change only (nanoseconds): that file is scanned again */
    snprintf(path, sizeof path, "%s/a/drums.wav", root);
    struct stat st0;
    CHECK(stat(path, &st0) == 0);
    set_mtime(path, st0.st_mtim.tv_sec, st0.st_mtim.tv_nsec + 1);
    CHECK(reopen_scanned(&cfg, cache, NULL) == 1);
    CHECK(reopen_scanned(&cfg, cache, NULL) == 0);

    /* size change with the old mtime restored: scanned again, new length seen */
    struct stat sb[2];
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/b/%s.wav", root, s ? "drums" : "vocals");
        CHECK(stat(path, &sb[s]) == 0);
    }
    put_track(root, "b", 2, 4100, 0, 7);
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/b/%s.wav", root, s ? "drums" : "vocals");
        set_mtime(path, sb[s].st_mtim.tv_sec, sb[s].st_mtim.tv_nsec);
    }
    tf_index *ix = NULL;
    CHECK(reopen_scanned(&cfg, cache, &ix) == 2);
    if (ix) {
        CHECK(find(ix, "b")->frames == 4100 && find(ix, "b")->stems[0].n_env == 3);
        tf_index_close(ix);
    }

    /* added track: only its files are scanned */
    put_track(root, "c", 2, 3000, 1, 3);
    CHECK(reopen_scanned(&cfg, cache, NULL) == 3);

    /* removed track: dropped from the index and from the cache file */
    snprintf(path, sizeof path, "%s/a", root);
    rm_rf(path);
    ix = NULL;
    CHECK(reopen_scanned(&cfg, cache, &ix) == 0);
    if (ix) {
        CHECK(ix->n_tracks == 2 && !find(ix, "a") && ix->cache_written == 1);
        tf_index_close(ix);
    }
    ix = NULL;
    CHECK(reopen_scanned(&cfg, cache, &ix) == 0);
    if (ix) {
        CHECK(ix->cache_written == 0 && ix->files_cached == 5);
        tf_index_close(ix);
    }
    /* fewer targets: nothing scanned, nothing dropped; back to two: still all cached */
    cfg.n_sources = 1;
    ix = NULL;
    CHECK(reopen_scanned(&cfg, cache, &ix) == 0);
    if (ix) {
        CHECK(ix->cache_written == 0 && ix->files_cached == 3);
        tf_index_close(ix);
    }
    snprintf(path, sizeof path, "%s/c/vocals.wav", root); /* a rewrite keeps drums entries */
    set_mtime(path, st0.st_mtim.tv_sec - 7, 0);
    CHECK(reopen_scanned(&cfg, cache, NULL) == 1);
    cfg.n_sources = 2;
    CHECK(reopen_scanned(&cfg, cache, NULL) == 0);
    FILE *f = fopen(cache, "rb");
    CHECK(f != NULL);
    if (f) {
        char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK(memmem(buf, n, "c/mixture.wav", 13) != NULL);
        CHECK(memmem(buf, n, "a/vocals.wav", 12) == NULL);
        CHECK(memmem(buf, n, "a/drums.wav", 11) == NULL);
    }
    remove(cache);
}

static void test_racy_files_rescanned(void) {
    char root[512], path[1024];
    new_root(root, sizeof root, "racy");
    put_track(root, "a", 1, 3000, 0, 1);
    snprintf(path, sizeof path, "%s/a/vocals.wav", root);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    set_mtime(path, now.tv_sec, now.tv_nsec); /* "just written" */
    tf_config cfg;
    make_cfg(&cfg, root, 1);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 1);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 1); /* too fresh to trust size + mtime */
    set_mtime(path, now.tv_sec - 50, 0);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 1);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 0);
}

static void test_corrupt_cache_rescans(void) {
    char root[512], cache[1024];
    new_root(root, sizeof root, "corrupt");
    put_track(root, "a", 2, 3000, 1, 1);
    tf_config cfg;
    make_cfg(&cfg, root, 2);
    snprintf(cache, sizeof cache, "%s/.tfswa_index", root);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 3);
    struct stat st;
    CHECK(stat(cache, &st) == 0);
    /* one flipped payload byte: checksum mismatch */
    FILE *f = fopen(cache, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, (long)st.st_size - 5, SEEK_SET);
        int c = fgetc(f);
        fseek(f, (long)st.st_size - 5, SEEK_SET);
        fputc(c ^ 0x40, f);
        fclose(f);
    }
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 3);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 0);
    /* truncated */
    CHECK(truncate(cache, st.st_size / 2) == 0);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 3);
    /* garbage and empty */
    f = fopen(cache, "wb");
    if (f)
        fputs("not an index at all, just some text that is long enough for a header.....", f),
            fclose(f);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 3);
    f = fopen(cache, "wb");
    if (f) fclose(f);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 3);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 0);
    /* another sample_rate (so another env_block): the cache is rebuilt, not reused */
    tf_index *ix = NULL;
    cfg.sample_rate = 2 * RATE;
    CHECK(tf_index_open(&ix, &cfg, NULL) == TF_EUSER && strstr(tf_errmsg(), "expected 16000"));
    cfg.sample_rate = RATE;
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 3);
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 0);
}

static int count_lines(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_problems_all_reported(void) {
    char root[512], path[1024];
    new_root(root, sizeof root, "problems");
    put_track(root, "good", 2, 3000, 1, 1);
    put(root, "missing/vocals.wav", 3000, 2, RATE, 2); /* drums missing */
    put_track(root, "both", 2, 3000, 0, 3);
    put(root, "both/drums.flac", 3000, 2, RATE, 4);
    put(root, "length/vocals.wav", 3000, 2, RATE, 5);
    put(root, "length/drums.wav", 3100, 2, RATE, 6);
    put(root, "rate/vocals.wav", 3000, 2, RATE, 7);
    put(root, "rate/drums.wav", 3000, 2, 2 * RATE, 8);
    put(root, "text/vocals.wav", 3000, 2, RATE, 9);
    snprintf(path, sizeof path, "%s/text/drums.wav", root);
    FILE *f = fopen(path, "wb");
    if (f) fputs("this is not audio\n", f), fclose(f);
    put(root, "empty/vocals.flac", 3000, 2, RATE, 10);
    put(root, "empty/drums.wav", 0, 2, RATE, 11);
    put_track(root, "mixlen", 2, 3000, 0, 12);
    put(root, "mixlen/mixture.wav", 2999, 2, RATE, 13);
    put(root, "chan3/vocals.wav", 3000, 2, RATE, 15);
    { /* a 3-channel stem (libsndfile directly: our writer takes mono and stereo only) */
        snprintf(path, sizeof path, "%s/chan3/drums.wav", root);
        SF_INFO si = {
            .samplerate = RATE, .channels = 3, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
        SNDFILE *sf = sf_open(path, SFM_WRITE, &si);
        short z[3 * 3000] = {0};
        CHECK(sf && sf_writef_short(sf, z, 3000) == 3000);
        if (sf) sf_close(sf);
    }
    /* a float stem with one NaN sample (channel 1, frame 1234): it must never reach a batch */
    put(root, "nan/vocals.wav", 3000, 2, RATE, 14);
    {
        float *x = calloc(2 * 3000, sizeof(float)); /* (2, 3000) planar */
        if (x) x[3000 + 1234] = NAN;
        snprintf(path, sizeof path, "%s/nan/drums.wav", root);
        CHECK(x &&
              tf_audio_write_file(path, x, 2, 3000, RATE, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
        free(x);
    }
    /* a WAV stem cut short (its header says 3000 frames): libsndfile alone shortens it */
    put(root, "cut/vocals.wav", 3000, 2, RATE, 16);
    put(root, "cut/drums.wav", 3000, 2, RATE, 17);
    {
        snprintf(path, sizeof path, "%s/cut/drums.wav", root);
        CHECK(truncate(path, 44 + 2 * 2 * 1000) == 0);
    }
    tf_config cfg;
    make_cfg(&cfg, root, 2);
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, &cfg, NULL);
    CHECK(st == TF_EUSER && ix == NULL);
    const char *m = tf_errmsg();
    static const char *const want[] = {
        "missing/drums.wav: missing",
        "both/drums.wav: both",
        "length/drums.wav: 3100 frames",
        "rate/drums.wav: sample rate 16000",
        "text/drums.wav",
        "empty/drums.wav",
        "mixlen/mixture.wav: 2999 frames",
        "nan/drums.wav: non-finite sample (NaN) at frame 1234",
        "chan3/drums.wav: 3 channels",
        "cut/drums.wav: truncated",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", root, want[i]);
        CHECKF(strstr(m, full) != NULL, "'%s' not in:\n%s", full, m);
    }
    CHECK(strstr(m, "10 problems") != NULL);
    CHECKF(count_lines(m) == 11, "%d lines:\n%s", count_lines(m), m);
    CHECK(strstr(m, "/good/") == NULL);
    /* the good files were still cached: fixing the broken tracks rescans only those */
    char rm[1024];
    const char *bad[] = {"missing", "both",   "length", "rate",  "text",
                         "empty",   "mixlen", "nan",    "chan3", "cut"};
    for (size_t i = 0; i < 10; i++) {
        snprintf(rm, sizeof rm, "%s/%s", root, bad[i]);
        rm_rf(rm);
    }
    CHECK(reopen_scanned(&cfg, NULL, NULL) == 0);

    /* no tracks at all / no root */
    new_root(root, sizeof root, "empty_root");
    make_cfg(&cfg, root, 2);
    CHECK(tf_index_open(&ix, &cfg, NULL) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), root) && strstr(tf_errmsg(), "no track folders"));
    snprintf(cfg.root, sizeof cfg.root, "%s/does_not_exist", g_tmp);
    CHECK(tf_index_open(&ix, &cfg, NULL) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "does_not_exist") != NULL);
}

/* Odd but valid data, each handled as stated (issue 11, item 5):
 *  - stems of one track in 16-bit, 24-bit and float WAV: read as the same normalised float
 *    (values on the 16-bit grid come back exactly from all three);
 *  - a clipped stem (full-scale square wave) and a DC-only stem: read as they are, no
 *    rescaling, no filtering (the silence filter looks at mean |x|, which DC has);
 *  - a 1-frame track: indexed, and a chunk of it is its one sample followed by zeros, like
 *    every track shorter than the segment.
 * The loader's batches hold exactly the file samples, and every value is finite. */
static void test_odd_but_valid_stems(void) {
    char root[512], path[1024];
    new_root(root, sizeof root, "odd");
    static const char *const st[3] = {"vocals", "drums", "bass"};
    const tf_subtype sub[3] = {TF_SUBTYPE_PCM16, TF_SUBTYPE_PCM24, TF_SUBTYPE_FLOAT};
    const int64_t n = 12000;
    float *want[3][3] = {{0}}; /* [track][stem], planar (2, frames) */
    const int64_t frames[3] = {n, n, 1};
    for (int s = 0; s < 3; s++) { /* track 0 "mixed": one subtype per stem */
        want[0][s] = test_signal(40 + (uint32_t)s, 2, n);
        snprintf(path, sizeof path, "%s/mixed/%s.wav", root, st[s]);
        CHECK(tf_mkdirs(root) == TF_OK);
        char dir[1024];
        tf_dirname(path, dir, sizeof dir);
        CHECK(tf_mkdirs(dir) == TF_OK);
        CHECK(tf_audio_write_file(path, want[0][s], 2, n, RATE, TF_FMT_WAV, sub[s]) == TF_OK);
        set_mtime(path, time(NULL) - 100, 0);
    }
    /* track 1 "clip": a full-scale square wave, DC at 0.5, ordinary bass */
    for (int s = 0; s < 3; s++) {
        float *x = s == 2 ? test_signal(50, 2, n) : malloc(sizeof(float) * 2 * (size_t)n);
        CHECK(x != NULL);
        if (!x) return;
        if (s < 2)
            for (int64_t i = 0; i < 2 * n; i++) x[i] = s == 0 ? ((i / 40) % 2 ? 1.f : -1.f) : 0.5f;
        want[1][s] = x;
        snprintf(path, sizeof path, "%s/clip/%s.wav", root, st[s]);
        char dir[1024];
        tf_dirname(path, dir, sizeof dir);
        CHECK(tf_mkdirs(dir) == TF_OK);
        CHECK(tf_audio_write_file(path, x, 2, n, RATE, TF_FMT_WAV, TF_SUBTYPE_FLOAT) == TF_OK);
        set_mtime(path, time(NULL) - 100, 0);
    }
    for (int s = 0; s < 3; s++) { /* track 2 "one": a single frame */
        want[2][s] = test_signal(60 + (uint32_t)s, 2, 1);
        snprintf(path, sizeof path, "%s/one/%s.wav", root, st[s]);
        char dir[1024];
        tf_dirname(path, dir, sizeof dir);
        CHECK(tf_mkdirs(dir) == TF_OK);
        CHECK(tf_audio_write_file(path, want[2][s], 2, 1, RATE, TF_FMT_WAV, TF_SUBTYPE_FLOAT) ==
              TF_OK);
        set_mtime(path, time(NULL) - 100, 0);
    }
    tf_config cfg;
    make_cfg(&cfg, root, 3);
    tf_index *ix = NULL;
    tf_status rc = tf_index_open(&ix, &cfg, NULL);
    CHECKF(rc == TF_OK, "%s", tf_errmsg());
    if (rc) return;
    CHECK(ix->n_tracks == 3);
    int map[3] = {-1, -1, -1}; /* index track -> fixture track */
    static const char *const names[3] = {"mixed", "clip", "one"};
    for (int t = 0; t < ix->n_tracks; t++)
        for (int k = 0; k < 3; k++)
            if (!strcmp(ix->tracks[t].name, names[k])) map[t] = k;
    for (int t = 0; t < ix->n_tracks; t++) {
        CHECK(map[t] >= 0);
        if (map[t] < 0) return;
        CHECK(ix->tracks[t].frames == frames[map[t]]);
        if (map[t] == 1) { /* DC 0.5: mean |x| 0.5 in every block; the square wave 1 */
            CHECK(ix->tracks[t].stems[1].env[0] == 0.5f);
            CHECK(ix->tracks[t].stems[0].env[0] == 1.f);
        }
    }
    /* the loader (silence filter on) hands out exactly the file samples */
    tf_config_defaults(&cfg);
    make_cfg(&cfg, root, 3);
    tf_config_defaults(&cfg);
    snprintf(cfg.root, sizeof cfg.root, "%s", root);
    cfg.sample_rate = RATE;
    cfg.n_sources = cfg.n_targets = 3;
    for (int s = 0; s < 3; s++) {
        snprintf(cfg.sources[s], TF_NAME_MAX, "%s", st[s]);
        snprintf(cfg.targets[s], TF_NAME_MAX, "%s", st[s]);
    }
    cfg.num_workers = 0;
    cfg.aug_gain = cfg.aug_channel_swap = cfg.aug_polarity = 0;
    cfg.aug_mix_same_source = 0;
    cfg.batch_size = 4;
    /* silence filter off: all three tracks are drawn; on: the 1-frame track never is (no
     * chunk of it can reach the threshold), the other two are */
    for (int filter = 0; filter < 2; filter++) {
        cfg.min_mean_abs = filter ? 1e-4 : 0;
        /* off: segment = the track length, so each track has one offset and is drawn
         * as often as the others (draws are weighted by offsets) */
        cfg.segment_seconds = filter ? 0.25 : 1.5;
        tf_loader *l = NULL;
        rc = tf_loader_open(&l, &cfg, ix, 7);
        CHECKF(rc == TF_OK, "%s", tf_errmsg());
        int bad = 0, nonfinite = 0, seen[3] = {0};
        if (!rc && tf_loader_start_epoch(l, 0, 0, 30) == TF_OK) {
            for (int i = 0; i < 30; i++) {
                const tf_batch *b;
                if (tf_loader_next(l, &b) != TF_OK) {
                    bad++;
                    break;
                }
                const int64_t N = b->N;
                for (int it = 0; it < b->B; it++)
                    for (int s = 0; s < 3; s++) {
                        const tf_chunk_info *in = b->info + it * 3 + s;
                        const int k = map[in->track];
                        const float *x = b->stems + ((size_t)it * 3 + (size_t)s) * 2 * (size_t)N;
                        seen[k]++;
                        for (int c = 0; c < 2; c++)
                            for (int64_t j = 0; j < N; j++) {
                                const int64_t p = in->offset + j;
                                const float w = p < frames[k] ? want[k][s][c * frames[k] + p] : 0.f;
                                bad += x[c * N + j] != w;
                                nonfinite += !isfinite(x[c * N + j]);
                            }
                    }
                for (int64_t j = 0; j < (int64_t)b->B * 2 * N; j++)
                    nonfinite += !isfinite(b->mixture[j]);
            }
        }
        CHECKF(bad == 0, "filter %d: %d samples differ from the files", filter, bad);
        CHECK(nonfinite == 0);
        CHECKF(seen[0] > 0 && seen[1] > 0 && (seen[2] > 0) == !filter,
               "filter %d: chunks per track %d %d %d", filter, seen[0], seen[1], seen[2]);
        tf_loader_close(l);
    }
    tf_index_close(ix);
    for (int t = 0; t < 3; t++)
        for (int s = 0; s < 3; s++) free(want[t][s]);
}

static void test_explicit_cache_unwritable(void) {
    char root[512], cache[1024];
    new_root(root, sizeof root, "unwritable");
    put_track(root, "a", 1, 3000, 0, 1);
    tf_config cfg;
    make_cfg(&cfg, root, 1);
    snprintf(cache, sizeof cache, "%s/no/such/dir/idx", g_tmp);
    tf_index *ix = NULL;
    CHECK(tf_index_open(&ix, &cfg, cache) == TF_EUSER && !ix);
    CHECK(strstr(tf_errmsg(), "no/such/dir/idx") != NULL);
}

/* Stream a track in blocks of `blk` and compare with the files read whole. */
static void check_stream(const tf_index *ix, int t, int64_t blk) {
    const tf_track *tr = &ix->tracks[t];
    const int S = ix->n_stems;
    const int64_t N = tr->frames;
    float *ref[TF_MAX_TARGETS + 1];
    tf_audio_info in;
    for (int s = 0; s < S; s++) CHECK(tf_audio_read_all(tr->stems[s].path, &ref[s], &in) == TF_OK);
    ref[S] = NULL;
    if (tr->mixture.path) CHECK(tf_audio_read_all(tr->mixture.path, &ref[S], &in) == TF_OK);
    float *mix = malloc(sizeof(float) * 2 * (size_t)blk);
    float *st = malloc(sizeof(float) * 2 * (size_t)blk * (size_t)S);
    tf_valtrack *v = NULL;
    CHECK(tf_valtrack_open(&v, ix, t) == TF_OK);
    int64_t pos = 0, got = 0;
    int bad = 0, calls = 0;
    while (v && ++calls < 1000) {
        CHECK(tf_valtrack_read(v, blk, mix, st, &got) == TF_OK);
        for (int64_t i = 0; i < blk; i++)
            for (int c = 0; c < 2; c++) {
                double m = 0;
                for (int s = 0; s < S; s++) {
                    float x = st[((size_t)s * 2 + (size_t)c) * (size_t)blk + (size_t)i];
                    float r = i < got ? ref[s][c * N + pos + i] : 0.f;
                    bad += x != r;
                    m += r;
                }
                float mx = mix[(size_t)c * (size_t)blk + (size_t)i];
                if (i >= got)
                    bad += mx != 0.f;
                else if (ref[S])
                    bad += mx != ref[S][c * N + pos + i];
                else
                    bad += fabs(mx - m) > 1e-6;
            }
        pos += got;
        if (got < blk) break;
    }
    CHECK(bad == 0 && pos == N && got < blk);
    if (v) {
        CHECK(tf_valtrack_pos(v) == N && tf_valtrack_frames(v) == N);
        CHECK(tf_valtrack_read(v, blk, mix, st, &got) == TF_OK && got == 0);
    }
    tf_valtrack_close(v);
    for (int s = 0; s <= S; s++) free(ref[s]);
    free(mix), free(st);
}

static void test_valtrack_blocks_equal_files(void) {
    char root[512];
    new_root(root, sizeof root, "valtrack");
    put_track(root, "with mix", 3, 5003, 1, 1);
    put_track(root, "no mix", 3, 4000, 0, 2);
    put(root, "flac/vocals.flac", 2345, 1, RATE, 3);
    put(root, "flac/drums.wav", 2345, 2, RATE, 4);
    put(root, "flac/bass.flac", 2345, 2, RATE, 5);
    tf_config cfg;
    make_cfg(&cfg, root, 3);
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, &cfg, NULL);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) return;
    for (int t = 0; t < ix->n_tracks; t++) {
        check_stream(ix, t, 777);
        check_stream(ix, t, 4000); /* exact multiple for "no mix" */
        check_stream(ix, t, 9000); /* one block longer than the track */
    }
    /* only the mixture wanted, track without mixture file: sum of the stems */
    int t = (int)(find(ix, "no mix") - ix->tracks);
    tf_valtrack *v = NULL;
    float mix[2 * 500];
    int64_t got;
    CHECK(tf_valtrack_open(&v, ix, t) == TF_OK);
    if (v) {
        CHECK(tf_valtrack_read(v, 500, mix, NULL, &got) == TF_OK && got == 500);
        double e = 0;
        for (int i = 0; i < 500; i++)
            e = fmax(e, fabs(mix[i] - (sample(2 * 16 + 0, i, 0) + sample(2 * 16 + 1, i, 0) +
                                       sample(2 * 16 + 2, i, 0))));
        CHECK(e < 1e-6);
        tf_valtrack_close(v);
    }
    /* a file changed after indexing is reported, naming it */
    put(root, "no mix/drums.wav", 3000, 2, RATE, 9);
    v = NULL;
    CHECK(tf_valtrack_open(&v, ix, t) == TF_EUSER && !v);
    CHECK(strstr(tf_errmsg(), "no mix/drums.wav") && strstr(tf_errmsg(), "changed"));
    tf_index_close(ix);
}

/* err.c holds one problem line per file: long messages survive, and context prefixes. */
static void test_err_long_message_and_ctx(void) {
    static char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK(tf_err(TF_EUSER, "%s", big) == TF_EUSER && strlen(tf_errmsg()) == sizeof big - 1);
    CHECK(tf_err_ctx(TF_EUSER, "ctx %d", 7) == TF_EUSER);
    CHECK(!strncmp(tf_errmsg(), "ctx 7: xxx", 10) && strlen(tf_errmsg()) == sizeof big - 1 + 7);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tfswa_test_index_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_musdb_layout_splits);
    RUN(test_valid_folder_split);
    RUN(test_plain_folder_valid_fraction);
    RUN(test_envelope_matches_samples);
    RUN(test_cache_hit_and_default_location);
    RUN(test_cache_invalidation);
    RUN(test_racy_files_rescanned);
    RUN(test_corrupt_cache_rescans);
    RUN(test_problems_all_reported);
    RUN(test_odd_but_valid_stems);
    RUN(test_explicit_cache_unwritable);
    RUN(test_valtrack_blocks_equal_files);
    RUN(test_err_long_message_and_ctx);
    rm_rf(g_tmp);
    return TEST_END();
}
