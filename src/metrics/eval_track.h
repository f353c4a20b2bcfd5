/* Evaluation of one track: BSS Eval v4 frame metrics and their medians (museval's cSDR),
 * uSDR and SI-SDR per target, and museval's per-track JSON.
 *
 *   tf_eval_result r;
 *   tf_bss_params p = tf_bss_default_params(44100);
 *   const char *names[] = {"vocals", "drums", "bass", "other"};
 *   TF_TRY(tf_eval_track(&p, names, 4, ref, est, n, 44100, &r, NULL));
 *   TF_TRY(tf_eval_write_json("out/test/Track.json", &r));
 *   ... r.t[0].csdr ...
 *   tf_eval_result_free(&r);
 */
#ifndef TFSWA_EVAL_TRACK_H
#define TFSWA_EVAL_TRACK_H
#include <stdint.h>

#include "metrics/bsseval.h"
#include "util/err.h"

typedef struct {
    char name[64];
    double *sdr, *sir, *sar, *isr; /* (nwin) each: BSS Eval v4 per frame (NaN: silent frame) */
    double csdr, csir, csar, cisr; /* museval's aggregate: median over finite frames */
    double usdr, sisdr;            /* whole track, channels pooled (metrics/sdr.h) */
} tf_eval_target;

typedef struct {
    int ntargets;
    int64_t nwin;
    double win_s, hop_s; /* frame length and hop in seconds (museval: 1.0, 1.0) */
    tf_eval_target *t;
} tf_eval_result;

/* ref, est: (S, 2, N) planar float32, the same targets in the same order; names: S names.
 * All S targets are evaluated together (museval's eval_mus_track does that for the
 * targets it is given, except that it evaluates vocals/accompaniment as a separate pair;
 * here the caller chooses the set). TF_EUSER for silent sources or bad parameters. */
tf_status tf_eval_track(const tf_bss_params *p, const char *const *names, int S, const float *ref,
                        const float *est, int64_t N, int rate, tf_eval_result *out,
                        tf_bss_info *info);
void tf_eval_result_free(tf_eval_result *r);

/* museval's TrackStore JSON (musdb.schema.json): {"targets": [{"name", "frames": [{"time",
 * "duration", "metrics": {"SDR", "SIR", "SAR", "ISR"}}]}], "museval_version": "0.4.1"}.
 * Like museval: values quantized to 5 decimals, +-inf and NaN written as the bare literal
 * NaN (simplejson allow_nan; not strict JSON: Python's json/simplejson and pandas read it,
 * cJSON does not). The string is malloc'ed (NULL when out of memory). */
char *tf_eval_json(const tf_eval_result *r);
/* Write tf_eval_json atomically to path. */
tf_status tf_eval_write_json(const char *path, const tf_eval_result *r);

#endif
