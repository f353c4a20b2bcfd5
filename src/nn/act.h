/* Elementwise activations. GELU is the exact erf form (PyTorch's default):
 * gelu(x) = 0.5 x (1 + erf(x / sqrt(2))). */
#ifndef TFSWA_NN_ACT_H
#define TFSWA_NN_ACT_H
#include <stddef.h>

/* out (n,) = gelu(inp (n,)); out may alias inp */
void tf_gelu_forward(float *out, const float *inp, size_t n);
/* out (n,) = gelu((inp (n,) - mean) * (weight * rstd) + bias): one channel of a BatchNorm
 * followed by GELU in one pass (tf_batchnorm_normalize's affine map, then gelu); out may
 * alias inp */
void tf_bn_gelu(float *out, const float *inp, size_t n, float mean, float rstd, float weight,
                float bias);
/* dinp (n,) += gelu'(inp) * dout (n,) */
void tf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

#endif
