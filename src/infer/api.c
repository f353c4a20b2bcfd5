/* The public C API (include/tfswa.h) over infer/separate.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/api_internal.h"
#include "infer/precision.h"
#include "infer/separate.h"
#include "tfswa.h"
#include "util/device.h"

struct tfswa_context {
    tf_separator *sep;
    char err[4096];
    char desc[512]; /* tfswa_describe */
    tfswa_summary summary;
    int streams; /* open tfswa_stream on this context (0 or 1) */
};

_Static_assert((int)TFSWA_PRECISION_AUTO == (int)TF_PRECISION_AUTO &&
                   (int)TFSWA_PRECISION_FP32 == (int)TF_PRECISION_FP32 &&
                   (int)TFSWA_PRECISION_BF16 == (int)TF_PRECISION_BF16,
               "tfswa_precision = tf_precision");
_Static_assert((int)TFSWA_DEVICE_CPU == (int)TF_DEVICE_CPU &&
                   (int)TFSWA_DEVICE_CUDA == (int)TF_DEVICE_CUDA,
               "tfswa_device = tf_device_kind");
_Static_assert((int)TFSWA_BACKEND_DNNL == (int)TF_BACKEND_DNNL &&
                   (int)TFSWA_BACKEND_REF == (int)TF_BACKEND_REF,
               "tfswa_backend = tf_backend");

static _Thread_local char open_err_[4096];

const char *tfswa_error_string(int status) {
    switch (status) {
    case TFSWA_OK:
        return "ok";
    case TFSWA_ERR_INTERNAL:
        return "internal error";
    case TFSWA_ERR_USER:
        return "invalid input";
    case TFSWA_ERR_EXISTS:
        return "output exists";
    case TFSWA_ERR_CANCELLED:
        return "cancelled";
    case TFSWA_ERR_AGAIN:
        return "buffer full, pull and push again";
    default:
        return "unknown status";
    }
}

static int fail_open(int st, int *status) {
    snprintf(open_err_, sizeof open_err_, "%s", tf_errmsg());
    if (status) *status = st;
    return st;
}

tfswa_context *tf_api_open_models(tf_sep_model *models, int n, int n_threads, int *status) {
    if (status) *status = TFSWA_OK;
    open_err_[0] = 0;
    tfswa_context *ctx = tf_calloc(1, sizeof *ctx, "tfswa context");
    if (!ctx) {
        for (int i = 0; i < n; i++)
            if (models[i].close) models[i].close(models[i].ctx);
        fail_open(TFSWA_ERR_INTERNAL, status);
        return NULL;
    }
    const char *d = n > 0 && models[0].describe ? models[0].describe(models[0].ctx) : NULL;
    snprintf(ctx->desc, sizeof ctx->desc, "%s", d ? d : "");
    tf_status st = tf_separator_create(&ctx->sep, models, n, n_threads);
    if (st) {
        free(ctx);
        fail_open((int)st, status);
        return NULL;
    }
    return ctx;
}

tfswa_options tfswa_default_options(void) {
    tfswa_options o;
    memset(&o, 0, sizeof o);
    o.n_threads = 0;
    o.precision = TFSWA_PRECISION_AUTO;
    o.backend = TFSWA_BACKEND_DNNL;
    o.device = TFSWA_DEVICE_CPU;
    o.device_index = 0;
    return o;
}

tfswa_context *tfswa_open_with(const char *const *checkpoints, int n, const tfswa_options *options,
                               int *status) {
    if (status) *status = TFSWA_OK;
    open_err_[0] = 0;
    const tfswa_options o = options ? *options : tfswa_default_options();
    if (!checkpoints || n < 1 || n > TF_MAX_TARGETS) {
        tf_err(TF_EUSER, "tfswa_open: %d checkpoints (give 1 to %d)", n, TF_MAX_TARGETS);
        fail_open(TFSWA_ERR_USER, status);
        return NULL;
    }
    if (o.n_threads < 0) {
        tf_err(TF_EUSER, "tfswa_open: n_threads %d is negative", o.n_threads);
        fail_open(TFSWA_ERR_USER, status);
        return NULL;
    }
    if (tf_precision_check(o.precision, o.backend)) {
        tf_err_ctx(TF_EUSER, "tfswa_open_with");
        fail_open(TFSWA_ERR_USER, status);
        return NULL;
    }
    if (o.device != TFSWA_DEVICE_CPU && o.device != TFSWA_DEVICE_CUDA) {
        tf_err(TF_EUSER,
               "tfswa_open_with: device %d is not TFSWA_DEVICE_CPU (0) or "
               "TFSWA_DEVICE_CUDA (1)",
               o.device);
        fail_open(TFSWA_ERR_USER, status);
        return NULL;
    }
    if (o.device == TFSWA_DEVICE_CUDA) {
        if (o.device_index < 0 || o.device_index > TF_DEVICE_MAX_INDEX) {
            tf_err(TF_EUSER, "tfswa_open_with: device_index %d is not in [0, %d]", o.device_index,
                   TF_DEVICE_MAX_INDEX);
            fail_open(TFSWA_ERR_USER, status);
            return NULL;
        }
        /* no CUDA build or no GPU: one line */
        const tf_device d = {TF_DEVICE_CUDA, o.device_index};
        tf_device_info info;
        tf_status st = tf_device_open(&d, "tfswa_open_with: device", NULL, &info);
        if (st) {
            fail_open(TFSWA_ERR_USER, status);
            return NULL;
        }
    }
    const tf_backend backend = (tf_backend)o.backend;
    const tf_dtype compute = tf_precision_resolve((tf_precision)o.precision, backend);
    tf_sep_model models[TF_MAX_TARGETS];
    memset(models, 0, sizeof models);
    for (int i = 0; i < n; i++) {
        tf_status st = TF_OK;
        if (!checkpoints[i]) st = tf_err(TF_EUSER, "tfswa_open: checkpoint %d is NULL", i);
#if TFSWA_CUDA
        else if (o.device == TFSWA_DEVICE_CUDA)
            st = tf_sep_model_checkpoint_cuda(&models[i], checkpoints[i], o.device_index);
#endif
        else
            st = tf_sep_model_checkpoint(&models[i], checkpoints[i], o.n_threads, backend, compute);
        if (st) {
            for (int j = 0; j < i; j++) models[j].close(models[j].ctx);
            fail_open((int)st, status);
            return NULL;
        }
    }
    tfswa_context *ctx = tf_api_open_models(models, n, o.n_threads, status);
    if (ctx) {
        size_t k = strlen(ctx->desc);
        if (o.device == TFSWA_DEVICE_CUDA) /* the device model is fp32 (bf16: not yet) */
            snprintf(ctx->desc + k, sizeof ctx->desc - k, " (precision %s%s)",
                     tf_precision_name((tf_precision)o.precision),
                     o.precision == TFSWA_PRECISION_BF16 ? ": fp32 on cuda" : "");
        else
            snprintf(ctx->desc + k, sizeof ctx->desc - k, " (precision %s)",
                     tf_precision_name((tf_precision)o.precision));
    }
    return ctx;
}

tfswa_context *tfswa_open(const char *const *checkpoints, int n, int n_threads, int *status) {
    tfswa_options o = tfswa_default_options();
    o.n_threads = n_threads;
    return tfswa_open_with(checkpoints, n, &o, status);
}

const char *tfswa_describe(const tfswa_context *ctx) {
    return ctx ? ctx->desc : "";
}

void tfswa_close(tfswa_context *ctx) {
    if (!ctx) return;
    tf_separator_free(ctx->sep);
    free(ctx);
}

const char *tfswa_last_error(const tfswa_context *ctx) {
    return ctx ? ctx->err : open_err_;
}

tfswa_separate_params tfswa_default_params(void) {
    tfswa_separate_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.segment = 0;
    p.overlap = 0.25;
    p.batch_size = 1;
    p.shifts = 0;
    p.seed = 42;
    p.stems = 0;
    p.instrumental = false;
    p.ext = TFSWA_EXT_WAV;
    p.subtype = TFSWA_SUBTYPE_DEFAULT;
    p.filename = TF_SEP_FILENAME_DEFAULT;
    p.overwrite = false;
    return p;
}

int tf_api_params_to_internal(const tfswa_separate_params *in, tf_sep_params *out) {
    tf_sep_params_default(out);
    if (!in) return tf_err(TF_EUSER, "params is NULL");
    if (in->ext != TFSWA_EXT_WAV && in->ext != TFSWA_EXT_FLAC)
        return tf_err(TF_EUSER, "ext %d is not TFSWA_EXT_WAV or TFSWA_EXT_FLAC", in->ext);
    if (in->subtype < TFSWA_SUBTYPE_DEFAULT || in->subtype > TFSWA_SUBTYPE_FLOAT)
        return tf_err(TF_EUSER, "subtype %d is not a tfswa_subtype", in->subtype);
    out->segment = in->segment;
    out->overlap = in->overlap;
    out->batch_size = in->batch_size;
    out->shifts = in->shifts;
    out->seed = in->seed;
    out->stems = in->stems;
    out->instrumental = in->instrumental;
    out->fmt = in->ext == TFSWA_EXT_FLAC ? TF_FMT_FLAC : TF_FMT_WAV;
    switch (in->subtype) {
    case TFSWA_SUBTYPE_PCM_16:
        out->sub = TF_SUBTYPE_PCM16;
        break;
    case TFSWA_SUBTYPE_PCM_24:
        out->sub = TF_SUBTYPE_PCM24;
        break;
    case TFSWA_SUBTYPE_FLOAT:
        out->sub = TF_SUBTYPE_FLOAT;
        break;
    default:
        out->sub = in->ext == TFSWA_EXT_FLAC ? TF_SUBTYPE_PCM24 : TF_SUBTYPE_FLOAT;
    }
    out->filename = in->filename ? in->filename : TF_SEP_FILENAME_DEFAULT;
    out->overwrite = in->overwrite;
    out->threads = in->n_threads;
    out->progress = in->progress_callback;
    out->user_data = in->progress_callback_user_data;
    return TF_OK;
}

/* Record the outcome of a call on ctx. */
static int finish(tfswa_context *ctx, tf_status st);

tf_separator *tf_api_separator(tfswa_context *ctx) {
    return ctx->sep;
}
int tf_api_finish(tfswa_context *ctx, int st) {
    return finish(ctx, (tf_status)st);
}
void tf_api_set_error(tfswa_context *ctx, const char *msg) {
    snprintf(ctx->err, sizeof ctx->err, "%s", msg);
}
int *tf_api_streams(tfswa_context *ctx) {
    return &ctx->streams;
}

static int finish(tfswa_context *ctx, tf_status st) {
    if (st == TF_OK) {
        ctx->err[0] = 0;
        return TFSWA_OK;
    }
    snprintf(ctx->err, sizeof ctx->err, "%s", tf_errmsg());
    if (tf_sep_was_cancelled(ctx->sep)) return TFSWA_ERR_CANCELLED;
    return st == TF_EINTERNAL ? TFSWA_ERR_INTERNAL : TFSWA_ERR_USER;
}

int tfswa_n_targets(const tfswa_context *ctx) {
    return tf_separator_n_targets(ctx->sep);
}
const char *tfswa_target_name(const tfswa_context *ctx, int i) {
    return tf_separator_target(ctx->sep, i);
}
int tfswa_target_index(const tfswa_context *ctx, const char *name) {
    return name ? tf_separator_index(ctx->sep, name) : -1;
}
int tfswa_sample_rate(const tfswa_context *ctx) {
    return tf_separator_rate(ctx->sep);
}

int tfswa_n_outputs(const tfswa_context *ctx, const tfswa_separate_params *params) {
    tf_sep_params p;
    if (tf_api_params_to_internal(params, &p)) return 0;
    return tf_sep_n_outputs(ctx->sep, &p);
}

const char *tfswa_output_name(const tfswa_context *ctx, const tfswa_separate_params *params,
                              int i) {
    tf_sep_params p;
    if (tf_api_params_to_internal(params, &p)) return NULL;
    return tf_sep_output_name(ctx->sep, &p, i);
}

int tfswa_output_path(tfswa_context *ctx, const tfswa_separate_params *params, const char *in,
                      const char *out_dir, int i, char *buf, size_t size) {
    tf_sep_params p;
    tf_status st = tf_api_params_to_internal(params, &p);
    if (!st && (!in || !buf || size == 0)) st = tf_err(TF_EUSER, "output path: NULL argument");
    if (!st) st = tf_sep_check_params(ctx->sep, &p);
    if (!st) st = tf_sep_output_path(ctx->sep, &p, in, out_dir, i, buf, size);
    return finish(ctx, st);
}

int tfswa_check_outputs(tfswa_context *ctx, const char *in, const char *out_dir,
                        const tfswa_separate_params *params) {
    tf_sep_params p;
    int exists = 0;
    tf_status st = tf_api_params_to_internal(params, &p);
    if (!st && !in) st = tf_err(TF_EUSER, "input path is NULL");
    if (!st) st = tf_sep_check_outputs(ctx->sep, &p, in, out_dir, &exists);
    int r = finish(ctx, st);
    return exists ? TFSWA_ERR_EXISTS : r;
}

int tfswa_separate_file(tfswa_context *ctx, const char *in, const char *out_dir,
                        const tfswa_separate_params *params) {
    memset(&ctx->summary, 0, sizeof ctx->summary);
    if (ctx->streams)
        return finish(ctx, tf_err(TF_EUSER, "separate: a stream is open on this context"));
    int r = tfswa_check_outputs(ctx, in, out_dir, params);
    if (r != TFSWA_OK) return r;
    tf_sep_params p;
    tf_api_params_to_internal(params, &p);
    tf_sep_summary s;
    tf_status st = tf_separate_file(ctx->sep, in, out_dir, &p, &s);
    ctx->summary = (tfswa_summary){s.frames, s.sample_rate, s.channels, s.duration, s.seconds,
                                   s.rtf,    s.cpu_seconds, s.peak_rss, s.clipped,  s.n_outputs};
    return finish(ctx, st);
}

int tfswa_separate_buffer(tfswa_context *ctx, const float *in, int channels, int64_t n, int rate,
                          float *out, const tfswa_separate_params *params) {
    memset(&ctx->summary, 0, sizeof ctx->summary);
    if (ctx->streams)
        return finish(ctx, tf_err(TF_EUSER, "separate: a stream is open on this context"));
    tf_sep_params p;
    tf_status st = tf_api_params_to_internal(params, &p);
    if (st) return finish(ctx, st);
    tf_sep_summary s;
    st = tf_separate_buffer(ctx->sep, in, channels, n, rate, out, &p, &s);
    ctx->summary = (tfswa_summary){s.frames, s.sample_rate, s.channels, s.duration, s.seconds,
                                   s.rtf,    s.cpu_seconds, s.peak_rss, s.clipped,  s.n_outputs};
    return finish(ctx, st);
}

const tfswa_summary *tfswa_last_summary(const tfswa_context *ctx) {
    return &ctx->summary;
}
