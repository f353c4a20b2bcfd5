/* 2x2 average pooling, bilinear x2 upsampling (align_corners=False), channel concat. */
#include "nn/conv.h"
#include "nn/elem.h"

#include <string.h>

void tf_avgpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W) {
    // out (B, C, H/2, W/2), inp (B, C, H, W)
    int Ho = H / 2, Wo = W / 2;
    long planes = (long)B * C;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        const float *x = inp + (size_t)p * H * W;
        float *y = out + (size_t)p * Ho * Wo;
        for (int i = 0; i < Ho; i++) {
            const float *r0 = x + (size_t)(2 * i) * W, *r1 = r0 + W;
            for (int j = 0; j < Wo; j++)
                y[(size_t)i * Wo + j] = tf_avg4(r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
        }
    }
}

void tf_avgpool2x2_backward(float *dinp, const float *dout, int B, int C, int H, int W) {
    // dinp (B, C, H, W), dout (B, C, H/2, W/2)
    int Ho = H / 2, Wo = W / 2;
    long planes = (long)B * C;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        float *dx = dinp + (size_t)p * H * W;
        const float *dy = dout + (size_t)p * Ho * Wo;
        for (int i = 0; i < Ho; i++) {
            float *r0 = dx + (size_t)(2 * i) * W, *r1 = r0 + W;
            for (int j = 0; j < Wo; j++) {
                float g = 0.25f * dy[(size_t)i * Wo + j];
                r0[2 * j] += g;
                r0[2 * j + 1] += g;
                r1[2 * j] += g;
                r1[2 * j + 1] += g;
            }
        }
    }
}

void tf_upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W) {
    // out (B, C, 2H, 2W), inp (B, C, H, W)
    int Ho = 2 * H, Wo = 2 * W;
    long planes = (long)B * C;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        const float *x = inp + (size_t)p * H * W;
        float *y = out + (size_t)p * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            int y0, y1;
            float wy1;
            tf_up_index(oy, H, &y0, &y1, &wy1);
            float wy0 = 1.f - wy1;
            const float *r0 = x + (size_t)y0 * W, *r1 = x + (size_t)y1 * W;
            float *yr = y + (size_t)oy * Wo;
            for (int ox = 0; ox < Wo; ox++) {
                int x0, x1;
                float wx1;
                tf_up_index(ox, W, &x0, &x1, &wx1);
                float wx0 = 1.f - wx1;
                yr[ox] = wy0 * (wx0 * r0[x0] + wx1 * r0[x1]) + wy1 * (wx0 * r1[x0] + wx1 * r1[x1]);
            }
        }
    }
}

void tf_upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W) {
    // dinp (B, C, H, W), dout (B, C, 2H, 2W)
    int Ho = 2 * H, Wo = 2 * W;
    long planes = (long)B * C;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        float *dx = dinp + (size_t)p * H * W;
        const float *dy = dout + (size_t)p * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++) {
            int y0, y1;
            float wy1;
            tf_up_index(oy, H, &y0, &y1, &wy1);
            float wy0 = 1.f - wy1;
            float *r0 = dx + (size_t)y0 * W, *r1 = dx + (size_t)y1 * W;
            const float *dr = dy + (size_t)oy * Wo;
            for (int ox = 0; ox < Wo; ox++) {
                int x0, x1;
                float wx1;
                tf_up_index(ox, W, &x0, &x1, &wx1);
                float wx0 = 1.f - wx1, g = dr[ox];
                r0[x0] += wy0 * wx0 * g;
                r0[x1] += wy0 * wx1 * g;
                r1[x0] += wy1 * wx0 * g;
                r1[x1] += wy1 * wx1 * g;
            }
        }
    }
}

void tf_concat_forward(float *out, const float *a, const float *b, int B, int C1, int C2, int H,
                       int W) {
    // out (B, C1+C2, H, W), a (B, C1, H, W), b (B, C2, H, W)
    size_t hw = (size_t)H * W;
    int C = C1 + C2;
    long planes = (long)B * C;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        int i = (int)(p / C), c = (int)(p % C);
        const float *src =
            c < C1 ? a + ((size_t)i * C1 + c) * hw : b + ((size_t)i * C2 + c - C1) * hw;
        memcpy(out + (size_t)p * hw, src, hw * sizeof(float));
    }
}

void tf_concat_backward(float *da, float *db, const float *dout, int B, int C1, int C2, int H,
                        int W) {
    // da (B, C1, H, W), db (B, C2, H, W), dout (B, C1+C2, H, W)
    size_t hw = (size_t)H * W;
    int C = C1 + C2;
    long planes = (long)B * C;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        int i = (int)(p / C), c = (int)(p % C);
        float *dst = c < C1 ? (da ? da + ((size_t)i * C1 + c) * hw : NULL)
                            : (db ? db + ((size_t)i * C2 + c - C1) * hw : NULL);
        if (!dst) continue;
        const float *d = dout + (size_t)p * hw;
        for (size_t j = 0; j < hw; j++) dst[j] += d[j];
    }
}
