/* Test harness (not library code): cross-check of tf_bss_eval against museval, used by
 * tests/test_bsseval.c, tests/test_eval_track.c and tools/bench_metrics_vs_museval.c.
 * Synthetic cases, the binary files exchanged with
 * tests/reference/museval_ref.py (format documented there), running it with the Python of
 * tools/pyenv.sh, and comparing the scores. */
#ifndef TFSWA_BSS_CHECK_H
#define TFSWA_BSS_CHECK_H
#include <stddef.h>
#include <stdint.h>

#include "metrics/bsseval.h"

typedef enum {
    TF_BSS_CASE_GOOD,     /* estimate = short FIR of the reference + leakage + noise */
    TF_BSS_CASE_RANDOM,   /* estimate unrelated to the references */
    TF_BSS_CASE_SILENT,   /* good, with frames silent in a reference / an estimate */
    TF_BSS_CASE_DUALMONO, /* good, source 0 has left == right (singular filter system) */
    TF_BSS_CASE_DARK,     /* good, references low-passed to -100 dB at Nyquist (cond(G) ~ 1e10) */
} tf_bss_case_kind;

typedef struct {
    char name[32];
    int nsrc, nchan, window, hop, filters_len;
    int64_t nsampl;
    float *ref, *est; /* (nsrc, nchan, nsampl) each */
} tf_bss_case;

/* Synthetic music-like references (tones + coloured noise, panned stereo) and estimates
 * of the given kind; deterministic in seed. Free with tf_bss_case_free. */
tf_status tf_bss_case_make(tf_bss_case *c, const char *name, tf_bss_case_kind kind, int nsrc,
                           int nchan, int64_t nsampl, int window, int hop, int filters_len,
                           uint64_t seed);
void tf_bss_case_free(tf_bss_case *c);

/* The standard cross-check set (small: museval runs them in seconds): 2 and 4 sources,
 * stereo and mono, filters_len 64..512, a track shorter than a window, one of 2.5
 * windows, overlapping frames, silent frames, random estimates, a dual-mono source.
 * Fills up to max cases, returns how many (or -1 with the error set). */
int tf_bss_std_cases(tf_bss_case *out, int max);

/* Scores of one case, ours or museval's. */
typedef struct {
    int nsrc;
    int64_t nwin;
    double seconds; /* time of the evaluation call */
    double *m[4];   /* SDR, ISR, SIR, SAR: (nsrc, nwin) each */
    double *median; /* (4, nsrc): per-track aggregate (tf_bss_median) */
} tf_bss_scores;

tf_status tf_bss_scores_alloc(tf_bss_scores *s, int nsrc, int64_t nwin);
void tf_bss_scores_free(tf_bss_scores *s);
/* Run tf_bss_eval on a case (timed). */
tf_status tf_bss_eval_case(const tf_bss_case *c, tf_bss_solver solver, tf_bss_scores *s,
                           tf_bss_info *info);

tf_status tf_bss_write_cases(const char *path, const tf_bss_case *c, int n);
/* Read museval_ref.py's output for the n cases (checks counts and shapes). */
tf_status tf_bss_read_scores(const char *path, const tf_bss_case *c, int n, tf_bss_scores *s);

/* Repository root: the directory holding tools/pyenv.sh and tests/reference/museval_ref.py,
 * looked up from the working directory, then from the executable (build/ or build/tests/). */
tf_status tf_bss_find_root(char *root, size_t size);
/* Run ROOT/tools/pyenv.sh (creates the venv with museval the first time) and return the
 * path of its python. TF_EUSER with pyenv.sh's last output lines when it fails. */
tf_status tf_bss_pyenv(const char *root, char *python, size_t size);
/* python ROOT/tests/reference/museval_ref.py in out, with BLAS/OpenMP threads set. */
tf_status tf_bss_run_museval(const char *python, const char *root, const char *in, const char *out,
                             int threads);

/* python museval_ref.py --json in ours_json rate names...: museval's TrackStore JSON for
 * the first case of `in` must equal ours_json (schema, names, times, quantized values). */
tf_status tf_bss_run_museval_json(const char *python, const char *root, const char *in,
                                  const char *ours_json, int rate, const char *const *names,
                                  int nnames);

/* Agreement of b (ours) with a (museval), accumulated over calls. */
typedef struct {
    double max_abs_diff;        /* over values finite in both */
    double max_median_diff;     /* over per-track medians finite in both */
    int64_t compared;           /* finite values compared */
    int64_t nonfinite_mismatch; /* positions where NaN / +inf / -inf differ */
} tf_bss_cmp;
void tf_bss_compare(const tf_bss_scores *a, const tf_bss_scores *b, tf_bss_cmp *cmp);

#endif
