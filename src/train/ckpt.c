#include "train/ckpt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"
#include "util/fault.h"
#include "util/fsutil.h"

#define STATE_MAGIC   "TFSWAST1"
#define STATE_VERSION 1u
#define HEADER_BYTES  128u

/* train_state.bin header, little-endian, HEADER_BYTES long. */
typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    uint64_t n_params;
    int64_t step, updates, skipped, bad_in_row;
    double best_metric;
    int64_t best_step;
    uint64_t seed;
    uint32_t flags; /* 1: raw weights follow the moments */
    uint32_t reserved;
    uint64_t checksum; /* FNV-1a 64 over the payload */
    /* in the header's spare bytes (0 in files written before them: no loss scale) */
    double loss_scale;
    int64_t loss_scale_good;
} state_header;
_Static_assert(sizeof(state_header) <= HEADER_BYTES, "train_state.bin header");

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static tf_status write_state(const char *path, const tf_train_progress *p, const tf_opt_state *st) {
    state_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, STATE_MAGIC, 8);
    h.version = STATE_VERSION, h.header_bytes = HEADER_BYTES;
    h.n_params = st->n;
    h.step = p->step, h.updates = p->updates, h.skipped = p->skipped;
    h.bad_in_row = p->bad_in_row, h.best_metric = p->best_metric, h.best_step = p->best_step;
    h.seed = p->seed;
    h.loss_scale = p->loss_scale, h.loss_scale_good = p->loss_scale_good;
    h.flags = st->raw ? 1u : 0u;
    size_t bytes = st->n * sizeof(float);
    uint64_t c = 0xcbf29ce484222325ull;
    c = fnv1a(c, st->m, bytes);
    c = fnv1a(c, st->v, bytes);
    if (st->raw) c = fnv1a(c, st->raw, bytes);
    h.checksum = c;
    unsigned char head[HEADER_BYTES];
    memset(head, 0, sizeof head);
    memcpy(head, &h, sizeof h);
    tf_atomic_file a;
    TF_TRY(tf_atomic_open(&a, path));
    int ok =
        fwrite(head, 1, sizeof head, a.f) == sizeof head && fwrite(st->m, 1, bytes, a.f) == bytes;
    if (ok && tf_fault_on()) { /* test hook (util/fault.h): a kill here leaves half a file */
        ok = fflush(a.f) == 0;
        /* the checkpoint's name: path is ".../<name>.tmp-<pid>/train_state.bin" */
        char name[64] = "";
        const char *e = strrchr(path, '/'), *b = e;
        while (b && b > path && b[-1] != '/') b--;
        const char *t = b ? strstr(b, ".tmp-") : NULL;
        if (t && t < e && (size_t)(t - b) < sizeof name) memcpy(name, b, (size_t)(t - b));
        tf_fault_point("ckpt_write", "tmp_partial", p->step, name);
    }
    ok = ok && fwrite(st->v, 1, bytes, a.f) == bytes &&
         (!st->raw || fwrite(st->raw, 1, bytes, a.f) == bytes);
    if (!ok) {
        tf_atomic_abort(&a);
        return tf_err(TF_EUSER, "%s: write failed", path);
    }
    return tf_atomic_commit(&a);
}

/* The model.json content of cfg. */
void tf_ckpt_info_from_config(tf_ckpt_info *info, const tf_config *cfg) {
    memset(info, 0, sizeof *info);
    info->model = tf_train_model_config(cfg);
    info->sample_rate = cfg->sample_rate;
    info->segment_seconds = cfg->segment_seconds;
    memcpy(info->targets, cfg->targets, sizeof info->targets);
}

typedef struct {
    const tf_train_progress *p;
    const tf_opt_state *st;
} state_ctx;

static tf_status write_state_in(void *ctx, const char *tmp) {
    const state_ctx *c = ctx;
    char f[4200];
    snprintf(f, sizeof f, "%s/train_state.bin", tmp);
    return write_state(f, c->p, c->st);
}

tf_status tf_ckpt_save(const char *dir, const tf_model *m, const tf_config *cfg,
                       const tf_train_progress *p, const tf_opt_state *st) {
    tf_ckpt_info info;
    tf_ckpt_info_from_config(&info, cfg);
    state_ctx c = {p, st};
    return tf_ckpt_write(dir, m, &info, p->step, write_state_in, &c);
}

static tf_status set_str(tf_config *c, const char *file, const char *key, const char *v) {
    return tf_config_set(c, key, v) ? tf_err_ctx(TF_EUSER, "%s", file) : TF_OK;
}

static tf_status set_num(tf_config *c, const char *file, const char *key, double x) {
    char v[64];
    snprintf(v, sizeof v, "%.17g", x);
    return set_str(c, file, key, v);
}

static tf_status set_ints(tf_config *c, const char *file, const char *key, const int *x, int n) {
    char v[1024] = "";
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof v; i++)
        k += (size_t)snprintf(v + k, sizeof v - k, "%s%d", k ? "," : "", x[i]);
    return set_str(c, file, key, v);
}

tf_status tf_ckpt_read_config(const char *dir, tf_config *cfg) {
    char d[4096], path[4200];
    TF_TRY(tf_ckpt_find(dir, d, sizeof d));
    snprintf(path, sizeof path, "%s/model.json", d);
    tf_ckpt_info info;
    memset(&info, 0, sizeof info);
    TF_TRY(tf_ckpt_read_info(d, &info));
    const tf_model_config *mc = &info.model;
    tf_config c = *cfg;
    char names[TF_MAX_TARGETS * (TF_NAME_MAX + 1)] = "";
    for (int i = 0; i < mc->n_targets; i++) strcat(strcat(names, i ? "," : ""), info.targets[i]);
    const int w[2] = {mc->window_t, mc->window_f};
    tf_status s = set_num(&c, path, "sample_rate", info.sample_rate);
    if (!s) s = set_str(&c, path, "targets", names);
    if (!s) s = set_num(&c, path, "stft.window_size", mc->n_fft);
    if (!s) s = set_num(&c, path, "stft.hop_length", mc->hop);
    if (!s) s = set_ints(&c, path, "channels", mc->channels, mc->n_levels);
    if (!s) s = set_num(&c, path, "rcms_per_block", mc->rcms_per_block);
    if (!s) s = set_num(&c, path, "tfswa_blocks", mc->tfswa_blocks);
    if (!s) s = set_num(&c, path, "heads", mc->heads);
    if (!s) s = set_ints(&c, path, "window", w, 2);
    if (!s) s = set_num(&c, path, "mlp_ratio", mc->mlp_ratio);
    if (!s) s = set_num(&c, path, "subbands", mc->subbands);
    if (!s) s = set_str(&c, path, "output", mc->output == TF_OUT_MASK ? "mask" : "magnitude");
    if (!s) s = set_num(&c, path, "segment_seconds", info.segment_seconds);
    if (!s) *cfg = c;
    return s;
}

tf_status tf_ckpt_load_state(const char *dir, tf_train_progress *p, tf_opt_state *st) {
    char d[4096], path[4200];
    TF_TRY(tf_ckpt_find(dir, d, sizeof d));
    snprintf(path, sizeof path, "%s/train_state.bin", d);
    FILE *f = fopen(path, "rb");
    if (!f) return tf_err(TF_EUSER, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[HEADER_BYTES];
    state_header h;
    tf_status s = TF_OK;
    size_t bytes = st->n * sizeof(float);
    if (fread(head, 1, sizeof head, f) != sizeof head) {
        s = tf_err(TF_EUSER, "%s: truncated header", path);
    } else {
        memcpy(&h, head, sizeof h);
        if (memcmp(h.magic, STATE_MAGIC, 8) != 0 || h.header_bytes != HEADER_BYTES)
            s = tf_err(TF_EUSER, "%s: not a tfswa train state", path);
        else if (h.version != STATE_VERSION)
            s = tf_err(TF_EUSER, "%s: version %u, expected %u", path, h.version, STATE_VERSION);
        else if (h.n_params != st->n)
            s = tf_err(TF_EUSER, "%s: %llu parameters, the model has %zu", path,
                       (unsigned long long)h.n_params, st->n);
        else if (((h.flags & 1u) != 0) != (st->raw != NULL))
            s = tf_err(TF_EUSER, "%s: EMA state %s, but ema_decay is %s", path,
                       (h.flags & 1u) ? "present" : "absent", st->raw ? "on" : "off");
        /* the counters are outside the checksum: training trusts them (epoch = step /
         * steps_per_epoch, bias correction from updates), so they must make sense */
        else if (h.step < 0 || h.step > ((int64_t)1 << 53) || h.updates < 0 || h.updates > h.step ||
                 h.skipped < 0 || h.skipped > h.step || h.bad_in_row < 0 ||
                 h.bad_in_row > h.skipped || h.best_step < -1 || h.best_step > h.step ||
                 isnan(h.best_metric) || h.best_metric == INFINITY || !(h.loss_scale >= 0) ||
                 !isfinite(h.loss_scale) || h.loss_scale_good < 0 ||
                 (h.loss_scale > 0 && frexp(h.loss_scale, &(int){0}) != 0.5)) /* 2^k or 0 */
            s = tf_err(TF_EUSER,
                       "%s: corrupt header: step %lld, updates %lld, skipped %lld, bad in a row "
                       "%lld, best %g at step %lld, loss scale %g (%lld) do not fit together",
                       path, (long long)h.step, (long long)h.updates, (long long)h.skipped,
                       (long long)h.bad_in_row, h.best_metric, (long long)h.best_step, h.loss_scale,
                       (long long)h.loss_scale_good);
    }
    if (!s && (fread(st->m, 1, bytes, f) != bytes || fread(st->v, 1, bytes, f) != bytes ||
               (st->raw && fread(st->raw, 1, bytes, f) != bytes)))
        s = tf_err(TF_EUSER, "%s: truncated", path);
    if (!s && fgetc(f) != EOF) s = tf_err(TF_EUSER, "%s: trailing bytes", path);
    fclose(f);
    if (!s) {
        uint64_t c = 0xcbf29ce484222325ull;
        c = fnv1a(c, st->m, bytes);
        c = fnv1a(c, st->v, bytes);
        if (st->raw) c = fnv1a(c, st->raw, bytes);
        if (c != h.checksum) s = tf_err(TF_EUSER, "%s: checksum mismatch (corrupt file)", path);
    }
    if (s) return s;
    p->step = h.step, p->updates = h.updates, p->skipped = h.skipped;
    p->bad_in_row = h.bad_in_row, p->best_metric = h.best_metric, p->best_step = h.best_step;
    p->seed = h.seed;
    p->loss_scale = h.loss_scale, p->loss_scale_good = h.loss_scale_good;
    return TF_OK;
}
