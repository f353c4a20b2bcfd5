#include "optim/optim.h"

#include <math.h>

#include "optim/optim_elem.h"

tf_adam_cfg tf_adam_default(int adamw) {
    tf_adam_cfg c = {adamw, 0.9f, 0.999f, 1e-8f, adamw ? 1e-2f : 0.f};
    return c;
}

void tf_adam_step(const tf_adam_cfg *c, float *params, const float *grads, float *m, float *v,
                  size_t n, int64_t t, float lr) {
    /* the per-element update and its constants: optim/optim_elem.h (shared with the CUDA kernel) */
    const tf_adam_coefs k =
        tf_adam_coefs_at(c->adamw, c->beta1, c->beta2, c->eps, c->weight_decay, t, lr);
    /* firstprivate: a private copy the compiler keeps in registers (a shared k would be
     * reloaded after every store through params/m/v, which might alias it) */
#pragma omp parallel for schedule(static) firstprivate(k) if (n > 65536)
    for (size_t i = 0; i < n; i++) tf_adam_update(&params[i], &m[i], &v[i], grads[i], &k);
}

double tf_lr_at(double lr0, double decay, double decay_epochs, int64_t steps_per_epoch,
                int64_t step) {
    double period = decay_epochs * (double)steps_per_epoch;
    if (period <= 0 || decay == 1.0) return lr0;
    return lr0 * pow(decay, floor((double)step / period));
}

double tf_global_norm(const float *g, size_t n) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

float tf_clip_by_norm(float *g, size_t n, double norm, double max_norm) {
    if (max_norm <= 0 || !(norm > max_norm)) return 1.f;
    float scale = (float)(max_norm / (norm + 1e-6));
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) g[i] *= scale;
    return scale;
}

void tf_ema_update(float *ema, const float *params, size_t n, float decay) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) ema[i] = tf_ema(ema[i], params[i], decay);
}
