/* --device cpu|cuda|cuda:N (util/device.h) where no GPU is: the parser; the config key
 * `device`; the cuda kernel backend and tfswa_open_with asked for CUDA; and each command
 * (train, plan, separate, evaluate, bench) answering a bad value, a build without CUDA
 * (or, in a CUDA build, no usable GPU) with one line and exit status 2, and accepting
 * --device cpu. The GPU side is tests/gpu/test_cuda_conv.c (tools/gpu_check.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/kernels.h"
#include "test.h"
#include "tfswa.h"
#include "util/config.h"
#include "util/device.h"
#include "util/err.h"

static char tfswa[4096];

static void test_parse(void) {
    static const struct {
        const char *s;
        int ok, kind, index;
    } C[] = {
        {"cpu", 1, TF_DEVICE_CPU, 0},
        {"cuda", 1, TF_DEVICE_CUDA, 0},
        {"cuda:0", 1, TF_DEVICE_CUDA, 0},
        {"cuda:7", 1, TF_DEVICE_CUDA, 7},
        {"cuda:1023", 1, TF_DEVICE_CUDA, 1023},
        {"gpu", 0, 0, 0},
        {"", 0, 0, 0},
        {"CUDA", 0, 0, 0},
        {"cuda:", 0, 0, 0},
        {"cuda:-1", 0, 0, 0},
        {"cuda:+1", 0, 0, 0},
        {"cuda:1x", 0, 0, 0},
        {"cuda: 1", 0, 0, 0},
        {"cuda:1024", 0, 0, 0},
        {"cuda:99999", 0, 0, 0},
        {"cuda0", 0, 0, 0},
        {"cpu:0", 0, 0, 0},
        {"cudaa", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        tf_device d = {TF_DEVICE_CPU, -5};
        int ok = tf_device_parse(C[i].s, &d);
        CHECKF(ok == C[i].ok, "'%s': parse %d, expected %d", C[i].s, ok, C[i].ok);
        if (ok && C[i].ok) {
            CHECKF((int)d.kind == C[i].kind && d.index == C[i].index, "'%s': kind %d index %d",
                   C[i].s, (int)d.kind, d.index);
            char nm[32], want[32];
            tf_device_name(&d, nm, sizeof nm);
            snprintf(want, sizeof want, C[i].kind == TF_DEVICE_CPU ? "cpu" : "cuda:%d", C[i].index);
            CHECKF(!strcmp(nm, want), "'%s': name '%s'", C[i].s, nm);
        }
        if (!C[i].ok) CHECKF(d.index == -5, "'%s': *out changed on failure", C[i].s);
    }
    CHECK(!tf_device_parse(NULL, &(tf_device){TF_DEVICE_CPU, 0}));
    tf_device d;
    CHECK(tf_device_from_string("--device", "gpu", &d) == TF_EUSER);
    CHECKF(!strcmp(tf_errmsg(), "--device gpu: expected cpu, cuda or cuda:N"), "%s", tf_errmsg());
}

/* The line a CUDA device request gets where no GPU is usable: in a CPU build, the build;
 * in a CUDA build (no GPU here), the CUDA error. */
static int cuda_refusal_ok(const char *msg, const char *prefix) {
    if (strncmp(msg, prefix, strlen(prefix)) != 0) return 0;
    msg += strlen(prefix);
    if (!tf_device_cuda_built())
        return !strcmp(msg, "this tfswa was built without CUDA (build with make CUDA=1)");
    return !strncmp(msg, "no CUDA device: ", 16) || strstr(msg, "is not implemented yet") ||
           strstr(msg, "out of range");
}

static void test_open(void) {
    tf_device_info info;
    const tf_device cpu = {TF_DEVICE_CPU, 0}, cuda1 = {TF_DEVICE_CUDA, 1};
    CHECK(tf_device_open(&cpu, "--device", "cpu", &info) == TF_OK);
    CHECK(!strcmp(info.name, "cpu") && info.dev.kind == TF_DEVICE_CPU);
    char line[512];
    tf_device_describe(&info, line, sizeof line);
    CHECKF(!strcmp(line, "cpu"), "%s", line);
    CHECK(tf_device_not_yet(&info, "--device", "cpu", "training") == TF_OK);
    tf_status st = tf_device_open(&cuda1, "--device", NULL, &info);
    CHECK(st == TF_EUSER);
    CHECKF(cuda_refusal_ok(tf_errmsg(), "--device cuda:1: "), "%s", tf_errmsg());
    /* the not-yet line names the task, the device and what is missing */
    tf_device_info gpu = {.dev = {TF_DEVICE_CUDA, 0}, .name = "NVIDIA H200"};
    CHECK(tf_device_not_yet(&gpu, "--device", "cuda", "training") == TF_EUSER);
    CHECKF(strstr(tf_errmsg(), "--device cuda: training on CUDA is not implemented yet") ==
                   tf_errmsg() &&
               strstr(tf_errmsg(), "NVIDIA H200") && strstr(tf_errmsg(), "conv2d only") &&
               !strchr(tf_errmsg(), '\n'),
           "%s", tf_errmsg());
}

static void test_kernels_backend(void) {
    tf_kernels *k = (tf_kernels *)&k; /* must be set to NULL on failure */
    tf_status st = tf_kernels_create(&k, TF_BACKEND_CUDA, TF_DT_FP32, 1);
    if (!tf_device_cuda_built()) {
        CHECK(st == TF_EUSER && k == NULL);
        CHECKF(!strcmp(tf_errmsg(),
                       "backend cuda: this tfswa was built without CUDA (build with make CUDA=1)"),
               "%s", tf_errmsg());
    } else if (st == TF_OK) { /* a CUDA build on a GPU machine */
        CHECK(tf_kernels_backend(k) == TF_BACKEND_CUDA);
        tf_kernels_free(k);
    } else {
        CHECKF(st == TF_EUSER && k == NULL && strstr(tf_errmsg(), "no CUDA device"), "%s",
               tf_errmsg());
    }
    CHECK(tf_kernels_native_bf16(TF_BACKEND_CUDA) == 0);
    /* the CPU backends are unchanged */
    CHECK(tf_kernels_create(&k, TF_BACKEND_REF, TF_DT_FP32, 1) == TF_OK && k);
    tf_kernels_free(k);
    CHECK(tf_kernels_create(&k, (tf_backend)7, TF_DT_FP32, 1) == TF_EUSER && k == NULL);
}

static void test_config_key(void) {
    tf_config c;
    tf_config_defaults(&c);
    CHECK(!strcmp(c.device, "cpu"));
    CHECK(tf_config_set(&c, "device", "cuda:2") == TF_OK && !strcmp(c.device, "cuda:2"));
    CHECK(tf_config_validate(&c) == TF_OK);
    CHECK(tf_config_set(&c, "device", "gpu") == TF_EUSER && !strcmp(c.device, "cuda:2"));
    CHECKF(!strcmp(tf_errmsg(), "key 'device': 'gpu': expected cpu, cuda or cuda:N"), "%s",
           tf_errmsg());
    /* backend cuda only with a CUDA device */
    CHECK(tf_config_set(&c, "backend", "cuda") == TF_OK && tf_config_validate(&c) == TF_OK);
    CHECK(tf_config_set(&c, "device", "cpu") == TF_OK);
    CHECK(tf_config_validate(&c) == TF_EUSER && strstr(tf_errmsg(), "key 'backend' cuda"));
    /* written and read back */
    tf_config_defaults(&c);
    CHECK(tf_config_set(&c, "device", "cuda:3") == TF_OK);
    char path[] = "/tmp/tfswa_test_device_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(f != NULL);
    if (!f) return;
    CHECK(tf_config_write_yaml(&c, f) == TF_OK);
    fclose(f);
    tf_config r;
    tf_config_defaults(&r);
    CHECKF(tf_config_load_yaml(&r, path) == TF_OK, "%s", tf_errmsg());
    CHECKF(!strcmp(r.device, "cuda:3"), "read back '%s'", r.device);
    remove(path);
}

static void test_api(void) {
    tfswa_options o = tfswa_default_options();
    CHECK(o.device == TFSWA_DEVICE_CPU && o.device_index == 0);
    const char *ck[1] = {"/nonexistent/checkpoint"};
    int status = 0;
    o.device = TFSWA_DEVICE_CUDA;
    o.device_index = 1;
    tfswa_context *ctx = tfswa_open_with(ck, 1, &o, &status);
    CHECK(ctx == NULL && status == TFSWA_ERR_USER);
    CHECKF(cuda_refusal_ok(tfswa_last_error(NULL), "tfswa_open_with: device cuda:1: "), "%s",
           tfswa_last_error(NULL));
    o.device = 5;
    CHECK(!tfswa_open_with(ck, 1, &o, &status) && status == TFSWA_ERR_USER &&
          strstr(tfswa_last_error(NULL), "device 5"));
    o.device = TFSWA_DEVICE_CUDA, o.device_index = -1;
    CHECK(!tfswa_open_with(ck, 1, &o, &status) && status == TFSWA_ERR_USER &&
          strstr(tfswa_last_error(NULL), "device_index -1"));
    o = tfswa_default_options(); /* cpu: gets as far as the checkpoint */
    CHECK(!tfswa_open_with(ck, 1, &o, &status) && status == TFSWA_ERR_USER &&
          strstr(tfswa_last_error(NULL), "/nonexistent/checkpoint"));
}

/* `tfswa <args> 2>&1`: exit status 2 and exactly "tfswa: <want>\n" (want NULL: the CUDA
 * refusal of cuda_refusal_ok with prefix "--device <dev>: "). */
static void expect_line(const char *args, const char *dev, const char *want) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s --device '%s' 2>&1 < /dev/null", tfswa, args, dev);
    int status;
    char *out = test_run_capture(cmd, &status);
    CHECK(out != NULL);
    if (!out) return;
    char line[8192];
    snprintf(line, sizeof line, "tfswa: %s\n", want ? want : "");
    int ok;
    if (want) {
        ok = !strcmp(out, line);
    } else {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "--device %s: ", dev);
        size_t n = strlen(out);
        ok =
            !strncmp(out, "tfswa: ", 7) && n > 0 && out[n - 1] == '\n' && !memchr(out, '\n', n - 1);
        if (ok) {
            out[n - 1] = 0;
            ok = cuda_refusal_ok(out + 7, prefix);
            out[n - 1] = '\n';
        }
    }
    CHECKF(status == 2 && ok, "%s: exit %d, output:\n%s", cmd, status, out);
    free(out);
}

static const char *const CMDS[] = {
    "train --preset tiny --data_root /nonexistent",
    "plan --preset tiny --memory 1GiB",
    "separate /nonexistent.wav -o /tmp/tfswa_test_device_out --checkpoint /nonexistent",
    "evaluate --checkpoint /nonexistent --data_root /nonexistent -o /tmp/tfswa_test_device_out",
    "bench stft",
    "bench model",
};

static void test_cli_bad_value(void) {
    static const char *const bad[] = {"gpu", "cuda:", "cuda:x", "CPU", "cuda:1024"};
    for (size_t c = 0; c < sizeof CMDS / sizeof CMDS[0]; c++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char want[128];
            snprintf(want, sizeof want, "--device %s: expected cpu, cuda or cuda:N", bad[i]);
            expect_line(CMDS[c], bad[i], want);
        }
}

static void test_cli_cuda_refused(void) {
    static const char *const cuda[] = {"cuda", "cuda:0", "cuda:3"};
    for (size_t c = 0; c < sizeof CMDS / sizeof CMDS[0]; c++)
        for (size_t i = 0; i < sizeof cuda / sizeof cuda[0]; i++)
            if (strncmp(CMDS[c], "plan ", 5)) /* plan prints the device plan: test_device_plan */
                expect_line(CMDS[c], cuda[i], NULL);
}

/* --device cpu is accepted: each command goes on to its own next check */
static void test_cli_cpu(void) {
    static const struct {
        const char *args;
        int status;
        const char *says;
    } C[] = {
        {"plan --preset tiny --memory 1GiB --json", 0, "\"fits\""},
        {"train --preset tiny --max_epochs 0 --max_steps 0", 2, "nothing to train"},
        {"separate /nonexistent.wav -o /tmp/tfswa_test_device_out --checkpoint /x", 2,
         "/nonexistent.wav: no such file"},
        {"evaluate --data_root /nonexistent", 2, "-o OUT is required"},
        {"bench stft --bogus_flag", 2, "bogus"},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "'%s' %s --device cpu 2>&1 < /dev/null", tfswa, C[i].args);
        int status;
        char *out = test_run_capture(cmd, &status);
        CHECKF(out && status == C[i].status && strstr(out, C[i].says) && !strstr(out, "--device"),
               "%s: exit %d, output:\n%.2000s", cmd, status, out ? out : "(none)");
        free(out);
    }
}

int main(void) {
    if (test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    RUN(test_parse);
    RUN(test_open);
    RUN(test_kernels_backend);
    RUN(test_config_key);
    RUN(test_api);
    RUN(test_cli_bad_value);
    RUN(test_cli_cuda_refused);
    RUN(test_cli_cpu);
    return TEST_END();
}
