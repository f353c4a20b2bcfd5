/* Procedural dataset: determinism, layout, mixture = sum of stems, silent passages,
 * stem character (bass spectrum, drum transients, vocal pitch), CLI errors. */
#include <fftw3.h>
#include <limits.h>
#include <sndfile.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/synth.h"
#include "test.h"
#include "util/fsutil.h"

static const char *FILES[5] = {"mixture", "vocals", "drums", "bass", "other"};
enum { SR = 44100 };

static char g_tmp[256];

static void rm_rf(const char *dir) {
    if (tf_remove_tree(dir)) fprintf(stderr, "  %s\n", tf_errmsg());
}

/* whole file into memory; NULL if missing */
static unsigned char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*n + 1);
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) free(b), b = NULL;
    if (b) b[*n] = 0;
    fclose(f);
    return b;
}

/* 1 if the two files exist and have identical bytes */
static int same_file(const char *a, const char *b) {
    long na = 0, nb = 0;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, (size_t)na) == 0;
    free(x), free(y);
    return same;
}

static void track_path(char *out, size_t n, const char *root, int split, int idx, uint64_t seed,
                       const char *file) {
    char name[128];
    tf_synth_track_name(name, sizeof name, split, idx, seed);
    snprintf(out, n, "%s/%s/%s/%s.wav", root, split ? "test" : "train", name, file);
}

static tf_status make(const char *root, int train, int test, double seconds, uint64_t seed) {
    tf_synth_opts o;
    tf_synth_defaults(&o);
    o.train_tracks = train, o.test_tracks = test, o.seconds = seconds, o.seed = seed;
    o.threads = 2;
    return tf_synth_dataset(root, &o);
}

/* Same arguments: same bytes. Track i does not depend on the number of tracks. Another
 * seed: other audio. */
static void test_deterministic_and_independent_of_count(void) {
    char a[300], b[300], c[300], d[300], pa[600], pb[600];
    snprintf(a, sizeof a, "%s/a", g_tmp), snprintf(b, sizeof b, "%s/b", g_tmp);
    snprintf(c, sizeof c, "%s/c", g_tmp), snprintf(d, sizeof d, "%s/d", g_tmp);
    CHECK(make(a, 2, 1, 2.0, 5) == TF_OK);
    CHECK(make(b, 2, 1, 2.0, 5) == TF_OK);
    CHECK(make(c, 3, 1, 2.0, 5) == TF_OK);
    CHECK(make(d, 2, 1, 2.0, 6) == TF_OK);
    for (int split = 0; split < 2; split++)
        for (int i = 0; i < (split ? 1 : 2); i++)
            for (int f = 0; f < 5; f++) {
                track_path(pa, sizeof pa, a, split, i, 5, FILES[f]);
                track_path(pb, sizeof pb, b, split, i, 5, FILES[f]);
                CHECKF(same_file(pa, pb), "%s differs between two identical runs", pa);
                track_path(pb, sizeof pb, c, split, i, 5, FILES[f]);
                CHECKF(same_file(pa, pb), "%s differs with --tracks 3", pa);
            }
    track_path(pa, sizeof pa, c, 0, 2, 5, "mixture"); /* the extra track exists */
    CHECK(access(pa, R_OK) == 0);
    for (int i = 0; i < 2; i++) { /* other seed: different names and different audio */
        track_path(pa, sizeof pa, a, 0, i, 5, "mixture");
        track_path(pb, sizeof pb, d, 0, i, 6, "mixture");
        CHECK(access(pb, R_OK) == 0);
        CHECK(!same_file(pa, pb));
    }
    /* two tracks of one dataset differ too */
    track_path(pa, sizeof pa, a, 0, 0, 5, "mixture");
    track_path(pb, sizeof pb, a, 0, 1, 5, "mixture");
    CHECK(!same_file(pa, pb));
    rm_rf(b), rm_rf(c), rm_rf(d);
}

/* read a whole PCM file as int16 interleaved; checks the format */
static short *read_short(const char *path, SF_INFO *si) {
    memset(si, 0, sizeof *si);
    SNDFILE *f = sf_open(path, SFM_READ, si);
    if (!f) return NULL;
    short *x = malloc(sizeof(short) * (size_t)(si->frames * si->channels) + 2);
    if (x && sf_readf_short(f, x, si->frames) != si->frames) free(x), x = NULL;
    sf_close(f);
    return x;
}

/* 2 train + 1 test tracks of 2 s: 15 WAV files, 44.1 kHz stereo PCM_16, equal lengths;
 * the mixture is the sum of the stems within 1 LSB at every sample, and nothing clips. */
static void test_layout_and_mixture_sum(void) {
    char a[300], p[600];
    snprintf(a, sizeof a, "%s/a", g_tmp);
    int nfiles = 0, worst = 0;
    long long nonzero = 0;
    for (int split = 0; split < 2; split++)
        for (int i = 0; i < (split ? 1 : 2); i++) {
            short *x[5] = {0};
            SF_INFO si[5];
            for (int f = 0; f < 5; f++) {
                track_path(p, sizeof p, a, split, i, 5, FILES[f]);
                x[f] = read_short(p, &si[f]);
                CHECKF(x[f] != NULL, "cannot read %s", p);
                if (!x[f]) continue;
                nfiles++;
                CHECK(si[f].samplerate == SR);
                CHECK(si[f].channels == 2);
                CHECK(si[f].format == (SF_FORMAT_WAV | SF_FORMAT_PCM_16));
                CHECK(si[f].frames == 2 * SR);
            }
            if (!x[0] || !x[1] || !x[2] || !x[3] || !x[4]) goto next;
            for (long long j = 0; j < 2LL * 2 * SR; j++) {
                int sum = x[1][j] + x[2][j] + x[3][j] + x[4][j];
                int d = abs(x[0][j] - sum);
                if (d > worst) worst = d;
                nonzero += x[0][j] != 0;
                CHECK(x[0][j] > -32767 && x[0][j] < 32767); /* no clipping */
            }
        next:
            for (int f = 0; f < 5; f++) free(x[f]);
        }
    CHECK(nfiles == 15);
    CHECKF(worst <= 1, "mixture - sum of stems up to %d LSB", worst);
    CHECK(nonzero > 2LL * 2 * SR * 3 / 2); /* the mixtures are mostly not silent */
}

/* mean |x| over both channels per 0.25 s block < 0.001 */
static double silent_fraction(const float *x, int64_t n) {
    int64_t blk = SR / 4, nb = n / blk, silent = 0;
    for (int64_t b = 0; b < nb; b++) {
        double m = 0;
        for (int64_t i = b * blk; i < (b + 1) * blk; i++) m += fabsf(x[i]) + fabsf(x[n + i]);
        silent += m / (2.0 * blk) < 0.001;
    }
    return (double)silent / (double)nb;
}

enum { NTR = 6 };
#define SEC 8.0

typedef struct {
    float *buf;
    float *stems[4];
    int64_t n;
} track;

static int render(track *t, uint64_t seed) {
    t->n = (int64_t)(SEC * SR);
    t->buf = malloc(sizeof(float) * 8 * (size_t)t->n);
    if (!t->buf) return 0;
    for (int s = 0; s < 4; s++) t->stems[s] = t->buf + (size_t)s * 2 * (size_t)t->n;
    return tf_synth_track(t->stems, t->n, SR, tf_synth_track_seed(seed, 0, (int)(seed % 7))) ==
           TF_OK;
}

static track g_tr[NTR];

/* Silent passages: per stem over 6 tracks of 8 s in [0.1, 0.6], overall in [0.2, 0.4];
 * silent blocks are exact zeros or nearly; every stem plays somewhere. */
static void test_silence_fraction(void) {
    double per[4] = {0}, all = 0;
    for (int t = 0; t < NTR; t++)
        for (int s = 0; s < 4; s++) {
            double f = silent_fraction(g_tr[t].stems[s], g_tr[t].n);
            CHECKF(f < 0.95, "track %d stem %d silent %.2f", t, s, f);
            per[s] += f / NTR, all += f / (4 * NTR);
        }
    for (int s = 0; s < 4; s++)
        CHECKF(per[s] >= 0.1 && per[s] <= 0.6, "stem %d silent %.3f", s, per[s]);
    CHECKF(all >= 0.2 && all <= 0.4, "mean silent fraction %.3f", all);
    printf("  silent fraction: vocals %.3f drums %.3f bass %.3f other %.3f, mean %.3f\n", per[0],
           per[1], per[2], per[3], all);
}

/* energy fraction below `hz` of the mono sum, by FFT (float64 accumulation) */
static double low_fraction(const float *x, int64_t n, double hz) {
    float *in = fftwf_alloc_real((size_t)n);
    fftwf_complex *out = fftwf_alloc_complex((size_t)n / 2 + 1);
    if (!in || !out) return -1;
    fftwf_plan p = fftwf_plan_dft_r2c_1d((int)n, in, out, FFTW_ESTIMATE);
    for (int64_t i = 0; i < n; i++) in[i] = x[i] + x[n + i];
    fftwf_execute(p);
    double lo = 0, tot = 0;
    for (int64_t k = 0; k <= n / 2; k++) {
        double e = (double)out[k][0] * out[k][0] + (double)out[k][1] * out[k][1];
        tot += e;
        if ((double)k * SR / n < hz) lo += e;
    }
    fftwf_destroy_plan(p);
    fftwf_free(in), fftwf_free(out);
    return tot > 0 ? lo / tot : -1;
}

/* Bass: most energy below 300 Hz; much more so than vocals and other. */
static void test_bass_is_low(void) {
    double bass = 0, voc = 0, oth = 0;
    for (int t = 0; t < NTR; t++) {
        double f = low_fraction(g_tr[t].stems[2], g_tr[t].n, 300);
        CHECKF(f > 0.7, "track %d: bass energy below 300 Hz only %.3f", t, f);
        bass += f / NTR;
        voc += low_fraction(g_tr[t].stems[0], g_tr[t].n, 300) / NTR;
        oth += low_fraction(g_tr[t].stems[3], g_tr[t].n, 300) / NTR;
    }
    CHECKF(bass > 0.8, "bass below 300 Hz: %.3f", bass);
    CHECK(bass > voc + 0.2 && bass > oth + 0.2);
    printf("  energy below 300 Hz: bass %.3f vocals %.3f other %.3f\n", bass, voc, oth);
}

/* Hi-hats, snare and crash are high-passed noise: drums carry far more energy above
 * 5 kHz than the pitched stems. */
static void test_drums_have_noise_highs(void) {
    double r[4] = {0};
    for (int t = 0; t < NTR; t++)
        for (int s = 0; s < 4; s++)
            r[s] += (1.0 - low_fraction(g_tr[t].stems[s], g_tr[t].n, 5000)) / NTR;
    printf("  energy above 5 kHz: vocals %.4f drums %.4f bass %.4f other %.4f\n", r[0], r[1], r[2],
           r[3]);
    CHECKF(r[1] > 0.05, "drums above 5 kHz: %.4f", r[1]);
    CHECK(r[1] > 3 * r[0] && r[1] > 3 * r[2] && r[1] > 3 * r[3]);
}

/* Autocorrelation pitch of 40 ms windows: (normalised peak, f0 in Hz) searched 70-1000 Hz. */
static double acf_pitch(const float *x, int64_t n, int64_t at, int W, double *f0) {
    int lmin = SR / 1000, lmax = SR / 70;
    double e0 = 0, best = -1;
    int bl = 0;
    float seg[2048 + 700];
    for (int i = 0; i < W + lmax; i++) seg[i] = x[at + i] + x[n + at + i];
    for (int i = 0; i < W; i++) e0 += (double)seg[i] * seg[i];
    if (e0 <= 0) return 0;
    double prev = 1;
    int falling = 1;
    for (int l = lmin; l <= lmax; l++) {
        double c = 0, el = 0;
        for (int i = 0; i < W; i++)
            c += (double)seg[i] * seg[i + l], el += (double)seg[i + l] * seg[i + l];
        double r = c / sqrt(e0 * el + 1e-30);
        if (falling && r > prev) falling = 0; /* skip the zero-lag lobe */
        if (!falling && r > best) best = r, bl = l;
        prev = r;
    }
    *f0 = bl ? (double)SR / bl : 0;
    return best;
}

/* Vocals are voiced: in most sounding windows a strong periodicity with f0 in a singing
 * range; drums are not. */
static void test_vocals_are_pitched(void) {
    const int W = 1764; /* 40 ms */
    int voiced = 0, loud = 0, in_range = 0, dvoiced = 0, dloud = 0;
    for (int t = 0; t < NTR; t++) {
        const track *tr = &g_tr[t];
        for (int64_t at = 0; at + W + SR / 70 < tr->n; at += SR / 10) {
            for (int s = 0; s < 2; s++) {
                const float *x = tr->stems[s];
                double m = 0, f0 = 0;
                for (int i = 0; i < W; i++) m += fabsf(x[at + i]);
                if (m / W < 0.01) continue;
                double r = acf_pitch(x, tr->n, at, W, &f0);
                if (s == 0) {
                    loud++;
                    if (r > 0.8) voiced++, in_range += f0 >= 80 && f0 <= 1000;
                } else {
                    dloud++;
                    dvoiced += r > 0.8;
                }
            }
        }
    }
    CHECK(loud > 50);
    CHECKF(voiced > 0.7 * loud, "vocals voiced in %d of %d windows", voiced, loud);
    CHECKF(in_range > 0.95 * voiced, "vocal f0 in 80-1000 Hz in %d of %d", in_range, voiced);
    CHECKF(dvoiced < 0.3 * dloud, "drums periodic in %d of %d windows", dvoiced, dloud);
    printf("  voiced windows: vocals %d/%d, drums %d/%d\n", voiced, loud, dvoiced, dloud);
}

/* Stems stay in range on their own and as a sum; bad arguments are user errors. */
static void test_track_levels_and_errors(void) {
    for (int t = 0; t < NTR; t++) {
        float peak = 0, mpeak = 0;
        int64_t n = g_tr[t].n;
        for (int64_t i = 0; i < 2 * n; i++) {
            float m = 0;
            for (int s = 0; s < 4; s++) {
                float v = fabsf(g_tr[t].stems[s][i]);
                peak = v > peak ? v : peak;
                m += g_tr[t].stems[s][i];
            }
            mpeak = fabsf(m) > mpeak ? fabsf(m) : mpeak;
        }
        float top = peak > mpeak ? peak : mpeak; /* scaled to a target in [0.5, 0.9] */
        CHECKF(top <= 0.9f + 1e-6f && top >= 0.5f - 1e-6f, "track %d peak %.3f", t, top);
    }
    float buf[4][2 * 100];
    float *st[4] = {buf[0], buf[1], buf[2], buf[3]};
    CHECK(tf_synth_track(st, 100, SR, 1) == TF_OK); /* a tiny track works */
    CHECK(tf_synth_track(st, 0, SR, 1) == TF_EUSER);
    CHECK(tf_synth_track(st, 100, 1000, 1) == TF_EUSER);
    float q[4] = {0.5f, -1.5f, 1e-5f, 2.0f};
    CHECK(tf_synth_quantize(q, 4) == 2);
    CHECK(q[0] * 32767.f == 16384.f && q[1] == -1.f && q[2] == 0.f && q[3] == 1.f);
}

/* run `tfswa synth ARGS` (next to this test binary), stderr into a file; exit status */
static int run_cli(const char *args, char *err, size_t n) {
    char exe[PATH_MAX], cmd[2 * PATH_MAX + 600], errf[400];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return -1;
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = 0; /* build/tests */
    snprintf(errf, sizeof errf, "%s/stderr.txt", g_tmp);
    snprintf(cmd, sizeof cmd, "'%s/../tfswa' synth %s >/dev/null 2>'%s'", exe, args, errf);
    int rc = system(cmd);
    long m = 0;
    unsigned char *e = slurp(errf, &m);
    snprintf(err, n, "%s", e ? (char *)e : "");
    free(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(void) {
    char args[800], err[2048];
    CHECK(run_cli("--help", err, sizeof err) == 0);
    snprintf(args, sizeof args, "'%s/e' --tracks 0", g_tmp);
    CHECK(run_cli(args, err, sizeof err) == 2);
    CHECK(strstr(err, "--tracks") != NULL);
    snprintf(args, sizeof args, "'%s/e' --tracks two", g_tmp);
    CHECK(run_cli(args, err, sizeof err) == 2);
    snprintf(args, sizeof args, "'%s/e' --seconds -1", g_tmp);
    CHECK(run_cli(args, err, sizeof err) == 2);
    snprintf(args, sizeof args, "'%s/e' --tracks 1 --bogus 3", g_tmp);
    CHECK(run_cli(args, err, sizeof err) == 2);
    CHECK(run_cli("--tracks 1", err, sizeof err) == 2); /* no OUT */
    /* the dataset of the first test exists: refused, naming the folder, unless --overwrite */
    snprintf(args, sizeof args, "'%s/a' --tracks 2 --test_tracks 1 --seconds 2 --seed 5", g_tmp);
    CHECK(run_cli(args, err, sizeof err) == 2);
    CHECKF(strstr(err, "Synth 0000 - Seed 5") != NULL, "message: %s", err);
    snprintf(args, sizeof args,
             "'%s/a' --tracks 2 --test_tracks 1 --seconds 2 --seed 5 --overwrite", g_tmp);
    CHECK(run_cli(args, err, sizeof err) == 0);
    /* the rewritten dataset is still the same bytes as a fresh library run */
    char f[300], pa[300], pf[600], after[600];
    snprintf(f, sizeof f, "%s/f", g_tmp);
    CHECK(make(f, 1, 0, 2.0, 5) == TF_OK);
    snprintf(pa, sizeof pa, "%s/a", g_tmp);
    track_path(after, sizeof after, pa, 0, 0, 5, "vocals");
    track_path(pf, sizeof pf, f, 0, 0, 5, "vocals");
    CHECK(same_file(after, pf));
    rm_rf(f);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tfswa_test_synth_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    int ok = 1;
    for (int t = 0; t < NTR; t++) ok &= render(&g_tr[t], 100 + (uint64_t)t);
    if (!ok) {
        fprintf(stderr, "rendering failed: %s\n", tf_errmsg());
        return 1;
    }
    RUN(test_deterministic_and_independent_of_count);
    RUN(test_layout_and_mixture_sum);
    RUN(test_silence_fraction);
    RUN(test_bass_is_low);
    RUN(test_drums_have_noise_highs);
    RUN(test_vocals_are_pitched);
    RUN(test_track_levels_and_errors);
    RUN(test_cli);
    for (int t = 0; t < NTR; t++) free(g_tr[t].buf);
    rm_rf(g_tmp);
    return TEST_END();
}
