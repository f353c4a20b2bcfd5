/* Optimizers over ONE flat parameter block and ONE flat gradient block (llm.c style):
 * Adam (L2 weight decay added to the gradient, as torch.optim.Adam) and AdamW (decoupled
 * decay, as torch.optim.AdamW); the paper's step schedule; global-norm clipping; EMA. */
#ifndef TFSWA_OPTIM_H
#define TFSWA_OPTIM_H
#include <stddef.h>
#include <stdint.h>

/* Optimizer state of n parameters: Adam moments m, v (n,); raw (n,) the non-EMA weights
 * while the model holds the EMA ones (NULL when EMA is off). */
typedef struct {
    size_t n;
    float *m, *v, *raw;
} tf_opt_state;

typedef struct {
    int adamw; /* 0 = Adam, 1 = AdamW */
    float beta1, beta2, eps, weight_decay;
} tf_adam_cfg;

/* Defaults as PyTorch: beta (0.9, 0.999), eps 1e-8, weight_decay 0. */
tf_adam_cfg tf_adam_default(int adamw);

/* One update of n parameters at step t (1-based, for bias correction) with learning rate
 * lr. m, v (n,) are the moments. params (n,), grads (n,) (read only). */
void tf_adam_step(const tf_adam_cfg *c, float *params, const float *grads, float *m, float *v,
                  size_t n, int64_t t, float lr);

/* The paper's schedule: lr0 * decay^floor(step / (decay_epochs * steps_per_epoch)). */
double tf_lr_at(double lr0, double decay, double decay_epochs, int64_t steps_per_epoch,
                int64_t step);

/* L2 norm of g (n,) accumulated in double; NaN/Inf propagate (callers test isfinite). */
double tf_global_norm(const float *g, size_t n);
/* torch.nn.utils.clip_grad_norm_: if norm > max_norm, scale g by max_norm / (norm + 1e-6).
 * Returns the scale applied (1 if none). */
float tf_clip_by_norm(float *g, size_t n, double norm, double max_norm);

/* ema (n,) = decay * ema + (1 - decay) * params */
void tf_ema_update(float *ema, const float *params, size_t n, float decay);

#endif
