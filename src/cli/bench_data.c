/* tfswa bench data [--json] [--chunks N] [--tracks T] [--seconds S] [--rounds R]
 *                  [--rss-seconds S]
 *
 * Writes a synthetic dataset (tf_synth_track stems with long rests added, see
 * write_dataset) into a temporary folder and measures the training-data path on it, variants
 * alternating round by round in one run (ratios are of medians over the rounds):
 *   chunked_vs_raw        delivered stem chunks/s of the loader (synchronous, no
 *                         augmentation, min_mean_abs 0.001) over chunks/s of plain sf_seek +
 *                         sf_readf_float of the same (file, offset, frames) list on files
 *                         opened beforehand, into one reused buffer
 *   chunked_vs_raw_short_conv  the same over what a plain program does for these 16-bit
 *                         files: sf_seek + sf_readf_short of the same chunks, converted to
 *                         planar float (s / 32768) into a (batch, stems, 2, N) array, one
 *                         thread; _1buf: converted into one reused (2, N) buffer (never
 *                         leaves the cache, unlike any batch); _2_workers: the loader with
 *                         num_workers 2 (wall clock, this machine's 2 cores shared);
 *                         chunked_vs_raw_short: over sf_readf_short alone (no conversion);
 *                         chunks_per_s_loader_reference: the loader's chunk-at-a-time path
 *   chunked_vs_full_track chunks/s with use_efficient_loading over chunks/s without it
 *                         (whole stem file read per chunk, then sliced)
 *   reads_per_chunk       stem-file reads per delivered chunk at min_mean_abs 0.001
 *   silent_chunks_delivered  delivered chunks whose source frames have mean |x| < 0.001:
 *                         each chunk's (track, stem, offset) from the batch's provenance
 *                         is re-read here with plain libsndfile (sf_open, sf_seek,
 *                         sf_readf_float), not the loader's reader; provenance_mismatches
 *                         counts delivered samples that differ from those frames;
 *                         silent_fraction_unfiltered: the same count with the filter off
 *   rss_growth_mb         VmRSS after the index scan and the same number of batches
 *                         (default loader settings, 4 workers) with 200 tracks minus with
 *                         10 tracks, each in a fresh child process that scans the index
 *                         itself (no cache; index_scan_s_*: its time, rss_mb_index_*: VmRSS
 *                         after it). The 200 track folders hard-link the files of 10
 *                         synthetic tracks of --rss-seconds (234 s: MUSDB18's median).
 *   persistent_vs_recreate  time per epoch without persistent workers over with them.
 * The temporary folder is removed at the end. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench_util.h"
#include "cli/cli.h"
#include "util/fsutil.h"
#include "util/sysmem.h"
#include "data/index.h"
#include "data/loader.h"
#include "audio/audio.h"
#include "data/synth.h"
#include "util/config.h"
#include "util/rng.h"

#define THR 0.001

/* kB value of a /proc/self/status field, -1 if absent */

typedef struct {
    int track, stem;
    int64_t offset;
} chunk_ref;

/* The independent silence / provenance check: the frames a delivered chunk came from
 * (b->info), re-read with plain libsndfile, not the loader's reader. */
typedef struct {
    const tf_index *ix;
    SNDFILE **sf; /* (tracks, stems), opened on first use */
    SF_INFO *si;  /* (tracks, stems) their info */
    float *il, *src;
    int64_t N, chunks, silent, mismatches;
} checker;

static tf_status checker_init(checker *c, const tf_index *ix, int64_t N) {
    memset(c, 0, sizeof *c);
    c->ix = ix;
    c->N = N;
    c->sf = calloc((size_t)ix->n_tracks * (size_t)ix->n_stems, sizeof *c->sf);
    c->si = calloc((size_t)ix->n_tracks * (size_t)ix->n_stems, sizeof *c->si);
    c->il = malloc(sizeof(float) * 2 * (size_t)N);
    c->src = malloc(sizeof(float) * 2 * (size_t)N);
    if (!c->sf || !c->si || !c->il || !c->src) return tf_err(TF_EINTERNAL, "out of memory");
    return TF_OK;
}

static void checker_free(checker *c) {
    if (c->sf)
        for (int i = 0; i < c->ix->n_tracks * c->ix->n_stems; i++)
            if (c->sf[i]) sf_close(c->sf[i]);
    free(c->sf);
    free(c->si);
    free(c->il);
    free(c->src);
}

/* stem s of a delivered chunk x (2, N) with provenance in: source frames silent? the
 * delivered samples equal to them (the bench runs without augmentation)? */
static tf_status check_chunk(checker *c, int s, const tf_chunk_info *in, const float *x) {
    const int64_t N = c->N;
    const int k = in->track * c->ix->n_stems + s;
    SNDFILE **h = &c->sf[k];
    const SF_INFO si = c->si[k];
    const char *p = c->ix->tracks[in->track].stems[s].path;
    if (!*h) {
        if (!(*h = sf_open(p, SFM_READ, &c->si[k])))
            return tf_err(TF_EUSER, "%s: %s", p, sf_strerror(NULL));
        if (c->si[k].channels < 1 || c->si[k].channels > 2)
            return tf_err(TF_EUSER, "%s: %d channels", p, c->si[k].channels);
        return check_chunk(c, s, in, x);
    }
    const int ch = si.channels;
    memset(c->src, 0, sizeof(float) * 2 * (size_t)N);
    const int64_t a = in->offset < 0 ? 0 : in->offset;
    const int64_t e = in->offset + N < si.frames ? in->offset + N : si.frames;
    if (e > a) {
        if (sf_seek(*h, a, SEEK_SET) != a || sf_readf_float(*h, c->il, e - a) != e - a)
            return tf_err(TF_EUSER, "%s: re-read failed: %s", p, sf_strerror(*h));
        for (int64_t i = 0; i < e - a; i++) {
            c->src[a - in->offset + i] = c->il[i * ch];
            c->src[N + a - in->offset + i] = c->il[i * ch + ch - 1];
        }
    }
    double m = 0;
    for (int64_t i = 0; i < 2 * N; i++) m += fabsf(c->src[i]);
    c->chunks++;
    c->silent += m / (double)(2 * N) < THR;
    if (in->mix_track >= 0 || in->gain != 1.f || in->swapped)
        c->mismatches += 2 * N; /* augmentation is off in this bench */
    else
        for (int64_t i = 0; i < 2 * N; i++) c->mismatches += c->src[i] != x[i];
    return TF_OK;
}

/* Loader over steps [first, first + n). Timed from start_epoch to the last batch.
 * refs (n * B * S) records the delivered chunks; chk (untimed use only) re-reads them. */
static tf_status run_loader(const tf_config *cfg, const tf_index *ix, int64_t first, int64_t n,
                            int fused, double *secs, tf_loader_counters *cnt, chunk_ref *refs,
                            checker *chk) {
    tf_loader *l;
    TF_TRY(tf_loader_open(&l, cfg, ix, (uint64_t)cfg->seed));
    tf_loader_set_fused(l, fused);
    tf_status st = TF_OK;
    double t0 = tf_now_s();
    st = tf_loader_start_epoch(l, 0, first, n);
    for (int64_t i = 0; i < n && !st; i++) {
        const tf_batch *b;
        st = tf_loader_next(l, &b);
        if (st) break;
        const int64_t cn = 2 * b->N;
        for (int k = 0; k < b->B * b->S && !st; k++) {
            if (refs) {
                chunk_ref *r = &refs[i * b->B * b->S + k];
                r->track = b->info[k].track;
                r->stem = k % b->S;
                r->offset = b->info[k].offset;
            }
            if (chk) st = check_chunk(chk, k % b->S, &b->info[k], b->stems + (size_t)k * cn);
        }
    }
    *secs = tf_now_s() - t0;
    if (cnt) tf_loader_stats(l, cnt);
    tf_loader_close(l);
    return st;
}

/* Plain libsndfile reads of the same chunks, files opened before timing:
 * RAW_FLOAT sf_readf_float into one buffer; RAW_SHORT sf_readf_short alone; RAW_CONV
 * sf_readf_short + conversion to planar float into chunk k's place of a (batch, stems,
 * 2, N) array (bs chunks); RAW_CONV_1BUF the same into one (2, N) buffer. */
enum { RAW_FLOAT, RAW_SHORT, RAW_CONV, RAW_CONV_1BUF };

static tf_status run_raw(const tf_index *ix, const chunk_ref *refs, int64_t n, int64_t N, int mode,
                         int bs, double *secs) {
    const int S = ix->n_stems;
    SNDFILE **sf = calloc((size_t)ix->n_tracks * (size_t)S, sizeof *sf);
    float *buf = malloc(sizeof(float) * 2 * (size_t)N);
    short *sb = malloc(sizeof(short) * 2 * (size_t)N);
    float *batch = mode == RAW_CONV ? malloc(sizeof(float) * 2 * (size_t)N * (size_t)bs) : NULL;
    tf_status st = TF_OK;
    if (!sf || !buf || !sb || (mode == RAW_CONV && !batch)) {
        st = tf_err(TF_EINTERNAL, "out of memory");
        goto done;
    }
    if (batch) memset(batch, 0, sizeof(float) * 2 * (size_t)N * (size_t)bs);
    for (int64_t i = 0; i < n && !st; i++) {
        SNDFILE **h = &sf[refs[i].track * S + refs[i].stem];
        if (*h) continue;
        SF_INFO info;
        memset(&info, 0, sizeof info);
        const char *p = ix->tracks[refs[i].track].stems[refs[i].stem].path;
        *h = sf_open(p, SFM_READ, &info);
        if (!*h)
            st = tf_err(TF_EUSER, "%s: %s", p, sf_strerror(NULL));
        else if (info.channels != 2)
            st = tf_err(TF_EUSER, "%s: not stereo", p);
    }
    double t0 = tf_now_s();
    for (int64_t i = 0; i < n && !st; i++) {
        SNDFILE *h = sf[refs[i].track * S + refs[i].stem];
        if (sf_seek(h, refs[i].offset, SEEK_SET) < 0) {
            st = tf_err(TF_EUSER, "raw seek failed: %s", sf_strerror(h));
            break;
        }
        sf_count_t got = mode == RAW_FLOAT ? sf_readf_float(h, buf, N) : sf_readf_short(h, sb, N);
        if (got <= 0) {
            st = tf_err(TF_EUSER, "raw read failed: %s", sf_strerror(h));
            break;
        }
        if (mode == RAW_CONV || mode == RAW_CONV_1BUF) {
            float *d = mode == RAW_CONV ? batch + (size_t)(i % bs) * 2 * (size_t)N : buf;
            for (sf_count_t j = 0; j < got; j++) {
                d[j] = (float)sb[2 * j] * (1.f / 32768.f);
                d[N + j] = (float)sb[2 * j + 1] * (1.f / 32768.f);
            }
        }
    }
    *secs = tf_now_s() - t0;
done:
    if (sf)
        for (int i = 0; i < ix->n_tracks * S; i++)
            if (sf[i]) sf_close(sf[i]);
    free(sf);
    free(buf);
    free(sb);
    free(batch);
    return st;
}

/* --rss-child ROOT CACHE BATCHES (internal): scan the index of ROOT (CACHE does not exist
 * yet: every file is read), run BATCHES batches with the default loader settings, print
 * "scan_seconds VmRSS-after-scan VmRSS VmHWM" (kB). */
static int rss_child(const char *root, const char *cache, long long n) {
    tf_config cfg;
    tf_config_defaults(&cfg);
    cfg.valid_fraction = 0;
    snprintf(cfg.root, sizeof cfg.root, "%s", root);
    tf_index *ix;
    const double t0 = tf_now_s();
    tf_status st = tf_index_open(&ix, &cfg, cache);
    const double scan = tf_now_s() - t0;
    if (st) return cli_fail(st);
    const size_t rss_ix = tf_rss_bytes() / 1024;
    tf_loader *l;
    st = tf_loader_open(&l, &cfg, ix, 1);
    if (!st) {
        st = tf_loader_start_epoch(l, 0, 0, n);
        for (long long i = 0; i < n && !st; i++) {
            const tf_batch *b;
            st = tf_loader_next(l, &b);
        }
        if (!st)
            printf("%.6f %zu %zu %zu\n", scan, rss_ix, tf_rss_bytes() / 1024,
                   tf_peak_rss_bytes() / 1024);
        tf_loader_close(l);
    }
    tf_index_close(ix);
    return st ? cli_fail(st) : 0;
}

/* Run rss_child in a fresh process (fork + exec of this program: no state inherited). */
typedef struct {
    double scan_s;
    long ix_kb, rss_kb, hwm_kb;
} rss_result;

static tf_status child_rss(const char *root, const char *cache, long long n, rss_result *o) {
    int fd[2];
    if (pipe(fd) != 0) return tf_err(TF_EINTERNAL, "pipe: %s", strerror(errno));
    char nb[32];
    snprintf(nb, sizeof nb, "%lld", n);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return tf_err(TF_EINTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], 1) < 0) _exit(127);
        close(fd[1]);
        execl("/proc/self/exe", "tfswa", "bench", "data", "--rss-child", root, cache, nb,
              (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char buf[128] = {0};
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd[0], buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 ||
        sscanf(buf, "%lf %ld %ld %ld", &o->scan_s, &o->ix_kb, &o->rss_kb, &o->hwm_kb) != 4)
        return tf_err(TF_EINTERNAL, "bench data: RSS measurement on %s failed (status %d)", root,
                      ws);
    return TF_OK;
}

/* dst/train/<name>-<k>/ hard-linking the files of src/train/<name>/, n folders. */
static tf_status link_tracks(const char *src, const char *dst, int n) {
    char sp[TF_PATH_MAX], dp[TF_PATH_MAX + 64];
    snprintf(sp, sizeof sp, "%s/train", src);
    snprintf(dp, sizeof dp, "%s", dst);
    if (mkdir(dp, 0755) != 0) return tf_err(TF_EUSER, "%s: %s", dp, strerror(errno));
    snprintf(dp, sizeof dp, "%s/train", dst);
    if (mkdir(dp, 0755) != 0) return tf_err(TF_EUSER, "%s: %s", dp, strerror(errno));
    char names[64][256];
    int nn = 0;
    DIR *d = opendir(sp);
    if (!d) return tf_err(TF_EUSER, "%s: %s", sp, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64)
        if (e->d_name[0] != '.') snprintf(names[nn++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    if (nn == 0) return tf_err(TF_EUSER, "%s: no tracks", sp);
    for (int k = 0; k < n; k++) {
        const char *name = names[k % nn];
        char td[TF_PATH_MAX + 512];
        snprintf(td, sizeof td, "%s/train/%s %04d", dst, name, k);
        if (mkdir(td, 0755) != 0) return tf_err(TF_EUSER, "%s: %s", td, strerror(errno));
        char sd[TF_PATH_MAX + 512];
        snprintf(sd, sizeof sd, "%s/%s", sp, name);
        DIR *t = opendir(sd);
        if (!t) return tf_err(TF_EUSER, "%s: %s", sd, strerror(errno));
        tf_status st = TF_OK;
        while (!st && (e = readdir(t))) {
            if (e->d_name[0] == '.') continue;
            char a[TF_PATH_MAX + 1024], b[TF_PATH_MAX + 1024];
            snprintf(a, sizeof a, "%s/%s", sd, e->d_name);
            snprintf(b, sizeof b, "%s/%s", td, e->d_name);
            if (link(a, b) != 0) st = tf_err(TF_EUSER, "link %s: %s", b, strerror(errno));
        }
        closedir(t);
        TF_TRY(st);
    }
    return TF_OK;
}

/* The main dataset: stems of tf_synth_track with long rests added (spans of 6-14 s of
 * exact silence, per stem, about 40 % of the time, on top of the synth's own rests of a
 * few bars), so that whole 6 s chunks are silent as in real multitracks (a voice resting
 * for a verse). PCM16 WAV, ROOT/train/Bench NNN/<stem>.wav, no mixture file. */
static tf_status write_dataset(const char *root, const tf_config *cfg, int tracks, double seconds,
                               uint64_t seed) {
    const int64_t n = (int64_t)llround(seconds * cfg->sample_rate);
    float *buf = malloc(sizeof(float) * 8 * (size_t)n);
    if (!buf) return tf_err(TF_EINTERNAL, "out of memory: %lld frames", (long long)n);
    float *stems[4] = {buf, buf + 2 * n, buf + 4 * n, buf + 6 * n};
    char dir[TF_PATH_MAX + 64], path[TF_PATH_MAX + 128];
    tf_status st = TF_OK;
    snprintf(dir, sizeof dir, "%s", root);
    if (mkdir(dir, 0755) != 0) st = tf_err(TF_EUSER, "%s: %s", dir, strerror(errno));
    snprintf(dir, sizeof dir, "%s/train", root);
    if (!st && mkdir(dir, 0755) != 0) st = tf_err(TF_EUSER, "%s: %s", dir, strerror(errno));
    for (int t = 0; t < tracks && !st; t++) {
        st = tf_synth_track(stems, n, cfg->sample_rate, seed * 1000 + (uint64_t)t);
        if (st) break;
        for (int s = 0; s < 4; s++) {
            tf_rng r;
            tf_rng_seed(&r, seed, (uint64_t)t, (uint64_t)s, 77);
            int silent = tf_rng_uniform(&r) < 0.4;
            for (int64_t pos = 0; pos < n; silent = !silent) {
                double len_s = silent ? tf_rng_range(&r, 6, 14) : tf_rng_range(&r, 8, 20);
                int64_t len = (int64_t)(len_s * cfg->sample_rate);
                if (len > n - pos) len = n - pos;
                if (silent)
                    for (int c = 0; c < 2; c++)
                        memset(stems[s] + c * n + pos, 0, sizeof(float) * (size_t)len);
                pos += len;
            }
        }
        snprintf(dir, sizeof dir, "%s/train/Bench %03d", root, t);
        if (mkdir(dir, 0755) != 0) {
            st = tf_err(TF_EUSER, "%s: %s", dir, strerror(errno));
            break;
        }
        for (int s = 0; s < 4 && !st; s++) {
            snprintf(path, sizeof path, "%s/%s.wav", dir, cfg->sources[s]);
            st = tf_audio_write_file(path, stems[s], 2, n, cfg->sample_rate, TF_FMT_WAV,
                                     TF_SUBTYPE_PCM16);
        }
    }
    free(buf);
    return st;
}

static double silence_fraction(const tf_index *ix) {
    int64_t q = 0, n = 0;
    for (int t = 0; t < ix->n_tracks; t++) {
        if (ix->tracks[t].split != TF_SPLIT_TRAIN) continue;
        for (int s = 0; s < ix->n_stems; s++) {
            const tf_stem_file *f = &ix->tracks[t].stems[s];
            for (int64_t j = 0; j < f->n_env; j++) q += f->env[j] < THR;
            n += f->n_env;
        }
    }
    return n ? (double)q / (double)n : 0;
}

typedef struct {
    int json;
    int64_t chunks;
    int tracks;
    double seconds;
    double rss_seconds;
    int rounds;
    char tmp[256];
} opts;

static tf_status bench(const opts *o, cJSON *config, cJSON *res) {
    char root[512], cache[512];
    snprintf(root, sizeof root, "%s/main", o->tmp);
    snprintf(cache, sizeof cache, "%s/main.index", o->tmp);
    tf_config cfg;
    tf_config_defaults(&cfg);
    snprintf(cfg.root, sizeof cfg.root, "%s", root);
    cfg.valid_fraction = 0; /* every train/ track is for training */
    cfg.num_workers = 0;
    cfg.pin_memory = 0;
    cfg.aug_gain = cfg.aug_channel_swap = cfg.aug_polarity = 0;
    cfg.aug_mix_same_source = 0;
    cfg.min_mean_abs = THR;
    if (!o->json)
        fprintf(stderr, "writing %d x %.0f s synthetic tracks...\n", o->tracks, o->seconds);
    TF_TRY(write_dataset(root, &cfg, o->tracks, o->seconds, 7));
    tf_index *ix;
    TF_TRY(tf_index_open(&ix, &cfg, cache));
    tf_status st = TF_OK;
    const int BS = cfg.batch_size * cfg.n_sources;
    const int64_t steps = (o->chunks + BS - 1) / BS;
    const int64_t n_chunks = steps * BS;
    const int64_t N = (int64_t)llround(cfg.segment_seconds * cfg.sample_rate);
    chunk_ref *refs = calloc((size_t)n_chunks, sizeof *refs);
    if (!refs) {
        tf_index_close(ix);
        return tf_err(TF_EINTERNAL, "out of memory");
    }
    cJSON_AddNumberToObject(config, "train_tracks", o->tracks);
    cJSON_AddNumberToObject(config, "track_seconds", o->seconds);
    cJSON_AddNumberToObject(config, "segment_seconds", cfg.segment_seconds);
    cJSON_AddNumberToObject(config, "batch_size", cfg.batch_size);
    cJSON_AddNumberToObject(config, "stems", cfg.n_sources);
    cJSON_AddNumberToObject(config, "chunks", (double)n_chunks);
    cJSON_AddNumberToObject(config, "rounds", o->rounds);
    cJSON_AddNumberToObject(config, "min_mean_abs", THR);
    cJSON_AddNumberToObject(config, "open_files_per_worker", TF_LOADER_OPEN_FILES);
    cJSON_AddNumberToObject(res, "silence_fraction", silence_fraction(ix));

    /* 1. reads per chunk and silent chunks (filter on, counted from the files), chunk
     * list for the raw passes */
    double t;
    tf_loader_counters c;
    checker chk;
    st = checker_init(&chk, ix, N);
    if (!st) st = run_loader(&cfg, ix, 0, steps, 1, &t, &c, refs, &chk);
    if (!st) {
        cJSON_AddNumberToObject(res, "reads_per_chunk",
                                (double)c.stem_reads / (double)c.delivered_chunks);
        cJSON_AddNumberToObject(res, "redraws", (double)c.redraws);
        cJSON_AddNumberToObject(res, "silent_chunks_delivered", (double)chk.silent);
        cJSON_AddNumberToObject(res, "chunks_checked", (double)chk.chunks);
        cJSON_AddNumberToObject(res, "provenance_mismatches", (double)chk.mismatches);
        if (!o->json)
            printf("silence-aware sampling at min_mean_abs %g: %.4f reads per chunk, %lld "
                   "redraws; re-read from the files: %lld of %lld delivered chunks silent, %lld "
                   "samples differ from their source\n",
                   THR, (double)c.stem_reads / (double)c.delivered_chunks, (long long)c.redraws,
                   (long long)chk.silent, (long long)chk.chunks, (long long)chk.mismatches);
    }
    /* the same without the filter, for contrast */
    if (!st) {
        tf_config c0 = cfg;
        c0.min_mean_abs = 0;
        checker_free(&chk);
        st = checker_init(&chk, ix, N);
        if (!st) st = run_loader(&c0, ix, 0, steps, 1, &t, NULL, NULL, &chk);
        cJSON_AddNumberToObject(res, "silent_fraction_unfiltered",
                                (double)chk.silent / (double)n_chunks);
        if (!st && !o->json)
            printf("without the filter: %.1f%% of delivered chunks silent\n",
                   100.0 * (double)chk.silent / (double)n_chunks);
    }
    checker_free(&chk);
    /* 2. loader vs plain libsndfile reads of the same chunks, alternating */
    enum { V_LD, V_LD2, V_REF, V_FLOAT, V_SHORT, V_CONV, V_CONV1, NV };
    double *tv = calloc((size_t)NV * (size_t)o->rounds, sizeof *tv);
    if (!tv) st = tf_err(TF_EINTERNAL, "out of memory");
    tf_config c2 = cfg;
    c2.num_workers = 2;
    c2.prefetch_factor = 2;
    for (int r = 0; r < o->rounds && !st; r++) {
        double *x = tv + (size_t)r * NV;
        st = run_raw(ix, refs, n_chunks, N, RAW_FLOAT, BS, &x[V_FLOAT]);
        if (!st) st = run_loader(&cfg, ix, 0, steps, 1, &x[V_LD], NULL, NULL, NULL);
        if (!st) st = run_raw(ix, refs, n_chunks, N, RAW_CONV, BS, &x[V_CONV]);
        if (!st) st = run_raw(ix, refs, n_chunks, N, RAW_SHORT, BS, &x[V_SHORT]);
        if (!st) st = run_loader(&c2, ix, 0, steps, 1, &x[V_LD2], NULL, NULL, NULL);
        if (!st) st = run_raw(ix, refs, n_chunks, N, RAW_CONV_1BUF, BS, &x[V_CONV1]);
        if (!st) st = run_loader(&cfg, ix, 0, steps, 0, &x[V_REF], NULL, NULL, NULL);
    }
    if (!st) {
        double rate[NV];
        for (int v = 0; v < NV; v++) {
            double col[64];
            const int nr = o->rounds < 64 ? o->rounds : 64;
            for (int r = 0; r < nr; r++) col[r] = tv[(size_t)r * NV + v];
            rate[v] = (double)n_chunks / bench_median(col, nr);
        }
        cJSON_AddNumberToObject(res, "chunks_per_s_loader", rate[V_LD]);
        cJSON_AddNumberToObject(res, "chunks_per_s_loader_2_workers", rate[V_LD2]);
        cJSON_AddNumberToObject(res, "chunks_per_s_loader_reference", rate[V_REF]);
        cJSON_AddNumberToObject(res, "chunks_per_s_raw", rate[V_FLOAT]);
        cJSON_AddNumberToObject(res, "chunked_vs_raw", rate[V_LD] / rate[V_FLOAT]);
        cJSON_AddNumberToObject(res, "chunks_per_s_raw_short", rate[V_SHORT]);
        cJSON_AddNumberToObject(res, "chunked_vs_raw_short", rate[V_LD] / rate[V_SHORT]);
        cJSON_AddNumberToObject(res, "chunks_per_s_raw_short_conv", rate[V_CONV]);
        cJSON_AddNumberToObject(res, "chunked_vs_raw_short_conv", rate[V_LD] / rate[V_CONV]);
        cJSON_AddNumberToObject(res, "chunked_vs_raw_short_conv_2_workers",
                                rate[V_LD2] / rate[V_CONV]);
        cJSON_AddNumberToObject(res, "chunks_per_s_raw_short_conv_1buf", rate[V_CONV1]);
        cJSON_AddNumberToObject(res, "chunked_vs_raw_short_conv_1buf", rate[V_LD] / rate[V_CONV1]);
        if (!o->json)
            printf("chunks/s (median of %d rounds): loader %.0f (2 workers %.0f, reference path "
                   "%.0f); plain sf_readf_float %.0f: chunked_vs_raw %.3f; sf_readf_short + "
                   "float conversion into a batch %.0f: chunked_vs_raw_short_conv %.3f (2 "
                   "workers %.3f); into one buffer %.0f: %.3f; sf_readf_short alone %.0f: "
                   "%.3f\n",
                   o->rounds, rate[V_LD], rate[V_LD2], rate[V_REF], rate[V_FLOAT],
                   rate[V_LD] / rate[V_FLOAT], rate[V_CONV], rate[V_LD] / rate[V_CONV],
                   rate[V_LD2] / rate[V_CONV], rate[V_CONV1], rate[V_LD] / rate[V_CONV1],
                   rate[V_SHORT], rate[V_LD] / rate[V_SHORT]);
    }
    free(tv);
    /* 3. chunk reads vs whole-file reads, alternating (a quarter of the steps) */
    const int64_t fsteps = steps / 4 > 0 ? steps / 4 : 1;
    double t_eff = 0, t_full = 0;
    tf_config cf = cfg;
    for (int r = 0; r < o->rounds && !st; r++) {
        cf.use_efficient_loading = 1;
        st = run_loader(&cf, ix, 0, fsteps, 1, &t, NULL, NULL, NULL);
        t_eff += t;
        cf.use_efficient_loading = 0;
        if (!st) st = run_loader(&cf, ix, 0, fsteps, 1, &t, NULL, NULL, NULL);
        t_full += t;
    }
    if (!st) {
        double n = (double)(fsteps * BS * o->rounds);
        cJSON_AddNumberToObject(res, "chunks_per_s_full_track", n / t_full);
        cJSON_AddNumberToObject(res, "chunked_vs_full_track", t_full / t_eff);
        if (!o->json)
            printf("whole-file reads %.1f chunks/s: chunked_vs_full_track %.2f (%.0f s tracks)\n",
                   n / t_full, t_full / t_eff, o->seconds);
    }
    /* 4. persistent workers vs threads created per epoch (default worker settings) */
    if (!st) {
        tf_config cw = cfg;
        cw.num_workers = 4;
        cw.prefetch_factor = 2;
        const int epochs = 10, per = 4;
        double tp = 0, tr = 0;
        for (int r = 0; r < o->rounds && !st; r++)
            for (int pers = 1; pers >= 0 && !st; pers--) {
                cw.persistent_workers = pers;
                tf_loader *l;
                st = tf_loader_open(&l, &cw, ix, 1);
                if (st) break;
                double t0 = tf_now_s();
                for (int e = 0; e < epochs && !st; e++) {
                    st = tf_loader_start_epoch(l, e, (int64_t)e * per, per);
                    for (int i = 0; i < per && !st; i++) {
                        const tf_batch *b;
                        st = tf_loader_next(l, &b);
                    }
                }
                *(pers ? &tp : &tr) += tf_now_s() - t0;
                tf_loader_close(l);
            }
        if (!st) {
            cJSON_AddNumberToObject(res, "epoch_s_persistent", tp / (o->rounds * epochs));
            cJSON_AddNumberToObject(res, "epoch_s_recreate", tr / (o->rounds * epochs));
            cJSON_AddNumberToObject(res, "persistent_vs_recreate", tr / tp);
            if (!o->json)
                printf("epochs of %d batches, 4 workers: persistent %.3f s, recreated %.3f s: "
                       "persistent_vs_recreate %.3f\n",
                       per, tp / (o->rounds * epochs), tr / (o->rounds * epochs), tr / tp);
        }
    }
    free(refs);
    tf_index_close(ix);
    TF_TRY(st);

    /* 5. index scan and RSS with 10 vs 200 tracks of --rss-seconds (hard links), default
     * loader settings, each in a fresh process */
    char small[512], big[512], cs[512], cb[512];
    snprintf(small, sizeof small, "%s/small", o->tmp);
    snprintf(big, sizeof big, "%s/big", o->tmp);
    snprintf(cs, sizeof cs, "%s/small.index", o->tmp);
    snprintf(cb, sizeof cb, "%s/big.index", o->tmp);
    tf_synth_opts so;
    tf_synth_defaults(&so);
    so.train_tracks = 10;
    so.test_tracks = 0;
    so.seconds = o->rss_seconds;
    so.seed = 8;
    if (!o->json)
        fprintf(stderr, "writing 10 x %.0f s synthetic tracks for the RSS measurement...\n",
                o->rss_seconds);
    TF_TRY(tf_synth_dataset(small, &so));
    TF_TRY(link_tracks(small, big, 200));
    const char *roots[2] = {small, big}, *caches[2] = {cs, cb};
    rss_result rr[2];
    const int64_t nb = 20;
    for (int k = 0; k < 2; k++) TF_TRY(child_rss(roots[k], caches[k], nb, &rr[k]));
    cJSON_AddNumberToObject(config, "rss_batches", (double)nb);
    cJSON_AddNumberToObject(config, "rss_track_seconds", o->rss_seconds);
    cJSON_AddNumberToObject(res, "index_scan_s_10_tracks", rr[0].scan_s);
    cJSON_AddNumberToObject(res, "index_scan_s_200_tracks", rr[1].scan_s);
    cJSON_AddNumberToObject(res, "rss_mb_index_10_tracks", rr[0].ix_kb / 1024.0);
    cJSON_AddNumberToObject(res, "rss_mb_index_200_tracks", rr[1].ix_kb / 1024.0);
    cJSON_AddNumberToObject(res, "index_rss_growth_mb", (rr[1].ix_kb - rr[0].ix_kb) / 1024.0);
    cJSON_AddNumberToObject(res, "rss_mb_10_tracks", rr[0].rss_kb / 1024.0);
    cJSON_AddNumberToObject(res, "rss_mb_200_tracks", rr[1].rss_kb / 1024.0);
    cJSON_AddNumberToObject(res, "rss_growth_mb", (rr[1].rss_kb - rr[0].rss_kb) / 1024.0);
    cJSON_AddNumberToObject(res, "peak_rss_growth_mb", (rr[1].hwm_kb - rr[0].hwm_kb) / 1024.0);
    if (!o->json)
        printf("index scan (no cache) of 10 / 200 tracks of %.0f s: %.2f s / %.2f s, VmRSS after "
               "it %.1f / %.1f MB; after %lld batches (4 workers, prefetch 2): %.1f / %.1f MB: "
               "rss_growth_mb %.1f\n",
               o->rss_seconds, rr[0].scan_s, rr[1].scan_s, rr[0].ix_kb / 1024.0,
               rr[1].ix_kb / 1024.0, (long long)nb, rr[0].rss_kb / 1024.0, rr[1].rss_kb / 1024.0,
               (rr[1].rss_kb - rr[0].rss_kb) / 1024.0);
    return TF_OK;
}

static const char USAGE[] =
    "usage: tfswa bench data [--json] [--chunks 2000] [--tracks 10] [--seconds 30] [--rounds 3]\n"
    "                        [--rss-seconds 234]\n"
    "Measure the training-data path (loader vs plain libsndfile reads, silence filter,\n"
    "index scan and RSS with 200 tracks) on a synthetic dataset in a temporary folder.\n";

int bench_data(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    if (argc == 5 && !strcmp(argv[1], "--rss-child"))
        return rss_child(argv[2], argv[3], strtoll(argv[4], NULL, 10));
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    opts o;
    memset(&o, 0, sizeof o);
    o.json = cli_flag_bool(&a, "json", 0, &st);
    o.chunks = cli_flag_int(&a, "chunks", 2000, &st);
    o.tracks = (int)cli_flag_int(&a, "tracks", 10, &st);
    o.seconds = cli_flag_double(&a, "seconds", 30, &st);
    o.rounds = (int)cli_flag_int(&a, "rounds", 3, &st);
    o.rss_seconds = cli_flag_double(&a, "rss-seconds", 234, &st);
    if (!st) st = cli_check_unused(&a);
    if (st) return cli_fail(st);
    if (o.chunks < 16 || o.tracks < 1 || o.seconds < 7 || o.rounds < 1 || o.rounds > 64 ||
        !(o.rss_seconds >= 7)) {
        fprintf(stderr, "tfswa: bench data: --chunks >= 16, --tracks >= 1, --seconds >= 7, "
                        "--rounds in [1, 64], --rss-seconds >= 7\n");
        return 2;
    }
    const char *td = getenv("TMPDIR");
    snprintf(o.tmp, sizeof o.tmp, "%s/tfswa-bench-data-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(o.tmp)) return cli_fail(tf_err(TF_EUSER, "%s: %s", o.tmp, strerror(errno)));
    cJSON *config, *res, *root = bench_json_open("data", 0, &config, &res);
    st = root ? bench(&o, config, res) : tf_err(TF_EINTERNAL, "bench data: out of memory");
    tf_remove_tree(o.tmp);
    if (st) {
        cJSON_Delete(root);
        return cli_fail(st);
    }
    if (!o.json) {
        cJSON_Delete(root);
        return 0;
    }
    return bench_json_emit(root) ? cli_fail(tf_err(TF_EINTERNAL, "bench data: out of memory")) : 0;
}
