/* Per-track evaluation: aggregates, uSDR / SI-SDR, and the JSON against museval's own
 * TrackStore output (tests/reference/museval_ref.py --json). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bss_check.h"
#include "metrics/eval_track.h"
#include "test.h"

static const char *names[3] = {"vocals", "drums", "bass"};

/* 3 stereo targets, 5 frames of 1 s at a nominal 8 kHz, some silent frames */
static int make_case(tf_bss_case *c) {
    return tf_bss_case_make(c, "track", TF_BSS_CASE_SILENT, 3, 2, 5 * 8000 + 1234, 8000, 8000, 256,
                            77) == TF_OK;
}

static void test_eval_values(void) {
    tf_bss_case c;
    CHECK(make_case(&c));
    tf_bss_params p = {8000, 8000, 256, TF_BSS_SOLVER_AUTO};
    tf_eval_result r;
    tf_status st = tf_eval_track(&p, names, 3, c.ref, c.est, c.nsampl, 8000, &r, NULL);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st != TF_OK) {
        tf_bss_case_free(&c);
        return;
    }
    CHECK(r.ntargets == 3 && r.nwin == 5 && r.win_s == 1.0 && r.hop_s == 1.0);
    /* the same frame values as tf_bss_eval itself */
    double m[4][15];
    CHECK(tf_bss_eval(&p, c.ref, c.est, 3, 2, c.nsampl, m[0], m[1], m[2], m[3], NULL) == TF_OK);
    int nan_frames = 0;
    for (int j = 0; j < 3; j++) {
        CHECK(!strcmp(r.t[j].name, names[j]));
        for (int i = 0; i < 5; i++) {
            double a = r.t[j].sdr[i], b = m[0][j * 5 + i];
            CHECK((isnan(a) && isnan(b)) || a == b);
            nan_frames += isnan(a);
            CHECK((isnan(r.t[j].sar[i]) && isnan(m[3][j * 5 + i])) ||
                  r.t[j].sar[i] == m[3][j * 5 + i]);
        }
        CHECK(r.t[j].csdr == tf_bss_median(r.t[j].sdr, 5));
        CHECK(r.t[j].cisr == tf_bss_median(r.t[j].isr, 5));
        CHECK(isfinite(r.t[j].csdr) && isfinite(r.t[j].csir) && isfinite(r.t[j].csar));
        /* uSDR and SI-SDR over the whole track, channels pooled, in float64 */
        double ss = 0, dd = 0, se = 0, ee = 0;
        for (int64_t n = 0; n < 2 * c.nsampl; n++) {
            double s = c.ref[(size_t)j * 2 * c.nsampl + n], e = c.est[(size_t)j * 2 * c.nsampl + n];
            ss += s * s, dd += (s - e) * (s - e), se += s * e, ee += e * e;
        }
        CHECK_NEAR(r.t[j].usdr, 10 * log10((ss + 1e-7) / (dd + 1e-7)), 1e-9);
        double a = se / ss;
        CHECK_NEAR(r.t[j].sisdr, 10 * log10(a * a * ss / (ee - 2 * a * se + a * a * ss)), 1e-6);
    }
    CHECK(nan_frames == 9); /* frames 1, 2 and 3 of every target are NaN */
    char *js = tf_eval_json(&r);
    CHECK(js && strstr(js, "\"museval_version\":\t\"0.4.1\"") && strstr(js, "NaN") &&
          strstr(js, "\"time\":\t4.0") && strstr(js, "\"duration\":\t1.0"));
    free(js);
    tf_eval_result_free(&r);
    tf_bss_case_free(&c);
}

/* our JSON == museval's TrackStore JSON (after parsing), and valid for musdb.schema.json */
static void test_json_vs_museval(void) {
    char root[4096], py[4096];
    tf_status st = tf_bss_find_root(root, sizeof root);
    if (st == TF_OK) st = tf_bss_pyenv(root, py, sizeof py);
    CHECKF(st == TF_OK, "cannot run the museval reference: %s", tf_errmsg());
    if (st != TF_OK) return;
    tf_bss_case c;
    CHECK(make_case(&c));
    tf_bss_params p = {8000, 8000, 256, TF_BSS_SOLVER_AUTO};
    tf_eval_result r;
    char dir[] = "/tmp/tfswa_evaljXXXXXX", in[64], js[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(in, sizeof in, "%s/in.bin", dir);
    snprintf(js, sizeof js, "%s/track.json", dir);
    st = tf_eval_track(&p, names, 3, c.ref, c.est, c.nsampl, 8000, &r, NULL);
    if (st == TF_OK) {
        st = tf_eval_write_json(js, &r);
        tf_eval_result_free(&r);
    }
    if (st == TF_OK) st = tf_bss_write_cases(in, &c, 1);
    if (st == TF_OK) st = tf_bss_run_museval_json(py, root, in, js, 8000, names, 3);
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    unlink(in), unlink(js), rmdir(dir);
    tf_bss_case_free(&c);
}

int main(void) {
    RUN(test_eval_values);
    RUN(test_json_vs_museval);
    return TEST_END();
}
