/* The stream API of include/tfswa.h: push input, pull stems after a fixed latency.
 *
 * The separation is tf_sep_stream (infer/separate.h): the pipeline of
 * tfswa_separate_buffer driven by pushes, so the output is the same bits. Around it:
 *   push (n, ch) interleaved -> (2, blk) planar pieces (mono: both rows) -> the engine
 *   engine output j (ch, m) planar -> the output ring (ocap, n_out, ch) interleaved
 *   pull: frames [pulled, min(produced, pushed - latency)) (after flush: produced)
 * The mixture history (2, hcap) serves the instrumental (mixture - vocals).
 * Worker mode: push copies into an input ring (icap, ch); a worker thread feeds the engine
 * from it; counters under one mutex, copies outside it (one producer, one consumer per
 * ring). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/resampler.h"
#include "dsp/ola.h"
#include "infer/api_internal.h"
#include "infer/separate.h"
#include "tfswa.h"

#define STREAM_BLOCK     4096
#define STREAM_MAX_BLOCK 65536
#define LATENCY_MARGIN   2 /* frames added to the measured resampler lag */
#define RING_MARGIN      64

struct tfswa_stream {
    tfswa_context *ctx;
    tf_separator *sep;
    tf_sep_params sp;
    tf_sep_stream *eng;
    int ch, rate, n_out, threaded;
    int64_t blk, chunk, hop, latency;
    double segment;
    /* output ring (ocap, n_out, ch) */
    float *ring;
    int64_t ocap, produced, pulled;
    int64_t wrote[TF_MAX_TARGETS + 1]; /* frames of the current piece written per output */
    /* mixture history (2, hcap), input rate, for the instrumental */
    float *hist;
    int64_t hcap, hend;
    float *plan; /* (2, blk) */
    int64_t pushed;
    int flushed, failed;
    /* worker mode */
    float *iring; /* (icap, ch) */
    int64_t icap, consumed;
    int flush_req, done, quit, have_thread, have_sync;
    int wstatus; /* tfswa status of the worker's failure */
    char werr[1024];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
};

tfswa_stream_params tfswa_stream_default_params(void) {
    tfswa_stream_params p;
    memset(&p, 0, sizeof p);
    p.overlap = 0.25;
    return p;
}

/* ---------------------------------------------------------------- latency */

typedef struct {
    int64_t n;
} counter;

static tf_status count_sink(void *ctx, const float *data, int64_t n, int64_t stride) {
    (void)data, (void)stride;
    ((counter *)ctx)->n += n;
    return TF_OK;
}

/* Model-rate frames the overlap-add engine has emitted after m frames in (batch 1). */
static int64_t ola_emitted(int64_t m, int64_t L, int64_t hop) {
    return m < L ? 0 : ((m - L) / hop + 1) * hop;
}

/* The largest (frames in - frames out) over a run fed one frame at a time: the latency
 * of the pipeline with chunk L and hop at these rates (frames at in_rate). Without
 * resampling it is L - 1 (a frame comes out when the chunk that ends it is complete);
 * with resampling the two soxr stages are run on zeros to count their lag, including the
 * blocks they buffer. */
static tf_status measure_latency(int in_rate, int rate, int64_t L, int64_t hop, int64_t *out) {
    if (in_rate == rate) {
        *out = L - 1;
        return TF_OK;
    }
    tf_resampler *rin = NULL, *rout = NULL;
    float *z = tf_calloc((size_t)hop, sizeof(float), "stream: latency probe");
    tf_status st = z ? TF_OK : TF_EINTERNAL;
    if (!st) st = tf_resampler_open(&rin, in_rate, rate, 1, 1);
    if (!st) st = tf_resampler_open(&rout, rate, in_rate, 1, hop);
    counter cm = {0}, co = {0};
    int64_t emitted = 0, worst = 0;
    const int64_t L_in = (int64_t)ceil((double)L * in_rate / rate);
    const int64_t hop_in = (int64_t)ceil((double)hop * in_rate / rate);
    const int64_t N = 3 * L_in + 16 * hop_in + in_rate;
    for (int64_t n = 1; n <= N && !st; n++) {
        st = tf_resampler_push(rin, z, 1, 1, count_sink, &cm);
        int64_t e = ola_emitted(cm.n, L, hop);
        while (!st && emitted < e) {
            int64_t m = e - emitted < hop ? e - emitted : hop;
            st = tf_resampler_push(rout, z, m, hop, count_sink, &co);
            emitted += m;
        }
        if (n - co.n > worst) worst = n - co.n;
    }
    tf_resampler_close(rin);
    tf_resampler_close(rout);
    free(z);
    *out = worst + LATENCY_MARGIN;
    return st;
}

/* ---------------------------------------------------------------- engine callbacks */

static void lock(tfswa_stream *s) {
    if (s->threaded) pthread_mutex_lock(&s->mu);
}
static void unlock(tfswa_stream *s) {
    if (s->threaded) pthread_mutex_unlock(&s->mu);
}

/* Mixture at input frames [off, off + n) from the history ring. */
static tf_status hist_mix(void *ctx, int64_t off, float *out, int64_t n, int64_t stride) {
    tfswa_stream *s = ctx;
    if (off < s->hend - s->hcap || off + n > s->hend)
        return tf_err(TF_EINTERNAL,
                      "stream: mixture [%lld, %lld) is not in the history [%lld, %lld)",
                      (long long)off, (long long)(off + n), (long long)(s->hend - s->hcap),
                      (long long)s->hend);
    for (int c = 0; c < 2; c++)
        for (int64_t i = 0; i < n; i++)
            out[(size_t)c * stride + i] = s->hist[(size_t)c * s->hcap + (off + i) % s->hcap];
    return TF_OK;
}

/* Output j: (ch, n) planar with row stride `stride` -> the ring after what is there. */
static tf_status ring_write(void *ctx, int j, const float *data, int64_t n, int64_t stride) {
    tfswa_stream *s = ctx;
    lock(s);
    const int64_t pulled = s->pulled;
    unlock(s);
    const int64_t pos = s->produced + s->wrote[j];
    if (pos + n - pulled > s->ocap)
        return tf_err(TF_EINTERNAL, "stream: output ring overflow (%lld + %lld frames, %lld held)",
                      (long long)(pos - pulled), (long long)n, (long long)s->ocap);
    const int K = s->n_out, ch = s->ch;
    for (int64_t i = 0; i < n; i++) {
        float *f = s->ring + (((size_t)((pos + i) % s->ocap)) * K + j) * ch;
        for (int c = 0; c < ch; c++) f[c] = data[(size_t)c * stride + i];
    }
    s->wrote[j] += n;
    if (j == K - 1) {
        /* every output has this piece: it is complete */
        lock(s);
        s->produced += s->wrote[j];
        unlock(s);
        for (int k = 0; k < K; k++) s->wrote[k] = 0;
    }
    return TF_OK;
}

/* n <= blk frames of (n, ch) interleaved input at `src` (a ring of `cap` frames from
 * frame index `at`; cap 0: contiguous) -> history and the engine. */
static tf_status feed(tfswa_stream *s, const float *src, int64_t at, int64_t cap, int64_t n) {
    const int ch = s->ch;
    for (int64_t i = 0; i < n; i++) {
        const float *f = src + (size_t)(cap ? (at + i) % cap : i) * ch;
        s->plan[i] = f[0];
        s->plan[s->blk + i] = f[ch - 1];
    }
    if (s->hist) {
        for (int64_t i = 0; i < n; i++) {
            size_t k = (size_t)((s->hend + i) % s->hcap);
            s->hist[k] = s->plan[i];
            s->hist[s->hcap + k] = s->plan[s->blk + i];
        }
        s->hend += n;
    }
    return tf_sep_stream_push(s->eng, s->plan, n, s->blk);
}

/* ---------------------------------------------------------------- worker */

static void worker_fail(tfswa_stream *s, tf_status st) {
    pthread_mutex_lock(&s->mu);
    snprintf(s->werr, sizeof s->werr, "%s", tf_errmsg());
    s->wstatus = st == TF_EINTERNAL ? TFSWA_ERR_INTERNAL : TFSWA_ERR_USER;
    s->failed = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg) {
    tfswa_stream *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->quit && s->pushed == s->consumed && !s->flush_req)
            pthread_cond_wait(&s->cv, &s->mu);
        const int quit = s->quit;
        const int64_t at = s->consumed, avail = s->pushed - s->consumed;
        const int fin = s->flush_req && avail == 0;
        pthread_mutex_unlock(&s->mu);
        if (quit) break;
        if (avail > 0) {
            int64_t m = avail < s->blk ? avail : s->blk;
            tf_status st = feed(s, s->iring, at, s->icap, m);
            if (st) {
                worker_fail(s, st);
                break;
            }
            pthread_mutex_lock(&s->mu);
            s->consumed += m;
            pthread_mutex_unlock(&s->mu);
        } else if (fin) {
            tf_status st = tf_sep_stream_finish(s->eng);
            if (st) {
                worker_fail(s, st);
                break;
            }
            pthread_mutex_lock(&s->mu);
            s->done = 1;
            pthread_cond_broadcast(&s->cv);
            while (!s->quit) pthread_cond_wait(&s->cv, &s->mu);
            pthread_mutex_unlock(&s->mu);
            break;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- the API */

static int fail(tfswa_stream *s, tf_status st) {
    return tf_api_finish(s->ctx, (int)st);
}

/* The worker's failure as the context's error, if there is one. */
static int worker_failed(tfswa_stream *s) {
    if (!s->threaded) return s->failed ? TFSWA_ERR_USER : 0;
    pthread_mutex_lock(&s->mu);
    int r = s->failed ? s->wstatus : 0;
    if (r) tf_api_set_error(s->ctx, s->werr);
    pthread_mutex_unlock(&s->mu);
    return r;
}

void tfswa_stream_close(tfswa_stream *s) {
    if (!s) return;
    if (s->have_thread) {
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    if (s->have_sync) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }
    tf_sep_stream_close(s->eng);
    free(s->ring), free(s->hist), free(s->plan), free(s->iring);
    if (s->ctx) *tf_api_streams(s->ctx) = 0;
    free(s);
}

/* Latency at chunk L frames (model rate), worker mode adding one hop at the input rate. */
static tf_status latency_of(const tfswa_stream *s, int64_t L, double overlap, int64_t *D) {
    const int rate = tf_separator_rate(s->sep);
    tf_ola_cfg oc = {.n_stems = 1, .chunk = L, .overlap = overlap, .batch = 1};
    const int64_t hop = tf_ola_hop(&oc);
    TF_TRY(measure_latency(s->rate, rate, L, hop, D));
    if (s->threaded) *D += (int64_t)ceil((double)hop * s->rate / rate);
    return TF_OK;
}

/* The chunk (model frames) for the params: the segment asked for, or the longest up to
 * the training segment that fits max_latency; the latency in *D. */
static tf_status choose_chunk(tfswa_stream *s, const tfswa_stream_params *p, int64_t *L,
                              int64_t *D) {
    const int rate = tf_separator_rate(s->sep);
    const double seg = p->segment > 0 ? p->segment : tf_separator_segment(s->sep);
    int64_t Lmax = (int64_t)llround(seg * rate);
    const int64_t Lmin = tf_separator_min_frames(s->sep);
    TF_TRY(latency_of(s, Lmax, p->overlap, D));
    *L = Lmax;
    const double bound = p->max_latency * s->rate;
    if (!(p->max_latency > 0) || (double)*D <= bound) return TF_OK;
    int64_t Dmin;
    TF_TRY(latency_of(s, Lmin, p->overlap, &Dmin));
    if (p->segment > 0 || (double)Dmin > bound)
        return tf_err(TF_EUSER,
                      "stream: max_latency %g s cannot be met%s (latency %.6f s at segment %g s); "
                      "the smallest latency possible is %.9g s (segment %g s = %lld frames at "
                      "%d Hz%s)",
                      p->max_latency, p->segment > 0 ? " with the segment given" : "",
                      (double)*D / s->rate, seg, (double)Dmin / s->rate, (double)Lmin / rate,
                      (long long)Lmin, rate, s->threaded ? ", worker-thread mode" : "");
    /* the latency grows with L: the longest L in [Lmin, Lmax) that fits */
    int64_t lo = Lmin, hi = Lmax, Dlo = Dmin; /* lo fits, hi does not */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2, Dm;
        TF_TRY(latency_of(s, mid, p->overlap, &Dm));
        if ((double)Dm <= bound)
            lo = mid, Dlo = Dm;
        else
            hi = mid;
    }
    *L = lo, *D = Dlo;
    return TF_OK;
}

static tf_status stream_setup(tfswa_stream *s, const tfswa_stream_params *p) {
    tf_separator *sep = s->sep;
    if (s->ch != 1 && s->ch != 2)
        return tf_err(TF_EUSER, "stream: %d channels (only mono and stereo)", s->ch);
    if (s->rate < 1 || s->rate > 1000000)
        return tf_err(TF_EUSER, "stream: sample rate %d Hz is not in [1, 1000000]", s->rate);
    if (!(p->overlap >= 0 && p->overlap < 1))
        return tf_err(TF_EUSER, "stream: overlap %g is not in [0, 1)", p->overlap);
    if (!(p->max_latency >= 0) || !isfinite(p->max_latency))
        return tf_err(TF_EUSER, "stream: max_latency %g s is not >= 0", p->max_latency);
    if (!(p->segment >= 0) || p->segment > 3600 || !isfinite(p->segment))
        return tf_err(TF_EUSER, "stream: segment %g s is not in [0, 3600]", p->segment);
    if (p->max_block < 0 || p->max_block > ((int64_t)1 << 30))
        return tf_err(TF_EUSER, "stream: max_block %lld is not in [0, 2^30]",
                      (long long)p->max_block);
    if (p->n_threads < 0) return tf_err(TF_EUSER, "stream: n_threads %d is negative", p->n_threads);
    tf_sep_params_default(&s->sp);
    s->sp.overlap = p->overlap;
    s->sp.segment = p->segment;
    s->sp.stems = p->stems;
    s->sp.instrumental = p->instrumental;
    s->sp.threads = p->n_threads;
    s->sp.batch_size = 1;
    s->blk = STREAM_BLOCK;
    s->sp.block = s->blk;
    TF_TRY(tf_sep_check_params(sep, &s->sp)); /* names a bad segment, stems, instrumental */
    const int rate = tf_separator_rate(sep);
    TF_TRY(choose_chunk(s, p, &s->chunk, &s->latency));
    s->sp.segment = (double)s->chunk / rate;
    /* the chunk the engine computes from this segment must be the one chosen */
    if (llround(s->sp.segment * rate) != s->chunk)
        return tf_err(TF_EINTERNAL, "stream: segment %.17g s does not give %lld frames",
                      s->sp.segment, (long long)s->chunk);
    s->segment = s->sp.segment;
    tf_ola_cfg oc = {.n_stems = 1, .chunk = s->chunk, .overlap = p->overlap, .batch = 1};
    s->hop = tf_ola_hop(&oc);
    s->n_out = tf_sep_n_outputs(sep, &s->sp);
    const int64_t maxb = p->max_block > 0 ? p->max_block : STREAM_MAX_BLOCK;
    s->ocap = s->latency + maxb + s->blk + RING_MARGIN;
    s->ring = tf_malloc(sizeof(float) * (size_t)s->ocap * (size_t)s->n_out * (size_t)s->ch,
                        "stream: output ring");
    s->plan = tf_malloc(sizeof(float) * 2 * (size_t)s->blk, "stream: input block");
    if (!s->ring || !s->plan) return TF_EINTERNAL;
    if (p->instrumental) {
        s->hcap = s->latency + 2 * s->blk + RING_MARGIN;
        s->hist = tf_calloc(2 * (size_t)s->hcap, sizeof(float), "stream: mixture history");
        if (!s->hist) return TF_EINTERNAL;
    }
    if (s->threaded) {
        s->icap = maxb + s->blk + RING_MARGIN;
        s->iring = tf_malloc(sizeof(float) * (size_t)s->icap * (size_t)s->ch, "stream: input ring");
        if (!s->iring) return TF_EINTERNAL;
    }
    tf_sep_sink sink = {hist_mix, ring_write, s};
    TF_TRY(tf_sep_stream_open(&s->eng, sep, &s->sp, s->rate, s->ch, sink));
    if (s->threaded) {
        if (pthread_mutex_init(&s->mu, NULL)) return tf_err(TF_EINTERNAL, "stream: mutex");
        if (pthread_cond_init(&s->cv, NULL)) {
            pthread_mutex_destroy(&s->mu);
            return tf_err(TF_EINTERNAL, "stream: condition variable");
        }
        s->have_sync = 1;
        if (pthread_create(&s->th, NULL, worker, s))
            return tf_err(TF_EINTERNAL, "stream: cannot start the worker thread");
        s->have_thread = 1;
    }
    return TF_OK;
}

tfswa_stream *tfswa_stream_open(tfswa_context *ctx, int channels, int rate,
                                const tfswa_stream_params *p) {
    if (!ctx) return NULL;
    if (!p) {
        tf_api_finish(ctx, (int)tf_err(TF_EUSER, "stream: params is NULL"));
        return NULL;
    }
    if (*tf_api_streams(ctx)) {
        tf_api_finish(ctx, (int)tf_err(TF_EUSER, "stream: a stream is already open on this context "
                                                 "(one per context)"));
        return NULL;
    }
    tfswa_stream *s = tf_calloc(1, sizeof *s, "stream");
    if (!s) {
        tf_api_finish(ctx, TF_EINTERNAL);
        return NULL;
    }
    s->sep = tf_api_separator(ctx);
    s->ch = channels, s->rate = rate, s->threaded = p->threaded ? 1 : 0;
    tf_status st = stream_setup(s, p);
    if (st) {
        tf_api_finish(ctx, (int)st);
        tfswa_stream_close(s);
        return NULL;
    }
    s->ctx = ctx;
    *tf_api_streams(ctx) = 1;
    tf_api_finish(ctx, TF_OK);
    return s;
}

int tfswa_stream_push(tfswa_stream *s, const float *in, int64_t n) {
    if (!s) return TFSWA_ERR_USER;
    int r = worker_failed(s);
    if (r) return r;
    if (n < 0 || (n > 0 && !in))
        return fail(s, tf_err(TF_EUSER, "stream push: %lld frames from %s", (long long)n,
                              in ? "a buffer" : "NULL"));
    if (s->flushed) return fail(s, tf_err(TF_EUSER, "stream push: after flush (end of input)"));
    if (n == 0) return TFSWA_OK;
    lock(s);
    const int64_t pulled = s->pulled, consumed = s->consumed;
    unlock(s);
    if (s->pushed + n - pulled > s->ocap || (s->threaded && s->pushed + n - consumed > s->icap)) {
        fail(s, tf_err(TF_EUSER,
                       "stream push: %lld frames do not fit (%lld pushed and not yet pulled, "
                       "room for %lld%s): pull, then push again",
                       (long long)n, (long long)(s->pushed - pulled), (long long)s->ocap,
                       s->threaded ? ", or the worker is behind" : ""));
        return TFSWA_ERR_AGAIN;
    }
    if (s->threaded) {
        for (int64_t i = 0; i < n;) { /* the ring may wrap: copy in at most two pieces */
            int64_t at = (s->pushed + i) % s->icap, m = s->icap - at < n - i ? s->icap - at : n - i;
            memcpy(s->iring + (size_t)at * s->ch, in + (size_t)i * s->ch,
                   sizeof(float) * (size_t)m * s->ch);
            i += m;
        }
        pthread_mutex_lock(&s->mu);
        s->pushed += n;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return TFSWA_OK;
    }
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done < s->blk ? n - done : s->blk;
        tf_status st = feed(s, in + (size_t)done * s->ch, 0, 0, m);
        if (st) {
            s->failed = 1;
            return fail(s, st);
        }
        done += m;
        s->pushed += m;
    }
    if (s->produced < s->pushed - s->latency) {
        s->failed = 1;
        return fail(s, tf_err(TF_EINTERNAL,
                              "stream: %lld frames out after %lld in exceeds the stated latency "
                              "%lld",
                              (long long)s->produced, (long long)s->pushed, (long long)s->latency));
    }
    return TFSWA_OK;
}

int64_t tfswa_stream_pull(tfswa_stream *s, float *out, int64_t max_n) {
    if (!s) return -1;
    if (worker_failed(s)) return -1;
    if (max_n < 0 || (max_n > 0 && !out)) {
        fail(s, tf_err(TF_EUSER, "stream pull: %lld frames into %s", (long long)max_n,
                       out ? "a buffer" : "NULL"));
        return -1;
    }
    lock(s);
    int64_t ready = s->produced;
    const int all = s->threaded ? s->done : s->flushed;
    if (!all && s->pushed - s->latency < ready) ready = s->pushed - s->latency;
    const int64_t pulled = s->pulled;
    unlock(s);
    int64_t n = ready - pulled;
    if (n > max_n) n = max_n;
    if (n <= 0) return 0;
    const size_t fr = (size_t)s->n_out * s->ch;
    for (int64_t i = 0; i < n;) { /* at most two pieces */
        int64_t at = (pulled + i) % s->ocap, m = s->ocap - at < n - i ? s->ocap - at : n - i;
        memcpy(out + (size_t)i * fr, s->ring + (size_t)at * fr, sizeof(float) * (size_t)m * fr);
        i += m;
    }
    lock(s);
    s->pulled += n;
    unlock(s);
    return n;
}

int tfswa_stream_flush(tfswa_stream *s) {
    if (!s) return TFSWA_ERR_USER;
    int r = worker_failed(s);
    if (r) return r;
    if (s->flushed) return TFSWA_OK;
    if (s->threaded) {
        /* all of the rest must fit the output ring, which pushes made sure of */
        pthread_mutex_lock(&s->mu);
        s->flush_req = 1;
        pthread_cond_broadcast(&s->cv);
        while (!s->done && !s->failed) pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
        s->flushed = 1;
        return worker_failed(s);
    }
    tf_status st = tf_sep_stream_finish(s->eng);
    if (st) {
        s->failed = 1;
        return fail(s, st);
    }
    s->flushed = 1;
    return TFSWA_OK;
}

int64_t tfswa_stream_latency(const tfswa_stream *s) {
    return s ? s->latency : -1;
}

int tfswa_stream_n_outputs(const tfswa_stream *s) {
    return s ? s->n_out : 0;
}

const char *tfswa_stream_output_name(const tfswa_stream *s, int i) {
    return s ? tf_sep_output_name(s->sep, &s->sp, i) : NULL;
}

double tfswa_stream_segment(const tfswa_stream *s) {
    return s ? s->segment : 0;
}
