#include "train/ckpt.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fsutil.h"

int tf_ckpt_fail_before_swap = 0;

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
} state_header;

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
    int ok = fwrite(head, 1, sizeof head, a.f) == sizeof head &&
             fwrite(st->m, 1, bytes, a.f) == bytes && fwrite(st->v, 1, bytes, a.f) == bytes &&
             (!st->raw || fwrite(st->raw, 1, bytes, a.f) == bytes);
    if (!ok) {
        tf_atomic_abort(&a);
        return tf_err(TF_EUSER, "%s: write failed", path);
    }
    return tf_atomic_commit(&a);
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static tf_status write_model_json(const char *path, const tf_config *cfg) {
    static const char *const OUT[] = {"magnitude", "mask"};
    cJSON *j = cJSON_CreateObject(), *stft = cJSON_CreateObject(), *mdl = cJSON_CreateObject();
    cJSON *t = cJSON_CreateArray();
    if (!j || !stft || !mdl || !t) {
        cJSON_Delete(j), cJSON_Delete(stft), cJSON_Delete(mdl), cJSON_Delete(t);
        return tf_err(TF_EINTERNAL, "out of memory building %s", path);
    }
    cJSON_AddStringToObject(j, "format", "tfswa-checkpoint");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "model_type", "TFSWA-ResUNet");
    cJSON_AddNumberToObject(j, "sample_rate", cfg->sample_rate);
    for (int i = 0; i < cfg->n_targets; i++)
        cJSON_AddItemToArray(t, cJSON_CreateString(cfg->targets[i]));
    cJSON_AddItemToObject(j, "targets", t);
    cJSON_AddNumberToObject(stft, "window_size", cfg->stft_window_size);
    cJSON_AddNumberToObject(stft, "hop_length", cfg->stft_hop_length);
    cJSON_AddItemToObject(j, "stft", stft);
    cJSON_AddItemToObject(mdl, "channels", int_array(cfg->channels, cfg->n_levels));
    cJSON_AddNumberToObject(mdl, "rcms_per_block", cfg->rcms_per_block);
    cJSON_AddNumberToObject(mdl, "tfswa_blocks", cfg->tfswa_blocks);
    cJSON_AddNumberToObject(mdl, "heads", cfg->heads);
    int w[2] = {cfg->window_t, cfg->window_f};
    cJSON_AddItemToObject(mdl, "window", int_array(w, 2));
    cJSON_AddNumberToObject(mdl, "mlp_ratio", cfg->mlp_ratio);
    cJSON_AddNumberToObject(mdl, "subbands", cfg->subbands);
    cJSON_AddStringToObject(mdl, "output", OUT[cfg->output]);
    cJSON_AddItemToObject(j, "model", mdl);
    cJSON_AddNumberToObject(j, "segment_seconds", cfg->segment_seconds);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return tf_err(TF_EINTERNAL, "out of memory printing %s", path);
    tf_status st = tf_write_file_atomic(path, s, strlen(s));
    free(s);
    return st;
}

tf_status tf_ckpt_save(const char *dir, const tf_model *m, const tf_config *cfg,
                       const tf_train_progress *p, const tf_opt_state *st) {
    char tmp[4096], old[4096], f[4200], parent[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dir, (long)getpid());
    snprintf(old, sizeof old, "%s.old-%ld", dir, (long)getpid());
    tf_dirname(dir, parent, sizeof parent);
    TF_TRY(tf_mkdirs(parent));
    if (tf_path_exists(tmp)) TF_TRY(tf_remove_tree(tmp));
    TF_TRY(tf_mkdirs(tmp));
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)p->step);
    const char *meta[] = {"format", "tfswa", "step", step};
    snprintf(f, sizeof f, "%s/model.safetensors", tmp);
    tf_status s = tf_model_save(m, f, meta, 2);
    if (!s) snprintf(f, sizeof f, "%s/model.json", tmp), s = write_model_json(f, cfg);
    if (!s) snprintf(f, sizeof f, "%s/train_state.bin", tmp), s = write_state(f, p, st);
    if (!s && tf_ckpt_fail_before_swap) s = tf_err(TF_EUSER, "%s: simulated crash", tmp);
    if (s) return s; /* the previous checkpoint (if any) is untouched */
    int had = tf_is_dir(dir);
    if (had && rename(dir, old) != 0)
        return tf_err(TF_EUSER, "%s: cannot rename to %s: %s", dir, old, strerror(errno));
    if (rename(tmp, dir) != 0)
        return tf_err(TF_EUSER, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
    TF_TRY(tf_fsync_dir(parent));
    if (had) TF_TRY(tf_remove_tree(old));
    return TF_OK;
}

/* The directory itself, or a "<dir>.old-*" left by a crash between the two renames. */
static tf_status find_dir(const char *dir, char *out, size_t n) {
    char f[4200];
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    if (tf_path_exists(f)) {
        snprintf(out, n, "%s", dir);
        return TF_OK;
    }
    char parent[4096];
    tf_dirname(dir, parent, sizeof parent);
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    DIR *d = opendir(parent);
    if (d) {
        size_t bl = strlen(base);
        for (struct dirent *e; (e = readdir(d));) {
            if (strncmp(e->d_name, base, bl) == 0 && !strncmp(e->d_name + bl, ".old-", 5)) {
                snprintf(out, n, "%s/%s", parent, e->d_name);
                closedir(d);
                return TF_OK;
            }
        }
        closedir(d);
    }
    return tf_err(TF_EUSER, "%s: not a checkpoint (no model.safetensors)", dir);
}

tf_status tf_ckpt_resolve(const char *path, char *out, size_t n) {
    char f[4200];
    if (!tf_path_exists(path)) return tf_err(TF_EUSER, "%s: no such checkpoint or run", path);
    snprintf(f, sizeof f, "%s/checkpoints", path);
    if (tf_is_dir(f)) { /* a run directory: its latest checkpoint */
        snprintf(f, sizeof f, "%s/checkpoints/last", path);
        return find_dir(f, out, n);
    }
    return find_dir(path, out, n);
}

static tf_status read_text(const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return tf_err(TF_EUSER, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = tf_realloc(buf, cap, path);
            if (!nb) return free(buf), fclose(f), TF_EINTERNAL;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    return TF_OK;
}

static tf_status set_num(tf_config *c, const char *file, const cJSON *o, const char *name,
                         const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(x)) return tf_err(TF_EUSER, "%s: missing number '%s'", file, name);
    char v[64];
    snprintf(v, sizeof v, "%.17g", x->valuedouble);
    return tf_config_set(c, key, v) ? tf_err_ctx(TF_EUSER, "%s", file) : TF_OK;
}

static tf_status set_list(tf_config *c, const char *file, const cJSON *o, const char *name,
                          const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsArray(x)) return tf_err(TF_EUSER, "%s: missing list '%s'", file, name);
    char v[1024] = "";
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, x) {
        if (cJSON_IsNumber(e))
            n += (size_t)snprintf(v + n, sizeof v - n, "%s%d", n ? "," : "", e->valueint);
        else if (cJSON_IsString(e))
            n += (size_t)snprintf(v + n, sizeof v - n, "%s%s", n ? "," : "", e->valuestring);
        else
            return tf_err(TF_EUSER, "%s: bad item in '%s'", file, name);
        if (n >= sizeof v) return tf_err(TF_EUSER, "%s: list '%s' too long", file, name);
    }
    return tf_config_set(c, key, v) ? tf_err_ctx(TF_EUSER, "%s", file) : TF_OK;
}

tf_status tf_ckpt_read_config(const char *dir, tf_config *cfg) {
    char d[4096], path[4200], *text;
    TF_TRY(find_dir(dir, d, sizeof d));
    snprintf(path, sizeof path, "%s/model.json", d);
    TF_TRY(read_text(path, &text));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return tf_err(TF_EUSER, "%s: not valid JSON", path);
    tf_config c = *cfg;
    tf_status s = TF_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *stft = cJSON_GetObjectItemCaseSensitive(j, "stft");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *out = m ? cJSON_GetObjectItemCaseSensitive(m, "output") : NULL;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "tfswa-checkpoint") != 0)
        s = tf_err(TF_EUSER, "%s: not a tfswa checkpoint (format)", path);
    else if (!cJSON_IsNumber(ver) || ver->valueint != 1)
        s = tf_err(TF_EUSER, "%s: unsupported version", path);
    else if (!cJSON_IsObject(stft) || !cJSON_IsObject(m) || !cJSON_IsString(out))
        s = tf_err(TF_EUSER, "%s: missing 'stft' or 'model'", path);
    if (!s) s = set_num(&c, path, j, "sample_rate", "sample_rate");
    if (!s) s = set_list(&c, path, j, "targets", "targets");
    if (!s) s = set_num(&c, path, stft, "window_size", "stft.window_size");
    if (!s) s = set_num(&c, path, stft, "hop_length", "stft.hop_length");
    if (!s) s = set_list(&c, path, m, "channels", "channels");
    if (!s) s = set_num(&c, path, m, "rcms_per_block", "rcms_per_block");
    if (!s) s = set_num(&c, path, m, "tfswa_blocks", "tfswa_blocks");
    if (!s) s = set_num(&c, path, m, "heads", "heads");
    if (!s) s = set_list(&c, path, m, "window", "window");
    if (!s) s = set_num(&c, path, m, "mlp_ratio", "mlp_ratio");
    if (!s) s = set_num(&c, path, m, "subbands", "subbands");
    if (!s && tf_config_set(&c, "output", out->valuestring)) s = tf_err_ctx(TF_EUSER, "%s", path);
    if (!s) s = set_num(&c, path, j, "segment_seconds", "segment_seconds");
    cJSON_Delete(j);
    if (!s) *cfg = c;
    return s;
}

tf_status tf_ckpt_load_weights(const char *dir, tf_model *m) {
    char d[4096], path[4200];
    TF_TRY(find_dir(dir, d, sizeof d));
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    return tf_model_load(m, path);
}

tf_status tf_ckpt_load_state(const char *dir, tf_train_progress *p, tf_opt_state *st) {
    char d[4096], path[4200];
    TF_TRY(find_dir(dir, d, sizeof d));
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
    return TF_OK;
}
