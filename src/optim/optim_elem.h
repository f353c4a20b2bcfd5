/* The per-element Adam/AdamW update and EMA, shared by optim.c and the CUDA kernels
 * of src/cuda/elem.cu: `static inline` TF_HD (util/hd.h), C11 and CUDA C++, only math.h. */
#ifndef TFSWA_OPTIM_ELEM_H
#define TFSWA_OPTIM_ELEM_H
#include <math.h>
#include <stdint.h>

#include "util/hd.h"

/* The per-step constants of Adam/AdamW at step t (1-based) with learning rate lr; the bias
 * corrections in double, as PyTorch computes them in Python floats. */
typedef struct {
    float b1, b2, eps;
    float l2;        /* Adam: weight decay added to the gradient (0 for AdamW) */
    float decay;     /* AdamW: parameter factor 1 - lr * wd (1 for Adam) */
    float step_size; /* lr / (1 - b1^t) */
    float bc2_sqrt;  /* sqrt(1 - b2^t) */
} tf_adam_coefs;

static inline TF_HD tf_adam_coefs tf_adam_coefs_at(int adamw, float b1, float b2, float eps,
                                                   float wd, int64_t t, float lr) {
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    tf_adam_coefs k;
    k.b1 = b1, k.b2 = b2, k.eps = eps;
    k.l2 = adamw ? 0.f : wd;
    k.decay = adamw ? 1.f - lr * wd : 1.f;
    k.step_size = (float)(lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    return k;
}

/* One parameter p with gradient g and moments m, v, updated in place (torch.optim.Adam /
 * AdamW with amsgrad=False, maximize=False). */
static inline TF_HD void tf_adam_update(float *p, float *m, float *v, float g,
                                        const tf_adam_coefs *k) {
    if (k->l2 != 0.f) g += k->l2 * *p;
    float pd = *p * k->decay;
    *m = k->b1 * *m + (1.f - k->b1) * g;
    *v = k->b2 * *v + (1.f - k->b2) * g * g;
    float denom = sqrtf(*v) / k->bc2_sqrt + k->eps;
    *p = pd - k->step_size * *m / denom;
}

/* exponential moving average of one parameter: decay * e + (1 - decay) * p */
static inline TF_HD float tf_ema(float e, float p, float decay) {
    return decay * e + (1.f - decay) * p;
}

#endif
