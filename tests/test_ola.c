/* Streaming overlap-add: an identity model gives back its input; streaming in any block
 * sizes equals one whole-buffer push; memory does not grow with the input (counted, and
 * measured as the peak resident set of a child process). */
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsp/ola.h"
#include "test.h"
#include "test_child.h"
#include "util/rng.h"

typedef struct {
    int S;
    int64_t calls_frames;
} model_ctx;

/* stem s = (s + 1) * mixture: the exact expected output of OLA is (s + 1) * input */
static tf_status scaled_identity(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    model_ctx *m = ctx;
    for (int b = 0; b < nb; b++)
        for (int s = 0; s < m->S; s++)
            for (int c = 0; c < 2; c++)
                for (int64_t i = 0; i < L; i++)
                    out[(((size_t)b * m->S + s) * 2 + c) * L + i] =
                        (float)(s + 1) * mix[((size_t)b * 2 + c) * L + i];
    m->calls_frames += nb * L;
    return TF_OK;
}

typedef struct {
    int S;
    int64_t n, cap;
    float *buf; /* (S, 2, cap) */
} sink_ctx;

static tf_status collect(void *ctx, const float *stems, int64_t n, int64_t stride) {
    sink_ctx *k = ctx;
    if (k->n + n > k->cap) return tf_err(TF_EINTERNAL, "sink overflow");
    for (int s = 0; s < k->S * 2; s++)
        for (int64_t i = 0; i < n; i++)
            k->buf[(size_t)s * k->cap + k->n + i] = stems[(size_t)s * stride + i];
    k->n += n;
    return TF_OK;
}

/* Run OLA over x (2, N) pushed in blocks of `block` frames (0 = random sizes). */
static int run(const float *x, int64_t N, int64_t L, double ov, int batch, int64_t block,
               float *out, size_t *bytes) {
    const int S = 2;
    model_ctx m = {S, 0};
    sink_ctx k = {S, 0, N, out};
    tf_ola_cfg cfg = {S, L, ov, batch};
    tf_ola *o;
    if (tf_ola_open(&o, &cfg, scaled_identity, &m, collect, &k)) return -1;
    tf_rng r;
    tf_rng_seed(&r, 5, (uint64_t)N, (uint64_t)L, 0);
    int64_t pos = 0;
    float *tmp = malloc(sizeof(float) * 2 * (size_t)(N + 1));
    while (pos < N) {
        int64_t n = block ? block : 1 + (int64_t)tf_rng_below(&r, (uint64_t)(2 * L));
        if (n > N - pos) n = N - pos;
        for (int c = 0; c < 2; c++)
            for (int64_t i = 0; i < n; i++) tmp[(size_t)c * n + i] = x[(size_t)c * N + pos + i];
        if (tf_ola_push(o, tmp, n, n)) return free(tmp), tf_ola_close(o), -1;
        pos += n;
    }
    free(tmp);
    int rc = tf_ola_finish(o) ? -1 : 0;
    if (bytes) *bytes = tf_ola_bytes(o);
    tf_ola_close(o);
    return rc || k.n != N ? -1 : 0;
}

static void test_identity_returns_input(void) {
    const int64_t L = 1000;
    const int64_t lens[] = {1, 137, 999, 1000, 1001, 5432, 20000};
    const double ovs[] = {0.0, 0.25, 0.5, 0.75};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t oi = 0; oi < 4; oi++)
            for (int batch = 1; batch <= 3; batch += 2) {
                int64_t N = lens[li];
                float *x = malloc(sizeof(float) * 2 * N), *y = calloc(2 * 2 * N, sizeof(float));
                tf_rng r;
                tf_rng_seed(&r, 1, (uint64_t)N, 0, 0);
                for (int64_t i = 0; i < 2 * N; i++) x[i] = (float)tf_rng_range(&r, -1, 1);
                CHECK(run(x, N, L, ovs[oi], batch, 4096, y, NULL) == 0);
                double err = 0;
                for (int s = 0; s < 2; s++)
                    for (int64_t i = 0; i < 2 * N; i++)
                        err = fmax(err, fabs(y[(size_t)s * 2 * N + i] - (s + 1) * x[i]));
                CHECKF(err < 1e-5, "N=%lld overlap=%g batch=%d: max error %g", (long long)N,
                       ovs[oi], batch, err);
                free(x), free(y);
            }
}

static void test_streaming_equals_whole_buffer(void) {
    const int64_t N = 12345, L = 777;
    float *x = malloc(sizeof(float) * 2 * N), *a = calloc(4 * N, sizeof(float)),
          *b = calloc(4 * N, sizeof(float));
    tf_rng r;
    tf_rng_seed(&r, 2, 0, 0, 0);
    for (int64_t i = 0; i < 2 * N; i++) x[i] = (float)tf_rng_normal(&r);
    CHECK(run(x, N, L, 0.3, 2, N, a, NULL) == 0); /* one push */
    CHECK(run(x, N, L, 0.3, 2, 0, b, NULL) == 0); /* random block sizes */
    CHECK(memcmp(a, b, sizeof(float) * 4 * N) == 0);
    free(x), free(a), free(b);
}

static void test_memory_independent_of_length(void) {
    size_t b1 = 0, b2 = 0;
    const int64_t L = 500;
    int64_t Ns[2] = {2000, 200000};
    for (int t = 0; t < 2; t++) {
        float *x = calloc(2 * Ns[t], sizeof(float)), *y = calloc(4 * Ns[t], sizeof(float));
        CHECK(run(x, Ns[t], L, 0.25, 4, 3000, y, t ? &b2 : &b1) == 0);
        free(x), free(y);
    }
    CHECK(b1 > 0 && b1 == b2);
    tf_ola_cfg cfg = {2, L, 0.25, 4};
    CHECK(b1 == tf_ola_plan_bytes(&cfg)); /* the plan is what is allocated */
}

/* ---- measured memory: a child streams a song through an engine; the parent reads the
 * child's peak resident set (wait4's ru_maxrss) ---- */

/* input sample i of channel c: a cheap deterministic function, so neither side needs the
 * song in memory */
static float song(int64_t i, int c) {
    return (float)((uint32_t)(i * 2654435761u + 40503u * (uint32_t)c) % 2001u) / 1000.f - 1.f;
}

typedef struct {
    int S;
    int64_t n;
    double err;
} check_sink;

/* stem s must be (s + 1) * input: checked and dropped */
static tf_status check(void *ctx, const float *stems, int64_t n, int64_t stride) {
    check_sink *k = ctx;
    for (int s = 0; s < k->S; s++)
        for (int c = 0; c < 2; c++)
            for (int64_t i = 0; i < n; i++)
                k->err = fmax(k->err, fabs(stems[((size_t)s * 2 + c) * stride + i] -
                                           (s + 1) * song(k->n + i, c)));
    k->n += n;
    return TF_OK;
}

/* In the child: N frames in blocks of 4096 through a 2-stem engine of 2 s chunks at
 * 44.1 kHz (batch 2). 0 when every frame came back right. */
static int stream_song(int64_t N) {
    const int S = 2;
    model_ctx m = {S, 0};
    check_sink k = {S, 0, 0};
    tf_ola_cfg cfg = {S, 88200, 0.25, 2};
    tf_ola *o;
    float blk[2 * 4096];
    if (tf_ola_open(&o, &cfg, scaled_identity, &m, check, &k)) return 1;
    for (int64_t pos = 0; pos < N; pos += 4096) {
        int64_t n = N - pos < 4096 ? N - pos : 4096;
        for (int c = 0; c < 2; c++)
            for (int64_t i = 0; i < n; i++) blk[c * 4096 + i] = song(pos + i, c);
        if (tf_ola_push(o, blk, n, 4096)) return tf_ola_close(o), 1;
    }
    int rc = tf_ola_finish(o) || k.n != N || !(k.err < 1e-5);
    tf_ola_close(o);
    return rc;
}

static long child_maxrss(int64_t N) {
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(stream_song(N));
    return test_wait_maxrss(pid);
}

/* 20 s and 200 s of 44.1 kHz stereo peak at the same resident set within 10 %: the engine
 * (tf_ola_plan_bytes: 8.9 MB) and the process's own pages, against 70 MB for holding the
 * 200 s input as float. Also under AddressSanitizer: the engine allocates nothing per
 * block, so ASan's quarantine of freed blocks does not grow with the song. */
static void test_memory_measured(void) {
    const int64_t N[2] = {20 * 44100, 200 * 44100};
    long kib[2], parent = -1;
    for (int t = 0; t < 2; t++) {
        parent = test_self_anon_kib();
        kib[t] = child_maxrss(N[t]);
        CHECKF(kib[t] > 0, "the child streaming %lld frames failed", (long long)N[t]);
    }
    tf_ola_cfg cfg = {2, 88200, 0.25, 2};
    fprintf(stderr, "  peak RSS: 20 s %ld KiB, 200 s %ld KiB (engine %zu KiB, parent %ld KiB)\n",
            kib[0], kib[1], tf_ola_plan_bytes(&cfg) / 1024, parent);
    CHECKF(parent >= 0 && parent < kib[0] * 0.8,
           "this process's RssAnon (%ld KiB) could hide the child's peak (%ld KiB)", parent,
           kib[0]);
    CHECKF(kib[0] > 0 && kib[1] <= kib[0] * 1.10, "peak RSS %ld KiB for 20 s, %ld KiB for 200 s",
           kib[0], kib[1]);
}

static void test_bad_overlap_is_user_error(void) {
    tf_ola_cfg cfg = {1, 100, 1.0, 1};
    tf_ola *o;
    CHECK(tf_ola_open(&o, &cfg, scaled_identity, NULL, collect, NULL) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "overlap") != NULL);
}

int main(void) {
    RUN(test_memory_measured); /* first: this process is still small (see test_self_anon_kib) */
    RUN(test_identity_returns_input);
    RUN(test_streaming_equals_whole_buffer);
    RUN(test_memory_independent_of_length);
    RUN(test_bad_overlap_is_user_error);
    return TEST_END();
}
