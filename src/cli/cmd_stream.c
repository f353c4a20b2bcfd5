/* tfswa stream --checkpoint DIR [options]: raw PCM on stdin -> stems on stdout (or files),
 * through the stream API of include/tfswa.h, as a pipe filter. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tfswa.h"
#include "util/config.h"
#include "util/fsutil.h"

static const char *USAGE =
    "usage: tfswa stream --checkpoint DIR [--checkpoint DIR2 ...] [--stems a,b]\n"
    "                    [--instrumental] [--rate 44100] [--channels 2] [--format f32|s16]\n"
    "                    [-o DIR] [--segment S] [--overlap F] [--max_latency S] [--threaded]\n"
    "                    [--block N] [--num_threads N] [--precision P] [--backend B]\n"
    "\n"
    "Separate raw PCM read from stdin as it comes; the stems come out after a fixed latency\n"
    "(printed on stderr), as many frames as went in. Input and output: little-endian\n"
    "interleaved frames at --rate with --channels, samples in --format. One stem on stdout:\n"
    "plain PCM like the input; several: each frame holds every stem in order (the selected\n"
    "targets in target order, then instrumental), each stem with its channels. Example:\n"
    "\n"
    "  sox song.mp3 -t raw -r 44100 -e float -b 32 -c 2 - |\n"
    "    tfswa stream --checkpoint run --stems vocals |\n"
    "    sox -t raw -r 44100 -e float -b 32 -c 2 - vocals.wav\n"
    "\n"
    "  --checkpoint DIR    checkpoint folder or run folder; repeat to combine models\n"
    "  --stems a,b         output only these targets (default: all)\n"
    "  --instrumental      also output instrumental = mixture - vocals\n"
    "  --rate R            input (= output) sample rate in Hz (default 44100); other than\n"
    "                      the model's, resampled both ways (libsoxr)\n"
    "  --channels C        1 or 2 (default 2)\n"
    "  --format F          f32 (32-bit float) | s16 (16-bit signed; output clipped and\n"
    "                      counted) (default f32)\n"
    "  -o, --out DIR       write DIR/<stem>.raw (one file per stem, DIR created) instead of\n"
    "                      stdout\n"
    "  --segment S         chunk length in seconds (default: the checkpoint's, or the\n"
    "                      longest that fits --max_latency)\n"
    "  --overlap F         overlap between chunks, in [0, 1) (default 0.25)\n"
    "  --max_latency S     latency bound in seconds (an open that cannot meet it fails\n"
    "                      naming the smallest latency possible)\n"
    "  --threaded          run the model in a worker thread (latency grows by one hop)\n"
    "  --block N           frames read per step (default 1024)\n"
    "  --num_threads N     threads (default: all cores)\n"
    "  --precision P       fp32 | bf16 | auto (as in separate)\n"
    "  --backend B         dnnl | ref (as in separate)\n";

#define MAX_CKPT 8

/* --stems a,b -> bit mask over the context's targets */
static tf_status parse_stems(const tfswa_context *ctx, const char *s, uint32_t *mask) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    *mask = 0;
    for (char *t = strtok(buf, ", "); t; t = strtok(NULL, ", ")) {
        int i = tfswa_target_index(ctx, t);
        if (i < 0) {
            char names[512] = "";
            for (int k = 0; k < tfswa_n_targets(ctx); k++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
                         tfswa_target_name(ctx, k));
            return tf_err(TF_EUSER, "--stems: '%s' is not a target of the checkpoints (%s)", t,
                          names);
        }
        *mask |= 1u << i;
    }
    if (!*mask) return tf_err(TF_EUSER, "--stems: no stem named in '%s'", s);
    return TF_OK;
}

typedef struct {
    int s16, ch, K;
    FILE *out[TF_MAX_TARGETS + 1]; /* K files, or out[0] = stdout for all */
    int files;
    void *bytes; /* conversion buffer */
    int64_t clipped, written;
} sink;

/* n frames of (n, K, ch) float -> stdout (interleaved as is) or one file per stem */
static tf_status emit(sink *o, const float *y, int64_t n) {
    const int K = o->K, ch = o->ch;
    const size_t bps = o->s16 ? 2 : 4;
    for (int f = 0; f < (o->files ? K : 1); f++) {
        /* the samples of this destination: all (files 0) or stem f */
        const int per = o->files ? ch : K * ch;
        unsigned char *b = o->bytes;
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < per; c++) {
                float v = y[(size_t)i * K * ch + (o->files ? (size_t)f * ch : 0) + (size_t)c];
                size_t at = ((size_t)i * per + (size_t)c) * bps;
                if (o->s16) {
                    float s = v * 32768.0f;
                    if (s > 32767.0f || s < -32768.0f) o->clipped++;
                    s = s > 32767.0f ? 32767.0f : s < -32768.0f ? -32768.0f : s;
                    int16_t q = (int16_t)lrintf(s);
                    memcpy(b + at, &q, 2);
                } else {
                    memcpy(b + at, &v, 4);
                }
            }
        size_t want = (size_t)n * (size_t)per;
        if (fwrite(b, bps, want, o->out[f]) != want)
            return tf_err(TF_EUSER, "%s: write failed: %s", o->files ? "output file" : "stdout",
                          strerror(errno));
    }
    o->written += n;
    return TF_OK;
}

static tf_status drain(tfswa_context *ctx, tfswa_stream *s, sink *o, float *y, int64_t cap) {
    for (;;) {
        int64_t k = tfswa_stream_pull(s, y, cap);
        if (k < 0) return tf_err(TF_EUSER, "%s", tfswa_last_error(ctx));
        if (k == 0) return TF_OK;
        TF_TRY(emit(o, y, k));
    }
}

/* stdin -> stream -> sink; returns the exit status */
static int run(tfswa_context *ctx, tfswa_stream *s, sink *o, int64_t blk) {
    const int ch = o->ch, K = o->K;
    const size_t bps = o->s16 ? 2 : 4, fbytes = bps * (size_t)ch;
    unsigned char *raw = malloc(fbytes * (size_t)blk);
    float *x = malloc(sizeof(float) * (size_t)ch * (size_t)blk);
    float *y = malloc(sizeof(float) * (size_t)K * ch * (size_t)blk);
    o->bytes = malloc(bps * (size_t)K * ch * (size_t)blk);
    tf_status st =
        raw && x && y && o->bytes ? TF_OK : tf_err(TF_EINTERNAL, "stream: out of memory");
    size_t have = 0; /* bytes of a partial frame kept from the last read */
    int64_t in = 0;
    for (int eof = 0; !st && !eof;) {
        size_t got = fread(raw + have, 1, fbytes * (size_t)blk - have, stdin);
        if (got == 0) {
            if (ferror(stdin)) st = tf_err(TF_EUSER, "stdin: read failed: %s", strerror(errno));
            eof = 1;
        }
        have += got;
        int64_t n = (int64_t)(have / fbytes);
        for (int64_t i = 0; i < n * ch; i++) {
            if (o->s16) {
                int16_t q;
                memcpy(&q, raw + (size_t)i * 2, 2);
                x[i] = (float)q / 32768.0f;
            } else {
                memcpy(&x[i], raw + (size_t)i * 4, 4);
            }
        }
        memmove(raw, raw + (size_t)n * fbytes, have - (size_t)n * fbytes);
        have -= (size_t)n * fbytes;
        while (!st && n > 0) {
            int r = tfswa_stream_push(s, x, n);
            if (r == TFSWA_OK) break;
            if (r != TFSWA_ERR_AGAIN)
                st = tf_err(r == 1 ? TF_EINTERNAL : TF_EUSER, "%s", tfswa_last_error(ctx));
            if (!st) st = drain(ctx, s, o, y, blk); /* the worker is behind: wait */
            if (!st) usleep(1000);
        }
        in += n;
        if (!st) st = drain(ctx, s, o, y, blk);
    }
    if (!st && have)
        fprintf(stderr, "tfswa: stream: the input ended inside a frame (%zu bytes dropped)\n",
                have);
    if (!st && tfswa_stream_flush(s) != TFSWA_OK)
        st = tf_err(TF_EUSER, "%s", tfswa_last_error(ctx));
    if (!st) st = drain(ctx, s, o, y, blk);
    for (int f = 0; f < (o->files ? K : 1) && !st; f++)
        if (fflush(o->out[f])) st = tf_err(TF_EUSER, "output: write failed: %s", strerror(errno));
    free(raw), free(x), free(y), free(o->bytes);
    if (st) return cli_fail(st);
    fprintf(stderr, "stream: %lld frames in, %lld out", (long long)in, (long long)o->written);
    if (o->clipped) fprintf(stderr, ", %lld samples clipped", (long long)o->clipped);
    fprintf(stderr, "\n");
    return 0;
}

int cmd_stream(int argc, char **argv) {
    if (cli_wants_help(argc, argv, USAGE)) return 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    tf_status st = TF_OK;
    const char *out = cli_flag_out(&a, &st);
    if (st) return cli_fail(st);
    const char *ckpts[MAX_CKPT];
    int nck = cli_flag_all(&a, "checkpoint", ckpts, MAX_CKPT, &st);
    if (st) return cli_fail(st);
    tfswa_stream_params sp = tfswa_stream_default_params();
    const char *stems = cli_flag_str(&a, "stems", &st);
    if (!st) sp.instrumental = cli_flag_bool(&a, "instrumental", 0, &st);
    long long rate = st ? 0 : cli_flag_int(&a, "rate", 44100, &st);
    long long ch = st ? 0 : cli_flag_int(&a, "channels", 2, &st);
    const char *fmt = st ? NULL : cli_flag_str(&a, "format", &st);
    if (!st) sp.segment = cli_flag_double(&a, "segment", 0, &st);
    if (!st) sp.overlap = cli_flag_double(&a, "overlap", sp.overlap, &st);
    if (!st) sp.max_latency = cli_flag_double(&a, "max_latency", 0, &st);
    if (!st) sp.threaded = cli_flag_bool(&a, "threaded", 0, &st);
    long long blk = st ? 0 : cli_flag_int(&a, "block", 1024, &st);
    long long threads = st ? 0 : cli_flag_int(&a, "num_threads", 0, &st);
    const char *prec = st ? NULL : cli_flag_str(&a, "precision", &st);
    const char *bk = st ? NULL : cli_flag_str(&a, "backend", &st);
    if (st) return cli_fail(st);
    const char *pos[4];
    int npos = cli_positional(&a, pos, 4);
    if ((st = cli_check_unused(&a))) return cli_fail(st);
    if (npos > 0)
        return cli_fail(
            tf_err(TF_EUSER, "stream: unexpected argument '%s' (input is stdin)", pos[0]));
    if (nck < 1) return cli_fail(tf_err(TF_EUSER, "stream: no --checkpoint given"));
    if (rate < 1 || rate > 1000000)
        return cli_fail(tf_err(TF_EUSER, "--rate: %lld is not in [1, 1000000]", rate));
    if (ch != 1 && ch != 2) return cli_fail(tf_err(TF_EUSER, "--channels: %lld is not 1 or 2", ch));
    int s16 = 0;
    if (fmt && !strcasecmp(fmt, "s16"))
        s16 = 1;
    else if (fmt && strcasecmp(fmt, "f32"))
        return cli_fail(tf_err(TF_EUSER, "--format: '%s' is not f32 or s16", fmt));
    if (blk < 1 || blk > (1 << 20))
        return cli_fail(tf_err(TF_EUSER, "--block: %lld is not in [1, 1048576]", blk));
    if (threads < 0 || threads > 4096)
        return cli_fail(tf_err(TF_EUSER, "--num_threads: %lld is not in [0, 4096]", threads));
    if (isatty(STDIN_FILENO))
        return cli_fail(
            tf_err(TF_EUSER, "stream: stdin is a terminal (pipe raw PCM in; see --help)"));
    tfswa_options opt = tfswa_default_options();
    if ((st = cli_precision_flags(prec, bk, &opt.precision, &opt.backend))) return cli_fail(st);
    opt.n_threads = (int)threads;
    sp.max_block = blk > 65536 ? blk : 0;

    int status;
    tfswa_context *ctx = tfswa_open_with(ckpts, nck, &opt, &status);
    if (!ctx) {
        fprintf(stderr, "tfswa: %s\n", tfswa_last_error(NULL));
        return status == TFSWA_ERR_INTERNAL ? 1 : 2;
    }
    if (stems && (st = parse_stems(ctx, stems, &sp.stems))) {
        tfswa_close(ctx);
        return cli_fail(st);
    }
    tfswa_stream *s = tfswa_stream_open(ctx, (int)ch, (int)rate, &sp);
    if (!s) {
        fprintf(stderr, "tfswa: %s\n", tfswa_last_error(ctx));
        tfswa_close(ctx);
        return 2;
    }
    sink o;
    memset(&o, 0, sizeof o);
    o.s16 = s16, o.ch = (int)ch, o.K = tfswa_stream_n_outputs(s);
    int rc = 0;
    char path[TF_PATH_MAX * 2];
    if (out && (st = tf_mkdirs(out))) rc = cli_fail(st);
    if (out && !rc) {
        o.files = 1;
        for (int j = 0; j < o.K && !rc; j++) {
            snprintf(path, sizeof path, "%s/%s.raw", out, tfswa_stream_output_name(s, j));
            if (!(o.out[j] = fopen(path, "wb"))) {
                fprintf(stderr, "tfswa: %s: cannot write: %s\n", path, strerror(errno));
                rc = 2;
            }
        }
    } else if (!out) {
        o.out[0] = stdout;
    }
    if (!rc) {
        fprintf(stderr, "stream: %s, %lld Hz %s %s -> ", tfswa_describe(ctx), rate,
                ch == 1 ? "mono" : "stereo", s16 ? "s16" : "f32");
        for (int j = 0; j < o.K; j++)
            fprintf(stderr, "%s%s", j ? ", " : "", tfswa_stream_output_name(s, j));
        const int64_t D = tfswa_stream_latency(s);
        fprintf(stderr, "%s; latency %lld frames (%.3f s), segment %g s%s\n",
                out ? " files" : (o.K > 1 ? " interleaved in this order" : ""), (long long)D,
                (double)D / (double)rate, tfswa_stream_segment(s), sp.threaded ? ", threaded" : "");
        rc = run(ctx, s, &o, blk);
    }
    for (int j = 0; j < o.K && o.files; j++)
        if (o.out[j] && fclose(o.out[j]) && !rc) {
            fprintf(stderr, "tfswa: output file: close failed: %s\n", strerror(errno));
            rc = 2;
        }
    tfswa_stream_close(s);
    tfswa_close(ctx);
    return rc;
}
