/* Checkpoint directories: model.json + model.safetensors, atomic swap. See checkpoint.h. */
#include "model/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fault.h"
#include "util/fsutil.h"
#include "util/safetensors.h"

int tf_ckpt_fail_before_swap = 0;

static const char *const OUT_NAME[] = {"magnitude", "mask"};

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static tf_status write_model_json(const char *path, const tf_ckpt_info *info) {
    const tf_model_config *mc = &info->model;
    cJSON *j = cJSON_CreateObject(), *stft = cJSON_CreateObject(), *mdl = cJSON_CreateObject();
    cJSON *t = cJSON_CreateArray();
    if (!j || !stft || !mdl || !t) {
        cJSON_Delete(j), cJSON_Delete(stft), cJSON_Delete(mdl), cJSON_Delete(t);
        return tf_err(TF_EINTERNAL, "out of memory building %s", path);
    }
    cJSON_AddStringToObject(j, "format", "tfswa-checkpoint");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "model_type", "TFSWA-ResUNet");
    cJSON_AddNumberToObject(j, "sample_rate", info->sample_rate);
    for (int i = 0; i < mc->n_targets; i++)
        cJSON_AddItemToArray(t, cJSON_CreateString(info->targets[i]));
    cJSON_AddItemToObject(j, "targets", t);
    cJSON_AddNumberToObject(stft, "window_size", mc->n_fft);
    cJSON_AddNumberToObject(stft, "hop_length", mc->hop);
    cJSON_AddItemToObject(j, "stft", stft);
    cJSON_AddItemToObject(mdl, "channels", int_array(mc->channels, mc->n_levels));
    cJSON_AddNumberToObject(mdl, "rcms_per_block", mc->rcms_per_block);
    cJSON_AddNumberToObject(mdl, "tfswa_blocks", mc->tfswa_blocks);
    cJSON_AddNumberToObject(mdl, "heads", mc->heads);
    int w[2] = {mc->window_t, mc->window_f};
    cJSON_AddItemToObject(mdl, "window", int_array(w, 2));
    cJSON_AddNumberToObject(mdl, "mlp_ratio", mc->mlp_ratio);
    cJSON_AddNumberToObject(mdl, "subbands", mc->subbands);
    cJSON_AddStringToObject(mdl, "output", OUT_NAME[mc->output == TF_OUT_MASK]);
    cJSON_AddItemToObject(j, "model", mdl);
    cJSON_AddNumberToObject(j, "segment_seconds", info->segment_seconds);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return tf_err(TF_EINTERNAL, "out of memory printing %s", path);
    tf_status st = tf_write_file_atomic(path, s, strlen(s));
    free(s);
    return st;
}

/* Remove the "<base>.tmp-<pid>" and "<base>.old-<pid>" siblings of a checkpoint in parent
 * that a process which no longer runs left behind (killed while writing): without this
 * they pile up (each as big as a checkpoint), two ".old-" copies make tf_ckpt_find pick
 * either, and an ".old-" of a PID used again (a container's restarted process) makes the
 * next write's rename fail. Kept: another live process's, and this process's own
 * temporary folder (being written). Called only where "<base>" itself is complete, so an
 * ".old-" is stale. Best effort: a folder that cannot be removed stays. */
static void remove_stale(const char *parent, const char *base) {
    DIR *d = opendir(parent);
    if (!d) return;
    const size_t bl = strlen(base);
    const long self = (long)getpid();
    for (struct dirent *e; (e = readdir(d));) {
        const char *s = e->d_name + bl;
        if (strncmp(e->d_name, base, bl) != 0 ||
            (strncmp(s, ".tmp-", 5) != 0 && strncmp(s, ".old-", 5) != 0))
            continue;
        char *end;
        long pid = strtol(s + 5, &end, 10);
        if (*end || pid <= 0) continue;
        const int tmp = s[1] == 't';
        const int alive = pid != self && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
        if (alive || (pid == self && tmp)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        if (tf_remove_tree(path) != TF_OK) tf_err_clear();
    }
    closedir(d);
}

tf_status tf_ckpt_write(const char *dir, const tf_model *m, const tf_ckpt_info *info, int64_t step,
                        tf_ckpt_extra_fn extra, void *extra_ctx) {
    char tmp[4096], old[4096], f[4200], parent[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dir, (long)getpid());
    snprintf(old, sizeof old, "%s.old-%ld", dir, (long)getpid());
    tf_dirname(dir, parent, sizeof parent);
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    tf_fault_point("ckpt_write", "begin", step, name); /* test hook: util/fault.h */
    TF_TRY(tf_mkdirs(parent));
    if (tf_path_exists(tmp)) TF_TRY(tf_remove_tree(tmp));
    TF_TRY(tf_mkdirs(tmp));
    char steps[32];
    snprintf(steps, sizeof steps, "%lld", (long long)step);
    const char *meta[] = {"format", "tfswa", "step", steps};
    snprintf(f, sizeof f, "%s/model.safetensors", tmp);
    tf_status s = tf_model_save(m, f, meta, 2);
    if (!s) tf_fault_point("ckpt_write", "tmp_model", step, name);
    if (!s) snprintf(f, sizeof f, "%s/model.json", tmp), s = write_model_json(f, info);
    if (!s && extra) s = extra(extra_ctx, tmp);
    if (!s && tf_ckpt_fail_before_swap) s = tf_err(TF_EUSER, "%s: simulated crash", tmp);
    if (s) return s; /* the previous checkpoint (if any) is untouched */
    tf_fault_point("ckpt_write", "tmp_done", step, name);
    int had = tf_is_dir(dir);
    /* dir is complete: older copies a killed writer left are not needed any more, and
     * renaming dir next to one of them would leave two ".old-" copies */
    if (had) remove_stale(parent, name);
    if (had && rename(dir, old) != 0)
        return tf_err(TF_EUSER, "%s: cannot rename to %s: %s", dir, old, strerror(errno));
    tf_fault_point("ckpt_write", "swap", step, name);
    if (rename(tmp, dir) != 0)
        return tf_err(TF_EUSER, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
    TF_TRY(tf_fsync_dir(parent));
    tf_fault_point("ckpt_write", "swapped", step, name);
    if (had) TF_TRY(tf_remove_tree(old));
    remove_stale(parent, name); /* a killed writer's leftovers: the new dir is in place */
    tf_fault_point("ckpt_write", "end", step, name);
    return TF_OK;
}

tf_status tf_ckpt_find(const char *dir, char *out, size_t n) {
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
        return tf_ckpt_find(f, out, n);
    }
    return tf_ckpt_find(path, out, n);
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

/* An integer-valued number of o (in [lo, hi]). */
static tf_status get_int(const char *file, const cJSON *o, const char *name, const char *key,
                         long lo, long hi, int *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(x)) return tf_err(TF_EUSER, "%s: missing number '%s'", file, name);
    const double v = x->valuedouble;
    if (!(v == floor(v)) || v < (double)lo || v > (double)hi)
        return tf_err(TF_EUSER, "%s: %s: %.17g is not an integer in %ld..%ld", file, key, v, lo,
                      hi);
    *out = (int)v;
    return TF_OK;
}

/* A list of integers of o: n entries (1..max). */
static tf_status get_ints(const char *file, const cJSON *o, const char *name, int max, int *v,
                          int *n) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsArray(x)) return tf_err(TF_EUSER, "%s: missing list '%s'", file, name);
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, x) {
        if (k >= max)
            return tf_err(TF_EUSER, "%s: list '%s' has more than %d items", file, name, max);
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            fabs(e->valuedouble) > 1e9)
            return tf_err(TF_EUSER, "%s: bad item in '%s'", file, name);
        v[k++] = (int)e->valuedouble;
    }
    if (k < 1) return tf_err(TF_EUSER, "%s: list '%s' is empty", file, name);
    *n = k;
    return TF_OK;
}

static tf_status get_targets(const char *file, const cJSON *o, tf_ckpt_info *info) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "targets");
    if (!cJSON_IsArray(x)) return tf_err(TF_EUSER, "%s: missing list 'targets'", file);
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, x) {
        if (k >= TF_MAX_TARGETS)
            return tf_err(TF_EUSER, "%s: targets: more than %d names", file, TF_MAX_TARGETS);
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) >= TF_NAME_MAX)
            return tf_err(TF_EUSER, "%s: targets: item %d is not a name of 1..%d characters", file,
                          k, TF_NAME_MAX - 1);
        for (int i = 0; i < k; i++)
            if (!strcmp(info->targets[i], e->valuestring))
                return tf_err(TF_EUSER, "%s: targets: '%s' is listed twice", file, e->valuestring);
        snprintf(info->targets[k++], TF_NAME_MAX, "%s", e->valuestring);
    }
    if (k < 1) return tf_err(TF_EUSER, "%s: targets: no names", file);
    info->model.n_targets = k;
    return TF_OK;
}

tf_status tf_ckpt_read_info(const char *dir, tf_ckpt_info *info) {
    char d[4096], path[4200], *text;
    TF_TRY(tf_ckpt_find(dir, d, sizeof d));
    snprintf(path, sizeof path, "%s/model.json", d);
    TF_TRY(read_text(path, &text));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return tf_err(TF_EUSER, "%s: not valid JSON", path);
    tf_ckpt_info c;
    memset(&c, 0, sizeof c);
    /* the run options are not stored */
    c.model.activation_dtype = info->model.activation_dtype;
    c.model.checkpointing = info->model.checkpointing;
    c.model.backend = info->model.backend;
    c.model.compute_dtype = info->model.compute_dtype;
    c.model.threads = info->model.threads;
    c.model.seed = info->model.seed;
    tf_model_config *mc = &c.model;
    tf_status s = TF_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *stft = cJSON_GetObjectItemCaseSensitive(j, "stft");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *out = m ? cJSON_GetObjectItemCaseSensitive(m, "output") : NULL;
    const cJSON *mlp = m ? cJSON_GetObjectItemCaseSensitive(m, "mlp_ratio") : NULL;
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(j, "segment_seconds");
    int w[2] = {0, 0}, nw = 0;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "tfswa-checkpoint") != 0)
        s = tf_err(TF_EUSER, "%s: not a tfswa checkpoint (format)", path);
    else if (!cJSON_IsNumber(ver) || ver->valueint != 1)
        s = tf_err(TF_EUSER, "%s: unsupported version", path);
    else if (!cJSON_IsObject(stft) || !cJSON_IsObject(m) || !cJSON_IsString(out))
        s = tf_err(TF_EUSER, "%s: missing 'stft' or 'model'", path);
    if (!s) s = get_int(path, j, "sample_rate", "sample_rate", 8000, 384000, &c.sample_rate);
    if (!s) s = get_targets(path, j, &c);
    if (!s) s = get_int(path, stft, "window_size", "stft.window_size", 4, 1 << 20, &mc->n_fft);
    if (!s) s = get_int(path, stft, "hop_length", "stft.hop_length", 1, 1 << 20, &mc->hop);
    if (!s) s = get_ints(path, m, "channels", TF_MAX_LEVELS, mc->channels, &mc->n_levels);
    if (!s) s = get_int(path, m, "rcms_per_block", "rcms_per_block", 1, 1000, &mc->rcms_per_block);
    if (!s) s = get_int(path, m, "tfswa_blocks", "tfswa_blocks", 0, 1000, &mc->tfswa_blocks);
    if (!s) s = get_int(path, m, "heads", "heads", 1, 65536, &mc->heads);
    if (!s) s = get_ints(path, m, "window", 2, w, &nw);
    if (!s && nw != 2) s = tf_err(TF_EUSER, "%s: window: 2 numbers (time, frequency)", path);
    if (!s) mc->window_t = w[0], mc->window_f = w[1];
    if (!s && !cJSON_IsNumber(mlp)) s = tf_err(TF_EUSER, "%s: missing number 'mlp_ratio'", path);
    if (!s) mc->mlp_ratio = mlp->valuedouble;
    if (!s) s = get_int(path, m, "subbands", "subbands", 1, 65536, &mc->subbands);
    if (!s) {
        if (!strcmp(out->valuestring, OUT_NAME[0]))
            mc->output = TF_OUT_MAGNITUDE;
        else if (!strcmp(out->valuestring, OUT_NAME[1]))
            mc->output = TF_OUT_MASK;
        else
            s = tf_err(TF_EUSER, "%s: output: '%s' is not one of: magnitude, mask", path,
                       out->valuestring);
    }
    if (!s && !cJSON_IsNumber(seg))
        s = tf_err(TF_EUSER, "%s: missing number 'segment_seconds'", path);
    if (!s) c.segment_seconds = seg->valuedouble;
    if (!s && !(c.segment_seconds > 0 && c.segment_seconds <= 600))
        s = tf_err(TF_EUSER, "%s: segment_seconds: %g is not in (0, 600]", path, c.segment_seconds);
    cJSON_Delete(j);
    tf_arch a;
    if (!s && tf_arch_from_config(&a, mc) != TF_OK) s = tf_err_ctx(TF_EUSER, "%s", path);
    if (!s) *info = c;
    return s;
}

tf_status tf_ckpt_load_weights(const char *dir, tf_model *m) {
    char d[4096], path[4200];
    TF_TRY(tf_ckpt_find(dir, d, sizeof d));
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    /* tf_model_load: every tensor of the model, by name, with its shape (the file's offsets,
     * sizes and dtypes are checked by tf_st_open); a checkpoint also holds nothing else */
    tf_safetensors st;
    TF_TRY(tf_st_open(&st, path));
    tf_status s = TF_OK;
    for (size_t i = 0; i < tf_model_n_tensors(m) && s == TF_OK; i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        s = tf_st_read_f32(&st, p->name, tf_model_data(m, p), p->ndim, p->shape);
    }
    for (size_t i = 0; i < st.n && s == TF_OK; i++)
        if (!tf_model_find(m, st.t[i].name))
            s = tf_err(TF_EUSER,
                       "%s: tensor '%s' is not a tensor of the model model.json describes (a "
                       "checkpoint of another architecture?)",
                       path, st.t[i].name);
    tf_st_close(&st);
    return s;
}

tf_status tf_model_from_checkpoint(tf_model **out, tf_ckpt_info *info_out, const char *dir,
                                   const tf_model_config *run, int batch, int64_t frames,
                                   tf_model_mode mode) {
    *out = NULL;
    tf_ckpt_info info;
    memset(&info, 0, sizeof info);
    if (run) info.model = *run;
    TF_TRY(tf_ckpt_read_info(dir, &info));
    if (frames <= 0) frames = (int64_t)llround(info.segment_seconds * info.sample_rate);
    tf_model *m = NULL;
    TF_TRY(tf_model_create_mode(&m, &info.model, batch, frames, 0, mode));
    tf_status st = tf_ckpt_load_weights(dir, m);
    if (st) {
        tf_model_free(m);
        return st;
    }
    if (info_out) *info_out = info;
    *out = m;
    return TF_OK;
}
