/* conv2d (k in {1, 3}, stride 1, "same" zero padding) by tiled im2col + sgemm. */
#include "nn/conv.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

static int imin(int a, int b) {
    return a < b ? a : b;
}
static int imax(int a, int b) {
    return a > b ? a : b;
}

/* Pixels per tile actually used for these dims (never more than min(tile, H*W)). */
static int conv2d_tile_eff(int B, int H, int W, int tile, int nthreads) {
    int hw = H * W;
    int t = imin(tile > 0 ? tile : CONV2D_TILE, hw);
    int ntiles = (hw + t - 1) / t;
    if (nthreads > 1 && (long)B * ntiles < nthreads) {
        int want = (nthreads + B - 1) / B; /* tiles per image so that B * tiles >= threads */
        t = imax(1, (hw + want - 1) / want);
    }
    return t;
}

size_t tf_conv2d_workspace_floats(int Cin, int Cout, int H, int W, int k, int tile, int nthreads) {
    if (k != 1 && k != 3) return 0;
    size_t nt = (size_t)(nthreads > 1 ? nthreads : 1);
    size_t t = (size_t)imin(tile > 0 ? tile : CONV2D_TILE, H * W);
    size_t kk = (size_t)k * k, wsz = (size_t)Cout * Cin * kk;
    size_t bwd = (nt - 1) * wsz;
    if (k == 1) return bwd;
    size_t fwd = nt * (size_t)Cin * kk * t;
    bwd += wsz + nt * (size_t)imax(Cin, Cout) * kk * t;
    return fwd > bwd ? fwd : bwd;
}

size_t tf_conv2d_forward_workspace_floats(int Cin, int H, int W, int k, int tile, int nthreads) {
    if (k != 3) return 0;
    size_t nt = (size_t)(nthreads > 1 ? nthreads : 1);
    size_t t = (size_t)imin(tile > 0 ? tile : CONV2D_TILE, H * W);
    return nt * (size_t)Cin * 9 * t;
}

double tf_conv2d_flops(int B, int Cin, int Cout, int H, int W, int k) {
    return 2.0 * B * Cout * Cin * k * k * (double)H * W;
}

/* col (C*k*k, n) = zero-padded k x k neighbourhoods of img (C, H, W) around the output
 * pixels p0 .. p0+n-1 of the flattened H*W axis; row (c, ky, kx) holds
 * img[c, y+ky-pad, x+kx-pad] for each pixel (y, x). */
static void im2col_tile(float *col, const float *img, int C, int H, int W, int k, int p0, int n) {
    int pad = (k - 1) / 2;
    for (int c = 0; c < C; c++) {
        const float *plane = img + (size_t)c * H * W;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *dst = col + ((size_t)(c * k + ky) * k + kx) * n;
                int j = 0, y = p0 / W, x = p0 % W;
                while (j < n) {
                    int len = imin(W - x, n - j); /* pixels of this tile in row y */
                    int sy = y + ky - pad;
                    if (sy < 0 || sy >= H) {
                        memset(dst + j, 0, (size_t)len * sizeof(float));
                    } else {
                        const float *srow = plane + (size_t)sy * W;
                        int sx0 = x + kx - pad;      /* source x of dst[j] */
                        int lo = imax(0, -sx0);      /* first i with sx0+i >= 0 */
                        int hi = imin(len, W - sx0); /* first i with sx0+i >= W */
                        if (hi < lo) hi = lo;
                        for (int i = 0; i < lo; i++) dst[j + i] = 0.f;
                        if (hi > lo)
                            memcpy(dst + j + lo, srow + sx0 + lo,
                                   (size_t)(hi - lo) * sizeof(float));
                        for (int i = hi; i < len; i++) dst[j + i] = 0.f;
                    }
                    j += len;
                    x = 0;
                    y++;
                }
            }
        }
    }
}

/* OpenBLAS is the pthread build: inside our OpenMP team every sgemm must run on the
 * calling thread, so the BLAS thread count is 1 for the duration of a threaded call. */
static int blas_serial_begin(int nthreads) {
    if (nthreads <= 1) return 0;
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
    return saved;
}
static void blas_serial_end(int saved) {
    if (saved > 1) openblas_set_num_threads(saved);
}

void tf_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int Cin, int Cout, int H, int W, int k, float *workspace, int tile,
                       int nthreads) {
    // out (B, Cout, H, W), inp (B, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout)
    int nt = nthreads > 1 ? nthreads : 1;
    int hw = H * W, K = Cin * k * k;
    int t = conv2d_tile_eff(B, H, W, tile, nt);
    int ntiles = (hw + t - 1) / t;
    long ntasks = (long)B * ntiles;
    int saved = blas_serial_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *col = k > 1 ? workspace + (size_t)omp_get_thread_num() * K * t : NULL; // (K, t)
#pragma omp for schedule(static)
        for (long task = 0; task < ntasks; task++) {
            int b = (int)(task / ntiles), p0 = (int)(task % ntiles) * t;
            int n = imin(t, hw - p0);
            const float *inp_b = inp + (size_t)b * Cin * hw; // (Cin, H, W)
            float *out_t = out + (size_t)b * Cout * hw + p0; // (Cout, n), ld hw
            float beta = 0.f;
            if (bias) {
                for (int co = 0; co < Cout; co++)
                    for (int j = 0; j < n; j++) out_t[(size_t)co * hw + j] = bias[co];
                beta = 1.f;
            }
            if (k == 1) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, n, Cin, 1.f, weight,
                            Cin, inp_b + p0, hw, beta, out_t, hw);
            } else {
                im2col_tile(col, inp_b, Cin, H, W, k, p0, n);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, n, K, 1.f, weight, K,
                            col, n, beta, out_t, hw);
            }
        }
    }
    blas_serial_end(saved);
}

void tf_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int Cin, int Cout, int H,
                        int W, int k, float *workspace, int tile, int nthreads) {
    // dinp, inp (B, Cin, H, W); dout (B, Cout, H, W); dweight, weight (Cout, Cin, k, k)
    int nt = nthreads > 1 ? nthreads : 1;
    int hw = H * W, kk = k * k, K = Cin * kk;
    int t = conv2d_tile_eff(B, H, W, tile, nt);
    int ntiles = (hw + t - 1) / t;
    long ntasks = (long)B * ntiles;
    size_t wsz = (size_t)Cout * K;
    // workspace: [wflip (Cin, Cout*k*k) if k > 1][dweight partials (nt-1, Cout, K)]
    //            [col (nt, max(Cin, Cout)*k*k, t) if k > 1]
    size_t colsz = (size_t)imax(Cin, Cout) * kk * t;
    size_t off_part = k > 1 ? wsz : 0, off_col = off_part + (size_t)(nt - 1) * wsz;
    int saved = blas_serial_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = omp_get_thread_num(), team = omp_get_num_threads();
        /* thread 0 accumulates straight into dweight, the others into zeroed partials */
        float *dw = tid == 0 ? dweight : workspace + off_part + (size_t)(tid - 1) * wsz;
        if (tid > 0) memset(dw, 0, wsz * sizeof(float));
        float *col = k > 1 ? workspace + off_col + (size_t)tid * colsz : NULL; // (kk*C, t)
        float *wflip = k > 1 ? workspace : NULL;                               // (Cin, Cout*kk)
        if (k > 1 && dinp) {
            // wflip[ci][co][ky][kx] = weight[co][ci][k-1-ky][k-1-kx]
#pragma omp for schedule(static)
            for (int ci = 0; ci < Cin; ci++)
                for (int co = 0; co < Cout; co++)
                    for (int q = 0; q < kk; q++)
                        wflip[((size_t)ci * Cout + co) * kk + q] =
                            weight[((size_t)co * Cin + ci) * kk + (kk - 1 - q)];
        }
#pragma omp for schedule(static)
        for (long task = 0; task < ntasks; task++) {
            int b = (int)(task / ntiles), p0 = (int)(task % ntiles) * t;
            int n = imin(t, hw - p0);
            const float *inp_b = inp + (size_t)b * Cin * hw;                // (Cin, H, W)
            const float *dout_b = dout + (size_t)b * Cout * hw;             // (Cout, H, W)
            float *dinp_t = dinp ? dinp + (size_t)b * Cin * hw + p0 : NULL; // (Cin, n), ld hw
            if (k == 1) {
                // dw (Cout, Cin) += dout_t (Cout, n) x inp_t^T (n, Cin)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, Cin, n, 1.f, dout_b + p0,
                            hw, inp_b + p0, hw, 1.f, dw, Cin);
                // dinp_t (Cin, n) += weight^T (Cin, Cout) x dout_t (Cout, n)
                if (dinp_t)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cin, n, Cout, 1.f, weight,
                                Cin, dout_b + p0, hw, 1.f, dinp_t, hw);
            } else {
                // dw (Cout, K) += dout_t (Cout, n) x col(inp)^T (n, K)
                im2col_tile(col, inp_b, Cin, H, W, k, p0, n);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, K, n, 1.f, dout_b + p0,
                            hw, col, n, 1.f, dw, K);
                // dinp_t (Cin, n) += wflip (Cin, Cout*kk) x col(dout) (Cout*kk, n)
                if (dinp_t) {
                    im2col_tile(col, dout_b, Cout, H, W, k, p0, n);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cin, n, Cout * kk, 1.f,
                                wflip, Cout * kk, col, n, 1.f, dinp_t, hw);
                }
            }
        }
        // implicit barrier: every partial is complete
        if (team > 1) {
#pragma omp for schedule(static)
            for (size_t i = 0; i < wsz; i++) {
                float s = 0.f;
                for (int p = 0; p < team - 1; p++) s += workspace[off_part + (size_t)p * wsz + i];
                dweight[i] += s;
            }
        }
        if (dbias) {
#pragma omp for schedule(static)
            for (int co = 0; co < Cout; co++) {
                double s = 0.0;
                for (int b = 0; b < B; b++) {
                    const float *d = dout + ((size_t)b * Cout + co) * hw;
                    for (int i = 0; i < hw; i++) s += d[i];
                }
                dbias[co] += (float)s;
            }
        }
    }
    blas_serial_end(saved);
}
