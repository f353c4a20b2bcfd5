/* tfswa evaluate on tiny synthetic data with untrained tiny checkpoints:
 *  - with one chunk per track (segment = track, overlap 0) the model and oracle estimates
 *    are recomputed here directly (model forward on the whole track; the ideal ratio mask
 *    written out from its definition) and their uSDR must match, per target, with two
 *    checkpoints contributing their targets in a mixed order;
 *  - the mixture baseline's uSDR is recomputed from the files in double precision;
 *  - summary.json agrees with the per-track museval JSONs (median over finite frames, then
 *    median over tracks; mean uSDR), summary.md holds the numbers, the PNGs are valid
 *    with the documented sizes; the IRM oracle beats the mixture on every stem;
 *  - the default path scores the same uSDR as training's full-track validation;
 *  - user errors: a target the dataset lacks (library and CLI exit status 2, one line), two
 *    checkpoints with one target, an empty split;
 *  - --split valid on a root with a valid/ folder; a stem silent over a whole track gives
 *    NaN BSS Eval metrics (null in summary.json) and finite uSDR. */
#include <cJSON.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audio/audio.h"
#include "data/synth.h"
#include "dsp/stft.h"
#include "infer/evaluate.h"
#include "infer/figures.h"
#include "metrics/sdr.h"
#include "model/model.h"
#include "test.h"
#include "train/train.h"
#include "train/ckpt.h"
#include "train/validate.h"
#include "util/config.h"
#include "util/fsutil.h"

/* the model input of a config (a pointer to a temporary) */
#define MC(c) ((const tf_model_config[]){tf_train_model_config(c)})

static char root[] = "/tmp/tfswa-eval-XXXXXX";
static char data[300], data2[300];
static const char *STEMS[4] = {"vocals", "drums", "bass", "other"};
#define SECONDS 3.0
#define RATE    44100

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A checkpoint of an untrained tiny model with the given targets (and sources). */
static int make_ckpt(const char *dir, const char *targets, const char *sources, uint64_t seed) {
    tf_config c;
    tf_config_defaults(&c);
    if (tf_config_load_yaml(&c, "configs/model/tiny.yaml")) return -1;
    if (sources && tf_config_set(&c, "sources", sources)) return -1;
    if (tf_config_set(&c, "targets", targets)) return -1;
    c.segment_seconds = 1.0;
    c.seed = (int64_t)seed;
    tf_model *m;
    if (tf_model_create(&m, MC(&c), 1, 4096, 1)) return -1;
    size_t n = tf_model_get_plan(m)->n_params;
    float *mv = calloc(2 * n, sizeof(float));
    tf_opt_state os = {n, mv, mv + n, NULL};
    tf_train_progress p;
    memset(&p, 0, sizeof p);
    int rc = mv && tf_ckpt_save(dir, m, &c, &p, &os) == TF_OK ? 0 : -1;
    free(mv);
    tf_model_free(m);
    return rc;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) free(s), s = NULL;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

/* museval JSON has bare NaN (simplejson): parse it with NaN -> null */
static cJSON *parse_museval(const char *path) {
    char *s = read_text(path);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *t = malloc(n * 2 + 1), *o = t;
    for (const char *p = s; *p;)
        if (!strncmp(p, "NaN", 3))
            memcpy(o, "null", 4), o += 4, p += 3;
        else
            *o++ = *p++;
    *o = 0;
    cJSON *j = cJSON_Parse(t);
    free(s), free(t);
    return j;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) { /* of the n values (finite) */
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* museval-style per-track cSDR of target `name` from the per-track JSON */
static double json_csdr(const char *path, const char *name, int *nframes) {
    cJSON *j = parse_museval(path);
    double r = NAN;
    *nframes = -1;
    const cJSON *t, *targets = cJSON_GetObjectItem(j, "targets");
    cJSON_ArrayForEach(t, targets) {
        if (strcmp(cJSON_GetObjectItem(t, "name")->valuestring, name)) continue;
        const cJSON *fr = cJSON_GetObjectItem(t, "frames"), *f;
        double v[4096];
        int n = 0;
        *nframes = cJSON_GetArraySize(fr);
        cJSON_ArrayForEach(f, fr) {
            const cJSON *sdr = cJSON_GetObjectItem(cJSON_GetObjectItem(f, "metrics"), "SDR");
            if (cJSON_IsNumber(sdr) && n < 4096) v[n++] = sdr->valuedouble;
        }
        r = median(v, n);
    }
    cJSON_Delete(j);
    return r;
}

static int png_dims(const char *path, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char sig[8];
    int rc = -1;
    if (fread(sig, 1, 8, f) == 8 && png_sig_cmp(sig, 0, 8) == 0) {
        png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = p ? png_create_info_struct(p) : NULL;
        if (p && info && !setjmp(png_jmpbuf(p))) {
            png_init_io(p, f);
            png_set_sig_bytes(p, 8);
            png_read_info(p, info);
            *w = (int)png_get_image_width(p, info), *h = (int)png_get_image_height(p, info);
            rc =
                png_get_bit_depth(p, info) == 8 && png_get_color_type(p, info) == PNG_COLOR_TYPE_RGB
                    ? 0
                    : -1;
        }
        png_destroy_read_struct(&p, &info, NULL);
    }
    fclose(f);
    return rc;
}

static double usdr(const float *ref, const float *est, int64_t n) {
    double ss = 0, dd = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)ref[i] * ref[i], dd += ((double)ref[i] - est[i]) * ((double)ref[i] - est[i]);
    return 10 * log10((ss + 1e-7) / (dd + 1e-7));
}

typedef struct {
    float *stem[4]; /* (2, N) each */
    float *mix;
    int64_t N;
} track_audio;

static int load_track(const char *dir, track_audio *a) {
    tf_audio_info info;
    char p[1100];
    for (int s = 0; s < 4; s++) {
        snprintf(p, sizeof p, "%s/%s.wav", dir, STEMS[s]);
        if (tf_audio_read_all(p, &a->stem[s], &info)) return -1;
    }
    snprintf(p, sizeof p, "%s/mixture.wav", dir);
    if (tf_audio_read_all(p, &a->mix, &info)) return -1;
    a->N = info.frames;
    return 0;
}

static void free_track(track_audio *a) {
    for (int s = 0; s < 4; s++) free(a->stem[s]);
    free(a->mix);
}

/* The ideal ratio mask of the whole track, from its definition. est (2, N) of stem t. */
static int irm_direct(const track_audio *a, int t, float *est) {
    tf_stft *st;
    if (tf_stft_create(&st, 2048, 512)) return -1;
    const int64_t N = a->N;
    const size_t FT = (size_t)tf_stft_bins(st) * (size_t)tf_stft_frames(st, N);
    float *re = malloc(sizeof(float) * FT * 2 * 5), *im = malloc(sizeof(float) * FT * 2 * 5);
    for (int s = 0; s < 5; s++)
        tf_stft_forward(st, re + (size_t)s * 2 * FT, im + (size_t)s * 2 * FT,
                        s < 4 ? a->stem[s] : a->mix, 2, N);
    for (size_t i = 0; i < 2 * FT; i++) {
        double den = 0;
        for (int s = 0; s < 4; s++)
            den += sqrt((double)re[s * 2 * FT + i] * re[s * 2 * FT + i] +
                        (double)im[s * 2 * FT + i] * im[s * 2 * FT + i]);
        double num = sqrt((double)re[t * 2 * FT + i] * re[t * 2 * FT + i] +
                          (double)im[t * 2 * FT + i] * im[t * 2 * FT + i]);
        double m = den > 0 ? num / den : 0;
        re[i] = (float)(m * re[4 * 2 * FT + i]), im[i] = (float)(m * im[4 * 2 * FT + i]);
    }
    tf_istft_forward(st, est, re, im, 2, N);
    free(re), free(im);
    tf_stft_destroy(st);
    return 0;
}

static int stem_index(const char *name) {
    for (int s = 0; s < 4; s++)
        if (!strcmp(STEMS[s], name)) return s;
    return -1;
}

static void test_evaluate_exact_and_files(void) {
    char ck1[400], ck2[400], out[400];
    snprintf(ck1, sizeof ck1, "%s/ck_dv", root);
    snprintf(ck2, sizeof ck2, "%s/ck_bo", root);
    snprintf(out, sizeof out, "%s/out", root);
    CHECK(make_ckpt(ck1, "drums,vocals", NULL, 3) == 0);
    CHECK(make_ckpt(ck2, "bass,other", NULL, 4) == 0);
    tf_evaluate_opts o;
    tf_evaluate_defaults(&o);
    o.checkpoints[0] = ck1, o.checkpoints[1] = ck2, o.n_checkpoints = 2;
    o.data_root = data, o.out_dir = out, o.oracle_irm = 1;
    o.segment = SECONDS, o.overlap = 0; /* one chunk per track */
    o.num_threads = 2;
    tf_evaluation e;
    tf_status st = tf_evaluate(&o, &e);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) {
        tf_evaluation_free(&e);
        return;
    }
    CHECK(e.n_tracks == 2 && e.n_targets == 4);
    CHECKF(!strncmp(e.compute, "dnnl (", 6), "compute: '%s'", e.compute); /* the default */
    const char *order[4] = {"drums", "vocals", "bass", "other"};
    for (int t = 0; t < 4; t++) CHECK(!strcmp(e.targets[t], order[t]));
    CHECK(e.has[TF_EST_MODEL] && e.has[TF_EST_MIXTURE] && e.has[TF_EST_ORACLE]);

    /* 1. recompute model, mixture and oracle uSDR of every track and target */
    tf_model *m[2] = {NULL, NULL};
    tf_config c[2];
    for (int k = 0; k < 2; k++) {
        tf_config_defaults(&c[k]);
        CHECK(tf_ckpt_read_config(k ? ck2 : ck1, &c[k]) == TF_OK);
        CHECK(tf_model_create(&m[k], MC(&c[k]), 1, (int64_t)(SECONDS * RATE), 2) == TF_OK);
        CHECK(tf_ckpt_load_weights(k ? ck2 : ck1, m[k]) == TF_OK);
    }
    for (int i = 0; i < e.n_tracks; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/test/%s", data, e.tracks[i].name);
        track_audio a;
        memset(&a, 0, sizeof a);
        CHECK(load_track(dir, &a) == 0);
        CHECK(a.N == (int64_t)(SECONDS * RATE) && e.tracks[i].frames == a.N);
        float *out2 = malloc(sizeof(float) * 2 * 2 * (size_t)a.N),
              *est = malloc(sizeof(float) * 2 * (size_t)a.N);
        for (int k = 0; k < 2; k++) {
            CHECK(tf_model_forward(m[k], out2, a.mix, 1, a.N, 0) == TF_OK);
            for (int u = 0; u < 2; u++) {
                int t = 2 * k + u, s = stem_index(order[t]);
                double want = usdr(a.stem[s], out2 + (size_t)u * 2 * a.N, 2 * a.N);
                CHECK_NEAR(e.tracks[i].s[TF_EST_MODEL][t].usdr, want, 1e-3);
            }
        }
        for (int t = 0; t < 4; t++) {
            int s = stem_index(order[t]);
            CHECK_NEAR(e.tracks[i].s[TF_EST_MIXTURE][t].usdr, usdr(a.stem[s], a.mix, 2 * a.N),
                       1e-6);
            CHECK(irm_direct(&a, s, est) == 0);
            CHECK_NEAR(e.tracks[i].s[TF_EST_ORACLE][t].usdr, usdr(a.stem[s], est, 2 * a.N), 1e-3);
        }
        free(out2), free(est);
        free_track(&a);
    }
    for (int k = 0; k < 2; k++) tf_model_free(m[k]);

    /* 2. summary.json against the per-track museval JSONs */
    char path[1400];
    snprintf(path, sizeof path, "%s/summary.json", out);
    char *txt = read_text(path);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL; /* strict JSON: no bare NaN */
    CHECK(j != NULL);
    const cJSON *set = cJSON_GetObjectItem(j, "settings");
    const cJSON *cp = cJSON_GetObjectItem(set, "compute"),
                *pr = cJSON_GetObjectItem(set, "precision");
    CHECK(cJSON_IsString(cp) && !strcmp(cp->valuestring, e.compute));
    CHECK(cJSON_IsString(pr) && !strcmp(pr->valuestring, "auto"));
    static const char *dirs[3] = {"", "mixture/", "oracle_irm/"};
    for (int k = 0; j && k < TF_EST_COUNT; k++)
        for (int t = 0; t < 4; t++) {
            const cJSON *x =
                cJSON_GetObjectItem(cJSON_GetObjectItem(j, tf_est_key((tf_est)k)), order[t]);
            const cJSON *cs = cJSON_GetObjectItem(x, "csdr"), *us = cJSON_GetObjectItem(x, "usdr");
            CHECK(cJSON_IsNumber(us) && cJSON_IsNumber(cs));
            if (!cJSON_IsNumber(us) || !cJSON_IsNumber(cs)) continue;
            double v[2], mean = 0;
            int nv = 0;
            for (int i = 0; i < 2; i++) {
                int nf;
                snprintf(path, sizeof path, "%s/%stest/%s.json", out, dirs[k], e.tracks[i].name);
                double cj = json_csdr(path, order[t], &nf);
                CHECK(nf == 3); /* 3 s: three 1 s frames */
                /* the file holds 5 decimals */
                if (isfinite(cj)) {
                    CHECK_NEAR(e.tracks[i].s[k][t].csdr, cj, 1e-5);
                    v[nv++] = cj;
                } else
                    CHECK(!isfinite(e.tracks[i].s[k][t].csdr));
                mean += e.tracks[i].s[k][t].usdr / 2;
            }
            CHECK_NEAR(cs->valuedouble, median(v, nv), 1e-5);
            CHECK_NEAR(us->valuedouble, mean, 1e-9);
            CHECK_NEAR(us->valuedouble, e.agg[k][t].usdr, 1e-9);
            const cJSON *si = cJSON_GetObjectItem(x, "sisdr");
            CHECK(cJSON_IsNumber(si) && cJSON_IsNumber(cJSON_GetObjectItem(x, "csir")) &&
                  cJSON_IsNumber(cJSON_GetObjectItem(x, "csar")));
        }
    /* per-track entries too */
    const cJSON *tr = j ? cJSON_GetObjectItem(j, "tracks") : NULL;
    CHECK(cJSON_GetArraySize(tr) == 2);
    const cJSON *t0 = cJSON_GetArrayItem(tr, 0);
    CHECK(t0 && !strcmp(cJSON_GetObjectItem(t0, "name")->valuestring, e.tracks[0].name));
    cJSON_Delete(j);
    free(txt);

    /* 3. the IRM oracle beats the mixture on every stem */
    for (int t = 0; t < 4; t++) {
        CHECKF(e.agg[TF_EST_ORACLE][t].usdr > e.agg[TF_EST_MIXTURE][t].usdr + 3,
               "%s uSDR %.2f vs %.2f", order[t], e.agg[TF_EST_ORACLE][t].usdr,
               e.agg[TF_EST_MIXTURE][t].usdr);
        if (isfinite(e.agg[TF_EST_MIXTURE][t].csdr))
            CHECKF(e.agg[TF_EST_ORACLE][t].csdr > e.agg[TF_EST_MIXTURE][t].csdr, "%s cSDR",
                   order[t]);
    }

    /* 4. summary.md holds the numbers; the figures are PNGs of the documented sizes */
    snprintf(path, sizeof path, "%s/summary.md", out);
    txt = read_text(path);
    CHECK(txt != NULL);
    for (int t = 0; txt && t < 4; t++) {
        char row[256], head[64];
        snprintf(head, sizeof head, "## %s", order[t]);
        snprintf(row, sizeof row, "| oracle IRM | %.2f | %.2f |", e.agg[TF_EST_ORACLE][t].csdr,
                 e.agg[TF_EST_ORACLE][t].usdr);
        CHECKF(strstr(txt, head) && strstr(txt, row), "%s", row);
        snprintf(row, sizeof row, "| model | %.2f | %.2f |", e.agg[TF_EST_MODEL][t].csdr,
                 e.agg[TF_EST_MODEL][t].usdr);
        CHECKF(strstr(txt, row), "%s", row);
    }
    free(txt);
    for (int t = 0; t < 4; t++) {
        int w = 0, h = 0;
        snprintf(path, sizeof path, "%s/figures/spec_%s.png", out, order[t]);
        CHECKF(png_dims(path, &w, &h) == 0 && w == TF_FIG_SPEC_W && h == TF_FIG_SPEC_H, "%s %dx%d",
               path, w, h);
        snprintf(path, sizeof path, "%s/figures/csdr_%s.png", out, order[t]);
        CHECKF(png_dims(path, &w, &h) == 0 && w == TF_FIG_BARS_W && h == TF_FIG_BARS_H, "%s %dx%d",
               path, w, h);
    }
    tf_evaluation_free(&e);
}

/* The default path (chunks of the checkpoint's segment, overlap 0.25) scores exactly what
 * training's full-track validation scores for the same model and tracks. */
static void test_matches_validation(void) {
    char ck[400], out[400];
    snprintf(ck, sizeof ck, "%s/ck_dv", root); /* made by the first test */
    snprintf(out, sizeof out, "%s/out_val", root);
    tf_evaluate_opts o;
    tf_evaluate_defaults(&o);
    o.checkpoints[0] = ck, o.n_checkpoints = 1, o.data_root = data, o.out_dir = out;
    o.num_threads = 2;
    tf_evaluation e;
    tf_status st = tf_evaluate(&o, &e);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    tf_config c;
    tf_config_defaults(&c);
    CHECK(tf_ckpt_read_config(ck, &c) == TF_OK);
    snprintf(c.root, sizeof c.root, "%s", data);
    c.batch_size = 1;
    tf_model *m = NULL;
    tf_index *ix = NULL;
    tf_val_result v;
    const tf_dist single = TF_DIST_SINGLE;
    CHECK(tf_model_create(&m, MC(&c), 1, (int64_t)llround(c.segment_seconds * RATE), 2) == TF_OK);
    CHECK(m && tf_ckpt_load_weights(ck, m) == TF_OK);
    CHECK(tf_index_open(&ix, &c, NULL) == TF_OK);
    CHECK(ix && tf_validate(m, &c, ix, TF_SPLIT_TEST, &single, &v) == TF_OK);
    CHECK(!st && v.tracks == e.n_tracks && e.n_targets == c.n_targets);
    for (int t = 0; !st && t < c.n_targets; t++) {
        CHECK(!strcmp(e.targets[t], c.targets[t]));
        CHECK_NEAR(e.agg[TF_EST_MODEL][t].usdr, v.usdr[t], 1e-4);
        CHECK_NEAR(e.agg[TF_EST_MIXTURE][t].usdr, v.usdr_mixture[t], 1e-6);
    }
    tf_index_close(ix);
    tf_model_free(m);
    tf_evaluation_free(&e);
}

static void test_user_errors(void) {
    char ck[400], ckv[400], out[400], cmd[4096];
    snprintf(ck, sizeof ck, "%s/ck_piano", root);
    snprintf(ckv, sizeof ckv, "%s/ck_v", root);
    snprintf(out, sizeof out, "%s/out_err", root);
    CHECK(make_ckpt(ck, "piano", "vocals,drums,bass,other,piano", 5) == 0);
    CHECK(make_ckpt(ckv, "vocals", NULL, 6) == 0);
    tf_evaluate_opts o;
    tf_evaluate_defaults(&o);
    o.checkpoints[0] = ck, o.n_checkpoints = 1, o.data_root = data, o.out_dir = out;
    tf_evaluation e;
    CHECK(tf_evaluate(&o, &e) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "piano") && strstr(tf_errmsg(), "ck_piano"), "%s", tf_errmsg());
    tf_evaluation_free(&e);
    CHECK(access(out, F_OK) != 0); /* reported before any output */
    /* two checkpoints with the same target */
    o.checkpoints[0] = ckv, o.checkpoints[1] = ckv, o.n_checkpoints = 2;
    CHECK(tf_evaluate(&o, &e) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "vocals") && strstr(tf_errmsg(), "provided by both"), "%s",
           tf_errmsg());
    tf_evaluation_free(&e);
    /* a split without tracks (found after the models are loaded: with the ref backend) */
    o.n_checkpoints = 1, o.data_root = data2, o.split = TF_SPLIT_TEST;
    o.backend = TF_BACKEND_REF;
    CHECK(tf_evaluate(&o, &e) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "no tracks"), "%s", tf_errmsg());
    CHECKF(!strncmp(e.compute, "ref (", 5), "compute: '%s'", e.compute);
    tf_evaluation_free(&e);
    o.backend = TF_BACKEND_DNNL;
    /* precision and backend not among the enumerators, named */
    o.precision = (tf_precision)3;
    CHECK(tf_evaluate(&o, &e) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "precision 3"), "%s", tf_errmsg());
    tf_evaluation_free(&e);
    o.precision = TF_PRECISION_AUTO, o.backend = (tf_backend)5;
    CHECK(tf_evaluate(&o, &e) == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "backend 5"), "%s", tf_errmsg());
    tf_evaluation_free(&e);
    o.backend = TF_BACKEND_DNNL;
    /* nothing to evaluate */
    o.n_checkpoints = 0;
    CHECK(tf_evaluate(&o, &e) == TF_EUSER);
    tf_evaluation_free(&e);
    /* the command line: exit status 2 and one line naming the target */
    char bin[1100];
    CHECK(test_build_path(bin, sizeof bin, "tfswa") == 0); /* build[-san]/tfswa */
    CHECKF(access(bin, X_OK) == 0, "%s: not built", bin);
    snprintf(cmd, sizeof cmd, "%s evaluate --checkpoint %s --data_root %s -o %s 2> %s/err.log", bin,
             ck, data, out, root);
    CHECK(run_cmd(cmd) == 2);
    snprintf(cmd, sizeof cmd, "%s/err.log", root);
    char *txt = read_text(cmd);
    CHECKF(txt && !strncmp(txt, "tfswa: ", 7) && strstr(txt, "piano") &&
               strchr(txt, '\n') == txt + strlen(txt) - 1,
           "%s", txt ? txt : "(none)");
    free(txt);
    snprintf(cmd, sizeof cmd, "%s evaluate --data_root %s -o %s --oracle ibm 2> /dev/null", bin,
             data, out);
    CHECK(run_cmd(cmd) == 2);
    snprintf(cmd, sizeof cmd,
             "%s evaluate --data_root %s -o %s --oracle irm --overlap 1.5 2> /dev/null", bin, data,
             out);
    CHECK(run_cmd(cmd) == 2);
}

/* data2: ROOT/{train,valid}/ with the valid track's bass silent and no mixture file */
static void test_valid_split_and_silent_stem(void) {
    char out[400], path[1400];
    snprintf(out, sizeof out, "%s/out_valid", root);
    tf_evaluate_opts o;
    tf_evaluate_defaults(&o);
    o.data_root = data2, o.out_dir = out, o.oracle_irm = 1, o.split = TF_SPLIT_VALID;
    o.num_threads = 2;
    tf_evaluation e;
    tf_status st = tf_evaluate(&o, &e);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) {
        tf_evaluation_free(&e);
        return;
    }
    CHECK(e.n_tracks == 1 && e.split == TF_SPLIT_VALID && !e.has[TF_EST_MODEL]);
    const tf_eval_track_scores *t = &e.tracks[0];
    CHECK(t->bss_silent[TF_EST_MIXTURE] && t->bss_silent[TF_EST_ORACLE]);
    for (int s = 0; s < 4; s++) {
        CHECK(isnan(t->s[TF_EST_ORACLE][s].csdr) && isnan(e.agg[TF_EST_ORACLE][s].csdr));
        CHECK(isfinite(t->s[TF_EST_ORACLE][s].usdr) && isfinite(t->s[TF_EST_MIXTURE][s].usdr));
        CHECK(t->s[TF_EST_ORACLE][s].usdr > t->s[TF_EST_MIXTURE][s].usdr);
    }
    snprintf(path, sizeof path, "%s/oracle_irm/valid/%s.json", out, t->name);
    int nf = 0;
    CHECK(isnan(json_csdr(path, "bass", &nf)) && nf == 2);
    snprintf(path, sizeof path, "%s/summary.json", out);
    char *txt = read_text(path);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    const cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "oracle_irm"), "bass");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(b, "csdr")) &&
          cJSON_IsNumber(cJSON_GetObjectItem(b, "usdr")));
    CHECK(cJSON_GetObjectItem(j, "model") == NULL);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "split")->valuestring, "valid"));
    cJSON_Delete(j);
    free(txt);
    tf_evaluation_free(&e);
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(data2, sizeof data2, "%s/data2", root);
    tf_synth_opts so;
    tf_synth_defaults(&so);
    so.train_tracks = 1, so.test_tracks = 2, so.seconds = SECONDS, so.seed = 11, so.threads = 2;
    so.test_tracks = 2;
    int ok = tf_synth_dataset(data, &so) == TF_OK;
    /* data2: one train track and one valid track (2 s) whose bass is silent, no mixture */
    so.test_tracks = 1, so.seconds = 2.0, so.seed = 12;
    ok = ok && tf_synth_dataset(data2, &so) == TF_OK;
    char a[600], b[600], name[256];
    snprintf(a, sizeof a, "%s/test", data2);
    snprintf(b, sizeof b, "%s/valid", data2);
    ok = ok && rename(a, b) == 0;
    tf_synth_track_name(name, sizeof name, 1, 0, 12);
    snprintf(a, sizeof a, "%s/valid/%s/bass.wav", data2, name);
    float *z = calloc(2 * 2 * RATE, sizeof(float));
    ok = ok && z &&
         tf_audio_write_file(a, z, 2, 2 * RATE, RATE, TF_FMT_WAV, TF_SUBTYPE_PCM16) == TF_OK;
    free(z);
    snprintf(a, sizeof a, "%s/valid/%s/mixture.wav", data2, name);
    ok = ok && unlink(a) == 0;
    if (!ok) {
        fprintf(stderr, "setup failed: %s\n", tf_errmsg());
        return 1;
    }
    RUN(test_evaluate_exact_and_files);
    RUN(test_matches_validation);
    RUN(test_user_errors);
    RUN(test_valid_split_and_silent_stem);
    if (tf_remove_tree(root)) fprintf(stderr, "%s\n", tf_errmsg());
    return TEST_END();
}
