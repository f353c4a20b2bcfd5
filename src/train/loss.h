/* Training losses on the separated waveforms y against the targets t, both (n_sig, N):
 *   l1      the paper's: mean |y - t| over all samples;
 *   mrstft  l1 plus a multi-resolution STFT magnitude loss: for windows 512, 1024, 2048
 *           (hop = window / 4, Hann, centred as torch.stft), mean | |STFT y| - |STFT t| |,
 *           averaged over the resolutions and added to the waveform L1.
 * The gradient dy is written (not added), scaled by `scale` (e.g. 1 / accumulation
 * steps). Signals are processed one at a time so the STFT buffers stay small; their bytes
 * are known before allocating (tf_loss_plan_bytes). */
#ifndef TFSWA_LOSS_H
#define TFSWA_LOSS_H
#include <stddef.h>
#include <stdint.h>

#include "util/config.h"
#include "util/err.h"

typedef struct tf_loss_ctx tf_loss_ctx;

size_t tf_loss_plan_bytes(tf_loss kind, int64_t N);
tf_status tf_loss_create(tf_loss_ctx **l, tf_loss kind, int64_t N);
/* loss = mean over the batch; dy (n_sig, N) = scale * d loss / d y. For l1, dy may be y
 * itself (each element is read before its gradient is written); mrstft reads y again. */
tf_status tf_loss_eval(tf_loss_ctx *l, const float *y, const float *t, int n_sig, int64_t N,
                       double scale, float *dy, double *loss);
void tf_loss_free(tf_loss_ctx *l);

#endif
