/* Internals of the public API (include/tfswa.h) that tests use: a context over models
 * other than checkpoints (identity / gain models without the network). */
#ifndef TFSWA_API_INTERNAL_H
#define TFSWA_API_INTERNAL_H

#include "infer/separate.h"
#include "tfswa.h"

/* Like tfswa_open, over models given directly (ownership passes to the context, also on
 * failure). */
tfswa_context *tf_api_open_models(tf_sep_model *models, int n, int n_threads, int *status);
/* The parameter translation used by every tfswa_separate_* call. */
int tf_api_params_to_internal(const tfswa_separate_params *in, tf_sep_params *out);

/* For the stream API (infer/stream.c): the context's separator; record a status (its
 * message from tf_errmsg) or a message as the context's last error; the count of open
 * streams. */
tf_separator *tf_api_separator(tfswa_context *ctx);
int tf_api_finish(tfswa_context *ctx, int st);
void tf_api_set_error(tfswa_context *ctx, const char *msg);
int *tf_api_streams(tfswa_context *ctx);

#endif
