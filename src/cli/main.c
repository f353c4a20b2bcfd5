/* tfswa: command-line entry point; dispatches to the subcommands of cli.h. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static void usage(FILE *f, const command *cmds) {
    fprintf(f, "usage: tfswa <command> [options]\n\ncommands:\n");
    for (const command *c = cmds; c->name; c++)
        if (c->fn) fprintf(f, "  %-9s %s\n", c->name, c->help);
    fprintf(f, "\nRun 'tfswa <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    const command cmds[] = {
        {"synth", cmd_synth, "write a synthetic multi-stem dataset (MUSDB18-HQ layout)"},
        {"index", cmd_index, "scan a dataset root, report problems, update the index cache"},
        {"plan", cmd_plan, "print the exact memory plan of a training configuration"},
        {"train", cmd_train, "train TFSWA-ResUNet"},
        {"separate", cmd_separate, "separate songs into stems (streaming, constant memory)"},
        {"stream", cmd_stream, "separate raw PCM from stdin to stdout as it comes (pipe filter)"},
        {"evaluate", cmd_evaluate, "evaluate checkpoints (museval-compatible SDR)"},
        {"bench", cmd_bench,
         "benchmarks: data | model | step | separate | stream | metrics | stft"},
        {"demo", cmd_demo, "synthesize, train, evaluate and separate at small scale"},
        {NULL, NULL, NULL},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout, cmds);
        return argc < 2 ? 2 : 0;
    }
    /* A file-size limit (RLIMIT_FSIZE) makes a write fail with EFBIG, which every writer
     * reports as a clean error naming the file, instead of killing the process: a
     * separation then skips that input, a training run ends (every rank) with the message. */
    signal(SIGXFSZ, SIG_IGN);
    for (const command *c = cmds; c->name; c++) {
        if (strcmp(c->name, argv[1]) != 0) continue;
        if (!c->fn) {
            fprintf(stderr, "tfswa: command '%s' is not part of this build yet\n", c->name);
            return 2;
        }
        return c->fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "tfswa: unknown command '%s' (try 'tfswa --help')\n", argv[1]);
    return 2;
}
