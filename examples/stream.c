/* The tfswa stream API: feed a file through a stream in small blocks, as an audio callback
 * would, and write the stems as they come out.
 *
 *   build/examples/stream INPUT OUT_DIR CHECKPOINT [BLOCK [MAX_LATENCY_S]]
 *
 * reads INPUT (any file libsndfile reads, mono or stereo, any rate) BLOCK frames at a time
 * (default 256), pushes every block, pulls what is ready after each push, and writes
 * OUT_DIR/<stem>.wav (float) for every target of the checkpoint. The stems have the
 * input's rate, channels and length. Against an installed tfswa:
 *   cc stream.c $(pkg-config --cflags --libs tfswa sndfile) -o stream */
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>

#include "tfswa.h"

/* got frames of (got, k, ch) interleaved output -> one file per stem */
static int write_stems(SNDFILE **w, int k, int ch, const float *y, int64_t got, float *tmp) {
    for (int j = 0; j < k; j++) {
        for (int64_t i = 0; i < got; i++)
            for (int c = 0; c < ch; c++) tmp[i * ch + c] = y[(i * k + j) * ch + c];
        if (sf_writef_float(w[j], tmp, got) != got) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s INPUT OUT_DIR CHECKPOINT [BLOCK [MAX_LATENCY_S]]\n", argv[0]);
        return 2;
    }
    const int block = argc > 4 ? atoi(argv[4]) : 256;
    if (block < 1) {
        fprintf(stderr, "BLOCK %s is not a positive number of frames\n", argv[4]);
        return 2;
    }
    SF_INFO info = {0};
    SNDFILE *in = sf_open(argv[1], SFM_READ, &info);
    if (!in) {
        fprintf(stderr, "%s: %s\n", argv[1], sf_strerror(NULL));
        return 2;
    }
    if (info.channels != 1 && info.channels != 2) {
        fprintf(stderr, "%s: %d channels (mono or stereo only)\n", argv[1], info.channels);
        sf_close(in);
        return 2;
    }
    int status;
    const char *ckpt[] = {argv[3]};
    tfswa_context *ctx = tfswa_open(ckpt, 1, 0, &status);
    if (!ctx) {
        fprintf(stderr, "%s: %s\n", tfswa_error_string(status), tfswa_last_error(NULL));
        sf_close(in);
        return status == TFSWA_ERR_INTERNAL ? 1 : 2;
    }
    tfswa_stream_params sp = tfswa_stream_default_params();
    if (argc > 5) sp.max_latency = atof(argv[5]);
    const int ch = info.channels;
    tfswa_stream *s = tfswa_stream_open(ctx, ch, info.samplerate, &sp);
    if (!s) {
        fprintf(stderr, "stream: %s\n", tfswa_last_error(ctx));
        tfswa_close(ctx);
        sf_close(in);
        return 2;
    }
    const int k = tfswa_stream_n_outputs(s);
    printf("latency %lld frames (%.3f s), segment %.3f s\n", (long long)tfswa_stream_latency(s),
           (double)tfswa_stream_latency(s) / info.samplerate, tfswa_stream_segment(s));
    SNDFILE *w[32] = {0};
    int rc = 0;
    for (int j = 0; j < k && !rc; j++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.wav", argv[2], tfswa_stream_output_name(s, j));
        SF_INFO oi = {0};
        oi.samplerate = info.samplerate, oi.channels = ch;
        oi.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
        if (!(w[j] = sf_open(path, SFM_WRITE, &oi))) {
            fprintf(stderr, "%s: %s\n", path, sf_strerror(NULL));
            rc = 2;
        }
    }
    float *x = malloc(sizeof(float) * (size_t)block * ch);
    float *y = malloc(sizeof(float) * (size_t)block * k * ch);
    float *tmp = malloc(sizeof(float) * (size_t)block * ch);
    if (!x || !y || !tmp) rc = 1;
    int64_t n_in = 0, n_out = 0, got;
    sf_count_t n;
    while (!rc && (n = sf_readf_float(in, x, block)) > 0) {
        if (tfswa_stream_push(s, x, n) != TFSWA_OK) { /* we pull after every push: fits */
            fprintf(stderr, "push: %s\n", tfswa_last_error(ctx));
            rc = 1;
        }
        n_in += n;
        while (!rc && (got = tfswa_stream_pull(s, y, block)) > 0) {
            if (!write_stems(w, k, ch, y, got, tmp)) rc = 1;
            n_out += got;
        }
    }
    if (!rc && tfswa_stream_flush(s) != TFSWA_OK) { /* end of input: the last latency frames */
        fprintf(stderr, "flush: %s\n", tfswa_last_error(ctx));
        rc = 1;
    }
    while (!rc && (got = tfswa_stream_pull(s, y, block)) > 0) {
        if (!write_stems(w, k, ch, y, got, tmp)) rc = 1;
        n_out += got;
    }
    for (int j = 0; j < k; j++)
        if (w[j] && sf_close(w[j]) && !rc) rc = 1;
    if (!rc)
        printf("%lld frames in, %lld frames out, %d stems\n", (long long)n_in, (long long)n_out, k);
    free(x), free(y), free(tmp);
    tfswa_stream_close(s);
    tfswa_close(ctx);
    sf_close(in);
    return rc;
}
