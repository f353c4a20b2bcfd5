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

#endif
