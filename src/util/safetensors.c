#include "util/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bf16.h"
#include "util/fsutil.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* the reference implementation's limit */

static size_t dtype_size(tf_st_dtype d) {
    return d == TF_ST_BF16 ? 2 : 4;
}
static const char *dtype_name(tf_st_dtype d) {
    return d == TF_ST_BF16 ? "BF16" : "F32";
}

void tf_st_close(tf_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free(st->t[i].name);
    free(st->t);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta_key[i]);
        free(st->meta_val[i]);
    }
    free(st->meta_key);
    free(st->meta_val);
    free(st->data);
    free(st->path);
    memset(st, 0, sizeof *st);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(tf_st_tensor *const *)a)->name, (*(tf_st_tensor *const *)b)->name);
}

static int cmp_begin(const void *a, const void *b) {
    const tf_st_tensor *x = *(tf_st_tensor *const *)a, *y = *(tf_st_tensor *const *)b;
    return x->begin < y->begin   ? -1
           : x->begin > y->begin ? 1
                                 : (x->end > y->end) - (x->end < y->end);
}

/* Parse one header entry into t; TF_EUSER on anything malformed. */
static tf_status parse_entry(const char *path, const cJSON *it, tf_st_tensor *t, size_t data_size) {
    const char *nm = it->string;
    if (!cJSON_IsObject(it))
        return tf_err(TF_EUSER, "%s: tensor '%s': entry is not an object", path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) ||
        cJSON_GetArraySize(of) != 2)
        return tf_err(TF_EUSER, "%s: tensor '%s': needs dtype, shape and data_offsets [begin, end]",
                      path, nm);
    if (!strcmp(dt->valuestring, "F32"))
        t->dtype = TF_ST_F32;
    else if (!strcmp(dt->valuestring, "BF16"))
        t->dtype = TF_ST_BF16;
    else
        return tf_err(TF_EUSER, "%s: tensor '%s': dtype %s not supported (F32, BF16)", path, nm,
                      dt->valuestring);
    int nd = cJSON_GetArraySize(sh);
    if (nd > TF_ST_MAX_DIMS)
        return tf_err(TF_EUSER, "%s: tensor '%s': %d dimensions (at most %d)", path, nm, nd,
                      TF_ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    for (int d = 0; d < nd; d++) {
        const cJSON *v = cJSON_GetArrayItem(sh, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9.0e15 ||
            v->valuedouble != floor(v->valuedouble))
            return tf_err(TF_EUSER, "%s: tensor '%s': bad shape entry %d", path, nm, d);
        t->shape[d] = (int64_t)v->valuedouble;
        if (t->shape[d] && numel > SIZE_MAX / 8 / (size_t)t->shape[d])
            return tf_err(TF_EUSER, "%s: tensor '%s': shape too large", path, nm);
        numel *= (size_t)t->shape[d];
    }
    t->numel = numel;
    const cJSON *jb = cJSON_GetArrayItem(of, 0), *je = cJSON_GetArrayItem(of, 1);
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(je) || jb->valuedouble < 0 ||
        jb->valuedouble != floor(jb->valuedouble) || je->valuedouble != floor(je->valuedouble))
        return tf_err(TF_EUSER, "%s: tensor '%s': data_offsets are not two byte offsets", path, nm);
    const double ob = jb->valuedouble, oe = je->valuedouble;
    if (oe < ob)
        return tf_err(TF_EUSER, "%s: tensor '%s': data_offsets [%.0f, %.0f] end before they begin",
                      path, nm, ob, oe);
    if (oe > (double)data_size)
        return tf_err(TF_EUSER,
                      "%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu data bytes", path,
                      nm, ob, oe, data_size);
    t->begin = (size_t)ob;
    t->end = (size_t)oe;
    if (t->end - t->begin != numel * dtype_size(t->dtype))
        return tf_err(TF_EUSER, "%s: tensor '%s': %zu bytes for %zu %s values", path, nm,
                      t->end - t->begin, numel, dtype_name(t->dtype));
    t->name = tf_strdup(nm);
    return t->name ? TF_OK : TF_EINTERNAL;
}

static tf_status parse_header(tf_safetensors *st, const char *path, const char *json, size_t len) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return tf_err(TF_EUSER, "%s: header is not valid JSON", path);
    tf_status s = TF_OK;
    if (!cJSON_IsObject(root)) {
        s = tf_err(TF_EUSER, "%s: header is not a JSON object", path);
        goto done;
    }
    size_t count = (size_t)cJSON_GetArraySize(root);
    st->t = tf_calloc(count ? count : 1, sizeof *st->t, "safetensors header");
    if (!st->t) {
        s = TF_EINTERNAL;
        goto done;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (!it->string) continue;
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it) || st->meta_key) {
                s = tf_err(TF_EUSER, "%s: __metadata__ is %s", path,
                           st->meta_key ? "given twice" : "not an object");
                goto done;
            }
            size_t nm = (size_t)cJSON_GetArraySize(it);
            st->meta_key = tf_calloc(nm ? nm : 1, sizeof(char *), "safetensors metadata");
            st->meta_val = tf_calloc(nm ? nm : 1, sizeof(char *), "safetensors metadata");
            if (!st->meta_key || !st->meta_val) {
                s = TF_EINTERNAL;
                goto done;
            }
            const cJSON *m;
            cJSON_ArrayForEach(m, it) {
                if (!cJSON_IsString(m)) {
                    s = tf_err(TF_EUSER, "%s: __metadata__ value of '%s' is not a string", path,
                               m->string);
                    goto done;
                }
                st->meta_key[st->n_meta] = tf_strdup(m->string);
                st->meta_val[st->n_meta] = tf_strdup(m->valuestring);
                st->n_meta++;
                if (!st->meta_key[st->n_meta - 1] || !st->meta_val[st->n_meta - 1]) {
                    s = TF_EINTERNAL;
                    goto done;
                }
            }
            continue;
        }
        if ((s = parse_entry(path, it, &st->t[st->n], st->data_size)) != TF_OK) goto done;
        st->n++;
    }
    /* every data byte belongs to exactly one tensor */
    tf_st_tensor **ord = tf_malloc((st->n ? st->n : 1) * sizeof *ord, "safetensors header");
    if (!ord) {
        s = TF_EINTERNAL;
        goto done;
    }
    for (size_t i = 0; i < st->n; i++) ord[i] = &st->t[i];
    /* a name given twice (JSON allows it; cJSON keeps both) */
    qsort(ord, st->n, sizeof *ord, cmp_name);
    for (size_t i = 1; i < st->n && s == TF_OK; i++)
        if (!strcmp(ord[i]->name, ord[i - 1]->name))
            s = tf_err(TF_EUSER, "%s: tensor '%s' appears twice", path, ord[i]->name);
    qsort(ord, st->n, sizeof *ord, cmp_begin);
    size_t pos = 0;
    for (size_t i = 0; i < st->n && s == TF_OK; i++) {
        if (ord[i]->begin != pos)
            s = tf_err(TF_EUSER,
                       "%s: tensor '%s' starts at byte %zu of the data, expected %zu "
                       "(hole or overlap)",
                       path, ord[i]->name, ord[i]->begin, pos);
        pos = ord[i]->end;
    }
    if (s == TF_OK && pos != st->data_size)
        s = tf_err(TF_EUSER, "%s: tensors cover %zu of %zu data bytes", path, pos, st->data_size);
    free(ord);
done:
    cJSON_Delete(root);
    return s;
}

tf_status tf_st_open(tf_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "rb");
    if (!f) return tf_err(TF_EUSER, "%s: cannot open: %s", path, strerror(errno));
    tf_status s = TF_OK;
    char *json = NULL;
    unsigned char lenb[8];
    long long fsize = -1;
    if (fseeko(f, 0, SEEK_END) == 0) fsize = (long long)ftello(f);
    if (fsize < 8 || fseeko(f, 0, SEEK_SET) != 0 || fread(lenb, 1, 8, f) != 8) {
        s = tf_err(TF_EUSER, "%s: not a safetensors file (shorter than 8 bytes)", path);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen > ST_MAX_HEADER || hlen > (uint64_t)(fsize - 8)) {
        s = tf_err(TF_EUSER, "%s: header length %" PRIu64 " does not fit the file size %lld", path,
                   hlen, fsize);
        goto fail;
    }
    json = tf_malloc(hlen + 1, "safetensors header");
    if (!json) {
        s = TF_EINTERNAL;
        goto fail;
    }
    if (fread(json, 1, hlen, f) != hlen) {
        s = tf_err(TF_EUSER, "%s: cannot read the %" PRIu64 "-byte header", path, hlen);
        goto fail;
    }
    json[hlen] = 0;
    st->data_size = (size_t)((uint64_t)fsize - 8 - hlen);
    st->data = tf_malloc(st->data_size ? st->data_size : 1, "safetensors data");
    if (!st->data) {
        s = TF_EINTERNAL;
        goto fail;
    }
    if (st->data_size && fread(st->data, 1, st->data_size, f) != st->data_size) {
        s = tf_err(TF_EUSER, "%s: cannot read %zu data bytes", path, st->data_size);
        goto fail;
    }
    st->path = tf_strdup(path);
    if (!st->path) {
        s = TF_EINTERNAL;
        goto fail;
    }
    if ((s = parse_header(st, path, json, (size_t)hlen)) != TF_OK) goto fail;
    free(json);
    fclose(f);
    return TF_OK;
fail:
    free(json);
    fclose(f);
    tf_st_close(st);
    return s;
}

const tf_st_tensor *tf_st_find(const tf_safetensors *st, const char *name) {
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->t[i].name, name)) return &st->t[i];
    return NULL;
}

const char *tf_st_meta(const tf_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_key[i], key)) return st->meta_val[i];
    return NULL;
}

static void shape_str(char *buf, size_t n, int nd, const int64_t *sh) {
    size_t p = 0;
    p += (size_t)snprintf(buf + p, n - p, "(");
    for (int d = 0; d < nd && p < n; d++)
        p += (size_t)snprintf(buf + p, n - p, "%s%" PRId64, d ? ", " : "", sh[d]);
    if (p < n) snprintf(buf + p, n - p, ")");
}

tf_status tf_st_read_f32(const tf_safetensors *st, const char *name, float *dst, int ndim,
                         const int64_t *shape) {
    const tf_st_tensor *t = tf_st_find(st, name);
    if (!t) return tf_err(TF_EUSER, "%s: tensor '%s' is missing", st->path ? st->path : "?", name);
    if (ndim >= 0) {
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
        if (!same) {
            char a[160], b[160];
            shape_str(a, sizeof a, t->ndim, t->shape);
            shape_str(b, sizeof b, ndim, shape);
            return tf_err(TF_EUSER, "%s: tensor '%s' has shape %s, expected %s", st->path, name, a,
                          b);
        }
    }
    const unsigned char *p = st->data + t->begin;
    if (t->dtype == TF_ST_F32) {
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&dst[i], &u, 4);
        }
    } else {
        for (size_t i = 0; i < t->numel; i++)
            dst[i] = tf_bf16_to_f32((tf_bf16)(p[2 * i] | p[2 * i + 1] << 8));
    }
    return TF_OK;
}

/* ------------------------------------------------------------------------------ write */

static tf_status write_body(FILE *f, const tf_st_entry *e, size_t n) {
    unsigned char buf[4096];
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) numel *= (size_t)e[i].shape[d];
        size_t k = 0;
        for (size_t j = 0; j < numel; j++) {
            if (e[i].dtype == TF_ST_F32) {
                uint32_t u;
                memcpy(&u, &e[i].data[j], 4);
                for (int b = 0; b < 4; b++) buf[k++] = (unsigned char)(u >> (8 * b));
            } else {
                tf_bf16 h = tf_f32_to_bf16(e[i].data[j]);
                buf[k++] = (unsigned char)h;
                buf[k++] = (unsigned char)(h >> 8);
            }
            if (k + 4 > sizeof buf) {
                if (fwrite(buf, 1, k, f) != k) return TF_EUSER;
                k = 0;
            }
        }
        if (k && fwrite(buf, 1, k, f) != k) return TF_EUSER;
    }
    return TF_OK;
}

tf_status tf_st_write(const char *path, const tf_st_entry *e, size_t n, const char *const *meta,
                      size_t n_meta) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return tf_err(TF_EINTERNAL, "out of memory building a safetensors header");
    tf_status s = TF_OK;
    char *json = NULL;
    if (n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (size_t i = 0; m && i < n_meta; i++)
            if (!cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1])) m = NULL;
        if (!m) {
            s = tf_err(TF_EINTERNAL, "out of memory building a safetensors header");
            goto done;
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (!e[i].name || !strcmp(e[i].name, "__metadata__") ||
            cJSON_GetObjectItemCaseSensitive(root, e[i].name)) {
            s = tf_err(TF_EUSER, "%s: tensor name '%s' is empty, reserved or repeated", path,
                       e[i].name ? e[i].name : "(null)");
            goto done;
        }
        if (e[i].ndim < 0 || e[i].ndim > TF_ST_MAX_DIMS) {
            s = tf_err(TF_EUSER, "%s: tensor '%s': %d dimensions", path, e[i].name, e[i].ndim);
            goto done;
        }
        size_t numel = 1;
        cJSON *t = cJSON_AddObjectToObject(root, e[i].name);
        cJSON *sh = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *of = t ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        if (!sh || !of || !cJSON_AddStringToObject(t, "dtype", dtype_name(e[i].dtype))) {
            s = tf_err(TF_EINTERNAL, "out of memory building a safetensors header");
            goto done;
        }
        for (int d = 0; d < e[i].ndim; d++) {
            numel *= (size_t)e[i].shape[d];
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e[i].shape[d]));
        }
        size_t nb = numel * dtype_size(e[i].dtype);
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) {
        s = tf_err(TF_EINTERNAL, "out of memory building a safetensors header");
        goto done;
    }
    size_t hl = strlen(json), pad = (8 - hl % 8) % 8;
    uint64_t total = hl + pad;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(total >> (8 * i));
    tf_atomic_file a;
    if ((s = tf_atomic_open(&a, path)) != TF_OK) goto done;
    int bad = fwrite(lenb, 1, 8, a.f) != 8 || fwrite(json, 1, hl, a.f) != hl;
    for (size_t i = 0; i < pad && !bad; i++) bad = fputc(' ', a.f) == EOF;
    if (bad || write_body(a.f, e, n) != TF_OK) {
        tf_atomic_abort(&a);
        s = tf_err(TF_EUSER, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    s = tf_atomic_commit(&a);
done:
    free(json);
    cJSON_Delete(root);
    return s;
}
