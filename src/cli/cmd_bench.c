/* tfswa bench data|model|step|separate|stream|metrics|stft|memory|faults [--json] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

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
                        "data|model|step|separate|stream|metrics|stft|memory|faults [--json]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp(argv[1], t[i].name) != 0) continue;
        if (!t[i].fn) {
            fprintf(stderr, "tfswa: bench '%s' is not part of this build yet\n", argv[1]);
            return 2;
        }
        return t[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr,
            "tfswa: unknown bench '%s' (data, model, step, separate, stream, metrics, stft, "
            "memory, faults)\n",
            argv[1]);
    return 2;
}
