/* The configuration of tfswa: one key table drives setting (YAML scalars and flags),
 * range checks, validation and writing. See config.h for the keys and their layers. */
#include "util/config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "util/device.h"

/* ------------------------------------------------------------------------------------ */
/* The key table                                                                         */
/* ------------------------------------------------------------------------------------ */

typedef enum { KT_STR, KT_BOOL, KT_INT, KT_I64, KT_DBL, KT_ENUM, KT_NAMES, KT_INTS, KT_PAIR } ktype;

enum {
    R_LO_EXCL = 1,  /* lo is excluded */
    R_HI_EXCL = 2,  /* hi is excluded */
    R_POW2 = 4,     /* a power of two */
    R_NONEMPTY = 8, /* string must not be empty */
    R_NAME = 16,    /* string, if not empty, is a name: [A-Za-z0-9_-] */
    R_DEVICE = 32,  /* string is a device: cpu | cuda | cuda:N (util/device.h) */
};

typedef struct {
    const char *name;
    ktype type;
    size_t off;               /* the field; first element of a list; time of a pair */
    size_t aux;               /* string: buffer size; list: count field; pair: second int */
    double lo, hi;            /* numeric range; list elements' range for KT_INTS / KT_PAIR */
    int flags;                /* R_* */
    const char *const *enums; /* KT_ENUM: NULL-terminated names, index = value */
} key_def;

static const char *const E_SAMPLING[] = {"remix", "aligned", NULL};
static const char *const E_OUTPUT[] = {"magnitude", "mask", NULL};
static const char *const E_DTYPE[] = {"fp32", "bf16", NULL};
static const char *const E_AMP[] = {"bf16", "fp16", NULL}; /* amp_dtype: 0, 1 */
static const char *const E_CKPT[] = {"off", "blocks", NULL};
static const char *const E_BACKEND[] = {"dnnl", "ref", "cuda", NULL}; /* tf_backend order */
static const char *const E_OPT[] = {"adam", "adamw", NULL};
static const char *const E_LOSS[] = {"l1", "mrstft", NULL};

_Static_assert(sizeof(tf_sampling) == sizeof(int) && sizeof(tf_output_mode) == sizeof(int) &&
                   sizeof(tf_dtype) == sizeof(int) && sizeof(tf_ckpt_mode) == sizeof(int) &&
                   sizeof(tf_optimizer) == sizeof(int) && sizeof(tf_loss) == sizeof(int),
               "enum fields are stored through int pointers");

#define OFF(f) offsetof(tf_config, f)
#define SZ(f)  sizeof(((tf_config *)0)->f)
#define INF    HUGE_VAL
#define IMAX   ((double)INT_MAX)
// clang-format off
#define KSTR(n, f, fl)           {n, KT_STR, OFF(f), SZ(f), 0, 0, fl, NULL}
#define KBOOL(n, f)              {n, KT_BOOL, OFF(f), 0, 0, 1, 0, NULL}
#define KINT(n, f, lo, hi, fl)   {n, KT_INT, OFF(f), 0, lo, hi, fl, NULL}
#define KI64(n, f, lo, hi, fl)   {n, KT_I64, OFF(f), 0, lo, hi, fl, NULL}
#define KDBL(n, f, lo, hi, fl)   {n, KT_DBL, OFF(f), 0, lo, hi, fl, NULL}
#define KENUM(n, f, e)           {n, KT_ENUM, OFF(f), 0, 0, 0, 0, e}
#define KNAMES(n, f, cnt)        {n, KT_NAMES, OFF(f), OFF(cnt), 0, 0, 0, NULL}
#define KINTS(n, f, cnt, lo, hi) {n, KT_INTS, OFF(f), OFF(cnt), lo, hi, 0, NULL}
#define KPAIR(n, f1, f2, lo, hi) {n, KT_PAIR, OFF(f1), OFF(f2), lo, hi, 0, NULL}
// clang-format on

/* In struct order; keys sharing a dotted prefix are contiguous (the writer nests them). */
static const key_def KEYS[] = {
    /* data */
    KSTR("root", root, R_NONEMPTY),
    KINT("sample_rate", sample_rate, 8000, 384000, 0),
    KNAMES("targets", targets, n_targets),
    KNAMES("sources", sources, n_sources),
    KDBL("segment_seconds", segment_seconds, 0, 600, R_LO_EXCL),
    KBOOL("use_efficient_loading", use_efficient_loading),
    KDBL("min_mean_abs", min_mean_abs, 0, 1, 0),
    KINT("num_workers", num_workers, 0, 256, 0),
    KINT("prefetch_factor", prefetch_factor, 1, 1024, 0),
    KBOOL("persistent_workers", persistent_workers),
    KBOOL("pin_memory", pin_memory),
    KENUM("sampling", sampling, E_SAMPLING),
    KBOOL("augment.gain", aug_gain),
    KDBL("augment.gain_min_db", aug_gain_min_db, -60, 60, 0),
    KDBL("augment.gain_max_db", aug_gain_max_db, -60, 60, 0),
    KBOOL("augment.channel_swap", aug_channel_swap),
    KBOOL("augment.polarity", aug_polarity),
    KDBL("augment.mix_same_source", aug_mix_same_source, 0, 1, 0),
    KDBL("valid_fraction", valid_fraction, 0, 1, R_HI_EXCL),
    KI64("seed", seed, 0, INF, 0),
    /* STFT */
    KINT("stft.window_size", stft_window_size, 16, 65536, R_POW2),
    KINT("stft.hop_length", stft_hop_length, 1, 65536, 0),
    /* model */
    KSTR("preset", preset, R_NAME),
    KINTS("channels", channels, n_levels, 1, 8192),
    KINT("rcms_per_block", rcms_per_block, 1, 64, 0),
    KINT("tfswa_blocks", tfswa_blocks, 0, 64, 0),
    KINT("heads", heads, 1, 256, 0),
    KPAIR("window", window_t, window_f, 1, 1024),
    KDBL("mlp_ratio", mlp_ratio, 0, 64, R_LO_EXCL),
    KINT("subbands", subbands, 1, 32768, 0),
    KENUM("output", output, E_OUTPUT),
    KENUM("activation_dtype", activation_dtype, E_DTYPE),
    KENUM("checkpointing", checkpointing, E_CKPT),
    KENUM("compute_dtype", compute_dtype, E_DTYPE),
    KENUM("amp_dtype", amp_dtype, E_AMP),
    KENUM("backend", backend, E_BACKEND),
    KSTR("device", device, R_DEVICE),
    /* training */
    KINT("batch_size", batch_size, 1, 1 << 20, 0),
    KINT("gradient_accumulation_steps", gradient_accumulation_steps, 1, 1 << 20, 0),
    KINT("max_epochs", max_epochs, 0, 1000000, 0),
    KI64("max_steps", max_steps, 0, INF, 0),
    KI64("steps_per_epoch", steps_per_epoch, 1, INF, 0),
    KENUM("optimizer", optimizer, E_OPT),
    KDBL("learning_rate", learning_rate, 0, 10, R_LO_EXCL),
    KDBL("weight_decay", weight_decay, 0, 10, 0),
    KDBL("lr_decay", lr_decay, 0, 1, R_LO_EXCL),
    KDBL("lr_decay_epochs", lr_decay_epochs, 0, 1e6, R_LO_EXCL),
    KDBL("grad_clip", grad_clip, 0, INF, 0),
    KDBL("ema_decay", ema_decay, 0, 1, R_HI_EXCL),
    KENUM("loss", loss, E_LOSS),
    KINT("log_every", log_every, 1, IMAX, 0),
    KINT("val_every", val_every, 0, IMAX, 0),
    KINT("ckpt_every", ckpt_every, 0, IMAX, 0),
    KINT("max_bad_steps", max_bad_steps, 1, IMAX, 0),
    KSTR("output_dir", output_dir, R_NONEMPTY),
    KSTR("resume", resume, 0),
    KINT("num_threads", num_threads, 0, 4096, 0),
};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

/* Flag aliases (REQUEST.md names). AL_AMP / AL_CKPT are booleans mapped onto enums. */
enum { AL_PLAIN = 0, AL_AMP = 1, AL_CKPT = 2 };
typedef struct {
    const char *alias, *key;
    int kind;
} alias_def;
static const alias_def ALIASES[] = {
    {"data_root", "root", AL_PLAIN},
    {"n_fft", "stft.window_size", AL_PLAIN},
    {"window_size", "stft.window_size", AL_PLAIN},
    {"hop_length", "stft.hop_length", AL_PLAIN},
    {"target_stems", "targets", AL_PLAIN},
    {"use_amp", "activation_dtype", AL_AMP},
    {"use_checkpointing", "checkpointing", AL_CKPT},
};
#define NALIASES ((int)(sizeof ALIASES / sizeof ALIASES[0]))

#define MAX_ITEMS 16 /* list items kept while parsing (more are counted, then rejected) */
#define ITEM_MAX  64 /* bytes per list item while parsing */
#define KEY_MAX   160

static void *fieldp(tf_config *c, size_t off) {
    return (char *)c + off;
}
static const void *cfieldp(const tf_config *c, size_t off) {
    return (const char *)c + off;
}

static const key_def *find_key(const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].name, name)) return &KEYS[i];
    return NULL;
}

/* Flag spelling: '-', '_' and '.' are the same character. */
static int flag_char(char ch) {
    return ch == '-' || ch == '.' ? '_' : ch;
}
static int flag_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (flag_char(*a) != flag_char(*b)) return 0;
    return *a == *b;
}
static const key_def *find_key_flag(const char *name) {
    const key_def *k = find_key(name);
    if (k) return k;
    for (int i = 0; i < NKEYS; i++)
        if (flag_eq(KEYS[i].name, name)) return &KEYS[i];
    return NULL;
}

static size_t levenshtein(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t row[64], prev;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* The closest key (or the key of the closest alias) within edit distance 2, or NULL. */
static const char *suggest_key(const char *name) {
    const char *best = NULL;
    size_t bd = 3;
    for (int i = 0; i < NKEYS; i++) {
        size_t d = levenshtein(name, KEYS[i].name);
        if (d < bd) bd = d, best = KEYS[i].name;
    }
    for (int i = 0; i < NALIASES; i++) {
        size_t d = levenshtein(name, ALIASES[i].alias);
        if (d < bd) bd = d, best = ALIASES[i].key;
    }
    return best;
}

static tf_status unknown_key(const char *name, const char *prefix) {
    const char *s = suggest_key(name);
    if (s) return tf_err(TF_EUSER, "unknown key '%s' (did you mean '%s%s'?)", name, prefix, s);
    return tf_err(TF_EUSER, "unknown key '%s'", name);
}

/* Is name the dotted prefix of some key ("stft" for "stft.window_size")? */
static int is_group(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < NKEYS; i++)
        if (!strncmp(KEYS[i].name, name, n) && KEYS[i].name[n] == '.') return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Scalars: parsing and formatting                                                       */
/* ------------------------------------------------------------------------------------ */

/* Shortest "%.*g" that reads back to exactly v; always looks like a float ("6.0"). */
static void fmt_double(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15 && !(v == 0 && signbit(v))) {
        snprintf(buf, n, "%.1f", v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEn") && strlen(buf) + 3 <= n) strcat(buf, ".0");
}

/* Short form for messages (no forced ".0"; integers without exponent). */
static void fmt_num(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
}

static int parse_bool(const char *s, int *out) {
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off",
                                                                             "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, t[i])) return *out = 1, 1;
        if (!strcasecmp(s, f[i])) return *out = 0, 1;
    }
    return 0;
}

static int parse_ll(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return 0;
    *out = v;
    return 1;
}

static int parse_dbl(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1)) return 0;
    *out = v;
    return 1;
}

static int is_name(const char *s, size_t max) {
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return n > 0 && n < max;
}

/* Decode one UTF-8 code point at s; returns its length, 0 if invalid. */
static int utf8_decode(const unsigned char *s, unsigned *cp) {
    if (s[0] < 0x80) return *cp = s[0], 1;
    int len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!len || s[0] > 0xF4) return 0;
    unsigned v = s[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const unsigned minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < minv[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned cp;
    while (*p) {
        int n = utf8_decode(p, &cp);
        if (!n) return 0;
        p += n;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* Checking one key's value in the struct                                                */
/* ------------------------------------------------------------------------------------ */

static void range_desc(const key_def *k, char *buf, size_t n) {
    char lo[40], hi[40];
    fmt_num(lo, sizeof lo, k->lo);
    fmt_num(hi, sizeof hi, k->hi);
    const char *p2 = (k->flags & R_POW2) ? "a power of two " : "";
    if (isinf(k->hi))
        snprintf(buf, n, "%s%s %s", p2, (k->flags & R_LO_EXCL) ? ">" : ">=", lo);
    else
        snprintf(buf, n, "%sin %c%s, %s%c", p2, (k->flags & R_LO_EXCL) ? '(' : '[', lo, hi,
                 (k->flags & R_HI_EXCL) ? ')' : ']');
}

static int in_range(const key_def *k, double v) {
    if (!(v >= k->lo && v <= k->hi)) return 0;
    if ((k->flags & R_LO_EXCL) && v == k->lo) return 0;
    if ((k->flags & R_HI_EXCL) && v == k->hi) return 0;
    if (k->flags & R_POW2) {
        long long i = (long long)v;
        if (i <= 0 || (i & (i - 1))) return 0;
    }
    return 1;
}

/* text: the value as the user wrote it, or NULL to format v. */
static tf_status range_err(const key_def *k, const char *what, double v, const char *text) {
    char d[128], vs[40];
    range_desc(k, d, sizeof d);
    fmt_num(vs, sizeof vs, v);
    return tf_err(TF_EUSER, "%s: %s is out of range (must be %s)", what, text ? text : vs, d);
}

static tf_status check_key(const tf_config *c, const key_def *k, const char *what,
                           const char *text) {
    const void *p = cfieldp(c, k->off);
    switch (k->type) {
    case KT_STR: {
        const char *s = p;
        if (!memchr(s, 0, k->aux)) return tf_err(TF_EUSER, "%s: value is not terminated", what);
        if (strlen(s) >= k->aux)
            return tf_err(TF_EUSER, "%s: value is too long (at most %zu bytes)", what, k->aux - 1);
        if (!utf8_valid(s)) return tf_err(TF_EUSER, "%s: '%s' is not valid UTF-8", what, s);
        if ((k->flags & R_NONEMPTY) && !*s) return tf_err(TF_EUSER, "%s: must not be empty", what);
        if ((k->flags & R_NAME) && *s && !is_name(s, k->aux))
            return tf_err(TF_EUSER, "%s: '%s' is not a name (letters, digits, '_', '-')", what, s);
        tf_device dev;
        if ((k->flags & R_DEVICE) && !tf_device_parse(s, &dev))
            return tf_err(TF_EUSER, "%s: '%s': expected cpu, cuda or cuda:N", what, s);
        return TF_OK;
    }
    case KT_BOOL: {
        int v = *(const int *)p;
        if (v != 0 && v != 1) return tf_err(TF_EUSER, "%s: %d is not a boolean (0 or 1)", what, v);
        return TF_OK;
    }
    case KT_INT:
        return in_range(k, *(const int *)p) ? TF_OK : range_err(k, what, *(const int *)p, text);
    case KT_I64: {
        double v = (double)*(const int64_t *)p;
        return in_range(k, v) ? TF_OK : range_err(k, what, v, text);
    }
    case KT_DBL: {
        double v = *(const double *)p;
        if (!isfinite(v)) return tf_err(TF_EUSER, "%s: %g is not a finite number", what, v);
        return in_range(k, v) ? TF_OK : range_err(k, what, v, text);
    }
    case KT_ENUM: {
        int v = *(const int *)p, n = 0;
        while (k->enums[n]) n++;
        if (v < 0 || v >= n) return tf_err(TF_EUSER, "%s: invalid value %d", what, v);
        return TF_OK;
    }
    case KT_NAMES: {
        const char(*names)[TF_NAME_MAX] = p;
        int n = *(const int *)cfieldp(c, k->aux);
        if (n < 1 || n > TF_MAX_TARGETS)
            return tf_err(TF_EUSER, "%s: %d names given, must be 1 to %d", what, n, TF_MAX_TARGETS);
        for (int i = 0; i < n; i++) {
            if (!memchr(names[i], 0, TF_NAME_MAX) || !is_name(names[i], TF_NAME_MAX))
                return tf_err(TF_EUSER,
                              "%s: '%.*s' is not a valid name (1 to %d letters, digits, '_', '-')",
                              what, TF_NAME_MAX, names[i], TF_NAME_MAX - 1);
            for (int j = 0; j < i; j++)
                if (!strcmp(names[i], names[j]))
                    return tf_err(TF_EUSER, "%s: '%s' is listed twice", what, names[i]);
        }
        return TF_OK;
    }
    case KT_INTS: {
        const int *v = p;
        int n = *(const int *)cfieldp(c, k->aux);
        if (n < 1 || n > TF_MAX_LEVELS)
            return tf_err(TF_EUSER, "%s: %d values given, must be 1 to %d", what, n, TF_MAX_LEVELS);
        for (int i = 0; i < n; i++)
            if (!in_range(k, v[i])) return range_err(k, what, v[i], NULL);
        return TF_OK;
    }
    case KT_PAIR: {
        int a = *(const int *)p, b = *(const int *)cfieldp(c, k->aux);
        if (!in_range(k, a)) return range_err(k, what, a, NULL);
        if (!in_range(k, b)) return range_err(k, what, b, NULL);
        return TF_OK;
    }
    }
    return tf_err(TF_EINTERNAL, "%s: unknown key type", what);
}

/* ------------------------------------------------------------------------------------ */
/* Setting one key from text                                                            */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    int n; /* items seen (may exceed MAX_ITEMS) */
    char v[MAX_ITEMS][ITEM_MAX];
} item_list;

static tf_status add_item(item_list *l, const char *what, const char *s, size_t len) {
    if (len >= ITEM_MAX)
        return tf_err(TF_EUSER, "%s: list item '%.*s...' is too long", what, 24, s);
    if (l->n < MAX_ITEMS) {
        memcpy(l->v[l->n], s, len);
        l->v[l->n][len] = 0;
    }
    l->n++;
    return TF_OK;
}

static int is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Split "a,b", "a b" or "[a, b]" (items may be quoted) into l. */
static tf_status split_list(const char *s, const char *what, item_list *l) {
    const char *b = s, *e = s + strlen(s);
    while (b < e && is_space(*b)) b++;
    while (e > b && is_space(e[-1])) e--;
    if (b < e && *b == '[') {
        if (e[-1] != ']') return tf_err(TF_EUSER, "%s: '%s' is missing the closing ']'", what, s);
        b++, e--;
    }
    l->n = 0;
    int parts = 0, empty_part = 0;
    const char *p = b;
    for (;;) {
        const char *q = p;
        while (q < e && *q != ',') q++;
        int tokens = 0;
        for (const char *t = p; t < q;) {
            while (t < q && is_space(*t)) t++;
            if (t >= q) break;
            const char *u = t;
            if (*t == '"' || *t == '\'') {
                const char *close = memchr(t + 1, *t, (size_t)(q - t - 1));
                if (!close) return tf_err(TF_EUSER, "%s: unbalanced quote in '%s'", what, s);
                TF_TRY(add_item(l, what, t + 1, (size_t)(close - t - 1)));
                t = close + 1;
            } else {
                while (u < q && !is_space(*u)) u++;
                TF_TRY(add_item(l, what, t, (size_t)(u - t)));
                t = u;
            }
            tokens++;
        }
        parts++;
        if (!tokens) empty_part = 1;
        if (q >= e) break;
        p = q + 1;
    }
    if (empty_part && (parts > 1 || l->n > 0))
        return tf_err(TF_EUSER, "%s: empty item in list '%s'", what, s);
    return TF_OK;
}

static tf_status parse_int_text(const key_def *k, const char *what, const char *s, long long lo,
                                long long hi, long long *out) {
    (void)k;
    if (!parse_ll(s, out)) return tf_err(TF_EUSER, "%s: '%s' is not an integer", what, s);
    if (*out < lo || *out > hi)
        return tf_err(TF_EUSER, "%s: %s is out of range for an integer", what, s);
    return TF_OK;
}

/* Set list key k from items l, then check it. */
static tf_status set_list(tf_config *c, const key_def *k, const char *what, const item_list *l) {
    int *count = k->type == KT_PAIR ? NULL : (int *)fieldp(c, k->aux);
    if (k->type == KT_NAMES) {
        if (l->n < 1 || l->n > TF_MAX_TARGETS)
            return tf_err(TF_EUSER, "%s: %d names given, must be 1 to %d", what, l->n,
                          TF_MAX_TARGETS);
        char(*names)[TF_NAME_MAX] = fieldp(c, k->off);
        for (int i = 0; i < l->n; i++)
            if (!is_name(l->v[i], TF_NAME_MAX))
                return tf_err(TF_EUSER,
                              "%s: '%s' is not a valid name (1 to %d letters, digits, '_', '-')",
                              what, l->v[i], TF_NAME_MAX - 1);
        memset(names, 0, sizeof(char[TF_MAX_TARGETS][TF_NAME_MAX]));
        for (int i = 0; i < l->n; i++) strcpy(names[i], l->v[i]);
        *count = l->n;
    } else if (k->type == KT_INTS) {
        if (l->n < 1 || l->n > TF_MAX_LEVELS)
            return tf_err(TF_EUSER, "%s: %d values given, must be 1 to %d", what, l->n,
                          TF_MAX_LEVELS);
        int *v = fieldp(c, k->off), tmp[TF_MAX_LEVELS] = {0};
        for (int i = 0; i < l->n; i++) {
            long long x;
            TF_TRY(parse_int_text(k, what, l->v[i], INT_MIN, INT_MAX, &x));
            tmp[i] = (int)x;
        }
        memcpy(v, tmp, sizeof tmp);
        *count = l->n;
    } else if (k->type == KT_PAIR) {
        if (l->n != 2)
            return tf_err(TF_EUSER, "%s: needs 2 values [time, frequency], got %d", what, l->n);
        long long a, b;
        TF_TRY(parse_int_text(k, what, l->v[0], INT_MIN, INT_MAX, &a));
        TF_TRY(parse_int_text(k, what, l->v[1], INT_MIN, INT_MAX, &b));
        *(int *)fieldp(c, k->off) = (int)a;
        *(int *)fieldp(c, k->aux) = (int)b;
    } else {
        return tf_err(TF_EUSER, "%s: expected a single value, not a list", what);
    }
    return check_key(c, k, what, NULL);
}

static int is_list_type(const key_def *k) {
    return k->type == KT_NAMES || k->type == KT_INTS || k->type == KT_PAIR;
}

/* Set key k from one text value; is_null marks a YAML null (~, null, empty). */
static tf_status set_text(tf_config *c, const key_def *k, const char *what, const char *s,
                          int is_null) {
    void *p = fieldp(c, k->off);
    if (is_null && k->type != KT_STR)
        return tf_err(TF_EUSER, "%s: null value '%s' where %s is expected", what, s,
                      k->type == KT_BOOL   ? "a boolean"
                      : k->type == KT_ENUM ? "a name"
                      : is_list_type(k)    ? "a list"
                                           : "a number");
    switch (k->type) {
    case KT_STR: {
        if (is_null) s = "";
        size_t n = strlen(s);
        if (n >= k->aux)
            return tf_err(TF_EUSER, "%s: value '%.40s...' is too long (at most %zu bytes)", what, s,
                          k->aux - 1);
        memset(p, 0, k->aux);
        memcpy(p, s, n);
        break;
    }
    case KT_BOOL: {
        int v;
        if (!parse_bool(s, &v))
            return tf_err(TF_EUSER, "%s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
                          what, s);
        *(int *)p = v;
        break;
    }
    case KT_INT: {
        long long v;
        TF_TRY(parse_int_text(k, what, s, INT_MIN, INT_MAX, &v));
        *(int *)p = (int)v;
        break;
    }
    case KT_I64: {
        long long v;
        TF_TRY(parse_int_text(k, what, s, INT64_MIN, INT64_MAX, &v));
        *(int64_t *)p = v;
        break;
    }
    case KT_DBL: {
        double v;
        if (!parse_dbl(s, &v)) return tf_err(TF_EUSER, "%s: '%s' is not a number", what, s);
        *(double *)p = v;
        break;
    }
    case KT_ENUM: {
        int i = 0;
        for (; k->enums[i]; i++)
            if (!strcasecmp(k->enums[i], s)) break;
        if (!k->enums[i]) {
            char names[128] = "";
            for (int j = 0; k->enums[j]; j++) {
                if (j) strcat(names, ", ");
                strcat(names, k->enums[j]);
            }
            return tf_err(TF_EUSER, "%s: '%s' is not one of: %s", what, s, names);
        }
        *(int *)p = i;
        break;
    }
    case KT_NAMES:
    case KT_INTS:
    case KT_PAIR: {
        item_list l;
        TF_TRY(split_list(s, what, &l));
        return set_list(c, k, what, &l);
    }
    }
    return check_key(c, k, what, s);
}

/* ------------------------------------------------------------------------------------ */
/* Public: defaults, set, validate, target index                                        */
/* ------------------------------------------------------------------------------------ */

void tf_config_defaults(tf_config *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->root, "data/musdb18hq");
    c->sample_rate = 44100;
    static const char *const tg[] = {"vocals", "drums", "bass", "other"};
    c->n_targets = 4;
    for (int i = 0; i < 4; i++) strcpy(c->targets[i], tg[i]);
    c->n_sources = 4;
    for (int i = 0; i < 4; i++) strcpy(c->sources[i], tg[i]);
    c->segment_seconds = 6.0;
    c->use_efficient_loading = 1;
    c->min_mean_abs = 0.001;
    c->num_workers = 4;
    c->prefetch_factor = 2;
    c->persistent_workers = 1;
    c->pin_memory = 1;
    c->sampling = TF_SAMPLE_REMIX;
    c->aug_gain = 1;
    c->aug_gain_min_db = -3;
    c->aug_gain_max_db = 3;
    c->aug_channel_swap = 1;
    c->aug_polarity = 1;
    c->aug_mix_same_source = 0.0;
    c->valid_fraction = 0.1;
    c->seed = 42;
    c->stft_window_size = 2048;
    c->stft_hop_length = 512;
    strcpy(c->preset, "paper");
    static const int ch[] = {32, 64, 128, 256, 384};
    c->n_levels = 5;
    for (int i = 0; i < 5; i++) c->channels[i] = ch[i];
    c->rcms_per_block = 4;
    c->tfswa_blocks = 4;
    c->heads = 4;
    c->window_t = 5;
    c->window_f = 4;
    c->mlp_ratio = 2.0;
    c->subbands = 4;
    c->output = TF_OUT_MAGNITUDE;
    c->activation_dtype = TF_DT_FP32;
    c->checkpointing = TF_CKPT_OFF;
    c->compute_dtype = TF_DT_FP32;
    c->amp_dtype = 0; /* bf16 */
    c->backend = TF_BACKEND_DNNL;
    strcpy(c->device, "cpu");
    c->batch_size = 4;
    c->gradient_accumulation_steps = 1;
    c->max_epochs = 30;
    c->max_steps = 0;
    c->steps_per_epoch = 1000;
    c->optimizer = TF_OPT_ADAM;
    c->learning_rate = 1e-3;
    c->weight_decay = 0;
    c->lr_decay = 0.9;
    c->lr_decay_epochs = 1.5;
    c->grad_clip = 5.0;
    c->ema_decay = 0;
    c->loss = TF_LOSS_L1;
    c->log_every = 10;
    c->val_every = 500;
    c->ckpt_every = 500;
    c->max_bad_steps = 20;
    strcpy(c->output_dir, "runs/default");
    c->resume[0] = 0;
    c->num_threads = 0;
}

tf_status tf_config_set(tf_config *c, const char *key, const char *value) {
    if (!key || !value) return tf_err(TF_EINTERNAL, "tf_config_set: NULL key or value");
    const key_def *k = find_key_flag(key);
    if (!k) return unknown_key(key, "");
    char what[KEY_MAX + 8];
    snprintf(what, sizeof what, "key '%s'", k->name);
    tf_config tmp;
    memcpy(&tmp, c, sizeof tmp);
    TF_TRY(set_text(&tmp, k, what, value, 0));
    memcpy(c, &tmp, sizeof tmp);
    return TF_OK;
}

tf_status tf_config_validate(const tf_config *c) {
    char what[KEY_MAX + 8];
    for (int i = 0; i < NKEYS; i++) {
        snprintf(what, sizeof what, "key '%s'", KEYS[i].name);
        TF_TRY(check_key(c, &KEYS[i], what, NULL));
    }
    for (int t = 0; t < c->n_targets; t++) {
        int found = 0;
        for (int i = 0; i < c->n_sources; i++) found |= !strcmp(c->targets[t], c->sources[i]);
        if (!found)
            return tf_err(TF_EUSER, "key 'targets': '%s' is not one of the sources (key 'sources')",
                          c->targets[t]);
    }
    if (c->stft_hop_length > c->stft_window_size)
        return tf_err(TF_EUSER, "key 'stft.hop_length' (%d) must be <= stft.window_size (%d)",
                      c->stft_hop_length, c->stft_window_size);
    int bottleneck = c->channels[c->n_levels - 1];
    if (bottleneck % c->heads)
        return tf_err(TF_EUSER,
                      "key 'heads' (%d) must divide the bottleneck channels (channels[%d] = %d)",
                      c->heads, c->n_levels - 1, bottleneck);
    if ((c->stft_window_size / 2) % c->subbands)
        return tf_err(TF_EUSER, "key 'subbands' (%d) must divide stft.window_size/2 (%d)",
                      c->subbands, c->stft_window_size / 2);
    if (c->aug_gain_min_db > c->aug_gain_max_db) {
        char a[40], b[40];
        fmt_num(a, sizeof a, c->aug_gain_min_db);
        fmt_num(b, sizeof b, c->aug_gain_max_db);
        return tf_err(TF_EUSER,
                      "key 'augment.gain_min_db' (%s) must be <= augment.gain_max_db (%s)", a, b);
    }
    double samples = c->segment_seconds * c->sample_rate;
    if (samples < c->stft_window_size) {
        char a[40];
        fmt_num(a, sizeof a, c->segment_seconds);
        return tf_err(TF_EUSER,
                      "key 'segment_seconds' (%s) at sample_rate %d gives %.0f samples, fewer "
                      "than stft.window_size (%d)",
                      a, c->sample_rate, floor(samples), c->stft_window_size);
    }
    if (c->max_epochs == 0 && c->max_steps == 0)
        return tf_err(TF_EUSER, "keys 'max_epochs' and 'max_steps' are both 0: nothing to train");
    tf_device dev = {TF_DEVICE_CPU, 0};
    tf_device_parse(c->device, &dev); /* checked above */
    if (c->backend == TF_BACKEND_CUDA && dev.kind != TF_DEVICE_CUDA)
        return tf_err(TF_EUSER,
                      "key 'backend' cuda runs on a CUDA device: set key 'device' to cuda or "
                      "cuda:N (--device cuda), or backend to dnnl or ref");
    return TF_OK;
}

tf_dtype tf_config_device_compute(const tf_config *c) {
    return c->compute_dtype == TF_DT_BF16 && c->amp_dtype == 1 ? TF_DT_FP16 : c->compute_dtype;
}

tf_status tf_config_check_amp(const tf_config *c) {
    if (c->amp_dtype != 1) return TF_OK;
    tf_device dev = {TF_DEVICE_CPU, 0};
    tf_device_parse(c->device, &dev);
    if (dev.kind != TF_DEVICE_CUDA)
        return tf_err(TF_EUSER, "key 'amp_dtype' fp16 runs on a CUDA device only (--device "
                                "cuda); on the CPU --use_amp computes in bf16 or fp32");
    if (c->compute_dtype != TF_DT_BF16)
        return tf_err(TF_EUSER, "key 'amp_dtype' fp16 sets the arithmetic of --use_amp: add "
                                "--use_amp (or compute_dtype bf16)");
    return TF_OK;
}

int tf_config_target_index(const tf_config *c, const char *name) {
    if (!c || !name) return -1;
    for (int i = 0; i < c->n_targets && i < TF_MAX_TARGETS; i++)
        if (!strncmp(c->targets[i], name, TF_NAME_MAX)) return i;
    return -1;
}

/* ------------------------------------------------------------------------------------ */
/* YAML                                                                                  */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;
    int has_ev;
    const char *path;
    tf_config *c;
    unsigned char seen[NKEYS];
} yctx;

static tf_status y_next(yctx *y) {
    if (y->has_ev) yaml_event_delete(&y->ev), y->has_ev = 0;
    if (!yaml_parser_parse(&y->parser, &y->ev)) {
        yaml_parser_t *p = &y->parser;
        if (p->error == YAML_MEMORY_ERROR)
            return tf_err(TF_EINTERNAL, "%s: out of memory while parsing YAML", y->path);
        if (p->error == YAML_READER_ERROR)
            return tf_err(TF_EUSER, "%s: YAML read error at byte %zu: %s", y->path,
                          p->problem_offset, p->problem ? p->problem : "unknown");
        if (p->context)
            return tf_err(
                TF_EUSER, "%s: line %zu, column %zu: YAML syntax error: %s (%s at line %zu)",
                y->path, p->problem_mark.line + 1, p->problem_mark.column + 1,
                p->problem ? p->problem : "unknown", p->context, p->context_mark.line + 1);
        return tf_err(TF_EUSER, "%s: line %zu, column %zu: YAML syntax error: %s", y->path,
                      p->problem_mark.line + 1, p->problem_mark.column + 1,
                      p->problem ? p->problem : "unknown");
    }
    y->has_ev = 1;
    return TF_OK;
}

static size_t y_line(const yctx *y) {
    return y->ev.start_mark.line + 1;
}

static int y_is_null(const yaml_event_t *ev) {
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)ev->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static tf_status y_mapping(yctx *y, const char *prefix);

/* The value event of `key` is current. */
static tf_status y_value(yctx *y, const char *key) {
    const key_def *k = find_key(key);
    char what[KEY_MAX + 8];
    snprintf(what, sizeof what, "key '%s'", key);
    yaml_event_type_t t = y->ev.type;
    if (t == YAML_MAPPING_START_EVENT) {
        if (k)
            return tf_err(TF_EUSER, "%s: %s expects a value, not a mapping (line %zu)", y->path,
                          what, y_line(y));
        return y_mapping(y, key);
    }
    if (t == YAML_ALIAS_EVENT)
        return tf_err(TF_EUSER, "%s: %s: YAML aliases (*name) are not supported (line %zu)",
                      y->path, what, y_line(y));
    if (!k) {
        if (is_group(key))
            return tf_err(TF_EUSER, "%s: key '%s' must be a mapping of its sub-keys", y->path, key);
        tf_status st = unknown_key(key, "");
        return tf_err_ctx(st, "%s", y->path);
    }
    int idx = (int)(k - KEYS);
    if (y->seen[idx]) return tf_err(TF_EUSER, "%s: %s is given twice", y->path, what);
    y->seen[idx] = 1;
    tf_status st;
    if (t == YAML_SCALAR_EVENT) {
        st = set_text(y->c, k, what, (const char *)y->ev.data.scalar.value, y_is_null(&y->ev));
    } else if (t == YAML_SEQUENCE_START_EVENT) {
        if (!is_list_type(k))
            return tf_err(TF_EUSER, "%s: %s expects a single value, not a list", y->path, what);
        item_list l;
        l.n = 0;
        for (;;) {
            TF_TRY(y_next(y));
            if (y->ev.type == YAML_SEQUENCE_END_EVENT) break;
            if (y->ev.type != YAML_SCALAR_EVENT)
                return tf_err(TF_EUSER, "%s: %s: list items must be plain values (line %zu)",
                              y->path, what, y_line(y));
            const char *v = (const char *)y->ev.data.scalar.value;
            st = add_item(&l, what, v, strlen(v));
            if (st) return tf_err_ctx(st, "%s", y->path);
        }
        st = set_list(y->c, k, what, &l);
    } else {
        return tf_err(TF_EINTERNAL, "%s: unexpected YAML event %d", y->path, (int)t);
    }
    return st ? tf_err_ctx(st, "%s", y->path) : TF_OK;
}

/* A MAPPING_START event is current; read through its MAPPING_END. */
static tf_status y_mapping(yctx *y, const char *prefix) {
    for (;;) {
        TF_TRY(y_next(y));
        if (y->ev.type == YAML_MAPPING_END_EVENT) return TF_OK;
        if (y->ev.type != YAML_SCALAR_EVENT)
            return tf_err(TF_EUSER, "%s: line %zu: keys must be plain names", y->path, y_line(y));
        char key[KEY_MAX];
        const char *name = (const char *)y->ev.data.scalar.value;
        int n = snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", name);
        if (n < 0 || (size_t)n >= sizeof key)
            return tf_err(TF_EUSER, "%s: unknown key '%.60s...' (line %zu)", y->path, key,
                          y_line(y));
        TF_TRY(y_next(y));
        TF_TRY(y_value(y, key));
    }
}

static tf_status y_stream(yctx *y) {
    TF_TRY(y_next(y)); /* STREAM_START */
    for (;;) {
        TF_TRY(y_next(y));
        if (y->ev.type == YAML_STREAM_END_EVENT) return TF_OK;
        if (y->ev.type != YAML_DOCUMENT_START_EVENT)
            return tf_err(TF_EINTERNAL, "%s: unexpected YAML event %d", y->path, (int)y->ev.type);
        TF_TRY(y_next(y));
        if (y->ev.type == YAML_MAPPING_START_EVENT) {
            TF_TRY(y_mapping(y, ""));
        } else if (!(y->ev.type == YAML_SCALAR_EVENT && y_is_null(&y->ev))) {
            return tf_err(TF_EUSER, "%s: line %zu: the top level must be a mapping of key: value",
                          y->path, y_line(y));
        }
        TF_TRY(y_next(y)); /* DOCUMENT_END */
    }
}

tf_status tf_config_load_yaml(tf_config *c, const char *path) {
    if (!path || !*path) return tf_err(TF_EUSER, "config file name is empty");
    FILE *f = fopen(path, "rb");
    if (!f) return tf_err(TF_EUSER, "cannot open config file '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return tf_err(TF_EUSER, "config file '%s' is a directory", path);
    }
    yctx *y = tf_calloc(1, sizeof *y, "YAML parser");
    tf_config *tmp = tf_malloc(sizeof *tmp, "config");
    if (!y || !tmp) {
        free(y), free(tmp), fclose(f);
        return TF_EINTERNAL;
    }
    memcpy(tmp, c, sizeof *tmp);
    y->path = path;
    y->c = tmp;
    tf_status s;
    if (!yaml_parser_initialize(&y->parser)) {
        s = tf_err(TF_EINTERNAL, "%s: cannot initialize the YAML parser", path);
        free(y), free(tmp), fclose(f);
        return s;
    }
    yaml_parser_set_input_file(&y->parser, f);
    s = y_stream(y);
    if (y->has_ev) yaml_event_delete(&y->ev);
    yaml_parser_delete(&y->parser);
    if (s == TF_OK && ferror(f)) s = tf_err(TF_EUSER, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (s == TF_OK) memcpy(c, tmp, sizeof *tmp);
    free(y), free(tmp);
    return s;
}

/* Double-quoted YAML string; non-ASCII written as \u escapes (exact round trip). */
static void write_quoted(FILE *f, const char *s) {
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp;
        int n = utf8_decode(p, &cp);
        if (n == 0) n = 1, cp = *p; /* not reached: strings are checked first */
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", (char)cp);
        else if (cp >= 0x20 && cp < 0x7F)
            fputc((int)cp, f);
        else if (cp < 0x100)
            fprintf(f, "\\x%02X", cp);
        else if (cp < 0x10000)
            fprintf(f, "\\u%04X", cp);
        else
            fprintf(f, "\\U%08X", cp);
        p += n;
    }
    fputc('"', f);
}

tf_status tf_config_write_yaml(const tf_config *c, FILE *f) {
    for (int i = 0; i < NKEYS; i++)
        if (KEYS[i].type == KT_STR || KEYS[i].type == KT_NAMES) {
            char what[KEY_MAX + 8];
            snprintf(what, sizeof what, "key '%s'", KEYS[i].name);
            TF_TRY(check_key(c, &KEYS[i], what, NULL));
        }
    fprintf(f, "# tfswa configuration: every key, fully resolved (load with --config)\n");
    char group[KEY_MAX] = "";
    for (int i = 0; i < NKEYS; i++) {
        const key_def *k = &KEYS[i];
        const char *dot = strchr(k->name, '.'), *leaf = k->name;
        if (dot) {
            size_t gl = (size_t)(dot - k->name);
            if (strlen(group) != gl || strncmp(group, k->name, gl)) {
                memcpy(group, k->name, gl);
                group[gl] = 0;
                fprintf(f, "%s:\n", group);
            }
            leaf = dot + 1;
            fputs("  ", f);
        } else {
            group[0] = 0;
        }
        fprintf(f, "%s: ", leaf);
        const void *p = cfieldp(c, k->off);
        char buf[48];
        switch (k->type) {
        case KT_STR:
            write_quoted(f, p);
            break;
        case KT_BOOL:
            fputs(*(const int *)p ? "true" : "false", f);
            break;
        case KT_INT:
            fprintf(f, "%d", *(const int *)p);
            break;
        case KT_I64:
            fprintf(f, "%lld", (long long)*(const int64_t *)p);
            break;
        case KT_DBL:
            fmt_double(buf, sizeof buf, *(const double *)p);
            fputs(buf, f);
            break;
        case KT_ENUM: {
            int v = *(const int *)p, n = 0;
            while (k->enums[n]) n++;
            fputs(v >= 0 && v < n ? k->enums[v] : "?", f);
            break;
        }
        case KT_NAMES: {
            const char(*names)[TF_NAME_MAX] = p;
            int n = *(const int *)cfieldp(c, k->aux);
            fputc('[', f);
            for (int j = 0; j < n; j++) {
                if (j) fputs(", ", f);
                if (names[j][0] == '-')
                    write_quoted(f, names[j]);
                else
                    fputs(names[j], f);
            }
            fputc(']', f);
            break;
        }
        case KT_INTS: {
            const int *v = p;
            int n = *(const int *)cfieldp(c, k->aux);
            fputc('[', f);
            for (int j = 0; j < n; j++) fprintf(f, "%s%d", j ? ", " : "", v[j]);
            fputc(']', f);
            break;
        }
        case KT_PAIR:
            fprintf(f, "[%d, %d]", *(const int *)p, *(const int *)cfieldp(c, k->aux));
            break;
        }
        fputc('\n', f);
    }
    if (fflush(f) != 0 || ferror(f))
        return tf_err(TF_EUSER, "writing the config YAML failed: %s", strerror(errno));
    return TF_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Config directory and presets                                                          */
/* ------------------------------------------------------------------------------------ */

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *tf_config_find_dir(void) {
    static _Thread_local char buf[TF_PATH_MAX];
    const char *env = getenv("TFSWA_CONFIG_DIR");
    if (env && *env) {
        snprintf(buf, sizeof buf, "%s", env);
        return buf;
    }
    if (is_dir("configs")) return strcpy(buf, "configs");
    char exe[TF_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || (size_t)n >= sizeof exe - 1) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    /* the source tree (build/tfswa), then an installed tree (PREFIX/bin/tfswa with
     * PREFIX/share/tfswa/configs, see `make install`) */
    static const char *const rel[] = {"../configs", "../share/tfswa/configs"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        int m = snprintf(buf, sizeof buf, "%s/%s", exe, rel[i]);
        if (m >= 0 && (size_t)m < sizeof buf && is_dir(buf)) return buf;
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* "paper, small, tiny" from <dir>/model/ *.yaml, or "(none)". */
static void list_presets(const char *mdir, char *out, size_t n) {
    char names[32][TF_NAME_MAX];
    int cnt = 0, more = 0;
    DIR *d = opendir(mdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l <= 5 || strcmp(e->d_name + l - 5, ".yaml") != 0 || l - 5 >= TF_NAME_MAX) continue;
            if (cnt == 32) {
                more = 1;
                continue;
            }
            memcpy(names[cnt], e->d_name, l - 5);
            names[cnt][l - 5] = 0;
            cnt++;
        }
        closedir(d);
    }
    qsort(names, (size_t)cnt, sizeof names[0], cmp_str);
    out[0] = 0;
    size_t used = 0;
    for (int i = 0; i < cnt; i++) {
        int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
    if (!cnt)
        snprintf(out, n, "(none)");
    else if (more && used + 5 < n)
        strcat(out, ", ...");
}

static tf_status load_preset(tf_config *c, const char *name) {
    if (!is_name(name, TF_NAME_MAX))
        return tf_err(TF_EUSER, "--preset '%s': a preset is a name (letters, digits, '_', '-')",
                      name);
    const char *dir = tf_config_find_dir();
    if (!dir)
        return tf_err(TF_EUSER,
                      "--preset %s: no configs directory found (set TFSWA_CONFIG_DIR, or run "
                      "from the repository root)",
                      name);
    char mdir[TF_PATH_MAX], path[TF_PATH_MAX + 64];
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    snprintf(path, sizeof path, "%s/%s.yaml", mdir, name);
    if (access(path, F_OK) != 0) {
        char avail[512];
        list_presets(mdir, avail, sizeof avail);
        return tf_err(TF_EUSER, "--preset %s: no file '%s'; available presets: %s", name, path,
                      avail);
    }
    TF_TRY(tf_config_load_yaml(c, path));
    memset(c->preset, 0, sizeof c->preset);
    strcpy(c->preset, name);
    return TF_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Command line                                                                          */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    int argc;
    char **argv;
    unsigned char *used;
} args_t;

/* Split token i ("--name[=value]") into a normalized name; *eq = value after '=' or NULL.
 * Returns 0 if it is not a flag. */
static int flag_name(const args_t *a, int i, char *name, size_t n, const char **eq) {
    const char *t = a->argv[i];
    if (strncmp(t, "--", 2) != 0 || !t[2] || t[2] == '=') return 0;
    t += 2;
    size_t len = strcspn(t, "=");
    if (len >= n) return 0;
    for (size_t j = 0; j < len; j++) name[j] = t[j] == '-' ? '_' : t[j];
    name[len] = 0;
    *eq = t[len] == '=' ? t + len + 1 : NULL;
    return 1;
}

static int next_is_value(const args_t *a, int i) {
    return i + 1 < a->argc && !a->used[i + 1] && strncmp(a->argv[i + 1], "--", 2) != 0;
}

/* Value of a flag that takes exactly one value; marks what it consumes. */
static tf_status one_value(args_t *a, int i, const char *eq, const char **out) {
    a->used[i] = 1;
    if (eq) {
        *out = eq;
    } else if (next_is_value(a, i)) {
        a->used[i + 1] = 1;
        *out = a->argv[i + 1];
    } else {
        return tf_err(TF_EUSER, "flag %.*s needs a value", (int)strcspn(a->argv[i], "="),
                      a->argv[i]);
    }
    if (!**out)
        return tf_err(TF_EUSER, "flag %.*s needs a value", (int)strcspn(a->argv[i], "="),
                      a->argv[i]);
    return TF_OK;
}

static tf_status apply_flag(tf_config *c, args_t *a, int i, const char *name, const char *eq,
                            int *known) {
    const char *t = a->argv[i];
    char what[KEY_MAX + 16];
    snprintf(what, sizeof what, "flag %.*s", (int)strcspn(t, "="), t);
    int neg = 0, kind = AL_PLAIN;
    const key_def *k = NULL;
    for (int pass = 0; pass < 2 && !k; pass++) {
        const char *nm = name;
        if (pass == 1) {
            if (strncmp(name, "no_", 3) != 0) break;
            nm = name + 3, neg = 1;
        }
        for (int j = 0; j < NALIASES && !k; j++)
            if (flag_eq(ALIASES[j].alias, nm)) k = find_key(ALIASES[j].key), kind = ALIASES[j].kind;
        if (!k) k = find_key_flag(nm);
    }
    *known = k != NULL;
    if (!k) return TF_OK;
    int is_bool = k->type == KT_BOOL || kind != AL_PLAIN;
    if (neg) {
        a->used[i] = 1;
        if (!is_bool) return tf_err(TF_EUSER, "%s: '%s' is not a boolean key", what, k->name);
        if (eq) return tf_err(TF_EUSER, "%s takes no value", what);
    }
    if (is_bool) {
        int v = 1;
        a->used[i] = 1;
        if (neg) {
            v = 0;
        } else if (eq) {
            if (!parse_bool(eq, &v))
                return tf_err(TF_EUSER,
                              "%s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)", what,
                              eq);
        } else if (next_is_value(a, i) && parse_bool(a->argv[i + 1], &v)) {
            a->used[i + 1] = 1;
        }
        if (kind == AL_AMP) /* bf16 storage and (where native) bf16 arithmetic */
            c->activation_dtype = c->compute_dtype = v ? TF_DT_BF16 : TF_DT_FP32;
        else if (kind == AL_CKPT)
            c->checkpointing = v ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        else
            *(int *)fieldp(c, k->off) = v;
        return TF_OK;
    }
    if (is_list_type(k) && !eq) {
        /* the following non-flag tokens, joined, then split like "a,b" / "[a, b]" */
        a->used[i] = 1;
        char joined[TF_PATH_MAX];
        size_t used = 0;
        int j = i;
        while (next_is_value(a, j)) {
            const char *v = a->argv[++j];
            size_t l = strlen(v);
            if (used + l + 2 > sizeof joined)
                return tf_err(TF_EUSER, "%s: values are too long", what);
            if (used) joined[used++] = ' ';
            memcpy(joined + used, v, l);
            used += l;
            a->used[j] = 1;
        }
        joined[used] = 0;
        if (!used) return tf_err(TF_EUSER, "flag %.*s needs a value", (int)strcspn(t, "="), t);
        return set_text(c, k, what, joined, 0);
    }
    const char *v;
    TF_TRY(one_value(a, i, eq, &v));
    return set_text(c, k, what, v, 0);
}

static tf_status parse_args(tf_config *c, args_t *a, int strict) {
    char name[KEY_MAX];
    const char *eq;
    /* (a) presets, then config files */
    for (int pass = 0; pass < 2; pass++) {
        const char *want = pass == 0 ? "preset" : "config";
        for (int i = 1; i < a->argc; i++) {
            if (a->used[i] || !flag_name(a, i, name, sizeof name, &eq) || strcmp(name, want))
                continue;
            const char *v;
            TF_TRY(one_value(a, i, eq, &v));
            TF_TRY(pass == 0 ? load_preset(c, v) : tf_config_load_yaml(c, v));
        }
    }
    /* (b) every other flag, in order (a later one wins) */
    for (int i = 1; i < a->argc; i++) {
        if (a->used[i] || !flag_name(a, i, name, sizeof name, &eq)) continue;
        int known;
        TF_TRY(apply_flag(c, a, i, name, eq, &known));
        if (!known && strict) {
            const char *s = suggest_key(name);
            if (s)
                return tf_err(TF_EUSER, "unknown flag '%s' (did you mean '--%s'?)", a->argv[i], s);
            return tf_err(TF_EUSER, "unknown flag '%s'", a->argv[i]);
        }
    }
    return TF_OK;
}

tf_status tf_config_parse_args(tf_config *c, int argc, char **argv, unsigned char *used) {
    if (argc < 0 || (argc > 0 && !argv))
        return tf_err(TF_EINTERNAL, "tf_config_parse_args: bad arguments");
    args_t a = {argc, argv, used};
    if (!used) {
        a.used = tf_calloc((size_t)argc + 1, 1, "argument flags");
        if (!a.used) return TF_EINTERNAL;
    }
    tf_config *tmp = tf_malloc(sizeof *tmp, "config");
    if (!tmp) {
        if (!used) free(a.used);
        return TF_EINTERNAL;
    }
    memcpy(tmp, c, sizeof *tmp);
    tf_status st = parse_args(tmp, &a, used == NULL);
    if (st == TF_OK) memcpy(c, tmp, sizeof *tmp);
    free(tmp);
    if (!used) free(a.used);
    return st;
}
