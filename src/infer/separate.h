/* Separating songs of any length in memory that does not depend on the length.
 *
 *   source (file: libsndfile blocks | memory)  (2, n) at the input rate, mono -> dual mono
 *     -> resample to the model rate (soxr, streaming; skipped when the rates agree)
 *     -> shifts: K overlap-add engines (dsp/ola.h), engine k fed the same blocks delayed
 *        by d_k zeros (demucs apply.py: d_k random in [0, 0.5 s), seeded by (seed, k));
 *        the first d_k output frames of engine k are dropped (realigned) and the K
 *        outputs averaged. shifts = 0: one engine, no delay.
 *     -> every model of the separator runs on each batch of chunks; their targets are
 *        concatenated in model order
 *     -> the stems to write (and vocals for `instrumental`) resampled back to the input
 *        rate (soxr), trimmed / zero-padded to exactly the input's frame count
 *     -> instrumental = input mixture - vocals (the mixture re-read at the input rate)
 *     -> mono inputs: the two output channels averaged
 *     -> sink (file: one streaming tf_audio_writer per output, temporary name, renamed
 *        when the song is complete | memory)
 *
 * Everything above is allocated per song from the parameters alone (chunk, batch, shifts,
 * number of stems, block size); nothing grows with the song. The model itself is created
 * for (batch_size, chunk frames) when first needed and reused while those stay the same.
 *
 * Several models: each contributes its targets (the paper trains one model per source).
 * Two models providing the same target is an error naming both (no silent "last wins").
 * All models must share one sample rate. */
#ifndef TFSWA_SEPARATE_H
#define TFSWA_SEPARATE_H
#include <stddef.h>
#include <stdint.h>

#include "audio/audio.h"
#include "util/config.h"
#include "util/err.h"

/* A separation model as the engine sees it: mix (nb, 2, L) -> out (nb, S, 2, L) at
 * `sample_rate`. The real one is a TFSWA-ResUNet checkpoint (tf_sep_model_checkpoint);
 * tests substitute their own (identity, gains). */
typedef struct {
    char name[TF_PATH_MAX]; /* for messages, e.g. the checkpoint directory */
    int n_targets;
    char targets[TF_MAX_TARGETS][TF_NAME_MAX];
    int sample_rate;
    double segment_seconds; /* the training segment: the default chunk length */
    int64_t min_frames;     /* shortest useful chunk (e.g. the STFT window); 0: none */
    /* Make the model ready for up to `batch` chunks of `frames` frames with `threads`
     * threads (threads <= 0: the default); called before every song. */
    tf_status (*prepare)(void *ctx, int batch, int64_t frames, int threads);
    tf_status (*forward)(void *ctx, const float *mix, int nb, int64_t L, float *out);
    void (*close)(void *ctx);
    /* One line on what computes (backend, ISA, arithmetic); NULL: nothing to say. */
    const char *(*describe)(void *ctx);
    void *ctx;
} tf_sep_model;

/* The TFSWA-ResUNet of a checkpoint directory or run directory (tf_ckpt_resolve): reads
 * model.json, creates the model for (batch 1, its training segment) and loads the weights
 * (so a bad checkpoint fails here); `prepare` recreates it and reloads the weights when a
 * larger batch or chunk, or other threads, are asked for. backend and compute (the
 * model's run options tf_model_config.backend / compute_dtype, e.g. from
 * tf_precision_resolve) hold for every re-creation. */
tf_status tf_sep_model_checkpoint(tf_sep_model *m, const char *path, int threads,
                                  tf_backend backend, tf_dtype compute);

/* The same on CUDA device `device_index` (CUDA builds only: make CUDA=1): the device model's
 * eval forward (model/model_cuda.h), fp32; the model is created on the device here (batch 1,
 * the training segment) and again by `prepare` for other batches or chunks; threads do not
 * apply. Outputs agree with tf_sep_model_checkpoint's within fp32 rounding (the GPU tests). */
tf_status tf_sep_model_checkpoint_cuda(tf_sep_model *m, const char *path, int device_index);

typedef struct tf_separator tf_separator;

/* Takes ownership of the models (closed by tf_separator_free, also on failure). */
tf_status tf_separator_create(tf_separator **s, tf_sep_model *models, int n_models, int threads);
void tf_separator_free(tf_separator *s);
int tf_separator_n_targets(const tf_separator *s);
const char *tf_separator_target(const tf_separator *s, int i);     /* NULL if out of range */
int tf_separator_index(const tf_separator *s, const char *target); /* -1 if none */
int tf_separator_rate(const tf_separator *s);
double tf_separator_segment(const tf_separator *s); /* default segment (first model's) */
/* The shortest chunk tf_sep_check_params accepts (frames at the models' rate). */
int64_t tf_separator_min_frames(const tf_separator *s);

/* Progress: fraction of the song written, in [0, 1]; return nonzero to cancel. */
typedef int (*tf_sep_progress_fn)(double fraction, void *user_data);

typedef struct {
    double segment;       /* chunk length in seconds; 0: the models' training segment */
    double overlap;       /* in [0, 1): 0.25 */
    int batch_size;       /* chunks per model call: 1 */
    int shifts;           /* 0: no shift; K > 0: K random shifts averaged */
    uint64_t seed;        /* shifts */
    uint32_t stems;       /* bit i = target i; 0 = every target */
    int instrumental;     /* also write mixture - vocals (needs a vocals target) */
    tf_format fmt;        /* wav | flac */
    tf_subtype sub;       /* PCM_16 | PCM_24 | FLOAT */
    const char *filename; /* template: {track} {trackext} {stem} {ext}; NULL: default */
    int overwrite;
    int threads;   /* 0: the separator's */
    int64_t block; /* input frames read per step: 0 = 16384 (tests use small ones) */
    tf_sep_progress_fn progress;
    void *user_data;
} tf_sep_params;

#define TF_SEP_FILENAME_DEFAULT "{track}/{stem}.{ext}"

void tf_sep_params_default(tf_sep_params *p);

typedef struct {
    int64_t frames;      /* input frames (= output frames) */
    int sample_rate;     /* input rate (= output rate) */
    int channels;        /* input channels (= output channels) */
    double duration;     /* audio seconds */
    double seconds;      /* wall-clock seconds */
    double rtf;          /* seconds / duration */
    double cpu_seconds;  /* process CPU time (user + system) used by this song */
    int64_t peak_rss;    /* bytes: the process's peak resident set (VmHWM) after the song */
    size_t engine_bytes; /* bytes of the pipeline's own buffers (model excluded) */
    int64_t clipped;     /* PCM samples clipped over all outputs */
    int n_outputs;
} tf_sep_summary;

/* Outputs of a run: the selected targets in target order, then "instrumental". */
int tf_sep_n_outputs(const tf_separator *s, const tf_sep_params *p);
const char *tf_sep_output_name(const tf_separator *s, const tf_sep_params *p, int i);
/* Checks params against the separator (stems, instrumental, template, format) */
tf_status tf_sep_check_params(const tf_separator *s, const tf_sep_params *p);

/* Path of output i of input `in` under `out_dir`. */
tf_status tf_sep_output_path(const tf_separator *s, const tf_sep_params *p, const char *in,
                             const char *out_dir, int i, char *buf, size_t n);
/* TF_EUSER naming the first output that exists (unless p->overwrite) or that equals the
 * input; *exists (may be NULL) tells which case. */
tf_status tf_sep_check_outputs(const tf_separator *s, const tf_sep_params *p, const char *in,
                               const char *out_dir, int *exists);

/* Separate a file into out_dir per the template. Outputs are checked before any work; on
 * failure or cancel no output file is left behind (temporaries are removed). */
tf_status tf_separate_file(tf_separator *s, const char *in, const char *out_dir,
                           const tf_sep_params *p, tf_sep_summary *sum);
/* Separate a planar (channels, n) buffer at `rate`; out (n_outputs, channels, n). Runs the
 * same streaming pipeline as tf_separate_file (bit-identical results for FLOAT output). */
tf_status tf_separate_buffer(tf_separator *s, const float *in, int channels, int64_t n, int rate,
                             float *out, const tf_sep_params *p, tf_sep_summary *sum);
/* Cancelled by the progress callback: TF_EUSER with this message prefix. */
#define TF_SEP_CANCELLED_MSG "cancelled"
int tf_sep_was_cancelled(const tf_separator *s);

/* Incremental separation: the pipeline of tf_separate_buffer (same engines, same order of
 * work, bit-identical output) driven by pushes of input instead of reads. Output j
 * (tf_sep_output_name order) goes to sink.write as (channels, n) planar pieces, all
 * outputs of one piece before the next; sink.mix gives the mixture at an output position
 * (instrumental only). p->block sets the largest push; p->progress is ignored. */
typedef struct {
    tf_status (*mix)(void *ctx, int64_t off, float *out, int64_t n, int64_t stride);
    tf_status (*write)(void *ctx, int j, const float *data, int64_t n, int64_t stride);
    void *ctx;
} tf_sep_sink;
typedef struct tf_sep_stream tf_sep_stream;
tf_status tf_sep_stream_open(tf_sep_stream **t, tf_separator *s, const tf_sep_params *p,
                             int in_rate, int channels, tf_sep_sink sink);
int64_t tf_sep_stream_block(const tf_sep_stream *t); /* the largest push */
size_t tf_sep_stream_bytes(const tf_sep_stream *t);  /* the pipeline's own buffers */
/* n <= block frames of (2, n) planar input (mono: both rows the same) with row stride. */
tf_status tf_sep_stream_push(tf_sep_stream *t, const float *in, int64_t n, int64_t stride);
/* End of input: the rest comes out; the outputs then have exactly the frames pushed. */
tf_status tf_sep_stream_finish(tf_sep_stream *t);
int64_t tf_sep_stream_frames_out(const tf_sep_stream *t); /* frames written so far */
void tf_sep_stream_close(tf_sep_stream *t);

#endif
