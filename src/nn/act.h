/* Elementwise activations. GELU is the exact erf form (PyTorch's default):
 * gelu(x) = 0.5 x (1 + erf(x / sqrt(2))). */
#ifndef TFSWA_NN_ACT_H
#define TFSWA_NN_ACT_H
#include <stddef.h>

/* out (n,) = gelu(inp (n,)); out may alias inp */
void tf_gelu_forward(float *out, const float *inp, size_t n);
/* dinp (n,) += gelu'(inp) * dout (n,) */
void tf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

#endif
