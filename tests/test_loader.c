/* Sampler, augmentation and threaded loader on tiny fixtures: 4 kHz float WAV stems
 * with long silences, written under a temp dir; the index is built by hand here from
 * the files as read back (envelope = mean |x| per 0.25 s block over both channels). */
#include <errno.h>
#include <linux/capability.h>
#include <sndfile.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audio/audio.h"
#include "data/augment.h"
#include "data/index.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "test.h"
#include "util/rng.h"

#define RATE 4000
#define EB   (RATE / 4)
#define NS   3    /* stems */
#define NT   5    /* tracks: 4 train + 1 test */
#define SEG  0.5  /* seconds */
#define NF   2000 /* frames per chunk */
#define THR  0.05 /* silence threshold of the silence tests */

static const int64_t track_frames[NT] = {16000, 12000, 9000, 1500, 8000};
static const char *stem_names[NS] = {"vocals", "drums", "bass"};

typedef struct {
    char root[256];
    tf_index ix;
    tf_config cfg;
    float *data[NT][NS]; /* (2, frames) as read back from the files */
} fixture;

/* Regions of silence (exact zero, long), quiet noise (mean |x| 5e-4) and loud noise
 * (mean |x| 0.2). Track 1, stem 0 is mono. all_silent_stem >= 0: that stem is zero. */
static void render(float *x, int ch, int64_t n, int t, int s, int all_silent_stem) {
    tf_rng r;
    tf_rng_seed(&r, 99, (uint64_t)t, (uint64_t)s, 0);
    int64_t pos = 0;
    while (pos < n) {
        double u = tf_rng_uniform(&r);
        int64_t len;
        double amp;
        if (u < 0.4)
            len = 1500 + (int64_t)tf_rng_below(&r, 3000), amp = 0;
        else if (u < 0.55)
            len = 500 + (int64_t)tf_rng_below(&r, 1500), amp = 0.001;
        else
            len = 200 + (int64_t)tf_rng_below(&r, 1200), amp = 0.4;
        if (s == all_silent_stem) amp = 0;
        for (int64_t i = pos; i < pos + len && i < n; i++)
            for (int c = 0; c < ch; c++)
                x[(int64_t)c * n + i] = (float)(amp * (2 * tf_rng_uniform(&r) - 1));
        pos += len;
    }
}

static void cfg_init(tf_config *c, const char *root) {
    tf_config_defaults(c);
    snprintf(c->root, sizeof c->root, "%s", root);
    c->sample_rate = RATE;
    c->n_sources = c->n_targets = NS;
    for (int s = 0; s < NS; s++) {
        snprintf(c->sources[s], TF_NAME_MAX, "%s", stem_names[s]);
        snprintf(c->targets[s], TF_NAME_MAX, "%s", stem_names[s]);
    }
    c->segment_seconds = SEG;
    c->use_efficient_loading = 1;
    c->min_mean_abs = 0;
    c->num_workers = 0;
    c->prefetch_factor = 2;
    c->persistent_workers = 1;
    c->pin_memory = 0;
    c->sampling = TF_SAMPLE_REMIX;
    c->aug_gain = c->aug_channel_swap = c->aug_polarity = 0; /* tests switch them on */
    c->aug_mix_same_source = 0;
    c->aug_gain_min_db = -6;
    c->aug_gain_max_db = 6;
    c->batch_size = 4;
}

static int fixture_pcm16; /* fixture files as 16-bit PCM instead of float */

static int fixture_make(fixture *f, int all_silent_stem) {
    memset(f, 0, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/tfswa_loader_XXXXXX");
    if (!mkdtemp(f->root)) return 0;
    char p[512];
    snprintf(p, sizeof p, "%s/train", f->root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/test", f->root);
    mkdir(p, 0755);
    tf_index *ix = &f->ix;
    ix->n_tracks = NT;
    ix->tracks = calloc(NT, sizeof *ix->tracks);
    ix->n_stems = NS;
    ix->sample_rate = RATE;
    ix->env_block = EB;
    for (int s = 0; s < NS; s++) snprintf(ix->stem_names[s], TF_NAME_MAX, "%s", stem_names[s]);
    for (int t = 0; t < NT; t++) {
        tf_track *tr = &ix->tracks[t];
        const int64_t n = track_frames[t];
        tr->split = t < 4 ? TF_SPLIT_TRAIN : TF_SPLIT_TEST;
        char name[32];
        snprintf(name, sizeof name, "track%d", t);
        tr->name = strdup(name);
        snprintf(p, sizeof p, "%s/%s/%s", f->root, t < 4 ? "train" : "test", name);
        mkdir(p, 0755);
        tr->dir = strdup(p);
        tr->frames = n;
        for (int s = 0; s < NS; s++) {
            const int ch = (t == 1 && s == 0) ? 1 : 2;
            float *x = calloc((size_t)(2 * n), sizeof *x);
            render(x, ch, n, t, s, all_silent_stem);
            snprintf(p, sizeof p, "%s/%s.wav", tr->dir, stem_names[s]);
            if (tf_audio_write_file(p, x, ch, n, RATE, TF_FMT_WAV,
                                    fixture_pcm16 ? TF_SUBTYPE_PCM16 : TF_SUBTYPE_FLOAT) != TF_OK)
                return 0;
            free(x);
            tf_audio_info info;
            if (tf_audio_read_all(p, &f->data[t][s], &info) != TF_OK) return 0;
            tf_stem_file *sf = &tr->stems[s];
            sf->path = strdup(p);
            sf->frames = n;
            sf->rate = RATE;
            sf->channels = ch;
            sf->n_env = (n + EB - 1) / EB;
            sf->env = calloc((size_t)sf->n_env, sizeof(float));
            const float *d = f->data[t][s];
            for (int64_t j = 0; j < sf->n_env; j++) {
                int64_t a = j * EB, b = a + EB < n ? a + EB : n;
                double acc = 0;
                for (int64_t i = a; i < b; i++) acc += fabsf(d[i]) + fabsf(d[n + i]);
                sf->env[j] = (float)(acc / (2.0 * (double)(b - a)));
            }
        }
    }
    cfg_init(&f->cfg, f->root);
    return 1;
}

static void fixture_free(fixture *f) {
    for (int t = 0; t < f->ix.n_tracks; t++) {
        tf_track *tr = &f->ix.tracks[t];
        for (int s = 0; s < NS; s++) {
            if (tr->stems[s].path) remove(tr->stems[s].path);
            free(tr->stems[s].path);
            free(tr->stems[s].env);
            free(f->data[t][s]);
        }
        if (tr->dir) rmdir(tr->dir);
        free(tr->dir);
        free(tr->name);
    }
    free(f->ix.tracks);
    char p[512];
    snprintf(p, sizeof p, "%s/train", f->root);
    rmdir(p);
    snprintf(p, sizeof p, "%s/test", f->root);
    rmdir(p);
    rmdir(f->root);
}

/* chunk (2, NF) of the file data at (t, s, off), zero past the end */
static void file_chunk(const fixture *f, int t, int s, int64_t off, float *out) {
    const int64_t n = track_frames[t];
    for (int c = 0; c < 2; c++)
        for (int64_t i = 0; i < NF; i++) {
            int64_t k = off + i;
            out[c * NF + i] = k >= 0 && k < n ? f->data[t][s][c * n + k] : 0.f;
        }
}

static double mean_abs(const float *x, int64_t n) {
    double a = 0;
    for (int64_t i = 0; i < n; i++) a += fabsf(x[i]);
    return a / (double)n;
}

static const float *stem_of(const tf_batch *b, int item, int s) {
    return b->stems + ((size_t)item * b->S + s) * 2 * (size_t)b->N;
}

/* ---- independent check of delivered batches ----
 * From the provenance in b->info only, re-read the source frames of every delivered stem
 * with plain libsndfile (sf_open, sf_seek, sf_readf_float: not the loader's reader) and
 * count (1) chunks whose source frames are quiet: remix, mean |x| of each stem chunk as
 * read (before gain) and of each same-source partner < thr; aligned, mean |sum of the
 * item's stem chunks| < thr, and partners; (2) samples that differ from what the
 * provenance says was delivered: x = swap(((src [+ partner]) * 1/sqrt 2) * gain), and
 * the mixture = sum of the delivered stems in stem order. */

/* frames [off, off + n) of path as planar (2, n) floats, zero outside the file, mono
 * duplicated; 0 on any libsndfile failure */
static int sf_frames(const char *path, int64_t off, int64_t n, float *out) {
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *sf = sf_open(path, SFM_READ, &si);
    if (!sf) return 0;
    memset(out, 0, sizeof(float) * 2 * (size_t)n);
    const int64_t a = off < 0 ? 0 : off, e = off + n < si.frames ? off + n : si.frames;
    int ok = 1;
    if (e > a) {
        const int ch = si.channels;
        float *il = malloc(sizeof(float) * (size_t)(ch * (e - a)));
        ok = il && sf_seek(sf, a, SEEK_SET) == a && sf_readf_float(sf, il, e - a) == e - a;
        for (int64_t i = 0; ok && i < e - a; i++) {
            out[a - off + i] = il[i * ch];
            out[n + a - off + i] = il[i * ch + ch - 1];
        }
        free(il);
    }
    sf_close(sf);
    return ok;
}

static double mean_abs2(const float *x, int64_t n) {
    double a = 0;
    for (int64_t i = 0; i < n; i++) a += fabsf(x[i]);
    return a / (double)n;
}

typedef struct {
    int64_t chunks, silent, bad, io_errors;
} indep;

static void indep_check(const tf_index *ix, const tf_batch *b, int aligned, double thr, indep *o) {
    const int64_t N = b->N, cn = 2 * N;
    float *src = malloc(sizeof(float) * cn), *par = malloc(sizeof(float) * cn);
    float *y = malloc(sizeof(float) * cn), *mix = malloc(sizeof(float) * cn);
    float *rawmix = malloc(sizeof(float) * cn);
    for (int it = 0; it < b->B; it++) {
        for (int s = 0; s < b->S; s++) {
            const tf_chunk_info *in = b->info + it * b->S + s;
            const float *x = b->stems + ((size_t)it * b->S + s) * cn;
            o->chunks++;
            if (!sf_frames(ix->tracks[in->track].stems[s].path, in->offset, N, src)) {
                o->io_errors++;
                continue;
            }
            if (!aligned && mean_abs2(src, cn) < thr) o->silent++;
            for (int64_t k = 0; k < cn; k++) rawmix[k] = s ? rawmix[k] + src[k] : src[k];
            memcpy(y, src, sizeof(float) * cn);
            if (in->mix_track >= 0) {
                if (!sf_frames(ix->tracks[in->mix_track].stems[s].path, in->mix_offset, N, par)) {
                    o->io_errors++;
                    continue;
                }
                if (mean_abs2(par, cn) < thr) o->silent++;
                for (int64_t k = 0; k < cn; k++) y[k] = (y[k] + par[k]) * 0.70710678118654752f;
            }
            const float g = in->gain;
            for (int64_t k = 0; k < N; k++) {
                const float L = y[k], R = y[N + k];
                const float wl = in->swapped ? R * g : L * g, wr = in->swapped ? L * g : R * g;
                o->bad += memcmp(&wl, &x[k], sizeof wl) != 0;
                o->bad += memcmp(&wr, &x[N + k], sizeof wr) != 0;
            }
            for (int64_t k = 0; k < cn; k++) mix[k] = s ? mix[k] + x[k] : x[k];
        }
        if (aligned && mean_abs2(rawmix, cn) < thr) o->silent++;
        o->bad += memcmp(mix, b->mixture + (size_t)it * cn, sizeof(float) * cn) != 0;
    }
    free(src), free(par), free(y), free(mix), free(rawmix);
}

/* n_steps batches of cfg through indep_check at threshold thr; fused = 0: the reference
 * path. Copies the
 * batches (stems then mixture) into out when out. */
/* A batch's stems (B, S, 2, N) then its mixture (B, 2, N), as one array (the loader keeps
 * the mixture of the held batch in a buffer of its own) */
static void copy_batch(float *dst, const tf_batch *b) {
    const size_t ns = (size_t)b->B * b->S * 2 * (size_t)b->N;
    memcpy(dst, b->stems, ns * sizeof(float));
    memcpy(dst + ns, b->mixture, (size_t)b->B * 2 * (size_t)b->N * sizeof(float));
}

static int same_batch(const tf_batch *b, const float *ref) {
    const size_t ns = (size_t)b->B * b->S * 2 * (size_t)b->N;
    return !memcmp(b->stems, ref, ns * sizeof(float)) &&
           !memcmp(b->mixture, ref + ns, (size_t)b->B * 2 * (size_t)b->N * sizeof(float));
}

static int run_indep(const tf_index *ix, const tf_config *cfg, int n_steps, int fused, double thr,
                     float *out, indep *o, tf_loader_counters *cnt) {
    memset(o, 0, sizeof *o);
    tf_loader *l;
    if (tf_loader_open(&l, cfg, ix, 7) != TF_OK) return 0;
    tf_loader_set_fused(l, fused);
    int ok = tf_loader_start_epoch(l, 0, 0, n_steps) == TF_OK;
    for (int i = 0; i < n_steps && ok; i++) {
        const tf_batch *b;
        if (tf_loader_next(l, &b) != TF_OK) {
            fprintf(stderr, "  next: %s\n", tf_errmsg());
            ok = 0;
            break;
        }
        indep_check(ix, b, cfg->sampling == TF_SAMPLE_ALIGNED, thr, o);
        const size_t per = (size_t)b->B * (b->S + 1) * 2 * (size_t)b->N;
        if (out) copy_batch(out + (size_t)i * per, b);
    }
    if (cnt) tf_loader_stats(l, cnt);
    tf_loader_close(l);
    return ok;
}

/* Run n_steps of one epoch and copy every batch (stems then mixture) into out. */
static int collect(const fixture *f, const tf_config *cfg, int epochs, int n_steps, float *out,
                   tf_loader_counters *cnt) {
    tf_loader *l;
    if (tf_loader_open(&l, cfg, &f->ix, 7) != TF_OK) {
        fprintf(stderr, "  open: %s\n", tf_errmsg());
        return 0;
    }
    const size_t per = (size_t)cfg->batch_size * (NS + 1) * 2 * NF;
    int ok = 1;
    for (int e = 0; e < epochs && ok; e++) {
        if (tf_loader_start_epoch(l, e, (int64_t)e * n_steps, n_steps) != TF_OK) ok = 0;
        for (int i = 0; i < n_steps && ok; i++) {
            const tf_batch *b;
            if (tf_loader_next(l, &b) != TF_OK || b->step != (int64_t)e * n_steps + i) {
                ok = 0;
                break;
            }
            copy_batch(out + ((size_t)e * n_steps + i) * per, b);
        }
    }
    if (cnt) tf_loader_stats(l, cnt);
    tf_loader_close(l);
    return ok;
}

/* ---- tests ---- */

static void test_remix_exact_samples_padding_mono(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    tf_loader *l;
    CHECK(tf_loader_open(&l, &f.cfg, &f.ix, 1) == TF_OK);
    CHECK(tf_loader_start_epoch(l, 0, 0, 40) == TF_OK);
    float *ref = malloc(sizeof(float) * 2 * NF);
    int bad = 0, mono_seen = 0, differ = 0, test_split = 0;
    for (int i = 0; i < 40; i++) {
        const tf_batch *b;
        CHECK(tf_loader_next(l, &b) == TF_OK);
        CHECK(b->step == i && b->N == NF && b->S == NS && b->B == 4);
        for (int it = 0; it < b->B; it++) {
            const tf_chunk_info *in = b->info + it * NS;
            if (in[0].track != in[1].track || in[0].offset != in[1].offset) differ++;
            for (int s = 0; s < NS; s++) {
                const int t = in[s].track;
                if (f.ix.tracks[t].split != TF_SPLIT_TRAIN) test_split++;
                const int64_t maxoff = track_frames[t] > NF ? track_frames[t] - NF : 0;
                if (in[s].offset < 0 || in[s].offset > maxoff) bad++;
                file_chunk(&f, t, s, in[s].offset, ref);
                if (memcmp(ref, stem_of(b, it, s), sizeof(float) * 2 * NF)) bad++;
                if (t == 1 && s == 0) {
                    mono_seen++;
                    const float *x = stem_of(b, it, s);
                    bad += memcmp(x, x + NF, sizeof(float) * NF) != 0;
                }
            }
            /* mixture == sum of stems, in stem order */
            const float *m = b->mixture + (size_t)it * 2 * NF;
            for (int64_t k = 0; k < 2 * NF; k++) {
                float acc = stem_of(b, it, 0)[k];
                for (int s = 1; s < NS; s++) acc += stem_of(b, it, s)[k];
                bad += acc != m[k];
            }
        }
    }
    CHECKF(bad == 0, "%d mismatches", bad);
    CHECK(mono_seen > 0);
    CHECK(differ > 0); /* remix: stems of an item come from different places */
    CHECK(test_split == 0);
    tf_loader_counters c;
    tf_loader_stats(l, &c);
    CHECK(c.delivered_chunks == 40 * 4 * NS && c.stem_reads == c.delivered_chunks);
    CHECK(c.redraws == 0 && c.batches == 40);
    free(ref);
    tf_loader_close(l);

    /* a segment longer than every track: read from 0, exact samples, then zeros */
    tf_config cfg = f.cfg;
    cfg.segment_seconds = 4.5;
    const int64_t N = 18000;
    int seen[NT] = {0};
    for (int eff = 0; eff < 2; eff++) {
        cfg.use_efficient_loading = eff;
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_OK);
        CHECK(tf_loader_start_epoch(l, 0, 0, 6) == TF_OK);
        for (int i = 0; i < 6; i++) {
            const tf_batch *b;
            CHECK(tf_loader_next(l, &b) == TF_OK);
            CHECK(b->N == N);
            for (int it = 0; it < b->B; it++)
                for (int s = 0; s < NS; s++) {
                    const tf_chunk_info *in = b->info + it * NS + s;
                    const int t = in->track;
                    const int64_t n = track_frames[t];
                    const float *x = stem_of(b, it, s);
                    seen[t]++;
                    bad += in->offset != 0;
                    for (int c = 0; c < 2; c++) {
                        for (int64_t k = 0; k < n; k++)
                            bad += x[c * N + k] != f.data[t][s][c * n + k];
                        for (int64_t k = n; k < N; k++) bad += x[c * N + k] != 0.f;
                    }
                }
        }
        tf_loader_close(l);
    }
    CHECKF(bad == 0, "%d mismatches with padding", bad);
    CHECK(seen[0] > 0 && seen[3] > 0 && seen[4] == 0);
    fixture_free(&f);
}

static void test_silence_filter(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    /* without the filter the fixture delivers many silent chunks (counted from the files) */
    const int steps = 60;
    indep o;
    CHECK(run_indep(&f.ix, &f.cfg, steps, 1, THR, NULL, &o, NULL));
    CHECK(o.io_errors == 0 && o.bad == 0 && o.chunks == steps * 4 * NS);
    CHECKF(o.silent > steps * 4 * NS / 10, "only %lld of %lld chunks quiet without filter",
           (long long)o.silent, (long long)o.chunks);
    /* with it: none, and (almost) no read wasted; chunk reads, whole-file reads, fused */
    for (int mode = 0; mode < 3; mode++) {
        tf_config cfg = f.cfg;
        cfg.min_mean_abs = THR;
        cfg.use_efficient_loading = mode > 0;
        tf_loader_counters c;
        CHECK(run_indep(&f.ix, &cfg, steps, mode == 2, THR, NULL, &o, &c));
        CHECK(o.io_errors == 0 && o.chunks == steps * 4 * NS);
        CHECKF(o.silent == 0, "mode %d: %lld of %lld delivered chunks silent in the files", mode,
               (long long)o.silent, (long long)o.chunks);
        CHECKF(o.bad == 0, "mode %d: %lld samples differ from the files", mode, (long long)o.bad);
        CHECK(c.delivered_chunks == steps * 4 * NS);
        CHECKF(c.redraws <= c.delivered_chunks / 100, "%lld redraws", (long long)c.redraws);
        CHECK(c.stem_reads == c.delivered_chunks + c.redraws);
    }
    /* the sampler only proposes loud chunks: the true mean of every admissible start
     * of stem 0 (checked exhaustively through a tiny draw loop) is >= THR */
    tf_config cfg = f.cfg;
    cfg.min_mean_abs = THR;
    tf_sampler *sp;
    CHECK(tf_sampler_open(&sp, &cfg, &f.ix, TF_SPLIT_TRAIN) == TF_OK);
    float *ref = malloc(sizeof(float) * 2 * NF);
    int bad = 0;
    for (int s = 0; s < NS; s++) {
        CHECK(tf_sampler_admissible(sp, s) > 0);
        for (int i = 0; i < 400; i++) {
            tf_rng r;
            tf_rng_seed(&r, 5, (uint64_t)i, 0, (uint64_t)s);
            tf_draw d;
            tf_sampler_draw_stem(sp, &r, s, &d);
            file_chunk(&f, d.track, s, d.offset, ref);
            bad += mean_abs(ref, 2 * NF) < THR;
            bad += f.ix.tracks[d.track].split != TF_SPLIT_TRAIN;
        }
    }
    CHECK(bad == 0);
    free(ref);
    tf_sampler_close(sp);
    fixture_free(&f);
}

/* The fused pass delivers the reference path's bits: float and 16-bit files (the latter
 * through tf_audio_reader_raw16, the mono stem through the block path), remix and aligned,
 * with and without every augmentation, and with a stale index: the envelopes of track 0
 * say "loud" everywhere, so chunks, partners and items get drawn from its silences and
 * must be rejected by the loader's own check and redone. The independent check from the
 * files finds no silent chunk and no wrong sample in either path. */
static void test_fused_same_as_reference(void) {
    const int steps = 16;
    const size_t per = 4 * (NS + 1) * 2 * NF;
    float *a = malloc(sizeof(float) * per * steps), *b = malloc(sizeof(float) * per * steps);
    for (int pcm = 0; pcm < 2; pcm++) {
        fixture f;
        fixture_pcm16 = pcm;
        CHECK(fixture_make(&f, -1));
        fixture_pcm16 = 0;
        for (int s = 0; s < NS; s++)
            for (int64_t j = 0; j < f.ix.tracks[0].stems[s].n_env; j++)
                f.ix.tracks[0].stems[s].env[j] = fmaxf(f.ix.tracks[0].stems[s].env[j], 1.f);
        for (int v = 0; v < 4; v++) {
            tf_config cfg = f.cfg;
            cfg.min_mean_abs = THR;
            cfg.sampling = v & 1 ? TF_SAMPLE_ALIGNED : TF_SAMPLE_REMIX;
            if (v & 2) {
                cfg.aug_gain = cfg.aug_channel_swap = cfg.aug_polarity = 1;
                cfg.aug_mix_same_source = 0.5;
            }
            indep o1, o2;
            tf_loader_counters c1, c2;
            memset(a, 0, sizeof(float) * per * steps);
            CHECK(run_indep(&f.ix, &cfg, steps, 1, THR, a, &o1, &c1));
            CHECK(run_indep(&f.ix, &cfg, steps, 0, THR, b, &o2, &c2));
            CHECKF(memcmp(a, b, sizeof(float) * per * steps) == 0,
                   "pcm16 %d variant %d: fused and reference batches differ", pcm, v);
            CHECKF(o1.silent == 0 && o2.silent == 0, "pcm16 %d variant %d: %lld / %lld silent", pcm,
                   v, (long long)o1.silent, (long long)o2.silent);
            CHECKF(o1.bad == 0 && o2.bad == 0 && o1.io_errors == 0 && o2.io_errors == 0,
                   "pcm16 %d variant %d: %lld / %lld wrong samples", pcm, v, (long long)o1.bad,
                   (long long)o2.bad);
            CHECKF(c1.redraws > 0 && c1.redraws == c2.redraws,
                   "pcm16 %d variant %d: redraws %lld vs %lld", pcm, v, (long long)c1.redraws,
                   (long long)c2.redraws);
            if (v & 2) CHECK(c1.mix_reads > 0);
        }
        fixture_free(&f);
    }
    free(a);
    free(b);
}

static void test_silent_stem_error(void) {
    fixture f;
    CHECK(fixture_make(&f, 2));
    tf_config cfg = f.cfg;
    cfg.min_mean_abs = 0.001;
    tf_loader *l = NULL;
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_EUSER);
    CHECK(l == NULL);
    CHECKF(strstr(tf_errmsg(), "'bass'") != NULL, "%s", tf_errmsg());
    cfg.min_mean_abs = 0; /* filter off: fine */
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_OK);
    tf_loader_close(l);
    fixture_free(&f);
}

static void test_aligned(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    for (int filt = 0; filt < 2; filt++) {
        tf_config cfg = f.cfg;
        cfg.sampling = TF_SAMPLE_ALIGNED;
        cfg.min_mean_abs = filt ? THR : 0;
        cfg.num_workers = 2;
        tf_loader *l;
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 3) == TF_OK);
        CHECK(tf_loader_start_epoch(l, 0, 0, 30) == TF_OK);
        float *ref = malloc(sizeof(float) * 2 * NF);
        int bad = 0, quiet_mix = 0, tracks_seen = 0;
        for (int i = 0; i < 30; i++) {
            const tf_batch *b;
            CHECK(tf_loader_next(l, &b) == TF_OK);
            for (int it = 0; it < b->B; it++) {
                const tf_chunk_info *in = b->info + it * NS;
                tracks_seen |= 1 << in[0].track;
                for (int s = 0; s < NS; s++) {
                    bad += in[s].track != in[0].track || in[s].offset != in[0].offset;
                    file_chunk(&f, in[s].track, s, in[s].offset, ref);
                    bad += memcmp(ref, stem_of(b, it, s), sizeof(float) * 2 * NF) != 0;
                }
                quiet_mix += mean_abs(b->mixture + (size_t)it * 2 * NF, 2 * NF) < THR;
            }
        }
        CHECK(bad == 0);
        CHECK(tracks_seen != 0 && (tracks_seen & (1 << 4)) == 0);
        if (filt) CHECKF(quiet_mix == 0, "%d quiet mixtures", quiet_mix);
        tf_loader_counters c;
        tf_loader_stats(l, &c);
        if (filt) CHECKF(c.redraws <= 12, "%lld redraws", (long long)c.redraws);
        free(ref);
        tf_loader_close(l);
        /* independently, from the files */
        indep o;
        CHECK(run_indep(&f.ix, &cfg, 30, 1, THR, NULL, &o, NULL));
        CHECK(o.io_errors == 0 && o.bad == 0 && o.chunks == 30 * 4 * NS);
        if (filt) CHECKF(o.silent == 0, "%lld quiet mixtures in the files", (long long)o.silent);
        if (!filt) CHECKF(o.silent > 0, "no quiet mixture without the filter");
    }
    fixture_free(&f);
}

static void test_augment(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    const int steps = 12;
    const size_t per = 4 * (NS + 1) * 2 * NF;
    float *a = malloc(sizeof(float) * per * steps), *b = malloc(sizeof(float) * per * steps);
    float *ref = malloc(sizeof(float) * 2 * NF), *ref2 = malloc(sizeof(float) * 2 * NF);
    /* every augmentation on: reproducible per (seed, step), threads or not */
    tf_config all = f.cfg;
    all.aug_gain = all.aug_channel_swap = all.aug_polarity = 1;
    all.aug_mix_same_source = 0.5;
    all.min_mean_abs = THR;
    CHECK(collect(&f, &all, 1, steps, a, NULL));
    all.num_workers = 3;
    CHECK(collect(&f, &all, 1, steps, b, NULL));
    CHECK(memcmp(a, b, sizeof(float) * per * steps) == 0);

    /* each one alone: the samples are exactly what it says */
    for (int which = 0; which < 4; which++) {
        tf_config cfg = f.cfg;
        if (which == 0) cfg.aug_polarity = 1;
        if (which == 1) cfg.aug_channel_swap = 1;
        if (which == 2) cfg.aug_gain = 1;
        if (which == 3) cfg.aug_mix_same_source = 1.0;
        tf_loader *l;
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 11) == TF_OK);
        CHECK(tf_loader_start_epoch(l, 0, 0, steps) == TF_OK);
        int bad = 0, on = 0, off = 0;
        float gmin = 1e9f, gmax = -1e9f;
        for (int i = 0; i < steps; i++) {
            const tf_batch *bt;
            CHECK(tf_loader_next(l, &bt) == TF_OK);
            for (int it = 0; it < bt->B; it++)
                for (int s = 0; s < NS; s++) {
                    const tf_chunk_info *in = bt->info + it * NS + s;
                    const float *x = stem_of(bt, it, s);
                    file_chunk(&f, in->track, s, in->offset, ref);
                    if (which == 0) {
                        const float sg = in->gain;
                        bad += !(sg == 1.f || sg == -1.f) || in->swapped || in->mix_track >= 0;
                        for (int k = 0; k < 2 * NF; k++) bad += x[k] != sg * ref[k];
                        on += sg<0, off += sg> 0;
                    } else if (which == 1) {
                        bad += in->gain != 1.f || in->mix_track >= 0;
                        for (int k = 0; k < NF; k++)
                            bad += in->swapped ? (x[k] != ref[NF + k] || x[NF + k] != ref[k])
                                               : (x[k] != ref[k] || x[NF + k] != ref[NF + k]);
                        on += in->swapped, off += !in->swapped;
                    } else if (which == 2) {
                        const float g = in->gain;
                        bad += in->swapped || !(g > 0);
                        if (g < gmin) gmin = g;
                        if (g > gmax) gmax = g;
                        for (int k = 0; k < 2 * NF; k++) bad += fabsf(x[k] - g * ref[k]) > 1e-7f;
                        on++;
                    } else {
                        bad += in->mix_track < 0 || in->gain != 1.f || in->swapped;
                        if (in->mix_track < 0) continue;
                        file_chunk(&f, in->mix_track, s, in->mix_offset, ref2);
                        for (int k = 0; k < 2 * NF; k++)
                            bad += fabsf(x[k] - (ref[k] + ref2[k]) * 0.70710678f) > 1e-6f;
                        on += in->mix_track != in->track || in->mix_offset != in->offset;
                    }
                }
        }
        CHECKF(bad == 0, "augmentation %d: %d mismatches", which, bad);
        if (which < 2) CHECKF(on > 5 && off > 5, "augmentation %d: on %d off %d", which, on, off);
        if (which == 2) {
            CHECK(gmin >= powf(10.f, -6.f / 20.f) * 0.9999f &&
                  gmax <= powf(10.f, 6.f / 20.f) * 1.0001f);
            CHECK(gmax / gmin > 1.5f);
        }
        if (which == 3) CHECK(on > 0);
        tf_loader_counters c;
        tf_loader_stats(l, &c);
        if (which == 3) CHECK(c.mix_reads == steps * 4 * NS && c.stem_reads == 2 * c.mix_reads);
        tf_loader_close(l);
    }
    /* switching gain on does not change the swap/polarity choices */
    tf_aug_info i1, i2;
    tf_config c1 = f.cfg, c2 = f.cfg;
    c1.aug_polarity = c2.aug_polarity = 1;
    c2.aug_gain = 1;
    float x1[8] = {1, 2, 3, 4, 5, 6, 7, 8}, x2[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int same = 1;
    for (int step = 0; step < 20; step++) {
        tf_augment_apply(&c1, 1, step, 0, 0, x1, 4, &i1);
        tf_augment_apply(&c2, 1, step, 0, 0, x2, 4, &i2);
        same &= (i1.gain < 0) == (i2.gain < 0);
    }
    CHECK(same);
    free(a);
    free(b);
    free(ref);
    free(ref2);
    fixture_free(&f);
}

static void test_workers_same_batches(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    const int steps = 7, epochs = 2;
    const size_t per = 4 * (NS + 1) * 2 * NF, tot = per * steps * epochs;
    float *ref = malloc(sizeof(float) * tot), *got = malloc(sizeof(float) * tot);
    tf_config cfg = f.cfg;
    cfg.min_mean_abs = THR;
    cfg.aug_gain = cfg.aug_channel_swap = cfg.aug_polarity = 1;
    cfg.aug_mix_same_source = 0.3;
    tf_loader_counters c;
    CHECK(collect(&f, &cfg, epochs, steps, ref, &c));
    CHECK(c.worker_starts == 0);
    const int workers[] = {1, 3, 3, 2};
    const int persistent[] = {1, 1, 0, 0};
    const int prefetch[] = {1, 2, 1, 3};
    for (int v = 0; v < 4; v++) {
        tf_config w = cfg;
        w.num_workers = workers[v];
        w.persistent_workers = persistent[v];
        w.prefetch_factor = prefetch[v];
        memset(got, 0, sizeof(float) * tot);
        CHECK(collect(&f, &w, epochs, steps, got, &c));
        CHECKF(memcmp(ref, got, sizeof(float) * tot) == 0, "variant %d differs", v);
        const int64_t starts = persistent[v] ? workers[v] : workers[v] * epochs;
        CHECKF(c.worker_starts == starts, "variant %d: %lld starts", v, (long long)c.worker_starts);
        CHECK(c.delivered_chunks == (int64_t)steps * epochs * 4 * NS);
    }
    /* the first step of an epoch is what counts, not the epoch number */
    tf_loader *l;
    cfg.num_workers = 2;
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 7) == TF_OK);
    CHECK(tf_loader_start_epoch(l, 5, steps + 3, 2) == TF_OK);
    const tf_batch *b;
    CHECK(tf_loader_next(l, &b) == TF_OK);
    CHECK(b->step == steps + 3 && same_batch(b, ref + per * (steps + 3)));
    CHECK(tf_loader_next(l, &b) == TF_OK);
    CHECK(tf_loader_next(l, &b) != TF_OK); /* past the epoch */
    tf_loader_close(l);
    free(ref);
    free(got);
    fixture_free(&f);
}

static void test_close_mid_epoch_and_restart(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    tf_config cfg = f.cfg;
    cfg.num_workers = 3;
    cfg.prefetch_factor = 3;
    cfg.min_mean_abs = THR;
    const size_t per = 4 * (NS + 1) * 2 * NF;
    float *ref = malloc(sizeof(float) * per * 4);
    cfg.num_workers = 0;
    CHECK(collect(&f, &cfg, 1, 4, ref, NULL));
    cfg.num_workers = 3;
    for (int persistent = 0; persistent < 2; persistent++) {
        cfg.persistent_workers = persistent;
        tf_loader *l;
        const tf_batch *b;
        /* abandon an epoch mid-way, start another: its batches are right */
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 7) == TF_OK);
        CHECK(tf_loader_start_epoch(l, 0, 100, 1000) == TF_OK);
        CHECK(tf_loader_next(l, &b) == TF_OK && b->step == 100);
        CHECK(tf_loader_start_epoch(l, 1, 0, 4) == TF_OK);
        for (int i = 0; i < 4; i++) {
            CHECK(tf_loader_next(l, &b) == TF_OK && b->step == i);
            CHECK(same_batch(b, ref + per * i));
        }
        /* close while workers are busy filling a long epoch */
        CHECK(tf_loader_start_epoch(l, 2, 0, 100000) == TF_OK);
        CHECK(tf_loader_next(l, &b) == TF_OK);
        tf_loader_close(l);
        /* close right after start, before any batch is taken */
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 7) == TF_OK);
        CHECK(tf_loader_start_epoch(l, 0, 0, 100000) == TF_OK);
        tf_loader_close(l);
        /* close without an epoch */
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 7) == TF_OK);
        CHECK(tf_loader_next(l, &b) != TF_OK);
        tf_loader_close(l);
    }
    free(ref);
    fixture_free(&f);
}

static void test_full_track_mode_same(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    const int steps = 10;
    const size_t per = 4 * (NS + 1) * 2 * NF;
    float *a = malloc(sizeof(float) * per * steps), *b = malloc(sizeof(float) * per * steps);
    tf_config cfg = f.cfg;
    cfg.min_mean_abs = THR;
    cfg.aug_polarity = 1;
    tf_loader_counters ca, cb;
    CHECK(collect(&f, &cfg, 1, steps, a, &ca));
    cfg.use_efficient_loading = 0;
    CHECK(collect(&f, &cfg, 1, steps, b, &cb));
    CHECK(memcmp(a, b, sizeof(float) * per * steps) == 0);
    CHECK(ca.file_opens <= 3 * 4 && cb.file_opens == 0);
    CHECK(ca.stem_reads == cb.stem_reads);
    free(a);
    free(b);
    fixture_free(&f);
}

static void test_read_error_reported(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    tf_config cfg = f.cfg;
    cfg.num_workers = 2;
    char gone[512];
    snprintf(gone, sizeof gone, "%s", f.ix.tracks[0].stems[1].path);
    remove(gone);
    tf_loader *l;
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 7) == TF_OK);
    CHECK(tf_loader_start_epoch(l, 0, 0, 50) == TF_OK);
    tf_status st = TF_OK;
    for (int i = 0; i < 50 && st == TF_OK; i++) {
        const tf_batch *b;
        st = tf_loader_next(l, &b);
    }
    CHECK(st == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), gone) != NULL, "%s", tf_errmsg());
    tf_loader_close(l);
    fixture_free(&f);
}

/* A stem rewritten with a NaN after indexing: the batch never reaches the caller, the error
 * names the file; both paths (the reference path and the fused one). */
static void test_nonfinite_after_index(void) {
    for (int fused = 0; fused < 2; fused++) {
        fixture f;
        CHECK(fixture_make(&f, -1));
        tf_config cfg = f.cfg;
        const tf_track *tr = &f.ix.tracks[2];
        const int64_t n = tr->frames;
        float *x = malloc(sizeof(float) * 2 * (size_t)n); /* (2, n): 0.1 everywhere, one NaN */
        CHECK(x != NULL);
        if (!x) return;
        for (int64_t i = 0; i < 2 * n; i++) x[i] = 0.1f;
        x[n + n / 2] = NAN;
        CHECK(tf_audio_write_file(tr->stems[1].path, x, 2, n, RATE, TF_FMT_WAV, TF_SUBTYPE_FLOAT) ==
              TF_OK);
        free(x);
        tf_loader *l;
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 7) == TF_OK);
        tf_loader_set_fused(l, fused);
        CHECK(tf_loader_start_epoch(l, 0, 0, 60) == TF_OK);
        tf_status st = TF_OK;
        int delivered_nan = 0;
        for (int i = 0; i < 60 && st == TF_OK; i++) {
            const tf_batch *b;
            st = tf_loader_next(l, &b);
            if (st) break;
            for (int64_t k = 0; k < (int64_t)b->B * 2 * b->N; k++)
                delivered_nan += !isfinite(b->mixture[k]);
        }
        CHECK(delivered_nan == 0);
        CHECKF(st == TF_EUSER, "fused %d: status %d", fused, st);
        CHECKF(strstr(tf_errmsg(), tr->stems[1].path) && strstr(tf_errmsg(), "non-finite"), "%s",
               tf_errmsg());
        tf_loader_close(l);
        fixture_free(&f);
    }
}

static void test_bad_config(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    tf_loader *l = NULL;
    tf_config cfg = f.cfg;
    cfg.num_workers = -1;
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_EUSER && strstr(tf_errmsg(), "num_workers"));
    cfg = f.cfg;
    cfg.prefetch_factor = 0;
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_EUSER && strstr(tf_errmsg(), "prefetch_factor"));
    cfg = f.cfg;
    cfg.aug_mix_same_source = 1.5;
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_EUSER && strstr(tf_errmsg(), "mix_same_source"));
    cfg = f.cfg;
    cfg.sample_rate = 8000;
    CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_EUSER && strstr(tf_errmsg(), "sample_rate"));
    CHECK(l == NULL);
    fixture_free(&f);
}

/* pin_memory: pinned when allowed; when mlock fails the loader works unpinned and
 * counts the failure (checked in a child without CAP_IPC_LOCK and RLIMIT_MEMLOCK 0). */
static void test_pin_memory(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    tf_config cfg = f.cfg;
    cfg.pin_memory = 1;
    cfg.num_workers = 1;
    tf_loader *l;
    tf_loader_counters c;
    struct rlimit rl;
    getrlimit(RLIMIT_MEMLOCK, &rl);
    if (geteuid() == 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (1 << 20)) {
        CHECK(tf_loader_open(&l, &cfg, &f.ix, 1) == TF_OK);
        tf_loader_stats(l, &c);
        CHECK(c.pinned_bytes == c.batch_bytes && c.pin_failures == 0 && c.batch_bytes > 0);
        tf_loader_close(l);
    }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* sanitizers intercept mlock and pretend it succeeds: the failure is not testable */
    fixture_free(&f);
    return;
#endif
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) == 0) {
            d[0].effective &= ~(1u << CAP_IPC_LOCK);
            d[0].permitted &= ~(1u << CAP_IPC_LOCK);
            syscall(SYS_capset, &h, d);
        }
        struct rlimit zero = {0, 0};
        setrlimit(RLIMIT_MEMLOCK, &zero);
        int code = 10;
        if (tf_loader_open(&l, &cfg, &f.ix, 1) == TF_OK) {
            tf_loader_stats(l, &c);
            code = 11;
            const tf_batch *b;
            if (c.pin_failures == 1 && c.pinned_bytes == 0 &&
                tf_loader_start_epoch(l, 0, 0, 2) == TF_OK && tf_loader_next(l, &b) == TF_OK)
                code = 0;
            tf_loader_close(l);
        }
        _exit(code);
    }
    int ws = 0;
    CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
    CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %d", ws);
    fixture_free(&f);
}

/* The reader's 16-bit PCM path (sf_readf_short, scaled by 1/32768) returns exactly what
 * sf_readf_float returns, stereo and mono, WAV and FLAC, with padding on both sides. */
static void test_reader_pcm16_exact(void) {
    char dir[] = "/tmp/tfswa_pcm16_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const int64_t n = 10000;
    float *x = malloc(sizeof(float) * 2 * n), *got = malloc(sizeof(float) * 2 * 3000);
    float *ref = malloc(sizeof(float) * 2 * n);
    tf_rng r;
    tf_rng_seed(&r, 1, 2, 3, 4);
    for (int64_t i = 0; i < 2 * n; i++) x[i] = (float)tf_rng_range(&r, -1.2, 1.2);
    x[0] = -1.f, x[1] = 32767.f / 32768.f, x[2] = 0.f, x[3] = -1.f / 32768.f;
    int bad = 0;
    for (int v = 0; v < 4; v++) {
        const int ch = 1 + v % 2, flac = v / 2;
        char p[128];
        snprintf(p, sizeof p, "%s/x%d.%s", dir, ch, flac ? "flac" : "wav");
        CHECK(tf_audio_write_file(p, x, ch, n, RATE, flac ? TF_FMT_FLAC : TF_FMT_WAV,
                                  TF_SUBTYPE_PCM16) == TF_OK);
        SF_INFO si;
        memset(&si, 0, sizeof si);
        SNDFILE *sf = sf_open(p, SFM_READ, &si);
        CHECK(sf != NULL && si.frames == n);
        float *il = malloc(sizeof(float) * (size_t)ch * n);
        CHECK(sf_readf_float(sf, il, n) == n);
        sf_close(sf);
        for (int64_t i = 0; i < n; i++) {
            ref[i] = il[i * ch];
            ref[n + i] = il[i * ch + ch - 1];
        }
        free(il);
        tf_audio_reader *rd;
        CHECK(tf_audio_reader_open(&rd, p) == TF_OK);
        const int64_t offs[] = {0, 1234, -500, n - 1000, 7000, 3};
        for (int k = 0; k < 6; k++) {
            int64_t nr = -1;
            CHECK(tf_audio_reader_chunk(rd, offs[k], 3000, got, 3000, &nr) == TF_OK);
            for (int c = 0; c < 2; c++)
                for (int64_t i = 0; i < 3000; i++) {
                    int64_t j = offs[k] + i;
                    float want = j >= 0 && j < n ? ref[c * n + j] : 0.f;
                    bad += memcmp(&got[c * 3000 + i], &want, sizeof want) != 0;
                }
        }
        tf_audio_reader_close(rd);
        remove(p);
    }
    CHECKF(bad == 0, "%d samples differ from sf_readf_float", bad);
    free(x);
    free(got);
    free(ref);
    rmdir(dir);
}

/* The same fixture through the real index (tf_index_open): envelopes agree with ours and
 * the loader delivers no silent chunk from it. */
static void test_real_index(void) {
    fixture f;
    CHECK(fixture_make(&f, -1));
    tf_config cfg = f.cfg;
    cfg.valid_fraction = 0;
    cfg.min_mean_abs = THR;
    char cache[512];
    snprintf(cache, sizeof cache, "%s/index.cache", f.root);
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, &cfg, cache);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) {
        fixture_free(&f);
        return;
    }
    CHECK(ix->n_stems == NS && ix->env_block == EB && ix->n_tracks == NT);
    int env_bad = 0;
    for (int t = 0; t < ix->n_tracks; t++) {
        const tf_track *tr = &ix->tracks[t];
        int k = -1; /* same track in the fixture, by folder name */
        for (int j = 0; j < NT; j++)
            if (!strcmp(f.ix.tracks[j].name, tr->name)) k = j;
        CHECK(k >= 0 && tr->split == f.ix.tracks[k].split && tr->frames == track_frames[k]);
        if (k < 0) continue;
        for (int s = 0; s < NS; s++) {
            CHECK(tr->stems[s].n_env == f.ix.tracks[k].stems[s].n_env);
            for (int64_t j = 0; j < tr->stems[s].n_env; j++)
                env_bad += fabsf(tr->stems[s].env[j] - f.ix.tracks[k].stems[s].env[j]) >
                           1e-5f * (1 + f.ix.tracks[k].stems[s].env[j]);
        }
    }
    CHECKF(env_bad == 0, "%d envelope blocks differ", env_bad);
    cfg.num_workers = 2;
    tf_loader *l;
    CHECK(tf_loader_open(&l, &cfg, ix, 3) == TF_OK);
    CHECK(tf_loader_start_epoch(l, 0, 0, 40) == TF_OK);
    indep o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < 40; i++) {
        const tf_batch *b;
        CHECK(tf_loader_next(l, &b) == TF_OK);
        indep_check(ix, b, 0, THR, &o);
    }
    CHECK(o.chunks == 40 * 4 * NS && o.silent == 0 && o.bad == 0 && o.io_errors == 0);
    tf_loader_counters c;
    tf_loader_stats(l, &c);
    CHECK(c.redraws <= c.delivered_chunks / 100);
    tf_loader_close(l);
    tf_index_close(ix);
    remove(cache);
    fixture_free(&f);
}

int main(void) {
    RUN(test_reader_pcm16_exact);
    RUN(test_remix_exact_samples_padding_mono);
    RUN(test_silence_filter);
    RUN(test_fused_same_as_reference);
    RUN(test_silent_stem_error);
    RUN(test_aligned);
    RUN(test_augment);
    RUN(test_workers_same_batches);
    RUN(test_close_mid_epoch_and_restart);
    RUN(test_full_track_mode_same);
    RUN(test_read_error_reported);
    RUN(test_nonfinite_after_index);
    RUN(test_bad_config);
    RUN(test_pin_memory);
    RUN(test_real_index);
    return TEST_END();
}
