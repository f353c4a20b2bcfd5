/* TFSWA-ResUNet: checkpointing and bf16 storage against fp32 (bitwise / close), odd lengths
 * and batch sizes, inference models, the memory plan against what is really allocated,
 * save/load, and the parameter counts of the presets against the PyTorch reference
 * (tests/reference/tfswa_ref.py count, /usr/bin/python3; a missing torch FAILS the test).
 * The activations, gradients and outputs themselves are compared with the PyTorch
 * reference in test_model_ref.c. */
#include <stdint.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif
#ifdef HEAP_ASAN
/* from the ASan runtime (<sanitizer/allocator_interface.h>, not always installed) */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#include "dsp/stft.h"
#include "model_ref.h"

static char tmpdir[64];

static tf_config tiny_config(void) {
    return preset_config("tiny");
}

/* Bytes the process holds from malloc now: glibc's in-use bytes of the main arena plus its
 * mmapped chunks (the model's blocks are allocated from the calling thread), or ASan's
 * count under SAN=1. Independent of the model's own bookkeeping. */
static size_t heap_bytes(void) {
#ifdef HEAP_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
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
    tf_model_sizes p = *tf_model_get_plan(m);
    if (g) memcpy(g, tf_model_grads(m), p.n_params * sizeof *g);
    if (bufs) memcpy(bufs, tf_model_buffers(m), p.n_buffers * sizeof *bufs);
    free(mix);
    free(y);
    free(t);
    free(dy);
    tf_model_free(m);
    return loss;
}

/* Checkpointing recomputes each block's forward, and each RCM's conv1 output once more just
 * before that RCM's backward (all but a block's last RCM: 3 RCMs per block make the middle
 * one's input another RCM's output, not the block input). */
static void test_checkpointing_identical(void) {
    tf_config c = tiny_config();
    c.n_targets = 2;
    const int B = 2, N = 22050;
    for (int v = 0; v < 3; v++) {
        const int dt = v & 1;
        c.rcms_per_block = v == 2 ? 3 : 2;
        if (v == 2) c.tfswa_blocks = 1;
        size_t np;
        CHECK(tf_model_param_count(&np, MC(&c)) == TF_OK);
        tf_model_sizes pl;
        CHECK(tf_model_plan(&pl, MC(&c), B, N, 2) == TF_OK);
        c.activation_dtype = dt ? TF_DT_BF16 : TF_DT_FP32;
        float *g0 = malloc(np * 4), *g1 = malloc(np * 4);
        float *b0 = malloc(pl.n_buffers * 4), *b1 = malloc(pl.n_buffers * 4);
        c.checkpointing = TF_CKPT_OFF;
        double l0 = step(&c, B, N, g0, b0, NULL, 7);
        c.checkpointing = TF_CKPT_BLOCKS;
        double l1 = step(&c, B, N, g1, b1, NULL, 7);
        /* same kernels, same thread count, same inputs: bitwise equal */
        CHECKF(l0 == l1, "%s, %d RCMs: loss %.9g vs %.9g", dt ? "bf16" : "fp32", c.rcms_per_block,
               l0, l1);
        CHECKF(!memcmp(g0, g1, np * 4), "%s, %d RCMs: gradients differ (rel %.3e)",
               dt ? "bf16" : "fp32", c.rcms_per_block, rel_err(g1, g0, np));
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

/* The eval forward of a training model runs one item at a time (its arena holds the
 * buffers of one item); for every kind of training model (checkpointing and precision do
 * not apply to it) it equals, bitwise, an inference model's eval forward of each item
 * alone with the same weights, and the inference model's whole batch within the sgemm
 * shapes' rounding. The inference model refuses training forwards and backwards. */
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
        tf_model_sizes p = *tf_model_get_plan(mi);
        float *bu = tf_model_buffers(mi);
        for (size_t i = 0; i < p.n_buffers; i++) bu[i] = 0.6f + 0.1f * (float)(i % 7);
        const size_t ni = (size_t)c.n_targets * 2 * N; /* one item's output */
        for (int b = 0; b < B; b++)
            CHECK(tf_model_forward(mi, y0 + b * ni, mix + (size_t)b * 2 * N, 1, N, 0) == TF_OK);
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
        /* the items alone equal the batch of 2 up to the sgemm shapes (same tolerance as for
         * training models); shorter inputs than planned */
        CHECK(tf_model_forward(mi, y1, mix, B, N, 0) == TF_OK);
        double e = rel_err(y1, y0, no);
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

/* Trainable parameter counts of the presets (1 and 4 targets) equal the PyTorch
 * reference's count of the same architecture (nn.Module.parameters()). */
static void test_param_counts(void) {
    const char *names[3] = {"paper", "small", "tiny"};
    for (int i = 0; i < 3; i++) {
        tf_config c = preset_config(names[i]);
        char margs[512], cmd[1024];
        ref_model_args(margs, sizeof margs, &c, "1,4");
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/reference/tfswa_ref.py count %s", margs);
        FILE *f = popen(cmd, "r");
        unsigned long long want[2] = {0, 0};
        int got = f ? fscanf(f, "%llu %llu", &want[0], &want[1]) : -1;
        int rc = f ? pclose(f) : -1;
        CHECKF(got == 2 && rc == 0,
               "%s failed (exit %d): /usr/bin/python3 with torch is required by this test", cmd,
               rc);
        for (int k = 0; k < 2; k++) {
            c.n_targets = k ? 4 : 1;
            size_t n = 0;
            CHECK(tf_model_param_count(&n, MC(&c)) == TF_OK);
            printf("  %s, %d target%s: %zu parameters, PyTorch %llu\n", names[i], c.n_targets,
                   k ? "s" : "", n, want[k]);
            CHECKF(n == want[k], "%s: %zu vs PyTorch %llu", names[i], n, want[k]);
        }
        /* the paper's 44.3 M within the open choices (configs/model/paper.yaml) */
        if (i == 0) CHECK(want[0] >= 40000000 && want[0] <= 48000000);
    }
}

/* tf_model_train_flops against PyTorch: tests/reference/flops_ref.py counts the FLOPs of the
 * convolution / convolution_backward / mm / addmm / bmm operators the reference model really
 * runs in one training step (forward, then backward; with checkpointing, every RCM and TFSWA
 * block wrapped in torch.utils.checkpoint so backward re-runs their forwards). Exact match:
 * a layer, a level or a backward term missing on either side shows. */
static void test_train_flops(void) {
    struct {
        const char *preset;
        int ckpt, targets, rcms, blocks, B, N;
        tf_output_mode out;
    } cases[] = {{"tiny", 0, 1, 2, 2, 2, 22050, TF_OUT_MAGNITUDE},
                 {"tiny", 1, 1, 2, 2, 2, 22050, TF_OUT_MAGNITUDE},
                 {"tiny", 1, 2, 3, 1, 1, 30000, TF_OUT_MASK},
                 {"small", 0, 4, 1, 1, 1, 44100, TF_OUT_MAGNITUDE}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tf_config c = preset_config(cases[i].preset);
        c.checkpointing = cases[i].ckpt ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        c.n_targets = cases[i].targets;
        c.rcms_per_block = cases[i].rcms;
        c.tfswa_blocks = cases[i].blocks;
        c.output = cases[i].out;
        const int B = cases[i].B, N = cases[i].N;
        tf_arch a;
        CHECK(tf_arch_from_config(&a, MC(&c)) == TF_OK);
        tf_train_flops f;
        const double total = tf_model_train_flops(&a, B, N, &f);
        char margs[512], tg[16], cmd[1024];
        snprintf(tg, sizeof tg, "%d", c.n_targets);
        ref_model_args(margs, sizeof margs, &c, tg);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 tests/reference/flops_ref.py %s --batch %d --samples %d "
                 "--checkpointing %s",
                 margs, B, N, cases[i].ckpt ? "blocks" : "off");
        FILE *p = popen(cmd, "r");
        double want_f = -1, want_b = -1;
        int got = p ? fscanf(p, "%lf %lf", &want_f, &want_b) : -1;
        int rc = p ? pclose(p) : -1;
        CHECKF(got == 2 && rc == 0,
               "%s failed (exit %d): /usr/bin/python3 with torch is required by this test", cmd,
               rc);
        const double bwd = f.backward_data + f.backward_weights + f.recompute;
        printf("  %s ckpt %d S %d R %d blocks %d B %d N %d: forward %.0f backward %.0f (recompute "
               "%.0f); PyTorch %.0f %.0f\n",
               cases[i].preset, cases[i].ckpt, c.n_targets, c.rcms_per_block, c.tfswa_blocks, B, N,
               f.forward, bwd, f.recompute, want_f, want_b);
        CHECKF(f.forward == want_f, "forward %.0f vs PyTorch %.0f", f.forward, want_f);
        CHECKF(bwd == want_b, "backward %.0f vs PyTorch %.0f", bwd, want_b);
        CHECK(f.forward == tf_model_forward_flops(&a, B, N));
        CHECK(total == f.forward + bwd && total == f.total);
        CHECK(cases[i].ckpt ? f.recompute > 0 : f.recompute == 0);
    }
    /* invalid shapes: 0 and a zeroed struct */
    tf_arch a;
    tf_config c = tiny_config();
    CHECK(tf_arch_from_config(&a, MC(&c)) == TF_OK);
    tf_train_flops f = {.total = 1};
    CHECK(tf_model_train_flops(&a, 1, 0, &f) == 0 && f.total == 0 && f.forward == 0);
}

/* Create a model of mode and measure the heap bytes tf_model_create takes (after a
 * warm-up create + free of the same model, so the one-time allocations of FFTW and OpenMP
 * are not counted). Checks that the growth is the plan's total plus at most the parameter
 * table, the STFT plan and allocator rounding: the slack, stated here. */
static tf_model *create_measured(const tf_config *c, int B, int64_t N, tf_model_mode mode) {
    tf_model *m = NULL;
    if (tf_model_create_mode(&m, MC(c), B, N, 2, mode) != TF_OK) return NULL;
    tf_model_free(m);
    m = NULL;
    const size_t h0 = heap_bytes();
    tf_status s = tf_model_create_mode(&m, MC(c), B, N, 2, mode);
    const size_t h1 = heap_bytes();
    CHECKF(s == TF_OK, "%s", tf_errmsg());
    if (s != TF_OK) return NULL;
    const tf_model_sizes *p = tf_model_get_plan(m);
    /* the STFT object the model holds (window, envelopes, FFTW plans), measured alone */
    tf_stft *st = NULL;
    size_t h2 = heap_bytes();
    CHECK(tf_stft_create(&st, c->stft_window_size, c->stft_hop_length) == TF_OK);
    const size_t stft_bytes = heap_bytes() - h2;
    tf_stft_destroy(st);
    /* slack: the STFT object, the parameter table (tf_param_info per tensor, and per-RCM
     * pointer tables of about the same size), 4 KiB of page rounding for each of the 4
     * blocks and 16 KiB for the rest (the model struct, malloc headers) */
    size_t slack =
        stft_bytes + 2 * tf_model_n_tensors(m) * sizeof(tf_param_info) + 4 * 4096 + 16384;
    /* oneDNN: the primitives (JIT code, descriptors) of every convolution shape live on
     * the heap outside the plan (their scratchpads and reordered operands are in it):
     * allowed 64 KiB per shape (measured for tiny, 28 shapes: 37 KiB per shape with the 3
     * passes of training, 30 KiB forward only). The ref backend has none: the tight bound
     * above. */
    if (c->backend == TF_BACKEND_DNNL) slack += tf_model_kernel_shapes(m) * 65536;
    /* at least the STFT object and the parameter table are really allocated besides the
     * plan's blocks */
    const size_t least = stft_bytes + tf_model_n_tensors(m) * sizeof(tf_param_info);
    const long long over = (long long)(h1 - h0) - (long long)p->total;
    printf("  %s, %s, ckpt %d, %s: plan %zu bytes, allocated %zu (plan +%lld, within [%zu, %zu])\n",
           c->backend == TF_BACKEND_DNNL ? "dnnl" : "ref",
           mode == TF_MODEL_TRAIN ? "train" : "infer", (int)c->checkpointing,
           c->activation_dtype == TF_DT_BF16 ? "bf16" : "fp32", p->total, h1 - h0, over, least,
           slack);
    CHECKF(h1 >= h0 && over >= (long long)least && (size_t)over <= slack,
           "allocated %zu bytes, plan %zu (+%lld, not within [%zu, %zu])", h1 - h0, p->total, over,
           least, slack);
    return m;
}

/* The plan is exact: what tf_model_create allocates (measured on the heap) is what
 * tf_model_plan says; the checkpointing and bf16 options shrink the activations. */
static void test_plan_exact(void) {
    tf_config c = tiny_config();
    size_t act[2][2];
    for (int be = 0; be < 2; be++) { /* oneDNN (its primitives beside the plan), ref */
        c.backend = be ? TF_BACKEND_REF : TF_BACKEND_DNNL;
        c.checkpointing = TF_CKPT_OFF, c.activation_dtype = TF_DT_FP32;
        tf_model *m = create_measured(&c, 2, 30000, TF_MODEL_TRAIN);
        CHECK(m != NULL);
        tf_model_free(m);
        m = create_measured(&c, 1, 6 * 44100, TF_MODEL_INFER);
        CHECK(m != NULL);
        tf_model_free(m);
    }
    /* from here on the ref backend: the plan's blocks with the tight bound */
    for (int ck = 0; ck < 2; ck++)
        for (int dt = 0; dt < 2; dt++) {
            c.checkpointing = ck ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
            c.activation_dtype = dt ? TF_DT_BF16 : TF_DT_FP32;
            tf_model_sizes p;
            CHECK(tf_model_plan(&p, MC(&c), 2, 30000, 2) == TF_OK);
            tf_model *m = create_measured(&c, 2, 30000, TF_MODEL_TRAIN);
            CHECK(m != NULL);
            if (!m) continue;
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
            tf_model_sizes p, t;
            CHECK(tf_model_plan_mode(&p, MC(&c), 1, 6 * 44100, 2, TF_MODEL_INFER) == TF_OK);
            CHECK(tf_model_plan(&t, MC(&c), 1, 6 * 44100, 2) == TF_OK);
            tf_model *m = create_measured(&c, 1, 6 * 44100, TF_MODEL_INFER);
            CHECK(m != NULL);
            if (!m) continue;
            CHECK(p.mode == TF_MODEL_INFER && tf_model_get_plan(m)->mode == TF_MODEL_INFER);
            CHECK(p.grads == 0 && p.activations == 0);
            CHECK(p.total == p.params + p.buffers + p.workspace && p.params == t.params);
            CHECK(tf_model_grads(m) == NULL && tf_model_grad(m, tf_model_tensor(m, 0)) == NULL);
            tf_model_zero_grad(m); /* nothing to zero */
            /* (before inference models, separation used the training off/fp32 model; with
             * checkpointing and bf16 a training step's workspace is within 2x of the
             * inference model's, whose one-item maps both have) */
            CHECKF(p.total * (ck ? 3 : 6) < t.total * 2, "inference %zu vs training %zu bytes",
                   p.total, t.total);
            if (!ck && !om)
                printf("  tiny, 1 x 6 s: training %.1f MiB, inference %.1f MiB (workspace %.1f, "
                       "of which conv kernels %.1f; %s)\n",
                       t.total / 1048576.0, p.total / 1048576.0, p.workspace / 1048576.0,
                       p.conv_workspace / 1048576.0, p.arithmetic);
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
    tf_model_sizes p = *tf_model_get_plan(a);
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
    RUN(test_train_flops);
    RUN(test_plan_exact);
    RUN(test_save_load_and_errors);
    RUN(test_checkpointing_identical);
    RUN(test_bf16_close_to_fp32);
    RUN(test_odd_lengths_and_batches);
    RUN(test_inference_model);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_END();
}
