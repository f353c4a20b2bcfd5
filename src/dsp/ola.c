#include "dsp/ola.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tf_ola {
    tf_ola_cfg c;
    int64_t hop;
    tf_ola_model_fn model;
    void *mctx;
    tf_ola_sink_fn sink;
    void *sctx;
    int64_t cap;     /* frames held in the input and accumulator windows */
    int64_t base;    /* absolute frame of index 0 of both windows */
    int64_t in_end;  /* absolute frame one past the last input frame received */
    int64_t next;    /* next chunk index to run */
    int64_t emitted; /* absolute frame one past the last frame given to the sink */
    float *in;       /* (2, cap) */
    float *acc;      /* (S, 2, cap) */
    float *wsum;     /* (cap,) */
    float *w;        /* (L,) trapezoid weight */
    float *bmix;     /* (batch, 2, L) */
    int external;    /* the buffers are carved from the caller's memory (tf_ola_open_in) */
    float *bout;     /* (batch, S, 2, L) */
    size_t bytes;
};

int64_t tf_ola_hop(const tf_ola_cfg *cfg) {
    int64_t hop = (int64_t)llround((double)cfg->chunk * (1.0 - cfg->overlap));
    return hop < 1 ? 1 : hop > cfg->chunk ? cfg->chunk : hop;
}

int64_t tf_ola_window_frames(const tf_ola_cfg *cfg) {
    return (int64_t)(cfg->batch - 1) * tf_ola_hop(cfg) + cfg->chunk;
}

/* the engine's buffers, in floats: in, acc, wsum, w, bmix, bout */
static void buffer_floats(const tf_ola_cfg *cfg, size_t n[6]) {
    const size_t L = (size_t)cfg->chunk, S = (size_t)cfg->n_stems, B = (size_t)cfg->batch;
    const size_t cap = (size_t)tf_ola_window_frames(cfg);
    n[0] = 2 * cap, n[1] = S * 2 * cap, n[2] = cap, n[3] = L, n[4] = B * 2 * L;
    n[5] = B * S * 2 * L;
}

#define OLA_ALIGN 64
static size_t align_up(size_t b) {
    return (b + OLA_ALIGN - 1) / OLA_ALIGN * OLA_ALIGN;
}

size_t tf_ola_plan_bytes(const tf_ola_cfg *cfg) {
    size_t n[6], t = 0;
    buffer_floats(cfg, n);
    for (int i = 0; i < 6; i++) t += n[i] * sizeof(float);
    return t;
}

size_t tf_ola_mem_bytes(const tf_ola_cfg *cfg) {
    size_t n[6], t = 0;
    buffer_floats(cfg, n);
    for (int i = 0; i < 6; i++) t += align_up(n[i] * sizeof(float));
    return t;
}

tf_status tf_ola_open_in(tf_ola **out, const tf_ola_cfg *cfg, tf_ola_model_fn model, void *mctx,
                         tf_ola_sink_fn sink, void *sctx, void *mem, size_t mem_bytes) {
    *out = NULL;
    if (cfg->chunk < 1 || cfg->n_stems < 1 || cfg->batch < 1)
        return tf_err(TF_EUSER, "overlap-add: chunk, stems and batch must be >= 1");
    if (!(cfg->overlap >= 0 && cfg->overlap < 1))
        return tf_err(TF_EUSER, "overlap-add: overlap %g is not in [0, 1)", cfg->overlap);
    if (mem && ((uintptr_t)mem % OLA_ALIGN || mem_bytes < tf_ola_mem_bytes(cfg)))
        return tf_err(TF_EINTERNAL, "overlap-add: %zu bytes at %p for a %zu-byte engine", mem_bytes,
                      mem, tf_ola_mem_bytes(cfg));
    tf_ola *o = tf_calloc(1, sizeof *o, "overlap-add");
    if (!o) return TF_EINTERNAL;
    o->c = *cfg;
    o->model = model, o->mctx = mctx, o->sink = sink, o->sctx = sctx;
    const int64_t L = cfg->chunk;
    o->hop = tf_ola_hop(cfg);
    o->cap = tf_ola_window_frames(cfg); /* a group of B chunks spans (B-1)*hop + L frames */
    size_t n[6];
    buffer_floats(cfg, n);
    float **dst[6] = {&o->in, &o->acc, &o->wsum, &o->w, &o->bmix, &o->bout};
    if (mem) {
        o->external = 1;
        unsigned char *p = mem;
        for (int i = 0; i < 6; i++) {
            *dst[i] = (float *)(void *)p;
            p += align_up(n[i] * sizeof(float));
        }
        /* the windows start empty (zero), as tf_calloc gives them below */
        memset(o->in, 0, sizeof(float) * n[0]);
        memset(o->acc, 0, sizeof(float) * n[1]);
        memset(o->wsum, 0, sizeof(float) * n[2]);
    } else {
        static const char *const what[6] = {"overlap-add input",   "overlap-add accumulator",
                                            "overlap-add weights", "overlap-add window",
                                            "overlap-add batch",   "overlap-add batch output"};
        for (int i = 0; i < 6; i++) {
            *dst[i] = i < 3 ? tf_calloc(n[i], sizeof(float), what[i])
                            : tf_malloc(sizeof(float) * n[i], what[i]);
            if (!*dst[i]) {
                tf_ola_close(o);
                return TF_EINTERNAL;
            }
        }
    }
    o->bytes = tf_ola_plan_bytes(cfg);
    const int64_t R = L - o->hop; /* ramp length = overlapping frames */
    for (int64_t i = 0; i < L; i++) {
        double a = (double)(i + 1) / (double)(R + 1), b = (double)(L - i) / (double)(R + 1);
        o->w[i] = (float)fmin(1.0, fmin(a, b));
    }
    *out = o;
    return TF_OK;
}

tf_status tf_ola_open(tf_ola **out, const tf_ola_cfg *cfg, tf_ola_model_fn model, void *mctx,
                      tf_ola_sink_fn sink, void *sctx) {
    return tf_ola_open_in(out, cfg, model, mctx, sink, sctx, NULL, 0);
}

size_t tf_ola_bytes(const tf_ola *o) {
    return o->bytes;
}

/* Emit final frames [emitted, upto) and slide the windows so that `base` = upto. */
static tf_status emit(tf_ola *o, int64_t upto) {
    const int S = o->c.n_stems;
    int64_t n = upto - o->emitted, off = o->emitted - o->base;
    if (n <= 0) return TF_OK;
    for (int s = 0; s < S * 2; s++) {
        float *a = o->acc + (size_t)s * o->cap + off;
        for (int64_t i = 0; i < n; i++) a[i] /= o->wsum[off + i];
    }
    TF_TRY(o->sink(o->sctx, o->acc + off, n, o->cap));
    o->emitted = upto;
    /* slide: keep [upto, base + cap) at the front */
    int64_t keep = o->base + o->cap - upto, shift = upto - o->base;
    for (int s = 0; s < S * 2; s++) {
        float *a = o->acc + (size_t)s * o->cap;
        memmove(a, a + shift, sizeof(float) * (size_t)keep);
        memset(a + keep, 0, sizeof(float) * (size_t)shift);
    }
    memmove(o->wsum, o->wsum + shift, sizeof(float) * (size_t)keep);
    memset(o->wsum + keep, 0, sizeof(float) * (size_t)shift);
    for (int c = 0; c < 2; c++) {
        float *a = o->in + (size_t)c * o->cap;
        memmove(a, a + shift, sizeof(float) * (size_t)keep);
        memset(a + keep, 0, sizeof(float) * (size_t)shift);
    }
    o->base = upto;
    return TF_OK;
}

/* Run chunks [k0, k0 + nb); all their input is in the window (zeros past the end). */
static tf_status run_group(tf_ola *o, int64_t k0, int nb) {
    const int64_t L = o->c.chunk, S = o->c.n_stems;
    for (int j = 0; j < nb; j++) {
        int64_t off = (k0 + j) * o->hop - o->base;
        for (int c = 0; c < 2; c++)
            memcpy(o->bmix + ((size_t)j * 2 + c) * L, o->in + (size_t)c * o->cap + off,
                   sizeof(float) * (size_t)L);
    }
    TF_TRY(o->model(o->mctx, o->bmix, nb, L, o->bout));
    for (int j = 0; j < nb; j++) {
        int64_t off = (k0 + j) * o->hop - o->base;
        for (int64_t s = 0; s < S * 2; s++) {
            const float *y = o->bout + ((size_t)j * S * 2 + s) * L;
            float *a = o->acc + (size_t)s * o->cap + off;
            for (int64_t i = 0; i < L; i++) a[i] += o->w[i] * y[i];
        }
        for (int64_t i = 0; i < L; i++) o->wsum[off + i] += o->w[i];
    }
    o->next = k0 + nb;
    return TF_OK;
}

/* Run every full group whose input is complete; with `final`, also the partial rest. */
static tf_status drain(tf_ola *o, int final) {
    const int64_t L = o->c.chunk, B = o->c.batch;
    for (;;) {
        int64_t k0 = o->next;
        /* chunks needed in total (known only at the end): those starting before in_end */
        int64_t total = final ? (o->in_end <= 0 ? 1 : (o->in_end - 1) / o->hop + 1) : INT64_MAX;
        if (k0 >= total) break;
        int64_t nb = B < total - k0 ? B : total - k0;
        int64_t need = (k0 + nb - 1) * o->hop + L; /* input frames the group reads */
        if (!final && (nb < B || need > o->in_end)) break;
        TF_TRY(run_group(o, k0, (int)nb));
        /* frames before the next chunk's start are final */
        int64_t upto = o->next * o->hop;
        if (final && o->next >= total) upto = o->in_end;
        if (upto > o->in_end) upto = o->in_end;
        TF_TRY(emit(o, upto));
    }
    return TF_OK;
}

tf_status tf_ola_push(tf_ola *o, const float *in, int64_t n, int64_t stride) {
    while (n > 0) {
        int64_t room = o->base + o->cap - o->in_end;
        int64_t m = n < room ? n : room;
        if (m == 0) return tf_err(TF_EINTERNAL, "overlap-add: window full without progress");
        int64_t off = o->in_end - o->base;
        for (int c = 0; c < 2; c++)
            memcpy(o->in + (size_t)c * o->cap + off, in + (size_t)c * stride,
                   sizeof(float) * (size_t)m);
        o->in_end += m, in += m, n -= m;
        TF_TRY(drain(o, 0));
    }
    return TF_OK;
}

tf_status tf_ola_finish(tf_ola *o) {
    return drain(o, 1);
}

void tf_ola_close(tf_ola *o) {
    if (!o) return;
    if (!o->external)
        free(o->in), free(o->acc), free(o->wsum), free(o->w), free(o->bmix), free(o->bout);
    free(o);
}
