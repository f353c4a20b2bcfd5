/* Evaluation of separation models on a dataset split (`tfswa evaluate`).
 *
 * For every track of the split (in index order, at most max_tracks):
 *   1. the track is read block by block (data/valtrack.h) into memory, and the mixture is
 *      separated by the pipeline of `tfswa separate` (infer/separate.h, tf_separate_buffer:
 *      streaming overlap-add of dsp/ola.h, chunk = segment, trapezoid cross-fades, as in
 *      training's validation); several checkpoints each contribute their targets (two
 *      providing the same target, or different sample rates, is an error);
 *   2. the estimates of all targets are scored together with BSS Eval v4
 *      (metrics/eval_track.h: museval's images variant, 512-tap filters, 1 s frames):
 *      SDR/SIR/SAR/ISR per frame and their medians (cSDR ...), plus uSDR and SI-SDR;
 *   3. the same for the mixture as the estimate of every target (the baseline), and with
 *      oracle_irm for the ideal ratio mask: mask_s = |S_s| / sum_j |S_j| over ALL sources
 *      of the dataset (0 where the sum is 0), per channel and bin, applied to the mixture
 *      STFT and inverted, with the STFT of the (first) model and the same overlap-add
 *      engine and chunking as the model (an IRM "model" that sees the references), so the
 *      oracle is the bound of a mixture-phase model in exactly this pipeline.
 *
 * Memory: BSS Eval computes its distortion filters once from the WHOLE track (museval's
 * method, inherent to cSDR), so each track's references of all sources (S, 2, N), mixture
 * (2, N) and one set of estimates (T, 2, N) are held in memory: (2S + 2 + 2T) N floats
 * (760 MB for a 4-minute MUSDB track, S = T = 4) plus BSS Eval's own buffers. The three
 * estimators take turns in the one estimate buffer. Everything else is bounded: reading
 * (blocks), the models (one batch of chunks at a time), the oracle (one chunk at a time).
 *
 * A source that is silent over a whole track (museval raises on it) gets NaN for every
 * BSS Eval frame of that track and estimator, exactly as museval's per-frame rule would
 * give in every frame; uSDR and SI-SDR are still computed. Track aggregates skip NaN.
 *
 * Output (out_dir, created):
 *   <split>/<track>.json              museval TrackStore JSON of the model (per frame)
 *   mixture/<split>/<track>.json      the same for the mixture baseline
 *   oracle_irm/<split>/<track>.json   and for the oracle (with oracle_irm)
 *   summary.json   {"model"|"mixture"|"oracle_irm": {target: {"csdr", "csir", "csar",
 *                  "cisr", "usdr", "sisdr"}}, "tracks": [...per track...], settings
 *                  (incl. "precision" asked for and "compute": backend, ISA, arithmetic)};
 *                  csdr/csir/csar/cisr: median over tracks of the per-track medians over
 *                  frames (SiSEC 2018); usdr, sisdr: mean over tracks; null when none
 *   summary.md     a table per target: mixture / model / oracle, cSDR and uSDR ...
 *   figures/spec_<target>.png   spectrograms (figures.h) of mixture / reference / estimate
 *                               (the model's, else the oracle's) for figure_seconds of the
 *                               first track, at its loudest stretch of that target
 *   figures/csdr_<target>.png   cSDR per track for each estimator
 */
#ifndef TFSWA_EVALUATE_H
#define TFSWA_EVALUATE_H
#include <stdint.h>
#include <stdio.h>

#include "data/index.h"
#include "infer/precision.h"
#include "util/device.h"
#include "util/config.h"
#include "util/err.h"

typedef enum { TF_EST_MODEL = 0, TF_EST_MIXTURE = 1, TF_EST_ORACLE = 2, TF_EST_COUNT = 3 } tf_est;
/* "model", "mixture", "oracle_irm" (the keys of summary.json) */
const char *tf_est_key(tf_est e);

typedef struct {
    double csdr, csir, csar, cisr; /* BSS Eval v4 medians (per track: over frames) */
    double usdr, sisdr;
} tf_eval_scores;

typedef struct {
    char *name; /* track folder name */
    int64_t frames;
    double seconds;               /* wall time spent on the track */
    int bss_silent[TF_EST_COUNT]; /* 1: a source silent over the track: BSS metrics NaN */
    tf_eval_scores s[TF_EST_COUNT][TF_MAX_TARGETS];
} tf_eval_track_scores;

typedef struct {
    int n_targets;
    char targets[TF_MAX_TARGETS][TF_NAME_MAX];
    int has[TF_EST_COUNT]; /* which estimators ran */
    tf_split split;
    int sample_rate, n_fft, hop;
    double segment, overlap;
    int n_tracks;
    tf_eval_track_scores *tracks; /* (n_tracks,) */
    tf_eval_scores agg[TF_EST_COUNT][TF_MAX_TARGETS];
    char compute[256]; /* what runs the (first) model: backend, ISA, arithmetic ("": none) */
} tf_evaluation;

/* Called after each track (from the calling thread); return nonzero to stop (TF_EUSER). */
typedef int (*tf_eval_progress_fn)(void *user, int i, int n, const tf_evaluation *e,
                                   const tf_eval_track_scores *t);

#define TF_EVAL_MAX_CHECKPOINTS TF_MAX_TARGETS

typedef struct {
    const char *checkpoints[TF_EVAL_MAX_CHECKPOINTS]; /* checkpoint or run directories */
    int n_checkpoints;                                /* 0: only mixture (and oracle) */
    const char *data_root;
    tf_split split; /* TF_SPLIT_TEST */
    const char *out_dir;
    int oracle_irm;         /* 0 */
    double segment;         /* chunk seconds; 0: the first checkpoint's training segment (6) */
    double overlap;         /* 0.25 */
    int batch_size;         /* chunks per model call: 1 */
    int num_threads;        /* 0: OpenMP default */
    tf_precision precision; /* TF_PRECISION_AUTO (tf_precision_resolve) */
    tf_backend backend;     /* TF_BACKEND_DNNL */
    tf_device device;       /* cpu; cuda:N runs the models there (tf_sep_model_checkpoint_cuda) */
    int max_tracks;         /* 0: every track of the split */
    double figure_seconds;  /* 5 */
    /* stems of the dataset (the mixture is their sum); n_sources 0: vocals, drums, bass,
     * other. Without checkpoints they are also the evaluated targets. */
    int n_sources;
    char sources[TF_MAX_TARGETS][TF_NAME_MAX];
    tf_eval_progress_fn progress;
    /* NULL, or called once when every check has passed, before the first track */
    void (*start)(void *user, const tf_evaluation *e);
    void *user; /* for progress and start */
} tf_evaluate_opts;

void tf_evaluate_defaults(tf_evaluate_opts *o);

/* Run the evaluation and write every output file. Problems a user can cause (no such
 * checkpoint or dataset, a target the dataset lacks, an empty split, an unwritable
 * output folder, bad options) are TF_EUSER naming the file, flag or value, reported before
 * any track is processed. e is filled (free with tf_evaluation_free, also on failure). */
tf_status tf_evaluate(const tf_evaluate_opts *o, tf_evaluation *e);
void tf_evaluation_free(tf_evaluation *e);

/* summary.json / summary.md of e (tf_evaluate writes them; exposed for tests). */
tf_status tf_evaluation_write_summary(const tf_evaluation *e, const char *out_dir,
                                      const tf_evaluate_opts *o);
/* The per-target table: one row per estimator that ran (mixture, model, oracle), columns
 * uSDR and cSDR per target. */
void tf_evaluation_print_table(FILE *f, const tf_evaluation *e);

#endif
