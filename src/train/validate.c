#include "train/validate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/valtrack.h"
#include "metrics/sdr.h"

enum { READ_BLOCK = 65536 };

tf_ola_cfg tf_val_ola_cfg(const tf_config *cfg) {
    tf_ola_cfg o;
    o.n_stems = cfg->n_targets;
    o.chunk = (int64_t)llround(cfg->segment_seconds * cfg->sample_rate);
    o.overlap = TF_VAL_OVERLAP;
    o.batch = cfg->batch_size;
    return o;
}

static tf_status run_model(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    return tf_model_forward((tf_model *)ctx, out, mix, nb, L, 0);
}

/* Reference stems waiting for their estimates: a FIFO of (S_src, 2, cap) frames. */
typedef struct {
    int S, T; /* sources in the index, targets of the model */
    int tmap[TF_MAX_TARGETS];
    int64_t cap, head, n; /* frames stored from `head` (absolute), count */
    float *ref;           /* (S, 2, cap) */
    float *mix;           /* (2, cap) the mixture, for the baseline */
    tf_sdr_acc acc[TF_MAX_TARGETS], accmix[TF_MAX_TARGETS];
} fifo;

static tf_status sink(void *ctx, const float *est, int64_t n, int64_t stride) {
    fifo *q = ctx;
    if (n > q->n) return tf_err(TF_EINTERNAL, "validation: estimates ahead of references");
    for (int t = 0; t < q->T; t++)
        for (int c = 0; c < 2; c++) {
            const float *ref = q->ref + ((size_t)q->tmap[t] * 2 + c) * q->cap;
            tf_sdr_acc_add(&q->acc[t], ref, est + ((size_t)t * 2 + c) * stride, n);
            tf_sdr_acc_add(&q->accmix[t], ref, q->mix + (size_t)c * q->cap, n);
        }
    /* drop the consumed frames */
    int64_t keep = q->n - n;
    for (int r = 0; r < q->S * 2; r++)
        memmove(q->ref + (size_t)r * q->cap, q->ref + (size_t)r * q->cap + n, sizeof(float) * keep);
    for (int c = 0; c < 2; c++)
        memmove(q->mix + (size_t)c * q->cap, q->mix + (size_t)c * q->cap + n, sizeof(float) * keep);
    q->head += n, q->n = keep;
    return TF_OK;
}

static size_t al64(size_t b) {
    return (b + 63) / 64 * 64;
}

/* the track's buffers in floats: reference FIFO, mixture FIFO, the two read blocks */
static void val_floats(const tf_config *cfg, int n_sources, size_t n[4]) {
    tf_ola_cfg oc = tf_val_ola_cfg(cfg);
    const size_t cap = (size_t)tf_ola_window_frames(&oc) + READ_BLOCK, S = (size_t)n_sources;
    n[0] = S * 2 * cap, n[1] = 2 * cap, n[2] = 2 * (size_t)READ_BLOCK;
    n[3] = S * 2 * (size_t)READ_BLOCK;
}

size_t tf_val_plan_bytes(const tf_config *cfg, int n_sources) {
    tf_ola_cfg oc = tf_val_ola_cfg(cfg);
    size_t n[4], t = tf_ola_plan_bytes(&oc);
    val_floats(cfg, n_sources, n);
    for (int i = 0; i < 4; i++) t += n[i] * sizeof(float);
    return t;
}

size_t tf_val_arena_bytes(const tf_config *cfg, int n_sources) {
    tf_ola_cfg oc = tf_val_ola_cfg(cfg);
    size_t n[4], t = tf_ola_mem_bytes(&oc);
    val_floats(cfg, n_sources, n);
    for (int i = 0; i < 4; i++) t += al64(n[i] * sizeof(float));
    return t;
}

static tf_status one_track(const tf_val_model *vm, const tf_config *cfg, const tf_index *ix,
                           int track, double *usdr, double *usdr_mix) {
    tf_ola_cfg oc = tf_val_ola_cfg(cfg);
    fifo q;
    memset(&q, 0, sizeof q);
    q.S = ix->n_stems, q.T = cfg->n_targets;
    for (int t = 0; t < q.T; t++) {
        q.tmap[t] = -1;
        for (int s = 0; s < ix->n_stems; s++)
            if (!strcmp(ix->stem_names[s], cfg->targets[t])) q.tmap[t] = s;
        if (q.tmap[t] < 0)
            return tf_err(TF_EUSER, "validation: target '%s' is not a stem of the dataset",
                          cfg->targets[t]);
    }
    q.cap = tf_ola_window_frames(&oc) + READ_BLOCK;
    /* in the idle part of the model's arena when it is large enough (a training model),
     * else allocated */
    size_t n[4];
    val_floats(cfg, q.S, n);
    unsigned char *mem = vm->spare;
    const int in_arena = mem && vm->spare_bytes >= tf_val_arena_bytes(cfg, q.S);
    float *buf[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        if (in_arena) {
            buf[i] = (float *)(void *)mem;
            mem += al64(n[i] * sizeof(float));
        } else {
            buf[i] = tf_malloc(sizeof(float) * n[i], "validation buffers");
        }
    }
    q.ref = buf[0], q.mix = buf[1];
    float *bmix = buf[2], *bst = buf[3];
    tf_ola *o = NULL;
    tf_valtrack *v = NULL;
    tf_status st = (q.ref && q.mix && bmix && bst) ? TF_OK : TF_EINTERNAL;
    if (!st)
        st = tf_ola_open_in(&o, &oc, vm->forward, vm->ctx, sink, &q, in_arena ? mem : NULL,
                            in_arena ? tf_ola_mem_bytes(&oc) : 0);
    if (!st) st = tf_valtrack_open(&v, ix, track);
    while (!st) {
        int64_t got = 0;
        st = tf_valtrack_read(v, READ_BLOCK, bmix, bst, &got);
        if (st || got == 0) break;
        if (q.n + got > q.cap) {
            st = tf_err(TF_EINTERNAL, "validation: reference FIFO overflow");
            break;
        }
        for (int r = 0; r < q.S * 2; r++)
            memcpy(q.ref + (size_t)r * q.cap + q.n, bst + (size_t)r * READ_BLOCK,
                   sizeof(float) * got);
        for (int c = 0; c < 2; c++)
            memcpy(q.mix + (size_t)c * q.cap + q.n, bmix + (size_t)c * READ_BLOCK,
                   sizeof(float) * got);
        q.n += got;
        st = tf_ola_push(o, bmix, got, READ_BLOCK);
        if (got < READ_BLOCK) break;
    }
    if (!st) st = tf_ola_finish(o);
    if (!st && q.n != 0)
        st = tf_err(TF_EINTERNAL, "validation: %lld frames not scored", (long long)q.n);
    if (!st)
        for (int t = 0; t < q.T; t++)
            usdr[t] = tf_sdr_usdr(&q.acc[t]), usdr_mix[t] = tf_sdr_usdr(&q.accmix[t]);
    tf_valtrack_close(v);
    tf_ola_close(o);
    if (!in_arena) free(q.ref), free(q.mix), free(bmix), free(bst);
    return st;
}

tf_status tf_validate(tf_model *m, const tf_config *cfg, const tf_index *ix, tf_split split,
                      const tf_dist *d, tf_val_result *r) {
    tf_val_model vm = {run_model, m, NULL, 0};
    vm.spare = tf_model_spare(m, &vm.spare_bytes);
    return tf_validate_with(&vm, cfg, ix, split, d, r);
}

tf_status tf_validate_with(const tf_val_model *vm, const tf_config *cfg, const tf_index *ix,
                           tf_split split, const tf_dist *d, tf_val_result *r) {
    memset(r, 0, sizeof *r);
    r->n_targets = cfg->n_targets;
    int n = tf_index_count(ix, split);
    /* sums[t], summix[t], then the track count */
    double sums[2 * TF_MAX_TARGETS + 1] = {0};
    tf_status st = TF_OK;
    for (int i = d->rank; i < n && !st; i += d->size) {
        double u[TF_MAX_TARGETS], um[TF_MAX_TARGETS];
        st = one_track(vm, cfg, ix, tf_index_track_of(ix, split, i), u, um);
        if (st) break;
        for (int t = 0; t < cfg->n_targets; t++) sums[t] += u[t], sums[TF_MAX_TARGETS + t] += um[t];
        sums[2 * TF_MAX_TARGETS] += 1;
    }
    /* every rank reaches the reduction, also after an error, so none waits forever */
    double failed = st ? 1 : 0;
    tf_status rs = tf_dist_sum_f64(d, sums, 2 * TF_MAX_TARGETS + 1);
    if (!rs) rs = tf_dist_sum_f64(d, &failed, 1);
    if (st) return st;
    if (rs) return rs;
    if (failed > 0) return tf_err(TF_EUSER, "validation failed on another rank");
    r->tracks = (int)sums[2 * TF_MAX_TARGETS];
    if (r->tracks == 0) return tf_err(TF_EUSER, "validation: the split has no tracks");
    for (int t = 0; t < cfg->n_targets; t++) {
        r->usdr[t] = sums[t] / r->tracks;
        r->usdr_mixture[t] = sums[TF_MAX_TARGETS + t] / r->tracks;
        r->mean += r->usdr[t] / cfg->n_targets;
    }
    return TF_OK;
}
