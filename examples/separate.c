/* Minimal use of the tfswa C API: separate one file with one or more checkpoints.
 *
 *   build/examples/separate INPUT OUT_DIR CHECKPOINT [CHECKPOINT...]
 *
 * writes OUT_DIR/<track>/<stem>.wav for every target of the checkpoints. Against an
 * installed tfswa: cc separate.c $(pkg-config --cflags --libs tfswa) -o separate
 * (tests/test_install.sh builds and runs it so). */
#include <stdio.h>

#include "tfswa.h"

static int show(double fraction, void *user_data) {
    (void)user_data;
    fprintf(stderr, "\r%3.0f%%", 100.0 * fraction);
    return 0; /* nonzero would cancel */
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s INPUT OUT_DIR CHECKPOINT [CHECKPOINT...]\n", argv[0]);
        return 2;
    }
    int status;
    tfswa_context *ctx = tfswa_open((const char *const *)argv + 3, argc - 3, 0, &status);
    if (!ctx) {
        fprintf(stderr, "%s: %s\n", tfswa_error_string(status), tfswa_last_error(NULL));
        return status == TFSWA_ERR_INTERNAL ? 1 : 2;
    }
    tfswa_separate_params p = tfswa_default_params();
    p.progress_callback = show;
    int rc = tfswa_separate_file(ctx, argv[1], argv[2], &p);
    fprintf(stderr, "\n");
    if (rc != TFSWA_OK) {
        fprintf(stderr, "%s: %s\n", tfswa_error_string(rc), tfswa_last_error(ctx));
    } else {
        const tfswa_summary *s = tfswa_last_summary(ctx);
        printf("%s: %.2f s of audio in %.2f s, %d stems:", argv[1], s->duration, s->seconds,
               s->n_outputs);
        for (int i = 0; i < tfswa_n_outputs(ctx, &p); i++) {
            char path[4096];
            if (tfswa_output_path(ctx, &p, argv[1], argv[2], i, path, sizeof path) == TFSWA_OK)
                printf(" %s", path);
        }
        printf("\n");
    }
    tfswa_close(ctx);
    return rc == TFSWA_OK ? 0 : rc == TFSWA_ERR_INTERNAL ? 1 : 2;
}
