/* Pre-LN transformer block (TSA, FSA, Swin W-MSA / SW-MSA) built from the kernels of
 * nn/attn.h and GELU of nn/act.h. */
#include <stddef.h>
#include <string.h>

#include "nn/act.h"
#include "nn/attn.h"

static size_t zmax(size_t a, size_t b) {
    return a > b ? a : b;
}

size_t tf_tblock_param_floats(int C, int H, int Hd, int R) {
    size_t c = (size_t)C, hd = (size_t)Hd;
    return 2 * c + (3 * c * c + 3 * c) + (c * c + c) + 2 * c + (hd * c + hd) + (c * hd + c) +
           (size_t)R * H;
}

void tf_tblock_params_point(tf_tblock_params *p, float *mem, int C, int H, int Hd, int R) {
    size_t c = (size_t)C, hd = (size_t)Hd;
    float *m = mem;
    p->ln1_w = m, m += c;
    p->ln1_b = m, m += c;
    p->qkv_w = m, m += 3 * c * c;
    p->qkv_b = m, m += 3 * c;
    p->proj_w = m, m += c * c;
    p->proj_b = m, m += c;
    p->ln2_w = m, m += c;
    p->ln2_b = m, m += c;
    p->fc1_w = m, m += hd * c;
    p->fc1_b = m, m += hd;
    p->fc2_w = m, m += c * hd;
    p->fc2_b = m, m += c;
    p->rel_bias_table = R > 0 ? m : NULL;
    (void)H;
}

size_t tf_tblock_saved_floats(int N, int L, int C, int H, int Hd) {
    size_t nl = (size_t)N * L, c = (size_t)C;
    return nl * c + 2 * nl + nl * 3 * c + (size_t)N * H * L * L + nl * c + nl * c + nl * c +
           2 * nl + nl * Hd + nl * Hd;
}

void tf_tblock_saved_point(tf_tblock_saved *s, float *mem, int N, int L, int C, int H, int Hd) {
    size_t nl = (size_t)N * L, c = (size_t)C;
    float *m = mem;
    s->ln1 = m, m += nl * c;
    s->ln1_mean = m, m += nl;
    s->ln1_rstd = m, m += nl;
    s->qkv = m, m += nl * 3 * c;
    s->att = m, m += (size_t)N * H * L * L;
    s->atty = m, m += nl * c;
    s->x1 = m, m += nl * c;
    s->ln2 = m, m += nl * c;
    s->ln2_mean = m, m += nl;
    s->ln2_rstd = m, m += nl;
    s->fc1 = m, m += nl * Hd;
    s->gelu = m;
}

size_t tf_tblock_workspace_floats(int N, int L, int C, int H, int Hd) {
    size_t nl = (size_t)N * L;
    return nl * (2 * (size_t)C + zmax((size_t)Hd, 3 * (size_t)C) + zmax((size_t)Hd, (size_t)C)) +
           tf_attention_workspace_floats(N, L, H);
}

// out (N, L, C), inp (N, L, C)
void tf_tblock_forward(float *out, const tf_tblock_saved *s, const float *inp,
                       const tf_tblock_params *p, const int *bias_index, const float *mask, int nW,
                       int N, int L, int C, int H, int Hd) {
    const int NL = N * L;
    const size_t n = (size_t)NL * C;
    tf_layernorm_forward(s->ln1, s->ln1_mean, s->ln1_rstd, inp, p->ln1_w, p->ln1_b, NL, C);
    tf_linear_forward(s->qkv, s->ln1, p->qkv_w, p->qkv_b, NL, C, 3 * C);
    tf_attention_forward(s->atty, s->att, s->qkv, p->rel_bias_table, bias_index, mask, nW, N, L, C,
                         H);
    tf_linear_forward(s->x1, s->atty, p->proj_w, p->proj_b, NL, C, C);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) s->x1[i] += inp[i];
    tf_layernorm_forward(s->ln2, s->ln2_mean, s->ln2_rstd, s->x1, p->ln2_w, p->ln2_b, NL, C);
    tf_linear_forward(s->fc1, s->ln2, p->fc1_w, p->fc1_b, NL, C, Hd);
    tf_gelu_forward(s->gelu, s->fc1, (size_t)NL * Hd);
    tf_linear_forward(out, s->gelu, p->fc2_w, p->fc2_b, NL, Hd, C);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] += s->x1[i];
}

// dinp (N, L, C) +=, dout (N, L, C), inp (N, L, C)
void tf_tblock_backward(float *dinp, const tf_tblock_params *g, const float *dout,
                        const tf_tblock_saved *s, const float *inp, const tf_tblock_params *p,
                        const int *bias_index, int N, int L, int C, int H, int Hd,
                        float *workspace) {
    const int NL = N * L;
    const size_t nl = (size_t)NL, n = nl * C;
    /* workspace: X (NL, C) | A (NL, max(Hd, 3C)) | B (NL, max(Hd, C)) | Cc (NL, C) | attn */
    float *X = workspace;
    float *A = X + n;
    float *Bf = A + nl * zmax((size_t)Hd, 3 * (size_t)C);
    float *Cc = Bf + nl * zmax((size_t)Hd, (size_t)C);
    float *aws = Cc + n;

    /* MLP branch: out = x1 + fc2(gelu(fc1(ln2(x1)))) */
    memcpy(X, dout, n * sizeof(float)); /* dx1 = dout (residual) */
    float *dgelu = A, *dfc1 = Bf, *dln2 = Cc;
    memset(dgelu, 0, nl * Hd * sizeof(float));
    tf_linear_backward(dgelu, g->fc2_w, g->fc2_b, dout, s->gelu, p->fc2_w, NL, Hd, C);
    memset(dfc1, 0, nl * Hd * sizeof(float));
    tf_gelu_backward(dfc1, dgelu, s->fc1, nl * Hd);
    memset(dln2, 0, n * sizeof(float));
    tf_linear_backward(dln2, g->fc1_w, g->fc1_b, dfc1, s->ln2, p->fc1_w, NL, C, Hd);
    tf_layernorm_backward(X, g->ln2_w, g->ln2_b, dln2, s->x1, p->ln2_w, s->ln2_mean, s->ln2_rstd,
                          NL, C);

    /* attention branch: x1 = inp + proj(attn(qkv(ln1(inp)))) */
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] += X[i];
    float *datty = Cc, *dqkv = A, *dln1 = Bf;
    memset(datty, 0, n * sizeof(float));
    tf_linear_backward(datty, g->proj_w, g->proj_b, X, s->atty, p->proj_w, NL, C, C);
    memset(dqkv, 0, n * 3 * sizeof(float));
    tf_attention_backward(dqkv, p->rel_bias_table ? g->rel_bias_table : NULL, datty, s->qkv, s->att,
                          bias_index, N, L, C, H, aws);
    memset(dln1, 0, n * sizeof(float));
    tf_linear_backward(dln1, g->qkv_w, g->qkv_b, dqkv, s->ln1, p->qkv_w, NL, C, 3 * C);
    tf_layernorm_backward(dinp, g->ln1_w, g->ln1_b, dln1, inp, p->ln1_w, s->ln1_mean, s->ln1_rstd,
                          NL, C);
}
