/* Streaming weighted overlap-add over ANY separation model, in memory that does not depend
 * on the length of the input. The one implementation used by `tfswa separate`, training
 * validation and evaluation.
 *
 * The input (2, n) arrives in blocks of any size (tf_ola_push); chunks of `chunk` frames
 * start every hop = round(chunk * (1 - overlap)) frames; groups of `batch` consecutive chunks
 * go through the model together (grouping by chunk index, so results do not depend on
 * how the input was split into blocks). Each chunk's output is weighted by a trapezoid
 * (ramps over the overlap, always > 0) and the sum is divided by the summed weights, so
 * the weights sum to one at every sample. Finished output goes to the sink in order. The
 * last chunks are zero-padded past the end of the input; the output has exactly as many
 * frames as the input. */
#ifndef TFSWA_OLA_H
#define TFSWA_OLA_H
#include <stdint.h>

#include "util/err.h"

/* Model: mix (nb, 2, L) -> out (nb, S, 2, L). */
typedef tf_status (*tf_ola_model_fn)(void *ctx, const float *mix, int nb, int64_t L, float *out);
/* Sink: stems (S, 2, n) planar with row stride `stride` (frames), n frames. */
typedef tf_status (*tf_ola_sink_fn)(void *ctx, const float *stems, int64_t n, int64_t stride);

typedef struct {
    int n_stems;    /* S */
    int64_t chunk;  /* L, frames per chunk */
    double overlap; /* in [0, 1): fraction of a chunk shared with the next */
    int batch;      /* chunks per model call */
} tf_ola_cfg;

typedef struct tf_ola tf_ola;

tf_status tf_ola_open(tf_ola **o, const tf_ola_cfg *cfg, tf_ola_model_fn model, void *model_ctx,
                      tf_ola_sink_fn sink, void *sink_ctx);
/* The same, with the engine's buffers carved from the caller's memory `mem` (64-byte
 * aligned, at least tf_ola_mem_bytes(cfg) bytes, untouched by anything else until
 * tf_ola_close): what training validation does with the idle part of the model's arena. */
tf_status tf_ola_open_in(tf_ola **o, const tf_ola_cfg *cfg, tf_ola_model_fn model, void *model_ctx,
                         tf_ola_sink_fn sink, void *sink_ctx, void *mem, size_t mem_bytes);
size_t tf_ola_mem_bytes(const tf_ola_cfg *cfg);
/* Feed n frames of planar stereo input (2, n) with row stride `stride`. */
tf_status tf_ola_push(tf_ola *o, const float *in, int64_t n, int64_t stride);
/* End of input: process the remaining chunks and flush all output. */
tf_status tf_ola_finish(tf_ola *o);
/* Frames of the engine's input/accumulator window ((batch - 1) * hop + chunk), and the
 * bytes tf_ola_open will allocate, computed without allocating. */
int64_t tf_ola_hop(const tf_ola_cfg *cfg);
int64_t tf_ola_window_frames(const tf_ola_cfg *cfg);
size_t tf_ola_plan_bytes(const tf_ola_cfg *cfg);
/* Bytes held by the engine (independent of the input length). */
size_t tf_ola_bytes(const tf_ola *o);
void tf_ola_close(tf_ola *o);

#endif
