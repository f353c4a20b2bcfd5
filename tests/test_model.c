/* TFSWA-ResUNet against the PyTorch reference (tests/reference/tfswa_ref.py, run with
 * /usr/bin/python3; a missing torch FAILS the test), plus checkpointing, bf16 storage, odd
 * lengths and batch sizes, the memory plan and the parameter counts of the presets.
 *
 * Error norm for the reference comparison, per tensor: max|ours - ref| / max|ref|.
 * Activations and loss: <= 1e-4. Gradients: <= 1e-3. The reference runs in float64 with
 * the same float32 weights and input, so the error measured is ours. */
#include <stdint.h>
#include <unistd.h>

#include "model/model.h"
#include "test.h"
#include "train/train.h"
#include "util/config.h"
#include "util/safetensors.h"

/* the model input of a config (a pointer to a temporary) */
#define MC(c) ((const tf_model_config[]){tf_train_model_config(c)})

static char tmpdir[64];

/* tiny preset, with a small STFT so the reference test stays fast */
static tf_config tiny_config(void) {
    tf_config c;
    tf_config_defaults(&c);
    tf_status s = tf_config_load_yaml(&c, "configs/model/tiny.yaml");
    if (s != TF_OK) fprintf(stderr, "  %s\n", tf_errmsg());
    c.n_targets = 1;
    c.num_threads = 2;
    return c;
}

static double rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

/* L1 loss (mean) and its gradient */
static double l1_loss(float *dout, const float *y, const float *t, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - t[i];
        s += fabs(d);
        dout[i] = (float)((d > 0) - (d < 0)) / (float)n;
    }
    return s / n;
}

static float *read_all(tf_safetensors *st, const char *name, size_t *n) {
    const tf_st_tensor *t = tf_st_find(st, name);
    if (!t) return NULL;
    float *x = malloc((t->numel ? t->numel : 1) * sizeof *x);
    if (x && tf_st_read_f32(st, name, x, -1, NULL) != TF_OK) {
        free(x);
        return NULL;
    }
    if (n) *n = t->numel;
    return x;
}

/* Run the reference generator for c; returns 0 on success. */
static int run_reference(const tf_config *c, int B, int N, const char *out, int seed) {
    char ch[128] = "", cmd[1024];
    for (int l = 0; l < c->n_levels; l++)
        snprintf(ch + strlen(ch), sizeof ch - strlen(ch), "%s%d", l ? "," : "", c->channels[l]);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/reference/tfswa_ref.py gen --out %s --channels %s --rcms %d "
             "--tfswa %d --heads %d --window %d,%d --mlp-ratio %g --subbands %d --targets %d "
             "--n-fft %d --hop %d --batch %d --samples %d --output %s --seed %d",
             out, ch, c->rcms_per_block, c->tfswa_blocks, c->heads, c->window_t, c->window_f,
             c->mlp_ratio, c->subbands, c->n_targets, c->stft_window_size, c->stft_hop_length, B, N,
             c->output == TF_OUT_MASK ? "mask" : "magnitude", seed);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr,
                "  the PyTorch reference failed (exit %d): /usr/bin/python3 with torch "
                "(Debian python3-torch) is required by this test\n  %s\n",
                rc, cmd);
    return rc;
}

static void compare_reference(tf_output_mode mode, int taps) {
    tf_config c = tiny_config();
    c.stft_window_size = 512;
    c.stft_hop_length = 128;
    c.output = mode;
    /* mask run: window 5 x 3, so the 64 bins of a subband are padded to 96 (frequency
     * padding and cropping, 2 Swin windows along frequency with a shift of 1) */
    if (mode == TF_OUT_MASK) c.window_f = 3;
    const int B = 2, N = 8000;
    char path[128];
    snprintf(path, sizeof path, "%s/ref_%d.safetensors", tmpdir, (int)mode);
    CHECK(run_reference(&c, B, N, path, 1234) == 0);
    tf_safetensors st;
    tf_status s = tf_st_open(&st, path);
    CHECKF(s == TF_OK, "%s", tf_errmsg());
    if (s != TF_OK) return;
    tf_model *m = NULL;
    s = tf_model_create(&m, MC(&c), B, N, 2);
    CHECKF(s == TF_OK, "%s", tf_errmsg());
    if (s != TF_OK) {
        tf_st_close(&st);
        return;
    }
    /* weights through the production loader */
    s = tf_model_load(m, path);
    CHECKF(s == TF_OK, "%s", tf_errmsg());
    tf_model_debug_taps(m, taps);
    size_t n_in, n_t;
    float *mix = read_all(&st, "act.input", &n_in), *tgt = read_all(&st, "act.target", &n_t);
    CHECK(mix && tgt && n_in == (size_t)B * 2 * N && n_t == (size_t)B * 2 * N);
    float *y = calloc(n_t, sizeof *y), *dy = calloc(n_t, sizeof *dy);
    CHECK(tf_model_forward(m, y, mix, B, N, 1) == TF_OK);
    double loss = l1_loss(dy, y, tgt, n_t);
    float ref_loss;
    CHECK(tf_st_read_f32(&st, "loss", &ref_loss, 1, (int64_t[]){1}) == TF_OK);
    double le = fabs(loss - ref_loss) / fabs(ref_loss);
    printf("  [%s] loss %.8f ref %.8f rel err %.2e\n", mode ? "mask" : "magnitude", loss, ref_loss,
           le);
    CHECKF(le <= 1e-4, "loss rel err %.3e", le);
    double worst_act = 0, worst_grad = 0;
    char worst_a[96] = "", worst_g[96] = "";
    /* activations */
    for (size_t i = 0; taps && i < st.n; i++) {
        const char *nm = st.t[i].name;
        if (strncmp(nm, "act.", 4) || !strcmp(nm, "act.input") || !strcmp(nm, "act.target"))
            continue;
        size_t n, nt = 0;
        const float *ours = tf_model_tap(m, nm + 4, &nt);
        CHECKF(ours != NULL, "no tap %s", nm + 4);
        float *ref = read_all(&st, nm, &n);
        if (ours && ref) {
            CHECKF(n == nt, "%s: %zu vs %zu values", nm, nt, n);
            double e = n == nt ? rel_err(ours, ref, n) : 1;
            CHECKF(e <= 1e-4, "%s: rel err %.3e", nm, e);
            if (e > worst_act || !worst_a[0]) worst_act = e, snprintf(worst_a, 96, "%s", nm);
        }
        free(ref);
    }
    /* running stats after one training forward (momentum 0.1, unbiased variance) */
    for (size_t i = 0; i < tf_model_n_tensors(m); i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        if (!p->is_buffer) continue;
        char nm[96];
        snprintf(nm, sizeof nm, "after.%s", p->name);
        size_t n;
        float *ref = read_all(&st, nm, &n);
        CHECKF(ref && n == p->numel, "%s", nm);
        if (ref) {
            double e = rel_err(tf_model_data(m, p), ref, n);
            CHECKF(e <= 1e-4, "%s: rel err %.3e", nm, e);
        }
        free(ref);
    }
    /* gradients */
    CHECK(tf_model_backward(m, dy) == TF_OK);
    int ngrad = 0;
    for (size_t i = 0; i < tf_model_n_tensors(m); i++) {
        const tf_param_info *p = tf_model_tensor(m, i);
        if (p->is_buffer) continue;
        char nm[96];
        snprintf(nm, sizeof nm, "grad.%s", p->name);
        size_t n;
        float *ref = read_all(&st, nm, &n);
        CHECKF(ref && n == p->numel, "%s missing", nm);
        if (ref) {
            double e = rel_err(tf_model_grad(m, p), ref, n);
            /* A conv bias followed by BatchNorm has an exact gradient of 0: what both sides
             * hold is rounding noise, so it is measured against its layer's weight gradient:
             * max|a - b| / max|ref weight gradient|. */
            size_t ln = strlen(p->name);
            if (ln > 5 && !strcmp(p->name + ln - 5, ".bias") && strstr(p->name, ".conv1.")) {
                char wn[96];
                snprintf(wn, sizeof wn, "grad.%.*sweight", (int)(ln - 4), p->name);
                size_t nw;
                float *rw = read_all(&st, wn, &nw);
                double mw = 0, mb = 0, md = 0;
                for (size_t k = 0; rw && k < nw; k++) mw = fmax(mw, fabs(rw[k]));
                for (size_t k = 0; k < n; k++) {
                    mb = fmax(mb, fabs(ref[k]));
                    md = fmax(md, fabs((double)tf_model_grad(m, p)[k] - ref[k]));
                }
                CHECKF(rw && mb <= 1e-6 * mw, "%s: expected a zero gradient (%.3e vs %.3e)", nm, mb,
                       mw);
                e = rw ? md / mw : 1;
                free(rw);
            }
            CHECKF(e <= 1e-3, "%s: rel err %.3e", nm, e);
            if (e > worst_grad || !worst_g[0]) worst_grad = e, snprintf(worst_g, 96, "%s", nm);
            ngrad++;
        }
        free(ref);
    }
    printf("  [%s] worst activation %s %.2e, worst gradient (%d tensors) %s %.2e\n",
           mode ? "mask" : "magnitude", worst_a, worst_act, ngrad, worst_g, worst_grad);
    /* eval forward with the running stats the training forward left, on this training model
     * and on an inference model holding the same weights: bitwise equal, and equal to the
     * reference's eval-mode forward */
    size_t n_ev = 0;
    float *ref_ev = read_all(&st, "eval.wave", &n_ev);
    CHECK(ref_ev && n_ev == n_t);
    float *ye = calloc(n_t, sizeof *ye), *yi = calloc(n_t, sizeof *yi);
    tf_model *mi = NULL;
    s = tf_model_create_mode(&mi, MC(&c), B, N, 2, TF_MODEL_INFER);
    CHECKF(s == TF_OK, "%s", tf_errmsg());
    if (mi && ref_ev && n_ev == n_t) {
        tf_model_sizes pz;
        tf_model_allocated(m, &pz);
        memcpy(tf_model_params(mi), tf_model_params(m), pz.params);
        memcpy(tf_model_buffers(mi), tf_model_buffers(m), pz.buffers);
        CHECK(tf_model_forward(m, ye, mix, B, N, 0) == TF_OK);
        CHECK(tf_model_forward(mi, yi, mix, B, N, 0) == TF_OK);
        CHECKF(!memcmp(ye, yi, n_t * sizeof *ye), "inference vs training model eval forward");
        double e = rel_err(yi, ref_ev, n_t);
        printf("  [%s] eval forward vs reference: rel err %.2e\n", mode ? "mask" : "magnitude", e);
        CHECKF(e <= 1e-4, "eval forward: rel err %.3e", e);
    }
    tf_model_free(mi);
    free(ref_ev);
    free(ye);
    free(yi);
    free(mix);
    free(tgt);
    free(y);
    free(dy);
    tf_model_free(m);
    tf_st_close(&st);
}

static void test_reference_magnitude(void) {
    compare_reference(TF_OUT_MAGNITUDE, 1);
}
static void test_reference_mask(void) {
    compare_reference(TF_OUT_MASK, 1);
}

/* One training step on random data; returns the loss, grads copied to g (n_params). */
static double step(const tf_config *c, int B, int N, float *g, float *bufs, float *yout,
                   uint64_t seed) {
    tf_model *m = NULL;
    tf_status s = tf_model_create(&m, MC(c), B, N, 2);
    CHECKF(s == TF_OK, "%s", tf_errmsg());
    if (s != TF_OK) return NAN;
    size_t n = (size_t)B * 2 * N, no = (size_t)B * c->n_targets * 2 * N;
    float *mix = malloc(n * sizeof *mix), *y = malloc(no * sizeof *y), *t = malloc(no * sizeof *t),
          *dy = malloc(no * sizeof *dy);
    uint64_t r = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        mix[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
    }
    for (size_t i = 0; i < no; i++) t[i] = 0.3f * mix[i % n];
    CHECK(tf_model_forward(m, y, mix, B, N, 1) == TF_OK);
    double loss = l1_loss(dy, y, t, no);
    if (yout) memcpy(yout, y, no * sizeof *y);
    CHECK(tf_model_backward(m, dy) == TF_OK);
    tf_model_sizes p;
    tf_model_allocated(m, &p);
    if (g) memcpy(g, tf_model_grads(m), p.n_params * sizeof *g);
    if (bufs) memcpy(bufs, tf_model_buffers(m), p.n_buffers * sizeof *bufs);
    free(mix);
    free(y);
    free(t);
    free(dy);
    tf_model_free(m);
    return loss;
}

static void test_checkpointing_identical(void) {
    tf_config c = tiny_config();
    c.n_targets = 2;
    const int B = 2, N = 22050;
    size_t np;
    CHECK(tf_model_param_count(&np, MC(&c)) == TF_OK);
    tf_model_sizes pl;
    CHECK(tf_model_plan(&pl, MC(&c), B, N, 2) == TF_OK);
    for (int dt = 0; dt < 2; dt++) {
        c.activation_dtype = dt ? TF_DT_BF16 : TF_DT_FP32;
        float *g0 = malloc(np * 4), *g1 = malloc(np * 4);
        float *b0 = malloc(pl.n_buffers * 4), *b1 = malloc(pl.n_buffers * 4);
        c.checkpointing = TF_CKPT_OFF;
        double l0 = step(&c, B, N, g0, b0, NULL, 7);
        c.checkpointing = TF_CKPT_BLOCKS;
        double l1 = step(&c, B, N, g1, b1, NULL, 7);
        /* same kernels, same thread count, same inputs: bitwise equal */
        CHECKF(l0 == l1, "%s: loss %.9g vs %.9g", dt ? "bf16" : "fp32", l0, l1);
        CHECKF(!memcmp(g0, g1, np * 4), "%s: gradients differ (rel %.3e)", dt ? "bf16" : "fp32",
               rel_err(g1, g0, np));
        /* recomputation must not update the BN running stats a second time */
        CHECKF(!memcmp(b0, b1, pl.n_buffers * 4), "running stats differ");
        free(g0);
        free(g1);
        free(b0);
        free(b1);
    }
}

/* bf16 storage vs fp32: loss within 1e-2 relative, gradient cosine similarity > 0.99
 * (whole gradient vector and every tensor with a non-negligible gradient: > 0.95). */
static void test_bf16_close_to_fp32(void) {
    tf_config c = tiny_config();
    const int B = 2, N = 22050;
    size_t np;
    CHECK(tf_model_param_count(&np, MC(&c)) == TF_OK);
    float *g0 = malloc(np * 4), *g1 = malloc(np * 4);
    size_t no = (size_t)B * 2 * N;
    float *y0 = malloc(no * 4), *y1 = malloc(no * 4);
    c.activation_dtype = TF_DT_FP32;
    double l0 = step(&c, B, N, g0, NULL, y0, 3);
    c.activation_dtype = TF_DT_BF16;
    double l1 = step(&c, B, N, g1, NULL, y1, 3);
    /* the rounding is really there (outputs differ), and small */
    double ye = rel_err(y1, y0, no);
    printf("  bf16 vs fp32: output rel err %.2e\n", ye);
    CHECK(ye > 1e-6 && ye < 5e-2);
    free(y0);
    free(y1);
    double dot = 0, n0 = 0, n1 = 0;
    for (size_t i = 0; i < np; i++)
        dot += (double)g0[i] * g1[i], n0 += (double)g0[i] * g0[i], n1 += (double)g1[i] * g1[i];
    double cosv = dot / sqrt(n0 * n1);
    printf("  bf16 vs fp32: loss %.6f vs %.6f (rel %.2e), gradient cosine %.6f\n", l1, l0,
           fabs(l1 - l0) / l0, cosv);
    CHECK(fabs(l1 - l0) <= 1e-2 * fabs(l0));
    CHECK(cosv > 0.99);
    free(g0);
    free(g1);
}

/* 1.37 s, batch 1 and 3, default STFT (2048 / 512): runs, output exactly N samples per
 * channel, batch items independent in eval mode (batch 3 item k == batch 1 on item k). */
static void test_odd_lengths_and_batches(void) {
    tf_config c = tiny_config();
    const int N = (int)(1.37 * 44100); /* 60417 */
    tf_model *m3 = NULL, *m1 = NULL;
    CHECK(tf_model_create(&m3, MC(&c), 3, N, 2) == TF_OK);
    CHECK(tf_model_create(&m1, MC(&c), 1, N, 2) == TF_OK);
    if (!m1 || !m3) {
        tf_model_free(m1);
        tf_model_free(m3);
        return;
    }
    size_t n = (size_t)3 * 2 * N;
    float *mix = malloc(n * sizeof *mix), *y3 = malloc((n + 1) * sizeof *y3);
    float *y1 = malloc((n / 3 + 1) * sizeof *y1), *dy = calloc(n, sizeof *dy);
    for (size_t i = 0; i < n; i++) mix[i] = (float)(0.3 * sin(0.001 * i * (1 + i % 7)));
    y3[n] = 12345.f; /* sentinel: nothing written past (3, 1, 2, N) */
    CHECK(tf_model_forward(m3, y3, mix, 3, N, 0) == TF_OK);
    CHECK(y3[n] == 12345.f);
    for (int k = 0; k < 3; k++) {
        y1[n / 3] = 12345.f;
        CHECK(tf_model_forward(m1, y1, mix + (size_t)k * 2 * N, 1, N, 0) == TF_OK);
        CHECK(y1[n / 3] == 12345.f);
        double e = rel_err(y3 + (size_t)k * 2 * N, y1, (size_t)2 * N);
        CHECKF(e <= 1e-5, "item %d: batch 3 vs batch 1 rel err %.3e", k, e);
    }
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(y3[i]);
    CHECK(finite);
    /* training step at batch 3 and shorter inputs than planned */
    for (size_t i = 0; i < n; i++) dy[i] = 1e-3f * (float)((i % 5) - 2.0);
    CHECK(tf_model_forward(m3, y3, mix, 3, N, 1) == TF_OK);
    CHECK(tf_model_backward(m3, dy) == TF_OK);
    CHECK(tf_model_forward(m3, y3, mix, 2, N - 1001, 1) == TF_OK);
    CHECK(tf_model_backward(m3, dy) == TF_OK);
    /* larger than planned is a user error */
    CHECK(tf_model_forward(m1, y1, mix, 2, N, 0) == TF_EUSER);
    CHECK(tf_model_forward(m1, y1, mix, 1, N + 1, 0) == TF_EUSER);
    free(mix);
    free(y3);
    free(y1);
    free(dy);
    tf_model_free(m1);
    tf_model_free(m3);
}

/* The eval forward of an inference model equals, bitwise, the eval forward of every kind
 * of training model (checkpointing and precision do not apply to it) holding the same
 * weights; the inference model refuses training forwards and backwards. */
static void test_inference_model(void) {
    tf_config c = tiny_config();
    c.n_targets = 2;
    const int B = 2, N = 22050;
    const size_t n = (size_t)B * 2 * N, no = (size_t)B * c.n_targets * 2 * N;
    float *mix = malloc(n * sizeof *mix), *y0 = malloc(no * sizeof *y0);
    float *y1 = malloc(no * sizeof *y1), *dy = calloc(no, sizeof *dy);
    for (size_t i = 0; i < n; i++) mix[i] = (float)(0.3 * sin(0.0013 * i * (1 + i % 5)));
    for (int om = 0; om < 2; om++) {
        c.output = om ? TF_OUT_MASK : TF_OUT_MAGNITUDE;
        c.window_f = om ? 3 : 4; /* mask: frequency padding too */
        tf_model *mi = NULL;
        tf_status s = tf_model_create_mode(&mi, MC(&c), B, N, 2, TF_MODEL_INFER);
        CHECKF(s == TF_OK, "%s", tf_errmsg());
        if (!mi) break;
        /* running stats away from (0, 1), the same in every model */
        tf_model_sizes p;
        tf_model_allocated(mi, &p);
        float *bu = tf_model_buffers(mi);
        for (size_t i = 0; i < p.n_buffers; i++) bu[i] = 0.6f + 0.1f * (float)(i % 7);
        CHECK(tf_model_forward(mi, y0, mix, B, N, 0) == TF_OK);
        for (int v = 0; v < 4; v++) {
            c.checkpointing = (v & 1) ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
            c.activation_dtype = (v & 2) ? TF_DT_BF16 : TF_DT_FP32;
            tf_model *mt = NULL;
            CHECK(tf_model_create(&mt, MC(&c), B, N, 2) == TF_OK);
            if (!mt) continue;
            memcpy(tf_model_buffers(mt), bu, p.buffers);
            memset(y1, 0, no * sizeof *y1);
            CHECK(tf_model_forward(mt, y1, mix, B, N, 0) == TF_OK);
            CHECKF(!memcmp(y0, y1, no * sizeof *y0), "output %d variant %d: eval forwards differ",
                   om, v);
            /* after an eval forward there is nothing to differentiate */
            CHECK(tf_model_backward(mt, dy) == TF_EINTERNAL);
            tf_model_free(mt);
        }
        c.checkpointing = TF_CKPT_OFF;
        c.activation_dtype = TF_DT_FP32;
        /* smaller batches and shorter inputs than planned: item 1 alone equals item 1 of the
         * batch of 2 up to the sgemm shapes (same tolerance as for training models) */
        CHECK(tf_model_forward(mi, y1, mix + 2 * N, 1, N, 0) == TF_OK);
        double e = rel_err(y1, y0 + (size_t)c.n_targets * 2 * N, (size_t)c.n_targets * 2 * N);
        CHECKF(e <= 1e-5, "batch 1 vs batch 2: rel err %.3e", e);
        CHECK(tf_model_forward(mi, y1, mix, 2, N - 999, 0) == TF_OK);
        /* what an inference model refuses */
        CHECK(tf_model_forward(mi, y1, mix, B, N, 1) == TF_EINTERNAL &&
              strstr(tf_errmsg(), "inference"));
        CHECK(tf_model_backward(mi, dy) == TF_EINTERNAL && strstr(tf_errmsg(), "inference"));
        CHECK(tf_model_forward(mi, y1, mix, B + 1, N, 0) == TF_EUSER);
        CHECK(tf_model_forward(mi, y1, mix, B, N + 1, 0) == TF_EUSER);
        tf_model_free(mi);
    }
    free(mix);
    free(y0);
    free(y1);
    free(dy);
}

static void test_param_counts(void) {
    const char *names[3] = {"paper", "small", "tiny"};
    const size_t want[3] = {44535800, 2806136, 191952};
    for (int i = 0; i < 3; i++) {
        tf_config c;
        tf_config_defaults(&c);
        char p[128];
        snprintf(p, sizeof p, "configs/model/%s.yaml", names[i]);
        CHECKF(tf_config_load_yaml(&c, p) == TF_OK, "%s", tf_errmsg());
        c.n_targets = 1;
        size_t n = 0;
        CHECK(tf_model_param_count(&n, MC(&c)) == TF_OK);
        printf("  %s: %zu parameters\n", names[i], n);
        CHECK(n == want[i]);
        if (i == 0) CHECK(n >= 40000000 && n <= 48000000);
        if (i == 2) CHECK(n < 300000);
    }
}

/* The plan is exact: what tf_model_create allocates is what tf_model_plan says; the
 * checkpointing and bf16 options shrink the activations. */
static void test_plan_exact(void) {
    tf_config c = tiny_config();
    size_t act[2][2];
    for (int ck = 0; ck < 2; ck++)
        for (int dt = 0; dt < 2; dt++) {
            c.checkpointing = ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
            c.activation_dtype = dt ? TF_DT_BF16 : TF_DT_FP32;
            tf_model_sizes p, a;
            CHECK(tf_model_plan(&p, MC(&c), 2, 30000, 2) == TF_OK);
            tf_model *m = NULL;
            CHECK(tf_model_create(&m, MC(&c), 2, 30000, 2) == TF_OK);
            if (!m) continue;
            tf_model_allocated(m, &a);
            CHECK(a.params == p.params && a.grads == p.grads && a.buffers == p.buffers &&
                  a.activations == p.activations && a.workspace == p.workspace);
            CHECK(p.params == p.n_params * 4 &&
                  p.total == p.params + p.grads + p.buffers + p.activations + p.workspace);
            act[ck][dt] = p.activations;
            tf_model_free(m);
        }
    CHECK(act[1][0] < act[0][0] / 2);
    CHECK(act[0][1] < act[0][0] * 0.6);
    CHECK(act[1][1] < act[1][0]);
    /* inference models: no gradients, no saved activations, exact workspace, whatever the
     * checkpointing and precision keys say; far smaller than a training model */
    for (int ck = 0; ck < 2; ck++) {
        c.checkpointing = ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        c.activation_dtype = ck ? TF_DT_BF16 : TF_DT_FP32;
        for (int om = 0; om < 2; om++) {
            c.output = om ? TF_OUT_MASK : TF_OUT_MAGNITUDE;
            tf_model_sizes p, a, t;
            CHECK(tf_model_plan_mode(&p, MC(&c), 1, 6 * 44100, 2, TF_MODEL_INFER) == TF_OK);
            CHECK(tf_model_plan(&t, MC(&c), 1, 6 * 44100, 2) == TF_OK);
            tf_model *m = NULL;
            CHECK(tf_model_create_mode(&m, MC(&c), 1, 6 * 44100, 2, TF_MODEL_INFER) == TF_OK);
            if (!m) continue;
            tf_model_allocated(m, &a);
            CHECK(p.mode == TF_MODEL_INFER && a.mode == TF_MODEL_INFER);
            CHECK(a.params == p.params && a.grads == 0 && p.grads == 0 && a.buffers == p.buffers &&
                  a.activations == 0 && p.activations == 0 && a.workspace == p.workspace);
            CHECK(p.total == p.params + p.buffers + p.workspace && p.params == t.params);
            CHECK(tf_model_grads(m) == NULL && tf_model_grad(m, tf_model_tensor(m, 0)) == NULL);
            tf_model_zero_grad(m); /* nothing to zero */
            /* (before inference models, separation used the training off/fp32 model) */
            CHECKF(p.total * (ck ? 2 : 4) < t.total, "inference %zu vs training %zu bytes", p.total,
                   t.total);
            if (!ck && !om)
                printf("  tiny, 1 x 6 s: training %.1f MiB, inference %.1f MiB (workspace %.1f)\n",
                       t.total / 1048576.0, p.total / 1048576.0, p.workspace / 1048576.0);
            tf_model_free(m);
        }
    }
    c.output = TF_OUT_MAGNITUDE;
    /* the paper preset at 3 s: plan only (no allocation) */
    tf_config_defaults(&c);
    CHECK(tf_config_load_yaml(&c, "configs/model/paper.yaml") == TF_OK);
    c.n_targets = 1;
    tf_model_sizes p;
    CHECK(tf_model_plan(&p, MC(&c), 1, 3 * 44100, 1) == TF_OK);
    CHECK(p.n_params == 44535800);
    printf("  paper, 1 x 3 s: activations %.1f MiB, workspace %.1f MiB, padded map %d x %d\n",
           p.activations / 1048576.0, p.workspace / 1048576.0, p.fpad, p.tpad);
    CHECK(p.tpad % 160 == 0 && p.fpad == 256);
}

static void test_save_load_and_errors(void) {
    tf_config c = tiny_config();
    tf_model *a = NULL, *b = NULL;
    CHECK(tf_model_create(&a, MC(&c), 1, 4000, 1) == TF_OK);
    c.seed = 99;
    CHECK(tf_model_create(&b, MC(&c), 1, 4000, 1) == TF_OK);
    if (!a || !b) {
        tf_model_free(a);
        tf_model_free(b);
        return;
    }
    tf_model_sizes p;
    tf_model_allocated(a, &p);
    CHECK(memcmp(tf_model_params(a), tf_model_params(b), p.params) != 0);
    char path[128];
    snprintf(path, sizeof path, "%s/w.safetensors", tmpdir);
    const char *meta[] = {"format", "pt"};
    CHECK(tf_model_save(a, path, meta, 1) == TF_OK);
    CHECK(tf_model_load(b, path) == TF_OK);
    CHECK(!memcmp(tf_model_params(a), tf_model_params(b), p.params));
    /* and the PyTorch reference loads our file (strict names and shapes) */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys; sys.path.insert(0, 'tests/reference'); "
             "import tfswa_ref as r; m = r.TFSWAResUNet([8, 16, 24, 32], 2, 2, 2, (5, 4), 2.0, 4, "
             "1, 2048, 512); r.load_into(m, '%s'); "
             "w = r.load_safetensors('%s')['head.bias']; "
             "sys.exit(0 if float((m.head.bias - w).abs().max()) == 0 else 1)\"",
             path, path);
    CHECKF(system(cmd) == 0, "the PyTorch reference could not load %s", path);
    CHECK(!memcmp(tf_model_buffers(a), tf_model_buffers(b), p.buffers));
    /* names are PyTorch's */
    CHECK(tf_model_find(a, "enc.0.rcm.1.bn1.weight") &&
          tf_model_find(a, "tfswa.1.tsa.ln1.weight") &&
          tf_model_find(a, "tfswa.0.swin.1.attn.rel_bias") &&
          tf_model_find(a, "dec.3.rcm.0.short.bias") && tf_model_find(a, "head.weight"));
    /* a file lacking a tensor, or with another shape, is refused naming it */
    tf_safetensors st;
    CHECK(tf_st_open(&st, path) == TF_OK);
    tf_st_entry e[2] = {{"head.weight", TF_ST_F32, 4, {8, 8, 1, 1}, tf_model_params(a)},
                        {"head.bias", TF_ST_F32, 1, {7}, tf_model_params(a)}};
    tf_st_close(&st);
    CHECK(tf_st_write(path, e, 2, NULL, 0) == TF_OK);
    CHECK(tf_model_load(b, path) == TF_EUSER && strstr(tf_errmsg(), "missing") &&
          strstr(tf_errmsg(), path));
    tf_model_free(a);
    tf_model_free(b);
    /* bad configs are user errors naming the key */
    tf_config_defaults(&c);
    c.heads = 5;
    CHECK(tf_model_create(&a, MC(&c), 1, 4000, 1) == TF_EUSER && strstr(tf_errmsg(), "heads"));
    tf_config_defaults(&c);
    c.rcms_per_block = 0;
    size_t n;
    CHECK(tf_model_param_count(&n, MC(&c)) == TF_EUSER && strstr(tf_errmsg(), "rcms_per_block"));
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tfswa_model_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_param_counts);
    RUN(test_plan_exact);
    RUN(test_save_load_and_errors);
    RUN(test_reference_magnitude);
    RUN(test_reference_mask);
    RUN(test_checkpointing_identical);
    RUN(test_bf16_close_to_fp32);
    RUN(test_odd_lengths_and_batches);
    RUN(test_inference_model);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_END();
}
