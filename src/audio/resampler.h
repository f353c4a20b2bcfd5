/* Streaming resampling of planar multi-channel audio with libsoxr (soxr_process, high
 * quality, linear phase). Memory is fixed at open: the output of any push is delivered
 * through a callback in pieces of at most tf_resampler_max_out(r) frames. soxr removes its
 * own filter delay, so the output is time-aligned with the input; the total number of
 * output frames is about n_in * out_rate / in_rate (callers that need an exact length
 * trim or pad at the end). */
#ifndef TFSWA_RESAMPLER_H
#define TFSWA_RESAMPLER_H
#include <stdint.h>

#include "util/err.h"

typedef struct tf_resampler tf_resampler;

/* Output sink: data (channels, n) planar, row stride `stride` frames. */
typedef tf_status (*tf_resampler_sink)(void *ctx, const float *data, int64_t n, int64_t stride);

/* max_in: the largest number of frames passed to one tf_resampler_push. */
tf_status tf_resampler_open(tf_resampler **r, double in_rate, double out_rate, int channels,
                            int64_t max_in);
/* Resample n <= max_in frames of (channels, n) planar input with row stride `stride`. */
tf_status tf_resampler_push(tf_resampler *r, const float *in, int64_t n, int64_t stride,
                            tf_resampler_sink sink, void *ctx);
/* End of input: deliver what the filter still holds. */
tf_status tf_resampler_flush(tf_resampler *r, tf_resampler_sink sink, void *ctx);
int64_t tf_resampler_max_out(const tf_resampler *r);
/* Bytes held by the resampler's own buffers (soxr's internal state not included). */
size_t tf_resampler_bytes(const tf_resampler *r);
void tf_resampler_close(tf_resampler *r);

#endif
