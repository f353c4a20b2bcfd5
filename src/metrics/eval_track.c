/* Per-track evaluation and museval's JSON. See eval_track.h. */
#include "metrics/eval_track.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/sdr.h"
#include "util/fsutil.h"

#define MUSEVAL_VERSION "0.4.1"

void tf_eval_result_free(tf_eval_result *r) {
    if (r->t) free(r->t[0].sdr);
    free(r->t);
    memset(r, 0, sizeof *r);
}

tf_status tf_eval_track(const tf_bss_params *p, const char *const *names, int S, const float *ref,
                        const float *est, int64_t N, int rate, tf_eval_result *out,
                        tf_bss_info *info) {
    memset(out, 0, sizeof *out);
    if (S < 1 || N < 1 || rate < 1)
        return tf_err(TF_EUSER, "evaluate: need >= 1 target, >= 1 sample and a positive rate");
    int64_t nwin = tf_bss_nwin(N, p->window, p->hop);
    tf_eval_target *t = tf_calloc((size_t)S, sizeof *t, "evaluation targets");
    double *buf = tf_malloc((size_t)4 * S * nwin * sizeof(double), "evaluation frames");
    if (!t || !buf) {
        free(t), free(buf);
        return TF_EINTERNAL;
    }
    for (int j = 0; j < S; j++) {
        snprintf(t[j].name, sizeof t[j].name, "%s", names[j]);
        t[j].sdr = buf + ((size_t)0 * S + j) * nwin;
        t[j].isr = buf + ((size_t)1 * S + j) * nwin;
        t[j].sir = buf + ((size_t)2 * S + j) * nwin;
        t[j].sar = buf + ((size_t)3 * S + j) * nwin;
    }
    out->ntargets = S, out->nwin = nwin, out->t = t;
    out->win_s = (double)p->window / rate, out->hop_s = (double)p->hop / rate;
    /* the per-source blocks of each metric are contiguous: (S, nwin) as tf_bss_eval wants */
    tf_status st = tf_bss_eval(p, ref, est, S, 2, N, t[0].sdr, t[0].isr, t[0].sir, t[0].sar, info);
    if (st != TF_OK) {
        tf_eval_result_free(out);
        return st;
    }
    for (int j = 0; j < S; j++) {
        t[j].csdr = tf_bss_median(t[j].sdr, nwin);
        t[j].csir = tf_bss_median(t[j].sir, nwin);
        t[j].csar = tf_bss_median(t[j].sar, nwin);
        t[j].cisr = tf_bss_median(t[j].isr, nwin);
        tf_sdr_acc acc = {0, 0, 0, 0};
        tf_sdr_acc_add(&acc, ref + (size_t)j * 2 * N, est + (size_t)j * 2 * N, 2 * N);
        t[j].usdr = tf_sdr_usdr(&acc);
        t[j].sisdr = tf_sdr_sisdr(&acc);
    }
    return TF_OK;
}

/* museval's TrackStore._q: Decimal(x).quantize(Decimal(".00001")) (round half even on the
 * exact binary value, as glibc's printf does), inf -> NaN; simplejson writes NaN bare. */
static cJSON *quantized(double x) {
    char s[64];
    if (!isfinite(x)) return cJSON_CreateRaw("NaN");
    snprintf(s, sizeof s, "%.5f", x);
    return cJSON_CreateRaw(s);
}

/* Python's repr of a float: the shortest digits that read back exactly, ".0" if integral. */
static cJSON *py_float(double x) {
    char s[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, x);
        if (strtod(s, NULL) == x) break;
    }
    if (!strpbrk(s, ".eEn")) strcat(s, ".0");
    return cJSON_CreateRaw(s);
}

char *tf_eval_json(const tf_eval_result *r) {
    cJSON *root = cJSON_CreateObject(), *targets = cJSON_CreateArray();
    int ok = root && targets;
    if (ok)
        cJSON_AddItemToObject(root, "targets", targets);
    else
        cJSON_Delete(targets);
    for (int j = 0; ok && j < r->ntargets; j++) {
        cJSON *t = cJSON_CreateObject(), *frames = cJSON_CreateArray();
        if (!t || !frames) {
            cJSON_Delete(t), cJSON_Delete(frames);
            ok = 0;
            break;
        }
        cJSON_AddItemToArray(targets, t);
        ok = cJSON_AddStringToObject(t, "name", r->t[j].name) != NULL;
        cJSON_AddItemToObject(t, "frames", frames);
        for (int64_t i = 0; ok && i < r->nwin; i++) {
            cJSON *f = cJSON_CreateObject(), *m = cJSON_CreateObject();
            if (!f || !m) {
                cJSON_Delete(f), cJSON_Delete(m);
                ok = 0;
                break;
            }
            cJSON_AddItemToArray(frames, f);
            cJSON_AddItemToObject(f, "time", py_float((double)i * r->hop_s));
            cJSON_AddItemToObject(f, "duration", py_float(r->win_s));
            cJSON_AddItemToObject(f, "metrics", m);
            cJSON_AddItemToObject(m, "SDR", quantized(r->t[j].sdr[i]));
            cJSON_AddItemToObject(m, "SIR", quantized(r->t[j].sir[i]));
            cJSON_AddItemToObject(m, "SAR", quantized(r->t[j].sar[i]));
            cJSON_AddItemToObject(m, "ISR", quantized(r->t[j].isr[i]));
            /* a failed allocation inside leaves a missing key: detect it */
            ok = cJSON_GetArraySize(m) == 4 && cJSON_GetArraySize(f) == 3;
        }
    }
    if (ok) ok = cJSON_AddStringToObject(root, "museval_version", MUSEVAL_VERSION) != NULL;
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return s;
}

tf_status tf_eval_write_json(const char *path, const tf_eval_result *r) {
    char *s = tf_eval_json(r);
    if (!s) return tf_err(TF_EINTERNAL, "%s: out of memory formatting the evaluation JSON", path);
    size_t n = strlen(s);
    s[n] = '\n'; /* replace the terminator: the file ends with a newline */
    tf_status st = tf_write_file_atomic(path, s, n + 1);
    free(s);
    return st;
}
