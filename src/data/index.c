/* Dataset index: layout and splits, per-file scan (frames, rate, channels, envelope),
 * the (path, size, mtime) cache, and problem collection. See index.h. */
#include "data/index.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "util/fsutil.h"

/* sigsep musdb, musdb/configs/mus.yaml: validation_tracks */
static const char *const musdb_valid[] = {
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
};

#define CACHE_MAGIC     "TFSWAIDX"
#define CACHE_VERSION   2u /* 2: scans reject non-finite samples */
#define CACHE_HDR       64
#define CACHE_ENT       64
#define RACY_NS         2000000000LL /* mtime this close to the scan: rescan next time */
#define MAX_PROBLEM_MSG 60000        /* stays below the 64 KiB error buffer */

/* ------------------------------------------------------------------ small helpers */

#define FNV_OFFSET 1469598103934665603ULL
static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static uint64_t mix64(uint64_t z) { /* splitmix64 finalizer: spreads FNV's low bits */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = tf_malloc(n, "path");
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

typedef struct {
    char **v;
    int n, cap;
} strlist;

static tf_status strlist_push(strlist *l, char *s) { /* takes ownership of s */
    if (!s) return TF_EINTERNAL;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = tf_realloc(l->v, sizeof *v * (size_t)cap, "string list");
        if (!v) {
            free(s);
            return TF_EINTERNAL;
        }
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = s;
    return TF_OK;
}

static tf_status strlist_addf(strlist *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static tf_status strlist_addf(strlist *l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) return tf_err(TF_EINTERNAL, "out of memory formatting a message");
    return strlist_push(l, s);
}

static void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_strp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sub-folders of dir (symlinks followed), hidden ones skipped, sorted bytewise. */
static tf_status list_subdirs(const char *dir, strlist *out) {
    DIR *d = opendir(dir);
    if (!d) return tf_err(TF_EUSER, "%s: cannot open folder: %s", dir, strerror(errno));
    tf_status st = TF_OK;
    struct dirent *e;
    while (st == TF_OK && (errno = 0, e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = path_join(dir, e->d_name);
        if (!p) {
            st = TF_EINTERNAL;
            break;
        }
        int ok = tf_is_dir(p);
        free(p);
        if (ok) st = strlist_push(out, tf_strdup(e->d_name));
    }
    if (st == TF_OK && errno)
        st = tf_err(TF_EUSER, "%s: cannot list folder: %s", dir, strerror(errno));
    closedir(d);
    if (st == TF_OK && out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_strp);
    return st;
}

/* ------------------------------------------------------------------ tracks and splits */

typedef struct {
    char *name, *rel; /* rel: path of the folder relative to the root */
    tf_split split;
} cand;

typedef struct {
    cand *v;
    int n, cap;
} candlist;

static void candlist_free(candlist *c) {
    for (int i = 0; i < c->n; i++) free(c->v[i].name), free(c->v[i].rel);
    free(c->v);
    memset(c, 0, sizeof *c);
}

static tf_status candlist_add(candlist *c, const char *sub, const char *name, tf_split split) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        cand *v = tf_realloc(c->v, sizeof *v * (size_t)cap, "track list");
        if (!v) return TF_EINTERNAL;
        c->v = v, c->cap = cap;
    }
    cand *t = &c->v[c->n];
    t->name = tf_strdup(name);
    t->rel = sub ? path_join(sub, name) : tf_strdup(name);
    t->split = split;
    if (!t->name || !t->rel) {
        free(t->name), free(t->rel);
        return TF_EINTERNAL;
    }
    c->n++;
    return TF_OK;
}

static tf_status add_folder(candlist *c, const char *root, const char *sub, tf_split split) {
    strlist names = {0};
    char *dir = sub ? path_join(root, sub) : tf_strdup(root);
    if (!dir) return TF_EINTERNAL;
    tf_status st = list_subdirs(dir, &names);
    for (int i = 0; st == TF_OK && i < names.n; i++) st = candlist_add(c, sub, names.v[i], split);
    free(dir);
    strlist_free(&names);
    return st;
}

/* A deterministic fraction of the TRAIN candidates becomes VALID, decided per track by
 * the hash of its name; at least one when frac > 0 and there are >= 2 candidates. */
static void apply_fraction(candlist *c, double frac) {
    if (!(frac > 0)) return;
    int any = 0, n = 0, best = -1;
    uint64_t best_h = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->v[i].split != TF_SPLIT_TRAIN) continue;
        uint64_t h = mix64(fnv1a(c->v[i].name, strlen(c->v[i].name), FNV_OFFSET));
        double u = (double)(h >> 11) * 0x1p-53;
        n++;
        if (best < 0 || h < best_h) best = i, best_h = h;
        if (u < frac) c->v[i].split = TF_SPLIT_VALID, any = 1;
    }
    if (!any && n >= 2) c->v[best].split = TF_SPLIT_VALID;
}

static int is_musdb_valid(const char *name) {
    for (size_t i = 0; i < sizeof musdb_valid / sizeof *musdb_valid; i++)
        if (!strcmp(name, musdb_valid[i])) return 1;
    return 0;
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->split != y->split) return x->split < y->split ? -1 : 1;
    return strcmp(x->name, y->name);
}

static tf_status find_tracks(candlist *c, const char *root, double frac, char *layout, size_t ln) {
    static const char *const sub[3] = {"train", "valid", "test"};
    int has[3];
    for (int s = 0; s < 3; s++) {
        char *p = path_join(root, sub[s]);
        if (!p) return TF_EINTERNAL;
        has[s] = tf_is_dir(p);
        free(p);
    }
    if (has[0] || has[1] || has[2]) {
        for (int s = 0; s < 3; s++)
            if (has[s]) TF_TRY(add_folder(c, root, sub[s], (tf_split)s));
        snprintf(layout, ln, "splits");
        if (!has[1]) {
            int musdb = 0;
            for (int i = 0; i < c->n; i++)
                if (c->v[i].split == TF_SPLIT_TRAIN && is_musdb_valid(c->v[i].name)) {
                    c->v[i].split = TF_SPLIT_VALID;
                    musdb = 1;
                }
            if (musdb)
                snprintf(layout, ln, "musdb18");
            else
                apply_fraction(c, frac);
        }
    } else {
        TF_TRY(add_folder(c, root, NULL, TF_SPLIT_TRAIN));
        snprintf(layout, ln, "folder");
        apply_fraction(c, frac);
    }
    if (c->n > 1) qsort(c->v, (size_t)c->n, sizeof *c->v, cmp_cand);
    return TF_OK;
}

/* ------------------------------------------------------------------ files */

typedef struct {
    char *path, *rel; /* full path; key in the cache (relative to the root) */
    int64_t size, mt_s, mt_ns;
    int ok;         /* info and env below are valid */
    int scanned;    /* decoded in this open */
    int racy;       /* modified < RACY_NS before the scan finished */
    int oom;        /* out of memory while scanning */
    int64_t frames; /* info */
    int rate, channels;
    int64_t n_env;
    float *env;
    char *err; /* why the scan failed (names the file) */
} frec;

static void frec_free(frec *r) {
    free(r->path), free(r->rel), free(r->env), free(r->err);
}

/* Decode the whole file once, in blocks of env_block frames: info and envelope. */
static void scan_file(frec *r, int env_block) {
    tf_audio_reader *rd = NULL;
    float *buf = NULL;
    r->scanned = 1;
    tf_status st = tf_audio_reader_open(&rd, r->path);
    if (st == TF_OK) {
        const tf_audio_info *in = tf_audio_reader_info(rd);
        r->frames = in->frames, r->rate = in->rate, r->channels = in->channels;
        r->n_env = (r->frames + env_block - 1) / env_block;
        r->env = tf_malloc(sizeof(float) * (size_t)r->n_env, "envelope");
        buf = tf_malloc(sizeof(float) * 2 * (size_t)env_block, "scan buffer");
        if (!r->env || !buf) st = TF_EINTERNAL;
    }
    for (int64_t b = 0; st == TF_OK && b < r->n_env; b++) {
        int64_t off = b * env_block, n = r->frames - off < env_block ? r->frames - off : env_block;
        int64_t got = 0;
        st = tf_audio_reader_chunk(rd, off, n, buf, n, &got); /* buf: (2, n) */
        if (st == TF_OK && got != n)
            st = tf_err(TF_EUSER, "%s: truncated: the header says %lld frames, only %lld readable",
                        r->path, (long long)r->frames, (long long)(off + got));
        if (st) break;
        double s = 0;
        for (int64_t i = 0; i < 2 * n; i++) s += fabsf(buf[i]);
        if (!isfinite(s)) { /* a NaN or Inf sample (float files): never let it reach a batch */
            int64_t i = 0;
            while (i < 2 * n && isfinite(buf[i])) i++;
            st = tf_err(TF_EUSER,
                        "%s: non-finite sample (%s) at frame %lld: the file is damaged (rewrite "
                        "it, or remove the track)",
                        r->path, i < 2 * n && isnan(buf[i]) ? "NaN" : "Inf",
                        (long long)(off + (i % n)));
            break;
        }
        r->env[b] = (float)(s / (double)(2 * n));
    }
    tf_audio_reader_close(rd);
    free(buf);
    if (st == TF_OK) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t dt = ((int64_t)now.tv_sec - r->mt_s) * 1000000000LL + (now.tv_nsec - r->mt_ns);
        r->racy = dt < RACY_NS;
        r->ok = 1;
        return;
    }
    free(r->env);
    r->env = NULL;
    if (st == TF_EINTERNAL)
        r->oom = 1;
    else if (!(r->err = strdup(tf_errmsg())))
        r->oom = 1;
}

/* ------------------------------------------------------------------ cache file
 * header (64 bytes): magic[8], u32 version, u32 header size, i32 sample_rate,
 *   i32 env_block, i64 n_entries, i64 payload bytes, u64 FNV-1a of the payload, 16 zero.
 * entry: i64 rel_len, size, mtime_s, mtime_ns, frames, n_env; i32 rate, channels, racy,
 *   0; then rel (rel_len bytes), env (n_env floats). */

typedef struct {
    const char *rel;
    int64_t rel_len, size, mt_s, mt_ns, frames, n_env;
    int32_t rate, channels, racy;
    const unsigned char *env;
} centry;

typedef struct {
    unsigned char *buf;
    centry *e;
    int64_t n;
    unsigned char *used;
    int valid; /* a readable cache with our sample_rate and env_block */
} cache;

static void cache_free(cache *c) {
    free(c->buf), free(c->e), free(c->used);
    memset(c, 0, sizeof *c);
}

static int cmp_centry(const void *a, const void *b) {
    const centry *x = a, *y = b;
    int64_t n = x->rel_len < y->rel_len ? x->rel_len : y->rel_len;
    int r = memcmp(x->rel, y->rel, (size_t)n);
    if (r) return r;
    return x->rel_len < y->rel_len ? -1 : x->rel_len > y->rel_len;
}

static int64_t rd64(const unsigned char *p) {
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}
static int32_t rd32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Load and check the cache. Anything wrong (missing, truncated, corrupt, other
 * parameters) leaves an empty, invalid cache: the files are scanned again. */
static void cache_load(cache *c, const char *path, int sample_rate, int env_block) {
    memset(c, 0, sizeof *c);
    if (!path[0]) return;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    struct stat st;
    int ok = fstat(fileno(f), &st) == 0 && st.st_size >= CACHE_HDR && st.st_size < (1LL << 40);
    if (ok) {
        c->buf = malloc((size_t)st.st_size);
        ok = c->buf && fread(c->buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size;
    }
    fclose(f);
    const unsigned char *h = c->buf;
    int64_t n = 0, pay = 0;
    if (ok) {
        uint32_t ver, hs;
        uint64_t sum;
        memcpy(&ver, h + 8, 4), memcpy(&hs, h + 12, 4), memcpy(&sum, h + 40, 8);
        n = rd64(h + 24), pay = rd64(h + 32);
        ok = !memcmp(h, CACHE_MAGIC, 8) && ver == CACHE_VERSION && hs == CACHE_HDR &&
             rd32(h + 16) == sample_rate && rd32(h + 20) == env_block && n >= 0 &&
             pay == st.st_size - CACHE_HDR && n <= pay / CACHE_ENT &&
             fnv1a(h + CACHE_HDR, (size_t)pay, FNV_OFFSET) == sum;
    }
    if (ok) {
        c->e = malloc(sizeof *c->e * (size_t)(n ? n : 1));
        c->used = calloc((size_t)(n ? n : 1), 1);
        ok = c->e && c->used;
    }
    if (!ok) { /* (h may be NULL: no pointer arithmetic on it) */
        cache_free(c);
        return;
    }
    const unsigned char *p = h + CACHE_HDR, *end = p + pay;
    for (int64_t i = 0; ok && i < n; i++) {
        if (end - p < CACHE_ENT) {
            ok = 0;
            break;
        }
        centry *e = &c->e[i];
        e->rel_len = rd64(p), e->size = rd64(p + 8), e->mt_s = rd64(p + 16);
        e->mt_ns = rd64(p + 24), e->frames = rd64(p + 32), e->n_env = rd64(p + 40);
        e->rate = rd32(p + 48), e->channels = rd32(p + 52), e->racy = rd32(p + 56);
        p += CACHE_ENT;
        /* (frames + env_block - 1 would overflow for a corrupt frames near INT64_MAX) */
        ok = e->rel_len > 0 && e->rel_len < TF_PATH_MAX && e->rel_len <= end - p && e->frames > 0 &&
             e->n_env == e->frames / env_block + (e->frames % env_block != 0) && e->rate > 0 &&
             (e->channels == 1 || e->channels == 2);
        if (!ok) break;
        e->rel = (const char *)p;
        p += e->rel_len;
        ok = e->n_env <= (end - p) / 4;
        for (int64_t k = 0; ok && k < e->n_env; k++) { /* a scan never stores these */
            float v;
            memcpy(&v, p + 4 * k, 4);
            ok = isfinite(v) && v >= 0;
        }
        if (!ok) break;
        e->env = p;
        p += 4 * e->n_env;
    }
    if (!ok || p != end) {
        cache_free(c);
        return;
    }
    c->n = n;
    c->valid = 1;
    if (n > 1) qsort(c->e, (size_t)n, sizeof *c->e, cmp_centry);
}

/* Take r's info from the cache when size and mtime match and the entry is not racy. */
static tf_status cache_lookup(cache *c, frec *r) {
    centry key = {.rel = r->rel, .rel_len = (int64_t)strlen(r->rel)};
    centry *e = c->n ? bsearch(&key, c->e, (size_t)c->n, sizeof *c->e, cmp_centry) : NULL;
    if (!e) return TF_OK;
    c->used[e - c->e] = 1;
    if (e->size != r->size || e->mt_s != r->mt_s || e->mt_ns != r->mt_ns || e->racy) return TF_OK;
    r->env = tf_malloc(sizeof(float) * (size_t)(e->n_env ? e->n_env : 1), "envelope");
    if (!r->env) return TF_EINTERNAL;
    memcpy(r->env, e->env, sizeof(float) * (size_t)e->n_env);
    r->frames = e->frames, r->n_env = e->n_env, r->rate = e->rate, r->channels = e->channels;
    r->ok = 1;
    return TF_OK;
}

static unsigned char *put_entry(unsigned char *p, const centry *e) {
    int64_t v[6] = {e->rel_len, e->size, e->mt_s, e->mt_ns, e->frames, e->n_env};
    int32_t w[4] = {e->rate, e->channels, e->racy, 0};
    memcpy(p, v, sizeof v), memcpy(p + 48, w, sizeof w);
    p += CACHE_ENT;
    memcpy(p, e->rel, (size_t)e->rel_len);
    p += e->rel_len;
    memcpy(p, e->env, 4 * (size_t)e->n_env);
    return p + 4 * e->n_env;
}

static centry rec_entry(const frec *r) {
    centry e = {r->rel,
                (int64_t)strlen(r->rel),
                r->size,
                r->mt_s,
                r->mt_ns,
                r->frames,
                r->n_env,
                r->rate,
                r->channels,
                r->racy,
                (const unsigned char *)r->env};
    return e;
}

/* Write atomically ("<path>.tmp-<pid>", fsync, rename) every ok file of recs and the
 * entries of c marked kept (used == 2: files outside this index that still exist). */
static tf_status cache_write(const char *path, const frec *recs, int n, const cache *c, int rate,
                             int env_block) {
    int64_t pay = 0, cnt = 0;
    for (int i = 0; i < n; i++)
        if (recs[i].ok) pay += CACHE_ENT + (int64_t)strlen(recs[i].rel) + 4 * recs[i].n_env, cnt++;
    for (int64_t i = 0; i < c->n; i++)
        if (c->used[i] == 2) pay += CACHE_ENT + c->e[i].rel_len + 4 * c->e[i].n_env, cnt++;
    unsigned char *buf = tf_calloc(1, (size_t)(CACHE_HDR + pay), "index cache");
    if (!buf) return TF_EINTERNAL;
    unsigned char *p = buf + CACHE_HDR;
    for (int i = 0; i < n; i++)
        if (recs[i].ok) {
            centry e = rec_entry(&recs[i]);
            p = put_entry(p, &e);
        }
    for (int64_t i = 0; i < c->n; i++)
        if (c->used[i] == 2) p = put_entry(p, &c->e[i]);
    uint32_t ver = CACHE_VERSION, hs = CACHE_HDR;
    int32_t sr = rate, eb = env_block;
    uint64_t sum = fnv1a(buf + CACHE_HDR, (size_t)pay, FNV_OFFSET);
    memcpy(buf, CACHE_MAGIC, 8), memcpy(buf + 8, &ver, 4), memcpy(buf + 12, &hs, 4);
    memcpy(buf + 16, &sr, 4), memcpy(buf + 20, &eb, 4), memcpy(buf + 24, &cnt, 8);
    memcpy(buf + 32, &pay, 8), memcpy(buf + 40, &sum, 8);

    tf_status st = tf_write_file_atomic(path, buf, (size_t)(CACHE_HDR + pay));
    free(buf);
    return st;
}

/* Cache entries this index did not ask for (other sources, say) are kept while their file
 * is unchanged on disk (marked used = 2); the others are dropped, setting *dropped (the
 * cache must be rewritten). */
static tf_status keep_unused(cache *c, const char *root, int *dropped) {
    for (int64_t i = 0; i < c->n; i++) {
        if (c->used[i]) continue;
        const centry *e = &c->e[i];
        size_t n = strlen(root) + (size_t)e->rel_len + 2;
        char *full = tf_malloc(n, "path");
        if (!full) return TF_EINTERNAL;
        snprintf(full, n, "%s/%.*s", root, (int)e->rel_len, e->rel);
        struct stat st;
        int keep = !e->racy && stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
                   (int64_t)st.st_size == e->size && (int64_t)st.st_mtim.tv_sec == e->mt_s &&
                   (int64_t)st.st_mtim.tv_nsec == e->mt_ns;
        free(full);
        if (keep)
            c->used[i] = 2;
        else
            *dropped = 1;
    }
    return TF_OK;
}

/* "<root>/.tfswa_index" when the root is writable, else a per-root file under the user's
 * cache folder. Leaves out "" and a warning when neither is usable. */
static void default_cache_path(const char *root, char *out, size_t n, char *warn, size_t wn) {
    out[0] = 0;
    if (access(root, W_OK) == 0) {
        snprintf(out, n, "%s/.tfswa_index", root);
        return;
    }
    char base[TF_PATH_MAX - 64], dir[TF_PATH_MAX - 32]; /* + "/index-<16 hex>" fits out */
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len = -1;
    if (xdg && xdg[0] == '/')
        len = snprintf(base, sizeof base, "%s", xdg);
    else if (home && home[0])
        len = snprintf(base, sizeof base, "%s/.cache", home);
    if (len < 0 || len >= (int)sizeof base) {
        snprintf(warn, wn,
                 "%s is not writable and XDG_CACHE_HOME / HOME give no usable cache "
                 "folder: the index is not cached",
                 root);
        return;
    }
    char *real = realpath(root, NULL);
    uint64_t h = fnv1a(real ? real : root, strlen(real ? real : root), FNV_OFFSET);
    free(real);
    snprintf(dir, sizeof dir, "%s/tfswa", base);
    if (tf_mkdirs(dir) != TF_OK) {
        snprintf(warn, wn, "%s (the index is not cached)", tf_errmsg());
        return;
    }
    snprintf(out, n, "%s/index-%016llx", dir, (unsigned long long)h);
}

/* ------------------------------------------------------------------ building the index */

const char *tf_split_name(tf_split s) {
    return s == TF_SPLIT_TRAIN ? "train" : s == TF_SPLIT_VALID ? "valid" : "test";
}

tf_status tf_split_parse(const char *s, tf_split *split) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, tf_split_name((tf_split)i))) {
            *split = (tf_split)i;
            return TF_OK;
        }
    return tf_err(TF_EUSER, "unknown split '%s' (train, valid or test)", s);
}

typedef struct {
    const tf_config *cfg;
    char root[TF_PATH_MAX];
    int S; /* stems per track, slot S = mixture */
    candlist cands;
    int *slot;  /* (n_tracks, S + 1): index into recs, -1 = absent or not locatable */
    frec *recs; /* every stem file found */
    int n_recs, cap_recs;
    strlist problems;
    cache cache;
} builder;

static void builder_free(builder *b) {
    candlist_free(&b->cands);
    free(b->slot);
    for (int i = 0; i < b->n_recs; i++) frec_free(&b->recs[i]);
    free(b->recs);
    strlist_free(&b->problems);
    cache_free(&b->cache);
}

/* Find <root>/<t->rel>/<stem>.wav|.flac and stat it; returns the record index through
 * *slot (-1 when absent or a problem was recorded). */
static tf_status locate(builder *b, const cand *t, const char *stem, int required, int *slot) {
    static const char *const ext[2] = {"wav", "flac"};
    char *rel[2] = {NULL, NULL}, *full[2] = {NULL, NULL};
    struct stat st[2];
    int found[2];
    tf_status s = TF_OK;
    *slot = -1;
    for (int k = 0; k < 2; k++) {
        if (asprintf(&rel[k], "%s/%s.%s", t->rel, stem, ext[k]) < 0) rel[k] = NULL;
        full[k] = rel[k] ? path_join(b->root, rel[k]) : NULL;
        if (!full[k]) {
            s = tf_err(TF_EINTERNAL, "out of memory building a path");
            goto done;
        }
        found[k] = stat(full[k], &st[k]) == 0;
        if (!found[k] && errno != ENOENT) {
            s = strlist_addf(&b->problems, "%s: cannot access: %s", full[k], strerror(errno));
            goto done;
        }
    }
    if (found[0] && found[1]) {
        s = strlist_addf(&b->problems, "%s: both %s.wav and %s.flac exist (keep one)", full[0],
                         stem, stem);
        goto done;
    }
    if (!found[0] && !found[1]) {
        if (required)
            s = strlist_addf(&b->problems, "%s: missing stem file (%s.wav or %s.flac)", full[0],
                             stem, stem);
        goto done;
    }
    int k = found[0] ? 0 : 1;
    if (!S_ISREG(st[k].st_mode)) {
        s = strlist_addf(&b->problems, "%s: not a regular file", full[k]);
        goto done;
    }
    if (b->n_recs == b->cap_recs) {
        int cap = b->cap_recs ? 2 * b->cap_recs : 64;
        frec *v = tf_realloc(b->recs, sizeof *v * (size_t)cap, "file list");
        if (!v) {
            s = TF_EINTERNAL;
            goto done;
        }
        b->recs = v, b->cap_recs = cap;
    }
    frec *r = &b->recs[b->n_recs];
    memset(r, 0, sizeof *r);
    r->path = full[k], r->rel = rel[k];
    full[k] = rel[k] = NULL;
    r->size = (int64_t)st[k].st_size;
    r->mt_s = (int64_t)st[k].st_mtim.tv_sec, r->mt_ns = (int64_t)st[k].st_mtim.tv_nsec;
    *slot = b->n_recs++;
done:
    for (int j = 0; j < 2; j++) free(rel[j]), free(full[j]);
    return s;
}

/* Problems of one track: failed scans, wrong rate, stems of different lengths. */
static tf_status check_track(builder *b, int t) {
    const int *slot = &b->slot[(size_t)t * (size_t)(b->S + 1)];
    const frec *ref = NULL;
    for (int s = 0; s <= b->S; s++) {
        if (slot[s] < 0) continue; /* absent: reported by locate() */
        const frec *r = &b->recs[slot[s]];
        if (!r->ok) {
            TF_TRY(strlist_addf(&b->problems, "%s", r->err ? r->err : r->path));
            continue;
        }
        if (r->rate != b->cfg->sample_rate)
            TF_TRY(strlist_addf(&b->problems, "%s: sample rate %d Hz, expected %d Hz (sample_rate)",
                                r->path, r->rate, b->cfg->sample_rate));
        if (!ref)
            ref = r;
        else if (r->frames != ref->frames)
            TF_TRY(strlist_addf(&b->problems,
                                "%s: %lld frames, but %s has %lld (stems of a track must have "
                                "the same length)",
                                r->path, (long long)r->frames, ref->path, (long long)ref->frames));
    }
    return TF_OK;
}

/* One TF_EUSER message: a header line, then the problems sorted by file. */
static tf_status problems_error(builder *b) {
    strlist *p = &b->problems;
    qsort(p->v, (size_t)p->n, sizeof *p->v, cmp_strp);
    size_t cap = MAX_PROBLEM_MSG + 256, len = 0;
    char *msg = tf_malloc(cap, "problem list");
    if (!msg) return TF_EINTERNAL;
    len = (size_t)snprintf(msg, cap, "dataset %s: %d problem%s:", b->root, p->n,
                           p->n == 1 ? "" : "s");
    int shown = 0;
    for (; shown < p->n; shown++) {
        size_t l = strlen(p->v[shown]);
        if (len + l + 2 > MAX_PROBLEM_MSG) break;
        msg[len++] = '\n';
        memcpy(msg + len, p->v[shown], l + 1);
        len += l;
    }
    if (shown < p->n) snprintf(msg + len, cap - len, "\n... and %d more", p->n - shown);
    tf_status st = tf_err(TF_EUSER, "%s", msg);
    free(msg);
    return st;
}

static void stem_move(tf_stem_file *dst, frec *r) {
    dst->path = r->path, dst->frames = r->frames, dst->rate = r->rate;
    dst->channels = r->channels, dst->n_env = r->n_env, dst->env = r->env;
    r->path = NULL, r->env = NULL;
}

static tf_status build(builder *b, tf_index *ix, const char *cache_arg) {
    const tf_config *cfg = b->cfg;
    const int S = b->S, env_block = ix->env_block;

    struct stat rst;
    if (stat(b->root, &rst) != 0)
        return tf_err(TF_EUSER, "dataset root %s: %s (set root / --data_root)", b->root,
                      strerror(errno));
    if (!S_ISDIR(rst.st_mode)) return tf_err(TF_EUSER, "dataset root %s: not a folder", b->root);
    TF_TRY(find_tracks(&b->cands, b->root, cfg->valid_fraction, ix->layout, sizeof ix->layout));
    if (b->cands.n == 0)
        return tf_err(TF_EUSER,
                      "dataset root %s: no track folders found (expected %s/<track>/ or "
                      "%s/train/<track>/ holding <stem>.wav|.flac)",
                      b->root, b->root, b->root);

    /* locate and stat every file */
    const int nt = b->cands.n;
    b->slot = tf_malloc(sizeof(int) * (size_t)nt * (size_t)(S + 1), "track slots");
    if (!b->slot) return TF_EINTERNAL;
    for (int t = 0; t < nt; t++)
        for (int s = 0; s <= S; s++)
            TF_TRY(locate(b, &b->cands.v[t], s < S ? cfg->sources[s] : "mixture", s < S,
                          &b->slot[(size_t)t * (size_t)(S + 1) + (size_t)s]));

    /* cache, then scan what it does not answer */
    if (cache_arg)
        snprintf(ix->cache_path, sizeof ix->cache_path, "%s", cache_arg);
    else
        default_cache_path(b->root, ix->cache_path, sizeof ix->cache_path, ix->cache_warning,
                           sizeof ix->cache_warning);
    cache_load(&b->cache, ix->cache_path, cfg->sample_rate, env_block);
    int *todo = tf_malloc(sizeof(int) * (size_t)(b->n_recs ? b->n_recs : 1), "scan list");
    if (!todo) return TF_EINTERNAL;
    int n_todo = 0;
    tf_status st = TF_OK;
    for (int i = 0; st == TF_OK && i < b->n_recs; i++) {
        st = cache_lookup(&b->cache, &b->recs[i]);
        if (b->recs[i].ok)
            ix->files_cached++;
        else
            todo[n_todo++] = i;
    }
    if (st) {
        free(todo);
        return st;
    }
    int threads = cfg->num_threads > 0 ? cfg->num_threads : omp_get_max_threads();
    if (threads > n_todo) threads = n_todo;
    if (threads < 1) threads = 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int j = 0; j < n_todo; j++) scan_file(&b->recs[todo[j]], env_block);
    free(todo);
    int changed = !b->cache.valid, any_ok = 0;
    for (int i = 0; i < b->n_recs; i++) {
        const frec *r = &b->recs[i];
        if (r->oom) return tf_err(TF_EINTERNAL, "out of memory scanning %s", r->path);
        if (r->scanned) ix->files_scanned++;
        if (r->scanned && r->ok) changed = 1;
        any_ok |= r->ok;
    }
    TF_TRY(keep_unused(&b->cache, b->root, &changed)); /* files outside this index */
    if (!b->cache.valid && !any_ok) changed = 0;       /* nothing worth remembering */

    /* problems */
    for (int t = 0; t < nt; t++) TF_TRY(check_track(b, t));

    /* remember the good files even when the scan found problems */
    if (changed && ix->cache_path[0]) {
        st =
            cache_write(ix->cache_path, b->recs, b->n_recs, &b->cache, cfg->sample_rate, env_block);
        if (st == TF_OK)
            ix->cache_written = 1;
        else if (st == TF_EUSER && !cache_arg) {
            snprintf(ix->cache_warning, sizeof ix->cache_warning, "%s (the index is not cached)",
                     tf_errmsg());
            st = TF_OK;
        }
        if (st && !b->problems.n) return st;
    }
    if (b->problems.n) return problems_error(b); /* they matter more than the cache */

    /* the index: candidates are sorted by (split, name) already */
    ix->tracks = tf_calloc((size_t)nt, sizeof *ix->tracks, "tracks");
    if (!ix->tracks) return TF_EINTERNAL;
    ix->n_tracks = nt;
    for (int t = 0; t < nt; t++) {
        tf_track *tr = &ix->tracks[t];
        cand *c = &b->cands.v[t];
        const int *slot = &b->slot[(size_t)t * (size_t)(S + 1)];
        tr->name = c->name, c->name = NULL;
        tr->dir = path_join(b->root, c->rel);
        if (!tr->dir) return TF_EINTERNAL;
        tr->split = c->split;
        tr->frames = b->recs[slot[0]].frames;
        for (int s = 0; s < S; s++) stem_move(&tr->stems[s], &b->recs[slot[s]]);
        if (slot[S] >= 0) stem_move(&tr->mixture, &b->recs[slot[S]]);
        if (ix->split_count[tr->split]++ == 0) ix->split_start[tr->split] = t;
    }
    return TF_OK;
}

tf_status tf_index_open(tf_index **out, const tf_config *cfg, const char *cache_path) {
    *out = NULL;
    if (!cfg->root[0]) return tf_err(TF_EUSER, "no dataset root given (root / --data_root)");
    if (cfg->n_sources < 1 || cfg->n_sources > TF_MAX_TARGETS)
        return tf_err(TF_EUSER, "sources: %d stems (1 to %d)", cfg->n_sources, TF_MAX_TARGETS);
    if (cfg->sample_rate < 4 || cfg->sample_rate > 1000000)
        return tf_err(TF_EUSER, "sample_rate: %d Hz is not usable", cfg->sample_rate);
    for (int s = 0; s < cfg->n_sources; s++)
        if (!cfg->sources[s][0] || strchr(cfg->sources[s], '/') ||
            !strcmp(cfg->sources[s], "mixture"))
            return tf_err(TF_EUSER, "sources: '%s' cannot name a stem file", cfg->sources[s]);
    tf_index *ix = tf_calloc(1, sizeof *ix, "index");
    if (!ix) return TF_EINTERNAL;
    builder b;
    memset(&b, 0, sizeof b);
    b.cfg = cfg;
    b.S = cfg->n_sources;
    snprintf(b.root, sizeof b.root, "%s", cfg->root);
    for (size_t n = strlen(b.root); n > 1 && b.root[n - 1] == '/'; n--) b.root[n - 1] = 0;
    snprintf(ix->root, sizeof ix->root, "%s", b.root);
    ix->n_stems = b.S;
    for (int s = 0; s < b.S; s++) snprintf(ix->stem_names[s], TF_NAME_MAX, "%s", cfg->sources[s]);
    ix->sample_rate = cfg->sample_rate;
    ix->env_block = cfg->sample_rate / 4;
    tf_status st = build(&b, ix, cache_path);
    builder_free(&b);
    if (st) {
        tf_index_close(ix);
        return st;
    }
    *out = ix;
    return TF_OK;
}

static void stem_free(tf_stem_file *f) {
    free(f->path), free(f->env);
}

void tf_index_close(tf_index *ix) {
    if (!ix) return;
    for (int t = 0; t < ix->n_tracks; t++) {
        tf_track *tr = &ix->tracks[t];
        free(tr->name), free(tr->dir);
        stem_free(&tr->mixture);
        for (int s = 0; s < TF_MAX_TARGETS; s++) stem_free(&tr->stems[s]);
    }
    free(ix->tracks);
    free(ix);
}

int tf_index_count(const tf_index *ix, tf_split split) {
    return (unsigned)split < 3 ? ix->split_count[split] : 0;
}

int tf_index_track_of(const tf_index *ix, tf_split split, int i) {
    if ((unsigned)split >= 3 || i < 0 || i >= ix->split_count[split]) return -1;
    return ix->split_start[split] + i;
}

int64_t tf_index_frames(const tf_index *ix, tf_split split) {
    int64_t n = 0;
    for (int i = 0; i < tf_index_count(ix, split); i++)
        n += ix->tracks[tf_index_track_of(ix, split, i)].frames;
    return n;
}
