/* batchnorm2d, training and eval mode, as PyTorch nn.BatchNorm2d. */
#include "nn/act.h"
#include "nn/clones.h"
#include "nn/conv.h"
#include "nn/elem.h"

void tf_batchnorm_normalize(float *out, const float *inp, size_t n, float mean, float rstd,
                            float weight, float bias) {
    const float scale = weight * rstd;
    for (size_t i = 0; i < n; i++) out[i] = tf_bn_affine(inp[i], mean, scale, bias);
}

/* the training-mode forward, followed by GELU when gelu != 0 (AVX2 clone: the statistics
 * loops are reductions in double, vectorised by `omp simd reduction`) */
TF_CLONES static void bn_forward(float *out, float *mean, float *rstd, float *running_mean,
                                 float *running_var, const float *inp, const float *weight,
                                 const float *bias, int B, int C, int H, int W, float momentum,
                                 float eps, int gelu) {
    // out, inp (B, C, H, W); mean, rstd, running_mean, running_var, weight, bias (C)
    size_t hw = (size_t)H * W, n = (size_t)B * hw;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * hw;
#pragma omp simd reduction(+ : s)
            for (size_t i = 0; i < hw; i++) s += x[i];
        }
        double m = s / (double)n, v = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * hw;
#pragma omp simd reduction(+ : v)
            for (size_t i = 0; i < hw; i++) {
                double d = x[i] - m;
                v += d * d;
            }
        }
        tf_bn_stats_finish(m, v, n, eps, momentum, &mean[c], &rstd[c],
                           running_mean ? &running_mean[c] : NULL,
                           running_var ? &running_var[c] : NULL);
        const float mf = mean[c], r = rstd[c];
        for (int b = 0; b < B; b++) {
            float *o = out + ((size_t)b * C + c) * hw;
            const float *x = inp + ((size_t)b * C + c) * hw;
            const float w = weight ? weight[c] : 1.f, bb = bias ? bias[c] : 0.f;
            if (gelu)
                tf_bn_gelu(o, x, hw, mf, r, w, bb);
            else
                tf_batchnorm_normalize(o, x, hw, mf, r, w, bb);
        }
    }
}

void tf_batchnorm2d_forward(float *out, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *inp, const float *weight,
                            const float *bias, int B, int C, int H, int W, float momentum,
                            float eps) {
    bn_forward(out, mean, rstd, running_mean, running_var, inp, weight, bias, B, C, H, W, momentum,
               eps, 0);
}

void tf_batchnorm2d_gelu_forward(float *out, float *mean, float *rstd, float *running_mean,
                                 float *running_var, const float *inp, const float *weight,
                                 const float *bias, int B, int C, int H, int W, float momentum,
                                 float eps) {
    bn_forward(out, mean, rstd, running_mean, running_var, inp, weight, bias, B, C, H, W, momentum,
               eps, 1);
}

TF_CLONES void tf_batchnorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                       const float *inp, const float *weight, const float *mean,
                                       const float *rstd, int B, int C, int H, int W) {
    // dinp, dout, inp (B, C, H, W); dweight, dbias, weight, mean, rstd (C)
    // With xhat = (x - mean) * rstd and g = dout * weight:
    //   dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)), means over (B, H, W)
    size_t hw = (size_t)H * W, n = (size_t)B * hw;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float m = mean[c], r = rstd[c], w = weight ? weight[c] : 1.f;
        double sd = 0.0, sdx = 0.0; // sum(dout), sum(dout * xhat)
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * hw;
            const float *d = dout + ((size_t)b * C + c) * hw;
#pragma omp simd reduction(+ : sd, sdx)
            for (size_t i = 0; i < hw; i++) {
                sd += d[i];
                sdx += tf_bn_dxhat(d[i], x[i], m, r);
            }
        }
        if (dweight && weight) dweight[c] += (float)sdx;
        if (dbias) dbias[c] += (float)sd;
        if (!dinp) continue;
        float mg = tf_bn_mean_grad(w, sd, (double)n), mgx = tf_bn_mean_grad(w, sdx, (double)n);
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * hw;
            const float *d = dout + ((size_t)b * C + c) * hw;
            float *dx = dinp + ((size_t)b * C + c) * hw;
            for (size_t i = 0; i < hw; i++)
                dx[i] += tf_bn_backward_dx(d[i], x[i], m, r, w, mg, mgx);
        }
    }
}

static void bn_eval_forward(float *out, const float *inp, const float *weight, const float *bias,
                            const float *running_mean, const float *running_var, int B, int C,
                            int H, int W, float eps, int gelu) {
    // out, inp (B, C, H, W); weight, bias, running_mean, running_var (C)
    size_t hw = (size_t)H * W;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            float r = tf_bn_rstd(running_var[c], eps);
            float scale = (weight ? weight[c] : 1.f) * r, shift = bias ? bias[c] : 0.f;
            float m = running_mean[c];
            const float *x = inp + ((size_t)b * C + c) * hw;
            float *y = out + ((size_t)b * C + c) * hw;
            if (gelu)
                tf_bn_gelu(y, x, hw, m, r, weight ? weight[c] : 1.f, shift);
            else
                for (size_t i = 0; i < hw; i++) y[i] = tf_bn_affine(x[i], m, scale, shift);
        }
    }
}

void tf_batchnorm2d_eval_forward(float *out, const float *inp, const float *weight,
                                 const float *bias, const float *running_mean,
                                 const float *running_var, int B, int C, int H, int W, float eps) {
    bn_eval_forward(out, inp, weight, bias, running_mean, running_var, B, C, H, W, eps, 0);
}

void tf_batchnorm2d_gelu_eval_forward(float *out, const float *inp, const float *weight,
                                      const float *bias, const float *running_mean,
                                      const float *running_var, int B, int C, int H, int W,
                                      float eps) {
    bn_eval_forward(out, inp, weight, bias, running_mean, running_var, B, C, H, W, eps, 1);
}

void tf_batchnorm2d_eval_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *weight, const float *running_mean,
                                  const float *running_var, int B, int C, int H, int W, float eps) {
    // dinp, dout, inp (B, C, H, W); dweight, dbias, weight, running_mean, running_var (C)
    size_t hw = (size_t)H * W;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float r = tf_bn_rstd(running_var[c], eps);
        float m = running_mean[c], g = (weight ? weight[c] : 1.f) * r;
        double sd = 0.0, sdx = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * hw;
            const float *d = dout + ((size_t)b * C + c) * hw;
            float *dx = dinp ? dinp + ((size_t)b * C + c) * hw : NULL;
            for (size_t i = 0; i < hw; i++) {
                sd += d[i];
                sdx += tf_bn_dxhat(d[i], x[i], m, r);
                if (dx) dx[i] += d[i] * g;
            }
        }
        if (dweight && weight) dweight[c] += (float)sdx;
        if (dbias) dbias[c] += (float)sd;
    }
}
