/* museval cross-check support. See bss_check.h. */
#include "bss_check.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/rng.h"
#include "util/clock.h"

/* ---- synthetic cases ---- */

/* One music-like source (nchan, N): three tones and AR(1) coloured noise, panned, plus a
 * little independent noise per channel. */
static void gen_source(float *out, int nchan, int64_t N, tf_rng *r, int dark) {
    double f[3], a[3], ph[3];
    for (int h = 0; h < 3; h++) {
        f[h] = tf_rng_range(r, 60.0, 3000.0) / 44100.0;
        a[h] = tf_rng_range(r, 0.05, 0.25);
        ph[h] = tf_rng_range(r, 0.0, 6.283185307179586);
    }
    double rho = tf_rng_range(r, 0.5, 0.95), gain[16], ar = 0;
    for (int c = 0; c < nchan; c++) gain[c % 16] = tf_rng_range(r, 0.5, 1.0);
    for (int64_t n = 0; n < N; n++) {
        ar = rho * ar + 0.05 * tf_rng_normal(r);
        double m = ar;
        for (int h = 0; h < 3; h++) m += a[h] * sin(6.283185307179586 * f[h] * (double)n + ph[h]);
        for (int c = 0; c < nchan; c++)
            out[(size_t)c * N + n] = (float)(gain[c % 16] * m + 0.02 * tf_rng_normal(r));
    }
    if (!dark) return;
    /* four one-pole low-passes (0.9): about -100 dB at Nyquist, a G as ill-conditioned as
     * with real mixes */
    for (int c = 0; c < nchan; c++)
        for (int k = 0; k < 4; k++) {
            double y = 0;
            float *row = out + (size_t)c * N;
            for (int64_t n = 0; n < N; n++) row[n] = (float)(y = 0.9 * y + 0.1 * row[n]);
        }
}

/* zero samples [s0, s1) of channel c (all channels when c < 0) of source j of x */
static void zero_range(float *x, int j, int c, int nchan, int64_t N, int64_t s0, int64_t s1) {
    if (s1 > N) s1 = N;
    for (int cc = 0; cc < nchan; cc++) {
        if (c >= 0 && cc != c) continue;
        float *row = x + ((size_t)j * nchan + cc) * N;
        for (int64_t n = s0; n < s1; n++) row[n] = 0.0f;
    }
}

tf_status tf_bss_case_make(tf_bss_case *c, const char *name, tf_bss_case_kind kind, int nsrc,
                           int nchan, int64_t nsampl, int window, int hop, int filters_len,
                           uint64_t seed) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->nsrc = nsrc, c->nchan = nchan, c->nsampl = nsampl;
    c->window = window, c->hop = hop, c->filters_len = filters_len;
    size_t n = (size_t)nsrc * nchan * nsampl;
    c->ref = tf_malloc(n * sizeof(float), "bsseval case references");
    c->est = tf_malloc(n * sizeof(float), "bsseval case estimates");
    if (!c->ref || !c->est) {
        tf_bss_case_free(c);
        return TF_EINTERNAL;
    }
    tf_rng r;
    for (int j = 0; j < nsrc; j++) {
        tf_rng_seed(&r, seed, 1, (uint64_t)j, 0);
        gen_source(c->ref + (size_t)j * nchan * nsampl, nchan, nsampl, &r,
                   kind == TF_BSS_CASE_DARK);
    }
    if (kind == TF_BSS_CASE_DUALMONO && nchan > 1)
        for (int ch = 1; ch < nchan; ch++)
            memcpy(c->ref + (size_t)ch * nsampl, c->ref, (size_t)nsampl * sizeof(float));
    for (int j = 0; j < nsrc; j++) {
        float *e = c->est + (size_t)j * nchan * nsampl;
        tf_rng_seed(&r, seed, 2, (uint64_t)j, 0);
        if (kind == TF_BSS_CASE_RANDOM) {
            gen_source(e, nchan, nsampl, &r, 0);
            continue;
        }
        double h[4] = {tf_rng_range(&r, 0.8, 1.0), tf_rng_range(&r, -0.2, 0.2),
                       tf_rng_range(&r, -0.2, 0.2), tf_rng_range(&r, -0.1, 0.1)};
        double leak = tf_rng_range(&r, 0.02, 0.08), noise = tf_rng_range(&r, 0.005, 0.03);
        for (int ch = 0; ch < nchan; ch++)
            for (int64_t t = 0; t < nsampl; t++) {
                double v = 0;
                for (int k = 0; k < 4 && k <= t; k++)
                    v += h[k] * c->ref[((size_t)j * nchan + ch) * nsampl + t - k];
                for (int i = 0; i < nsrc; i++)
                    if (i != j) v += leak * c->ref[((size_t)i * nchan + ch) * nsampl + t];
                e[(size_t)ch * nsampl + t] = (float)(v + noise * tf_rng_normal(&r));
            }
    }
    if (kind == TF_BSS_CASE_SILENT) {
        int64_t w = window, hp = hop;
        /* frame 1: reference 1 silent; frame 3: estimate 2 silent; frame 2: estimate 0 has
         * right == -left (silent for museval: the sum over channels is 0); frame 0:
         * reference 0 has a silent right channel only (not silent). */
        zero_range(c->ref, 1 % nsrc, -1, nchan, nsampl, hp, hp + w);
        zero_range(c->est, 2 % nsrc, -1, nchan, nsampl, 3 * hp, 3 * hp + w);
        if (nchan > 1) {
            zero_range(c->ref, 0, 1, nchan, nsampl, 0, w);
            for (int64_t t = 2 * hp; t < 2 * hp + w && t < nsampl; t++) {
                c->est[(size_t)nsampl + t] = -c->est[t];
                for (int ch = 2; ch < nchan; ch++) c->est[(size_t)ch * nsampl + t] = 0.0f;
            }
        }
    }
    return TF_OK;
}

void tf_bss_case_free(tf_bss_case *c) {
    free(c->ref), free(c->est);
    c->ref = c->est = NULL;
}

int tf_bss_std_cases(tf_bss_case *out, int max) {
    static const struct {
        const char *name;
        tf_bss_case_kind kind;
        int nsrc, nchan;
        int64_t n;
        int window, hop, L;
    } t[] = {
        {"good2_2.5win_L512", TF_BSS_CASE_GOOD, 2, 2, 110250, 44100, 44100, 512},
        {"good4_L128", TF_BSS_CASE_GOOD, 4, 2, 28000, 8000, 8000, 128},
        {"random2_L256", TF_BSS_CASE_RANDOM, 2, 2, 24000, 8000, 8000, 256},
        {"silent3_L64", TF_BSS_CASE_SILENT, 3, 2, 20000, 4000, 4000, 64},
        {"short2_L512", TF_BSS_CASE_GOOD, 2, 2, 30000, 44100, 44100, 512},
        {"overlap2_L100", TF_BSS_CASE_GOOD, 2, 2, 23000, 6000, 4000, 100},
        {"mono4_L200", TF_BSS_CASE_GOOD, 4, 1, 21000, 5000, 5000, 200},
        {"dualmono2_L64", TF_BSS_CASE_DUALMONO, 2, 2, 16000, 4000, 4000, 64},
        {"dark3_L512", TF_BSS_CASE_DARK, 3, 2, 50000, 20000, 20000, 512},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0] && n < max; i++, n++) {
        if (tf_bss_case_make(&out[n], t[i].name, t[i].kind, t[i].nsrc, t[i].nchan, t[i].n,
                             t[i].window, t[i].hop, t[i].L, 1000 + i) != TF_OK) {
            for (int k = 0; k < n; k++) tf_bss_case_free(&out[k]);
            return -1;
        }
    }
    return n;
}

/* ---- scores ---- */

tf_status tf_bss_scores_alloc(tf_bss_scores *s, int nsrc, int64_t nwin) {
    memset(s, 0, sizeof *s);
    s->nsrc = nsrc, s->nwin = nwin;
    double *b =
        tf_malloc(((size_t)4 * nsrc * nwin + 4 * (size_t)nsrc) * sizeof(double), "bsseval scores");
    if (!b) return TF_EINTERNAL;
    for (int k = 0; k < 4; k++) s->m[k] = b + (size_t)k * nsrc * nwin;
    s->median = b + (size_t)4 * nsrc * nwin;
    return TF_OK;
}

void tf_bss_scores_free(tf_bss_scores *s) {
    free(s->m[0]);
    memset(s, 0, sizeof *s);
}

tf_status tf_bss_eval_case(const tf_bss_case *c, tf_bss_solver solver, tf_bss_scores *s,
                           tf_bss_info *info) {
    tf_bss_params p = {c->window, c->hop, c->filters_len, solver};
    TF_TRY(tf_bss_scores_alloc(s, c->nsrc, tf_bss_nwin(c->nsampl, c->window, c->hop)));
    double t0 = tf_now_s();
    tf_status st = tf_bss_eval(&p, c->ref, c->est, c->nsrc, c->nchan, c->nsampl, s->m[0], s->m[1],
                               s->m[2], s->m[3], info);
    s->seconds = tf_now_s() - t0;
    if (st != TF_OK) {
        tf_bss_scores_free(s);
        return tf_err_ctx(st, "case %s", c->name);
    }
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < c->nsrc; j++)
            s->median[k * c->nsrc + j] = tf_bss_median(s->m[k] + (size_t)j * s->nwin, s->nwin);
    return TF_OK;
}

/* ---- files ---- */

tf_status tf_bss_write_cases(const char *path, const tf_bss_case *c, int n) {
    FILE *f = fopen(path, "wb");
    if (!f) return tf_err(TF_EUSER, "%s: cannot create", path);
    int ok = fwrite("TFBSSIN1", 1, 8, f) == 8;
    int32_t nc = n;
    ok = ok && fwrite(&nc, 4, 1, f) == 1;
    for (int i = 0; i < n && ok; i++) {
        int32_t h[6] = {c[i].nsrc, c[i].nchan, c[i].window, c[i].hop, c[i].filters_len, 0};
        int64_t ns = c[i].nsampl;
        size_t cnt = (size_t)c[i].nsrc * c[i].nchan * c[i].nsampl;
        ok = fwrite(h, 4, 6, f) == 6 && fwrite(&ns, 8, 1, f) == 1 &&
             fwrite(c[i].ref, 4, cnt, f) == cnt && fwrite(c[i].est, 4, cnt, f) == cnt;
    }
    if (fclose(f) != 0) ok = 0;
    return ok ? TF_OK : tf_err(TF_EUSER, "%s: write failed", path);
}

tf_status tf_bss_read_scores(const char *path, const tf_bss_case *c, int n, tf_bss_scores *s) {
    FILE *f = fopen(path, "rb");
    if (!f) return tf_err(TF_EUSER, "%s: cannot open", path);
    char magic[8];
    int32_t nc = 0;
    tf_status st = TF_OK;
    int done = 0;
    for (int i = 0; i < n; i++) memset(&s[i], 0, sizeof s[i]);
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "TFBSSOU1", 8) || fread(&nc, 4, 1, f) != 1 ||
        nc != n) {
        st = tf_err(TF_EUSER, "%s: not a TFBSSOU1 file with %d cases", path, n);
        goto fail;
    }
    for (; done < n; done++) {
        int32_t h[2];
        double secs;
        int64_t nwin = tf_bss_nwin(c[done].nsampl, c[done].window, c[done].hop);
        if (fread(h, 4, 2, f) != 2 || fread(&secs, 8, 1, f) != 1 || h[0] != c[done].nsrc ||
            h[1] != nwin) {
            st = tf_err(TF_EUSER, "%s: case %d: header does not match (%d sources, %lld frames)",
                        path, done, c[done].nsrc, (long long)nwin);
            goto fail;
        }
        if ((st = tf_bss_scores_alloc(&s[done], h[0], nwin)) != TF_OK) goto fail;
        s[done].seconds = secs;
        size_t cnt = (size_t)h[0] * nwin, mcnt = 4 * (size_t)h[0];
        int ok = 1;
        for (int k = 0; k < 4; k++) ok = ok && fread(s[done].m[k], 8, cnt, f) == cnt;
        if (!ok || fread(s[done].median, 8, mcnt, f) != mcnt) {
            st = tf_err(TF_EUSER, "%s: case %d: truncated", path, done);
            done++;
            goto fail;
        }
    }
    fclose(f);
    return TF_OK;
fail:
    for (int i = 0; i < done; i++) tf_bss_scores_free(&s[i]);
    fclose(f);
    return st;
}

/* ---- running the reference ---- */

static int is_root(const char *dir) {
    char a[PATH_MAX], b[PATH_MAX];
    if (snprintf(a, sizeof a, "%s/tools/pyenv.sh", dir) >= (int)sizeof a ||
        snprintf(b, sizeof b, "%s/tests/reference/museval_ref.py", dir) >= (int)sizeof b)
        return 0;
    return access(a, X_OK) == 0 && access(b, R_OK) == 0;
}

tf_status tf_bss_find_root(char *root, size_t size) {
    char cand[3][PATH_MAX + 16], exe[PATH_MAX];
    int nc = 0;
    if (getcwd(cand[nc], PATH_MAX)) nc++;
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(cand[nc++], sizeof cand[0], "%s/..", exe);
        snprintf(cand[nc++], sizeof cand[0], "%s/../..", exe);
    }
    for (int i = 0; i < nc; i++) {
        char real[PATH_MAX];
        if (is_root(cand[i]) && realpath(cand[i], real) && strlen(real) < size) {
            snprintf(root, size, "%s", real);
            return TF_OK;
        }
    }
    return tf_err(TF_EUSER,
                  "cannot find tools/pyenv.sh and tests/reference/museval_ref.py (run from the "
                  "tfswa source tree)");
}

/* Run a shell command, keep the tail of its output (stdout + stderr). Returns the exit
 * status (or -1 when it could not run). */
static int run_capture(const char *cmd, char *tail, size_t size) {
    tail[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[1024];
    size_t len = 0;
    while (fgets(line, sizeof line, p)) {
        size_t l = strlen(line);
        if (len + l >= size) { /* keep the last part */
            size_t drop = len + l - size + 1;
            if (drop > len) drop = len;
            memmove(tail, tail + drop, len - drop);
            len -= drop;
        }
        if (l >= size) continue;
        memcpy(tail + len, line, l);
        len += l;
        tail[len] = 0;
    }
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static int has_quote(const char *s) {
    return strchr(s, '\'') != NULL;
}

tf_status tf_bss_pyenv(const char *root, char *python, size_t size) {
    if (has_quote(root)) return tf_err(TF_EUSER, "path %s contains a single quote", root);
    char cmd[PATH_MAX + 64], out[2048];
    snprintf(cmd, sizeof cmd, "'%s/tools/pyenv.sh' 2>&1", root);
    int rc = run_capture(cmd, out, sizeof out);
    size_t len = strlen(out);
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' ')) out[--len] = 0;
    if (rc != 0)
        return tf_err(TF_EUSER, "museval environment unavailable: tools/pyenv.sh failed: %s",
                      len ? out : "(no output)");
    char *last = strrchr(out, '\n');
    last = last ? last + 1 : out;
    if (!*last || access(last, X_OK) != 0 || strlen(last) >= size)
        return tf_err(TF_EUSER, "museval environment unavailable: tools/pyenv.sh printed '%s'",
                      last);
    snprintf(python, size, "%s", last);
    return TF_OK;
}

tf_status tf_bss_run_museval(const char *python, const char *root, const char *in, const char *out,
                             int threads) {
    if (has_quote(python) || has_quote(root) || has_quote(in) || has_quote(out))
        return tf_err(TF_EUSER, "paths for museval must not contain single quotes");
    if (threads < 1) threads = 1;
    size_t n = strlen(python) + strlen(root) + strlen(in) + strlen(out) + 256;
    char *cmd = tf_malloc(n, "museval command");
    if (!cmd) return TF_EINTERNAL;
    snprintf(cmd, n,
             "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d MKL_NUM_THREADS=%d '%s' "
             "'%s/tests/reference/museval_ref.py' '%s' '%s' 2>&1",
             threads, threads, threads, python, root, in, out);
    char tail[2048];
    int rc = run_capture(cmd, tail, sizeof tail);
    free(cmd);
    if (rc != 0)
        return tf_err(TF_EINTERNAL, "museval_ref.py failed (exit %d): %s", rc,
                      tail[0] ? tail : "(no output)");
    return TF_OK;
}

tf_status tf_bss_run_museval_json(const char *python, const char *root, const char *in,
                                  const char *ours_json, int rate, const char *const *names,
                                  int nnames) {
    if (has_quote(python) || has_quote(root) || has_quote(in) || has_quote(ours_json))
        return tf_err(TF_EUSER, "paths for museval must not contain single quotes");
    size_t n = strlen(python) + strlen(root) + strlen(in) + strlen(ours_json) + 256;
    for (int i = 0; i < nnames; i++) {
        if (has_quote(names[i])) return tf_err(TF_EUSER, "target name %s has a quote", names[i]);
        n += strlen(names[i]) + 3;
    }
    char *cmd = tf_malloc(n, "museval command");
    if (!cmd) return TF_EINTERNAL;
    int k = snprintf(cmd, n,
                     "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 '%s' "
                     "'%s/tests/reference/museval_ref.py' --json '%s' '%s' %d",
                     python, root, in, ours_json, rate);
    for (int i = 0; i < nnames; i++) k += snprintf(cmd + k, n - (size_t)k, " '%s'", names[i]);
    snprintf(cmd + k, n - (size_t)k, " 2>&1");
    char tail[4096];
    int rc = run_capture(cmd, tail, sizeof tail);
    free(cmd);
    if (rc != 0)
        return tf_err(TF_EUSER, "museval_ref.py --json (exit %d): %s", rc,
                      tail[0] ? tail : "(no output)");
    return TF_OK;
}

/* ---- comparison ---- */

static void cmp_value(double a, double b, double *maxd, tf_bss_cmp *c, int count) {
    if (isfinite(a) && isfinite(b)) {
        double d = fabs(a - b);
        if (d > *maxd) *maxd = d;
        if (count) c->compared++;
    } else if (isnan(a) != isnan(b) || ((isinf(a) || isinf(b)) && a != b)) {
        c->nonfinite_mismatch++;
    }
}

void tf_bss_compare(const tf_bss_scores *a, const tf_bss_scores *b, tf_bss_cmp *cmp) {
    if (a->nsrc != b->nsrc || a->nwin != b->nwin) {
        cmp->nonfinite_mismatch += (int64_t)4 * a->nsrc * a->nwin;
        return;
    }
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < (size_t)a->nsrc * a->nwin; i++)
            cmp_value(a->m[k][i], b->m[k][i], &cmp->max_abs_diff, cmp, 1);
    for (size_t i = 0; i < 4 * (size_t)a->nsrc; i++)
        cmp_value(a->median[i], b->median[i], &cmp->max_median_diff, cmp, 0);
}
