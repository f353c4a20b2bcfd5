#include "audio/resampler.h"

#include <math.h>
#include <soxr.h>
#include <stdlib.h>

struct tf_resampler {
    soxr_t s;
    int ch;
    int64_t max_in, olen;
    float *out;         /* (ch, olen) */
    const float **iptr; /* (ch,) */
    float **optr;       /* (ch,) */
};

tf_status tf_resampler_open(tf_resampler **out, double in_rate, double out_rate, int channels,
                            int64_t max_in) {
    *out = NULL;
    if (!(in_rate > 0) || !(out_rate > 0) || channels < 1 || max_in < 1)
        return tf_err(TF_EUSER, "resampler: invalid rates %g -> %g Hz or channels %d", in_rate,
                      out_rate, channels);
    tf_resampler *r = tf_calloc(1, sizeof *r, "resampler");
    if (!r) return TF_EINTERNAL;
    r->ch = channels;
    r->max_in = max_in;
    r->olen = (int64_t)ceil((double)max_in * out_rate / in_rate) + 64;
    r->out = tf_malloc(sizeof(float) * (size_t)channels * (size_t)r->olen, "resampler output");
    r->iptr = tf_calloc((size_t)channels, sizeof *r->iptr, "resampler");
    r->optr = tf_calloc((size_t)channels, sizeof *r->optr, "resampler");
    if (!r->out || !r->iptr || !r->optr) {
        tf_resampler_close(r);
        return TF_EINTERNAL;
    }
    for (int c = 0; c < channels; c++) r->optr[c] = r->out + (size_t)c * (size_t)r->olen;
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_S, SOXR_FLOAT32_S);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    r->s = soxr_create(in_rate, out_rate, (unsigned)channels, &e, &io, &q, NULL);
    if (!r->s || e) {
        tf_resampler_close(r);
        return tf_err(TF_EINTERNAL, "soxr_create(%g -> %g Hz, %d channels): %s", in_rate, out_rate,
                      channels, soxr_strerror(e));
    }
    *out = r;
    return TF_OK;
}

int64_t tf_resampler_max_out(const tf_resampler *r) {
    return r->olen;
}

size_t tf_resampler_bytes(const tf_resampler *r) {
    return sizeof(float) * (size_t)r->ch * (size_t)r->olen;
}

/* One soxr_process loop: in == NULL flushes. */
static tf_status run(tf_resampler *r, const float *in, int64_t n, int64_t stride,
                     tf_resampler_sink sink, void *ctx) {
    int64_t used = 0;
    for (;;) {
        size_t idone = 0, odone = 0;
        if (in)
            for (int c = 0; c < r->ch; c++) r->iptr[c] = in + (size_t)c * (size_t)stride + used;
        soxr_error_t e =
            soxr_process(r->s, in ? (soxr_in_t)r->iptr : NULL, in ? (size_t)(n - used) : 0, &idone,
                         (soxr_out_t)r->optr, (size_t)r->olen, &odone);
        if (e) return tf_err(TF_EINTERNAL, "soxr_process: %s", soxr_strerror(e));
        used += (int64_t)idone;
        if (odone > 0) TF_TRY(sink(ctx, r->out, (int64_t)odone, r->olen));
        /* done when all input is taken and soxr had no more output than room */
        if ((!in || used >= n) && (int64_t)odone < r->olen) break;
    }
    return TF_OK;
}

tf_status tf_resampler_push(tf_resampler *r, const float *in, int64_t n, int64_t stride,
                            tf_resampler_sink sink, void *ctx) {
    if (n > r->max_in)
        return tf_err(TF_EINTERNAL, "resampler: %lld frames pushed, max %lld", (long long)n,
                      (long long)r->max_in);
    if (n <= 0) return TF_OK;
    return run(r, in, n, stride, sink, ctx);
}

tf_status tf_resampler_flush(tf_resampler *r, tf_resampler_sink sink, void *ctx) {
    return run(r, NULL, 0, 0, sink, ctx);
}

void tf_resampler_close(tf_resampler *r) {
    if (!r) return;
    if (r->s) soxr_delete(r->s);
    free(r->out);
    free(r->iptr);
    free(r->optr);
    free(r);
}
