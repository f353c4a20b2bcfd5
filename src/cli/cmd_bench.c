/* tfswa bench data|model|step|separate|stream|metrics|stft|memory|faults [--json]
 *            [--device cpu|cuda|cuda:N] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/device.h"

/* Take --device VALUE / --device=VALUE (the last one wins) out of argv[1..argc-1] (argv
 * shrinks; *argc updated): the value, NULL when absent; *missing = 1 when the flag has no
 * value. */
static const char *take_device(int *argc, char **argv, int *missing) {
    const char *v = NULL;
    int n = 1;
    *missing = 0;
    for (int i = 1; i < *argc; i++) {
        const char *t = argv[i];
        if (!strncmp(t, "--device=", 9)) {
            v = t + 9;
        } else if (!strcmp(t, "--device")) {
            if (i + 1 < *argc && strncmp(argv[i + 1], "--", 2) != 0)
                v = argv[++i];
            else
                *missing = 1;
        } else {
            argv[n++] = argv[i];
        }
    }
    argv[n] = NULL;
    *argc = n;
    return v;
}

int cmd_bench(int argc, char **argv) {
    const struct {
        const char *name;
        int (*fn)(int, char **);
    } t[] = {
        {"data", bench_data},         {"model", bench_model},     {"step", bench_step},
        {"separate", bench_separate}, {"metrics", bench_metrics}, {"stft", bench_stft},
        {"memory", bench_memory},     {"stream", bench_stream},   {"faults", bench_faults},
    };
    if (argc < 2) {
        fprintf(stderr, "tfswa: usage: tfswa bench "
                        "data|model|step|separate|stream|metrics|stft|memory|faults [--json] "
                        "[--device cpu|cuda|cuda:N]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp(argv[1], t[i].name) != 0) continue;
        if (!t[i].fn) {
            fprintf(stderr, "tfswa: bench '%s' is not part of this build yet\n", argv[1]);
            return 2;
        }
        /* --device: `bench step` (the device trainer) and `bench separate` (the inference
         * device model) run on CUDA; the other benches measure the CPU only. `bench
         * separate` forks its runs: a process that touched CUDA cannot fork a child that
         * uses it, so with a CUDA build its children open the device, not this process. */
        int missing = 0;
        const char *dev = take_device(&argc, argv, &missing);
        if (missing) return cli_fail(tf_err(TF_EUSER, "flag --device needs a value"));
        char task[64];
        snprintf(task, sizeof task, "bench %s", t[i].name);
        const int sep = !strcmp(t[i].name, "separate");
        const int on_cuda = !strcmp(t[i].name, "step") || sep;
        tf_device d;
        tf_status st = dev ? tf_device_from_string("--device", dev, &d) : TF_OK;
        if (!st && !(sep && dev && d.kind == TF_DEVICE_CUDA && tf_device_cuda_built()))
            st = cli_device_open(dev, on_cuda ? NULL : task);
        if (st) return cli_fail(st);
        cli_bench_device = dev ? dev : "cpu";
        return t[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr,
            "tfswa: unknown bench '%s' (data, model, step, separate, stream, metrics, stft, "
            "memory, faults)\n",
            argv[1]);
    return 2;
}
