/* tfswa: music source separation with TFSWA-ResUNet, the C API.
 *
 * Usage (error checks shortened):
 *
 *     #include <tfswa.h>
 *
 *     const char *ckpts[] = {"runs/vocals/checkpoints/best"};
 *     int status;
 *     tfswa_context *ctx = tfswa_open(ckpts, 1, 0, &status);  // 0 threads: all cores
 *     if (!ctx) { fprintf(stderr, "%s\n", tfswa_last_error(NULL)); return 1; }
 *
 *     tfswa_separate_params p = tfswa_default_params();
 *     p.overlap = 0.5;
 *     p.instrumental = true;                    // also write mixture - vocals
 *     p.ext = TFSWA_EXT_FLAC;                   // PCM_24 unless p.subtype says otherwise
 *     if (tfswa_separate_file(ctx, "song.mp3", "separated", &p) != TFSWA_OK)
 *         fprintf(stderr, "%s\n", tfswa_last_error(ctx));
 *     // -> separated/song/vocals.flac, separated/song/instrumental.flac
 *     tfswa_close(ctx);
 *
 * Build against an installed tfswa (`make install PREFIX=...`):
 *     cc app.c $(pkg-config --cflags --libs tfswa)           # libtfswa.so
 *     cc app.c $(pkg-config --cflags --static --libs tfswa)  # its Libs.private too
 *
 * Files of any length are separated in memory that does not depend on their length: the
 * input is read in blocks, resampled to the model's rate when needed (libsoxr), split into
 * overlapping chunks (weighted overlap-add), and every stem is written while it is
 * computed (under a temporary name, renamed when complete). Any file libsndfile reads is
 * accepted (WAV, FLAC, OGG, MP3 where the library has it), mono or stereo, any rate; the
 * outputs have the input's rate, channel count and frame count.
 *
 * Threads: a context may be used by one thread at a time; separate contexts are
 * independent. The library never prints.
 *
 * Sharing the machine: the library computes with OpenMP (libgomp), whose idle threads by
 * default spin for milliseconds before they sleep; two busy processes on the same cores
 * then slow each other down many times over (not 2x). libgomp reads its policy from the
 * environment once, when it is loaded, so the library cannot change it: an application
 * that may share the machine should run with OMP_WAIT_POLICY=passive in its environment
 * from the start (set by its launcher, or by re-executing itself before libgomp loads, as
 * the tfswa program does). */
#ifndef TFSWA_H
#define TFSWA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version; the shared library's soname is libtfswa.so.MAJOR. */
#define TFSWA_VERSION_MAJOR 0
#define TFSWA_VERSION_MINOR 1
#define TFSWA_VERSION_PATCH 0

/* Marks the public API: the library is built with -fvisibility=hidden, so libtfswa.so
 * exports exactly the functions declared with TFSWA_API. */
#if defined(__GNUC__) || defined(__clang__)
#define TFSWA_API __attribute__((visibility("default")))
#else
#define TFSWA_API
#endif

/* Status codes returned by every function that can fail. */
enum tfswa_status {
    TFSWA_OK = 0,
    TFSWA_ERR_INTERNAL = 1,  /* out of memory, a library failure, a bug */
    TFSWA_ERR_USER = 2,      /* bad argument, unreadable/unwritable file, bad checkpoint */
    TFSWA_ERR_EXISTS = 3,    /* an output file exists and overwrite is false */
    TFSWA_ERR_CANCELLED = 4, /* the progress callback asked to stop */
    TFSWA_ERR_AGAIN = 5,     /* a stream's buffer is full: pull (or wait), then push again */
};

/* A short description of a status code ("ok", "output exists", ...). */
TFSWA_API const char *tfswa_error_string(int status);

enum tfswa_ext { TFSWA_EXT_WAV = 0, TFSWA_EXT_FLAC = 1 };
enum tfswa_subtype {
    TFSWA_SUBTYPE_DEFAULT = 0, /* FLOAT for WAV, PCM_24 for FLAC */
    TFSWA_SUBTYPE_PCM_16 = 1,  /* PCM: samples outside [-1, 1) are clipped (and counted) */
    TFSWA_SUBTYPE_PCM_24 = 2,
    TFSWA_SUBTYPE_FLOAT = 3, /* WAV only */
};

/* Called as the song advances; fraction in [0, 1]. Return nonzero to cancel (the call then
 * returns TFSWA_ERR_CANCELLED and leaves no output file behind). */
typedef int (*tfswa_progress_callback)(double fraction, void *user_data);

typedef struct tfswa_separate_params {
    int n_threads;        /* 0: the context's */
    double segment;       /* chunk length in seconds; 0: the checkpoint's training segment */
    double overlap;       /* fraction of a chunk shared with the next, [0, 1): 0.25 */
    int batch_size;       /* chunks per model call: 1 */
    int shifts;           /* 0: none; K > 0: K random time shifts in [0, 0.5 s), averaged */
    uint64_t seed;        /* for the shifts: 42 */
    uint32_t stems;       /* bit i: write target i (tfswa_target_name); 0: every target */
    bool instrumental;    /* also write "instrumental" = mixture - vocals */
    int ext;              /* enum tfswa_ext: TFSWA_EXT_WAV */
    int subtype;          /* enum tfswa_subtype: TFSWA_SUBTYPE_DEFAULT */
    const char *filename; /* output template under out_dir: "{track}/{stem}.{ext}";
                             {track} = input name without extension, {trackext} = its
                             extension, {stem}, {ext} = wav | flac */
    bool overwrite;       /* false: an existing output is an error (before any work) */
    tfswa_progress_callback progress_callback; /* NULL: none */
    void *progress_callback_user_data;
} tfswa_separate_params;

/* What the last tfswa_separate_file / tfswa_separate_buffer did. */
typedef struct tfswa_summary {
    int64_t frames;         /* input frames (= output frames) */
    int sample_rate;        /* input rate (= output rate) */
    int channels;           /* input channels (= output channels) */
    double duration;        /* audio seconds */
    double seconds;         /* wall-clock seconds */
    double rtf;             /* real-time factor: seconds / duration */
    double cpu_seconds;     /* process CPU time used */
    int64_t peak_rss_bytes; /* the process's peak resident memory so far (VmHWM) */
    int64_t clipped;        /* PCM samples clipped, over all outputs */
    int n_outputs;
} tfswa_summary;

typedef struct tfswa_context tfswa_context;

/* Arithmetic of the model's convolutions (inference stores no activations: only the
 * arithmetic changes). AUTO: bf16 where this CPU has native bf16 arithmetic (dnnl backend)
 * AND bf16 moves the demo model's cSDR by at most 0.05 dB per stem against fp32 (measured:
 * at most 0.0084 dB, README "Precision"), else fp32. BF16: bf16 operands with fp32
 * accumulation where the CPU has native bf16 (AVX512-BF16 or AMX); elsewhere the dnnl
 * backend runs fp32 (tfswa_describe says so) and the ref backend emulates bf16 (operands
 * rounded to bf16, fp32 sums: bf16's numerics at fp32 speed). */
enum tfswa_precision {
    TFSWA_PRECISION_AUTO = 0,
    TFSWA_PRECISION_FP32 = 1,
    TFSWA_PRECISION_BF16 = 2,
};
/* Who runs the model's convolutions: oneDNN (default), or the reference OpenMP + OpenBLAS
 * kernels (slower; the oracle the tests compare against). */
enum tfswa_backend {
    TFSWA_BACKEND_DNNL = 0,
    TFSWA_BACKEND_REF = 1,
};

/* Where the models run. CUDA needs a library built with CUDA (make CUDA=1) and a usable
 * GPU; otherwise tfswa_open_with fails with TFSWA_ERR_USER and one line saying which is
 * missing. Separating on CUDA is not implemented yet: TFSWA_DEVICE_CUDA is refused
 * (TFSWA_ERR_USER, naming the device and what is missing) even where a GPU is there. */
enum tfswa_device {
    TFSWA_DEVICE_CPU = 0,
    TFSWA_DEVICE_CUDA = 1,
};

typedef struct tfswa_options {
    int n_threads; /* 0: all cores */
    int precision; /* enum tfswa_precision: TFSWA_PRECISION_AUTO */
    int backend;   /* enum tfswa_backend: TFSWA_BACKEND_DNNL */
    /* appended after the first release: the fields above keep their offsets */
    int device;       /* enum tfswa_device: TFSWA_DEVICE_CPU */
    int device_index; /* the CUDA device number with TFSWA_DEVICE_CUDA (0 = the first) */
} tfswa_options;

TFSWA_API tfswa_options tfswa_default_options(void);

/* Load n checkpoints (checkpoint directories, or run directories: their
 * checkpoints/last). Each contributes its targets (one model per source, as in the paper);
 * two checkpoints with the same target, or different sample rates, are TFSWA_ERR_USER
 * naming both. n_threads 0: all cores. On failure returns NULL, sets *status (if not
 * NULL) and tfswa_last_error(NULL). */
TFSWA_API tfswa_context *tfswa_open(const char *const *checkpoints, int n, int n_threads,
                                    int *status);
/* tfswa_open with options (NULL: tfswa_default_options(); tfswa_open(c, n, t, s) is
 * tfswa_open_with with the defaults and n_threads t). A precision or backend that is not
 * one of the enums is TFSWA_ERR_USER naming the value. */
TFSWA_API tfswa_context *tfswa_open_with(const char *const *checkpoints, int n,
                                         const tfswa_options *options, int *status);
/* One line on what computes: backend, library and instruction set, arithmetic in effect
 * and the precision asked for, e.g. "dnnl (oneDNN 2.6.3, isa avx2), fp32 arithmetic
 * (precision auto)". Valid while ctx lives. */
TFSWA_API const char *tfswa_describe(const tfswa_context *ctx);
TFSWA_API void tfswa_close(tfswa_context *ctx);

/* The message of the context's last failure ("" if none); with ctx NULL, the last
 * failure of tfswa_open on this thread. Valid until the next call on the context. */
TFSWA_API const char *tfswa_last_error(const tfswa_context *ctx);

TFSWA_API tfswa_separate_params tfswa_default_params(void);

TFSWA_API int tfswa_n_targets(const tfswa_context *ctx);
TFSWA_API const char *tfswa_target_name(const tfswa_context *ctx, int i); /* NULL if out of range */
TFSWA_API int tfswa_target_index(const tfswa_context *ctx, const char *name); /* -1 if none */
TFSWA_API int tfswa_sample_rate(const tfswa_context *ctx);                    /* the models' rate */

/* The outputs params select, in order: the chosen targets in target order, then
 * "instrumental". tfswa_separate_buffer writes them in this order. */
TFSWA_API int tfswa_n_outputs(const tfswa_context *ctx, const tfswa_separate_params *params);
TFSWA_API const char *tfswa_output_name(const tfswa_context *ctx,
                                        const tfswa_separate_params *params, int i);
/* The path of output i of input `in` (out_dir joined with the expanded template). */
TFSWA_API int tfswa_output_path(tfswa_context *ctx, const tfswa_separate_params *params,
                                const char *in, const char *out_dir, int i, char *buf, size_t size);
/* Check the params and the outputs of `in` without doing any work: TFSWA_ERR_EXISTS when
 * one exists and overwrite is false. (tfswa_separate_file does this check itself; call it
 * to check a whole list of inputs before starting the first.) */
TFSWA_API int tfswa_check_outputs(tfswa_context *ctx, const char *in, const char *out_dir,
                                  const tfswa_separate_params *params);

/* Separate the audio file `in` into files under out_dir (created as needed). */
TFSWA_API int tfswa_separate_file(tfswa_context *ctx, const char *in, const char *out_dir,
                                  const tfswa_separate_params *params);

/* Separate a buffer: in (channels, n) planar (channels 1 or 2) at `rate` Hz; out
 * (tfswa_n_outputs, channels, n) planar, allocated by the caller. Same pipeline and
 * results as tfswa_separate_file. */
TFSWA_API int tfswa_separate_buffer(tfswa_context *ctx, const float *in, int channels, int64_t n,
                                    int rate, float *out, const tfswa_separate_params *params);

/* Summary of the last separation on ctx. */
TFSWA_API const tfswa_summary *tfswa_last_summary(const tfswa_context *ctx);

/* ---------------------------------------------------------------- streams
 *
 * Separation of audio as it comes: push input blocks of any size (1 frame up), pull the
 * stems after a fixed, stated latency. The same engine as tfswa_separate_buffer runs
 * incrementally, so the pulled output, with the latency removed, is bitwise equal to
 * tfswa_separate_buffer on the whole input with the same segment, overlap, stems and
 * instrumental (batch_size 1, no shifts), at any input rate (the same libsoxr
 * resampling both ways). Memory is fixed at open.
 *
 *     tfswa_stream_params sp = tfswa_stream_default_params();
 *     sp.max_latency = 0.5;                      // seconds; picks the segment
 *     tfswa_stream *s = tfswa_stream_open(ctx, 2, 44100, &sp);
 *     if (!s) { fprintf(stderr, "%s\n", tfswa_last_error(ctx)); return 1; }
 *     int k = tfswa_stream_n_outputs(s);         // stems per frame in the output
 *     float in[2 * 256], out[2 * 256 * 8];       // frames interleaved
 *     int64_t n, got;
 *     while ((n = read_block(in, 256)) > 0) {    // any n from 1 up
 *         if (tfswa_stream_push(s, in, n) != TFSWA_OK) break;
 *         while ((got = tfswa_stream_pull(s, out, 256)) > 0)  // in all: pushed - latency
 *             use(out, got);                     // out[(f * k + j) * 2 + c]
 *     }
 *     tfswa_stream_flush(s);                     // end of input: the tail
 *     while ((got = tfswa_stream_pull(s, out, 256)) > 0) use(out, got);
 *     tfswa_stream_close(s);
 *
 * Layout: push takes (n, channels) interleaved frames; pull gives (n, n_outputs,
 * channels) interleaved: for each frame, every output in tfswa_stream_output_name order
 * (the selected targets in target order, then "instrumental"), each with its channels.
 *
 * Latency: after N frames pushed, exactly max(0, N - latency) frames have been pullable
 * in all (synchronous mode); after flush, all N. The latency is in frames at the input
 * rate: the chunk (segment at the model's rate, less one frame: a frame comes out when
 * the chunk that completes it has run) plus, when the input rate is not the model's, the
 * filter delay and block buffering of both libsoxr stages (measured at open by running
 * them on zeros, e.g. 48 kHz into a 44.1 kHz model adds 36 ms; this takes up to 0.5 s at
 * open for a 6 s segment, and a few times that when max_latency searches the segment).
 * Overlap does not change the latency, only the work. In synchronous mode the model's
 * work for a whole chunk happens inside the push that completes it (tfswa bench stream
 * reports that worst call). Not offered in streams: batch_size > 1 and shifts (they only
 * add latency).
 *
 * Worker-thread mode (threaded = true): the model runs in a thread of its own; push and
 * pull only copy and signal, never wait for the model. The stated latency grows by one
 * hop (segment * (1 - overlap)); pull then gives up to max(0, N - latency) frames, fewer
 * when the model has not kept up (it must run faster than real time). flush waits for
 * the worker. The output is the same bits as in synchronous mode.
 *
 * Buffers: unpulled output and (worker mode) unprocessed input are held in rings sized at
 * open for max_block frames beyond the latency: a push that would exceed them consumes
 * nothing and returns TFSWA_ERR_AGAIN. While a stream is open its context serves only it
 * (one stream per context; tfswa_separate_* fail). A stream is used by one thread at a
 * time (e.g. the audio callback pushes and pulls); streams on separate contexts are
 * independent. */
typedef struct tfswa_stream tfswa_stream;

typedef struct tfswa_stream_params {
    double segment;     /* chunk length in seconds; 0: the checkpoint's training segment, or
                           the longest that fits max_latency */
    double overlap;     /* fraction of a chunk shared with the next, [0, 1): 0.25 */
    double max_latency; /* seconds; 0: no bound. With segment 0, the segment is the longest
                           (up to the training segment) whose latency fits (found by
                           bisection; with resampling the latency is not strictly monotone
                           in the segment, so it may be a few frames short of the longest);
                           an open that cannot fit fails naming the smallest latency
                           possible */
    uint32_t stems;     /* bit i: target i; 0: every target */
    bool instrumental;  /* also output mixture - vocals */
    int n_threads;      /* 0: the context's */
    bool threaded;      /* worker-thread mode (see above) */
    int64_t max_block;  /* frames: 0 = 65536 (see Buffers above) */
} tfswa_stream_params;

TFSWA_API tfswa_stream_params tfswa_stream_default_params(void);
/* channels 1 or 2, rate in Hz (any: resampled to the model's rate and back). NULL on
 * failure: tfswa_last_error(ctx) says why. */
TFSWA_API tfswa_stream *tfswa_stream_open(tfswa_context *ctx, int channels, int rate,
                                          const tfswa_stream_params *p);
/* n >= 0 frames of (n, channels) interleaved input. TFSWA_ERR_AGAIN: the buffers are full
 * (nothing was taken). */
TFSWA_API int tfswa_stream_push(tfswa_stream *s, const float *in, int64_t n);
/* Up to max_n frames of (n, n_outputs, channels) interleaved output; returns the frames
 * written (0: none ready), or -1 on failure (tfswa_last_error of the context). */
TFSWA_API int64_t tfswa_stream_pull(tfswa_stream *s, float *out, int64_t max_n);
/* End of input: the rest (the last latency frames) becomes pullable; no push after. */
TFSWA_API int tfswa_stream_flush(tfswa_stream *s);
/* Frames at the input rate between a sample going in and its stems coming out. */
TFSWA_API int64_t tfswa_stream_latency(const tfswa_stream *s);
TFSWA_API int tfswa_stream_n_outputs(const tfswa_stream *s);
TFSWA_API const char *tfswa_stream_output_name(const tfswa_stream *s, int i);
/* The chunk length in effect (seconds at the model's rate; max_latency may choose it). */
TFSWA_API double tfswa_stream_segment(const tfswa_stream *s);
TFSWA_API void tfswa_stream_close(tfswa_stream *s);

#ifdef __cplusplus
}
#endif

#endif
