/* The device memory plan (train/device_plan.h, `tfswa plan --device cuda`) where no GPU is:
 * its roles against the CPU training plan of the same config (parameters, gradients, BN
 * buffers, Adam, activations equal; the workspace different only by the convolutions'
 * share, checked against the ref and dnnl backends' plans), the device-only roles against
 * their formulas written out here, the no-GPU upper bound used and reported, the largest
 * batch (monotone in the budget; its plan fits, batch + 1 does not), and the CLI: text and
 * --json fields, --device cpu unchanged, cpu-only flags refused. */
#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/kernels.h"
#include "test.h"
#include "train/device_plan.h"
#include "train/train.h"
#include "util/config.h"
#include "util/device.h"

static char tfswa[PATH_MAX + 16];

static void tiny(tf_config *c, int batch) {
    tf_config_defaults(c);
    const char *argv[] = {"x", "--preset",      "tiny", "--segment_seconds", "0.5", "--num_workers",
                          "0", "--num_threads", "2"};
    CHECK(tf_config_parse_args(c, 9, (char **)argv, NULL) == TF_OK);
    c->batch_size = batch;
}

/* 1 when cuda:idx cannot be opened here (no CUDA build or no GPU): the plan uses the bound */
static int no_gpu(int idx) {
    tf_device d = {TF_DEVICE_CUDA, idx};
    tf_device_info info;
    int r = tf_device_open(&d, "--device", NULL, &info) != TF_OK;
    tf_err_clear();
    return r;
}

static void test_roles_vs_cpu(void) {
    const tf_device d = {TF_DEVICE_CUDA, 0};
    for (int v = 0; v < 8; v++) {
        tf_config c;
        tiny(&c, 1 + v % 3);
        c.activation_dtype = v & 1 ? TF_DT_BF16 : TF_DT_FP32;
        c.checkpointing = v & 2 ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        c.ema_decay = v & 4 ? 0.999 : 0;
        tf_device_plan p;
        CHECK(tf_device_plan_bytes(&p, &c, &d, NULL) == TF_OK);
        const tf_model_sizes *g = &p.model;
        /* the CPU plans of two CPU backends, computed independently of the device plan */
        for (int be = 0; be < 2; be++) {
            tf_config k = c;
            k.backend = be ? TF_BACKEND_REF : TF_BACKEND_DNNL;
            tf_train_plan cp;
            CHECK(tf_train_plan_bytes(&cp, &k, k.num_threads) == TF_OK);
            const tf_model_sizes *m = &cp.model;
            CHECKF(g->n_params == m->n_params && g->params == m->params && g->grads == m->grads &&
                       g->buffers == m->buffers && g->activations == m->activations,
                   "variant %d backend %d: params %zu/%zu grads %zu/%zu act %zu/%zu", v, be,
                   g->params, m->params, g->grads, m->grads, g->activations, m->activations);
            CHECKF(p.optimizer == cp.optimizer, "variant %d: optimizer %zu vs %zu", v, p.optimizer,
                   cp.optimizer);
            /* the workspace differs by the convolutions' share only */
            CHECKF(g->workspace - g->conv_workspace == m->workspace - m->conv_workspace,
                   "variant %d backend %d: workspace %zu - conv %zu vs %zu - %zu", v, be,
                   g->workspace, g->conv_workspace, m->workspace, m->conv_workspace);
            /* the loss role: the CPU trainer's less the targets (they live in the batches) */
            const size_t io =
                sizeof(float) * (size_t)c.batch_size * c.n_targets * 2 * (size_t)cp.segment_frames;
            CHECKF(p.loss == cp.trainer - io, "variant %d: loss %zu vs trainer %zu - %zu", v,
                   p.loss, cp.trainer, io);
            CHECK(p.host_loader == cp.loader);
        }
        /* formulas written out: params (4 bytes each), Adam m, v (+ EMA, raw), batches */
        const size_t N = (size_t)(0.5 * c.sample_rate + 0.5), B = (size_t)c.batch_size;
        const size_t S = (size_t)c.n_targets;
        CHECK(g->params == 4 * g->n_params);
        CHECK(p.optimizer == 4 * g->n_params * (v & 4 ? 4 : 2));
        CHECKF(p.batches == 2 * 4 * (B * 2 * N + B * S * 2 * N), "batches %zu", p.batches);
        /* cuFFT: fft.cu's buffers for 2 B S signals, plans bounded by a spectrum buffer each */
        const size_t T = 1 + N / (size_t)c.stft_hop_length, F = (size_t)c.stft_window_size / 2 + 1;
        const size_t nfr = 2 * B * S * T;
        CHECK(p.cufft_plans == 2 * nfr * F * 8);
        CHECKF(p.cufft == nfr * c.stft_window_size * 4 + nfr * F * 8 +
                              (size_t)(c.stft_window_size + N) * 4 + p.cufft_plans,
               "cufft %zu", p.cufft);
        CHECK(p.cublas >= TF_DEVPLAN_CUBLAS_WS);
        CHECK(p.total == g->params + g->grads + g->buffers + g->activations + g->workspace +
                             p.optimizer + p.cufft + p.cublas + p.batches + p.loss);
        CHECK(p.host_staging == g->params + g->buffers + p.optimizer);
        CHECK(p.host_total == p.host_loader + p.host_validation + p.host_staging);
        /* no GPU: the upper bound, said so */
        CHECK(!p.ws_chosen);
        CHECKF(g->conv_workspace == TF_KERN_CUDA_WS_LIMIT, "conv ws %zu", g->conv_workspace);
        CHECKF(!strcmp(p.ws_source, "upper bound (no GPU: 256 MiB per shape limit)"), "'%s'",
               p.ws_source);
        CHECK(p.dev_name[0] == 0 && p.dev_free_bytes == 0);
    }
}

/* the plan-only kernels object: every shape answers the bound; a call is an error */
static void test_bound_kernels(void) {
    tf_kernels *k = NULL;
    CHECK(tf_kernels_create_bound(&k, TF_BACKEND_CUDA, 12345, "plan only") == TF_OK && k);
    if (!k) return;
    size_t ws = 0;
    CHECK(tf_kern_conv2d_add(k, 2, 3, 4, 5, 6, 3, 1, 1, &ws) == TF_OK && ws == 12345);
    CHECK(tf_kern_conv2d_add(k, 1, 1, 1, 1, 1, 1, 1, 0, &ws) == TF_OK && ws == 12345);
    CHECK(tf_kernels_backend(k) == TF_BACKEND_CUDA && !strcmp(tf_kernels_describe(k), "plan only"));
    CHECK(tf_kernels_status(k) == TF_OK);
    float x[4] = {0}, w[4] = {0}, y[4] = {0};
    tf_kern_conv2d_forward(k, y, x, w, NULL, 1, 1, 1, 2, 2, 1, NULL, 0);
    CHECK(tf_kernels_status(k) == TF_EINTERNAL && strstr(tf_errmsg(), "plan-only"));
    tf_kern_conv2d_backward(k, y, w, NULL, x, x, w, 1, 1, 1, 2, 2, 1, NULL, 0, 1);
    CHECK(tf_kernels_status(k) == TF_EINTERNAL);
    CHECK(tf_kernels_status(k) == TF_OK); /* cleared */
    tf_kernels_free(k);
    tf_err_clear();
}

static void test_max_batch(void) {
    const tf_device d = {TF_DEVICE_CUDA, 1};
    tf_config c;
    tiny(&c, 1);
    int prev = -1;
    const size_t MiB = 1 << 20;
    const size_t budgets[] = {100 * MiB,  400 * MiB,  500 * MiB, 700 * MiB,
                              1024 * MiB, 1500 * MiB, 3000 * MiB};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        int b = -1;
        CHECK(tf_device_plan_max_batch(&c, &d, NULL, budgets[i], &b) == TF_OK);
        CHECKF(b >= prev, "budget %zu MiB: batch %d after %d", budgets[i] / MiB, b, prev);
        prev = b;
        tf_config k = c;
        tf_device_plan p;
        if (b > 0) {
            k.batch_size = b;
            CHECK(tf_device_plan_bytes(&p, &k, &d, NULL) == TF_OK);
            CHECKF(p.total <= budgets[i], "batch %d: %zu > %zu", b, p.total, budgets[i]);
        }
        k.batch_size = b + 1;
        CHECK(tf_device_plan_bytes(&p, &k, &d, NULL) == TF_OK);
        CHECKF(p.total > budgets[i], "batch %d + 1: %zu <= %zu", b, p.total, budgets[i]);
    }
    CHECKF(prev > 1, "3 GiB: batch %d", prev);
    int b = -1; /* 100 MiB: not even the 256 MiB conv workspace bound fits */
    CHECK(tf_device_plan_max_batch(&c, &d, NULL, 100 * MiB, &b) == TF_OK && b == 0);
}

static char *run(const char *args, int *status) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1 < /dev/null", tfswa, args);
    char *out = test_run_capture(cmd, status);
    CHECKF(out != NULL, "%s", cmd);
    return out;
}

static const char *FLAGS = "--preset tiny --segment_seconds 0.5 --num_workers 0 --num_threads 2 "
                           "--memory 1GiB";

static void test_cli_json(void) {
    if (!no_gpu(2)) return; /* a GPU here: chosen sizes (tools/gpu_check.sh checks those) */
    char args[1024];
    snprintf(args, sizeof args, "plan %s --device cuda:2 --json", FLAGS);
    int st;
    char *out = run(args, &st);
    if (!out) return;
    cJSON *o = cJSON_Parse(out);
    CHECKF(st == 0 && o, "exit %d:\n%s", st, out);
    const cJSON *dv = cJSON_GetObjectItem(o, "device"), *r = cJSON_GetObjectItem(o, "device_bytes");
    const cJSON *h = cJSON_GetObjectItem(o, "host_bytes"),
                *mx = cJSON_GetObjectItem(o, "largest_batch");
    CHECK(cJSON_IsObject(dv) && cJSON_IsObject(r) && cJSON_IsObject(h) && cJSON_IsArray(mx));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(dv, "kind")) &&
          !strcmp(cJSON_GetObjectItem(dv, "kind")->valuestring, "cuda"));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dv, "index")) == 2);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(dv, "name")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(dv, "ws_source")) &&
          !strcmp(cJSON_GetObjectItem(dv, "ws_source")->valuestring, "upper_bound"));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "training_implemented")));
    /* the numbers are the library's */
    tf_config c;
    tiny(&c, 4); /* the tiny preset's own batch_size */
    c.batch_size = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "batch_size"));
    const tf_device d = {TF_DEVICE_CUDA, 2};
    tf_device_plan p;
    CHECK(tf_device_plan_bytes(&p, &c, &d, NULL) == TF_OK);
    CHECKF(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "total")) == (double)p.total &&
               cJSON_GetNumberValue(cJSON_GetObjectItem(o, "plan_bytes")) == (double)p.total,
           "total %zu", p.total);
    static const char *const dk[] = {"parameters",  "gradients", "bn_buffers",     "optimizer",
                                     "activations", "workspace", "conv_workspace", "cufft",
                                     "cufft_plans", "cublas",    "batches",        "loss"};
    for (size_t i = 0; i < sizeof dk / sizeof dk[0]; i++)
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItem(r, dk[i])), "device_bytes.%s", dk[i]);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "conv_workspace")) ==
          (double)TF_KERN_CUDA_WS_LIMIT);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(h, "total")) == (double)p.host_total);
    CHECK(cJSON_GetArraySize(mx) == 4);
    for (int v = 0; v < 4 && cJSON_GetArraySize(mx) == 4; v++) {
        const cJSON *e = cJSON_GetArrayItem(mx, v);
        tf_config k = c;
        k.activation_dtype = v & 2 ? TF_DT_BF16 : TF_DT_FP32;
        k.checkpointing = v & 1 ? TF_CKPT_BLOCKS : TF_CKPT_OFF;
        int b = -1;
        CHECK(tf_device_plan_max_batch(&k, &d, NULL, (size_t)1 << 30, &b) == TF_OK);
        CHECKF(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "batch_size")) == b, "variant %d: %d", v,
               b);
    }
    cJSON_Delete(o);
    free(out);
}

static void test_cli_text(void) {
    char args[1024];
    int st;
    snprintf(args, sizeof args, "plan %s --device cuda", FLAGS);
    char *out = run(args, &st);
    if (out) {
        CHECKF(st == 0 && strstr(out, "device memory plan (cuda:0") &&
                   strstr(out, "training on CUDA is not implemented yet") &&
                   strstr(out, "largest batch_size within the budget on the device") &&
                   strstr(out, "loader batches") && strstr(out, "total (device)"),
               "exit %d:\n%s", st, out);
        if (no_gpu(0))
            CHECKF(strstr(out, "cuDNN workspace: upper bound (no GPU: 256 MiB per shape limit)"),
                   "%s", out);
    }
    free(out);
    /* --device cpu: the CPU plan, as without --device */
    snprintf(args, sizeof args, "plan %s --device cpu", FLAGS);
    char *a = run(args, &st);
    int st2;
    snprintf(args, sizeof args, "plan %s", FLAGS);
    char *b = run(args, &st2);
    CHECKF(a && b && st == 0 && st2 == 0 && !strcmp(a, b) && strstr(a, "memory plan: batch") &&
               !strstr(a, "device memory plan"),
           "cpu:\n%s\nnone:\n%s", a ? a : "", b ? b : "");
    free(a), free(b);
    /* the CPU-only flags */
    snprintf(args, sizeof args, "plan %s --device cuda:1 --measure", FLAGS);
    out = run(args, &st);
    CHECKF(out && st == 2 &&
               !strcmp(out, "tfswa: --device cuda:1: --measure, --write-config and --plot are for "
                            "--device cpu (training on CUDA is not implemented yet)\n"),
           "exit %d: %s", st, out ? out : "");
    free(out);
}

int main(void) {
    if (test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    RUN(test_roles_vs_cpu);
    RUN(test_bound_kernels);
    RUN(test_max_batch);
    RUN(test_cli_json);
    RUN(test_cli_text);
    return TEST_END();
}
