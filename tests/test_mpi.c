/* Data parallel over MPI (train/train.h): 2 ranks x 1 accumulation step compute the same
 * optimizer step as 1 rank x 2 accumulation steps on the same data. Compared on what a
 * uniform gradient scale error changes (parameters alone cannot show one: Adam's update
 * m / sqrt(v) does not depend on the gradient's scale):
 *   - the averaged gradient g of the first step, read out of the checkpoint after ONE
 *     update from m = v = 0: m = (1 - beta1) g, v = (1 - beta2) g^2 (weight decay and
 *     clipping off, so nothing else enters g);
 *   - the second step's gradient, g2 = (m2 - beta1 m1) / (1 - beta1), which rank 1
 *     computes at its own weights (so ranks that drift apart show here);
 *   - the BN running statistics, against the formula each setup must follow;
 *   - the parameters.
 * The runs use the tfswa binary of this build (mpirun for the ranks), on a synthetic
 * dataset. */
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "data/index.h"
#include "data/synth.h"
#include "model/model.h"
#include "test.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "util/clock.h"
#include "util/config.h"

static char root[] = "/tmp/tfswa-mpi-XXXXXX";
static char data[300];
static char tfswa[1024]; /* the tfswa binary of this build */

/* Adam's defaults (optim/optim.h) and BatchNorm's momentum (model/model.h: PyTorch's) */
#define BETA1       0.9f
#define BETA2       0.999f
#define BN_MOMENTUM 0.1

/* Parameters, Adam m and v, BN running statistics of a run's last checkpoint (or of the
 * initialised model when `which` is NULL). */
typedef struct {
    size_t n, nb;
    float *p, *m, *v, *b;
    tf_train_progress pr;
} snap;

static void free_snap(snap *s) {
    free(s->p), free(s->m), free(s->v), free(s->b);
    memset(s, 0, sizeof *s);
}

static int load_snap(const char *run, const char *which, snap *s) {
    memset(s, 0, sizeof *s);
    char path[600];
    snprintf(path, sizeof path, "%s/%s/config.yaml", root, run);
    tf_config c;
    tf_config_defaults(&c);
    tf_model *m;
    if (tf_config_load_yaml(&c, path)) {
        fprintf(stderr, "  %s: %s\n", path, tf_errmsg());
        return -1;
    }
    tf_model_config mc = tf_train_model_config(&c);
    if (tf_model_create(&m, &mc, 1, 4096, 1)) {
        fprintf(stderr, "  %s: %s\n", path, tf_errmsg());
        return -1;
    }
    const tf_model_sizes *sz = tf_model_get_plan(m);
    s->n = sz->n_params, s->nb = sz->n_buffers;
    s->p = malloc(sizeof(float) * s->n), s->m = calloc(s->n, sizeof(float));
    s->v = calloc(s->n, sizeof(float)), s->b = malloc(sizeof(float) * (s->nb + 1));
    int rc = s->p && s->m && s->v && s->b ? 0 : -1;
    if (!rc && which) {
        snprintf(path, sizeof path, "%s/%s/checkpoints/%s", root, run, which);
        tf_opt_state st = {s->n, s->m, s->v, NULL};
        rc = tf_ckpt_load_weights(path, m) || tf_ckpt_load_state(path, &s->pr, &st) ? -1 : 0;
        if (rc) fprintf(stderr, "  %s: %s\n", path, tf_errmsg());
    }
    if (!rc) {
        memcpy(s->p, tf_model_params(m), sizeof(float) * s->n);
        memcpy(s->b, tf_model_buffers(m), sizeof(float) * s->nb);
    }
    tf_model_free(m);
    if (rc) free_snap(s);
    return rc;
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* tfswa train on `ranks` MPI ranks (1: no mpirun) with `accum` accumulation steps for
 * `steps` optimizer steps into root/name. Under SAN=1 the MPI ranks run without
 * LeakSanitizer: OpenMPI, its plugins and hwloc keep allocations from MPI_Init until exit
 * (most with stacks LSan cannot attribute, so no suppression file matches them); the
 * same training code runs leak-checked in the 1-rank runs. */
static int train(const char *name, int ranks, int accum, int steps) {
    char cmd[8192], launcher[512] = "";
    if (ranks > 1)
        snprintf(launcher, sizeof launcher,
                 "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                 "ASAN_OPTIONS=detect_leaks=0 mpirun -np %d -x ASAN_OPTIONS --oversubscribe "
                 "--bind-to none ",
                 ranks);
    /* weight decay and clipping off: the first update's m is (1 - beta1) g exactly */
    snprintf(cmd, sizeof cmd,
             "%s%s train --data_root %s --preset tiny --segment_seconds 0.5 --batch_size 2 "
             "--num_workers 0 --val_every 0 --ckpt_every 0 --num_threads 1 --seed 7 "
             "--weight_decay 0 --grad_clip 0 --ema_decay 0 --optimizer adam --max_steps %d "
             "--gradient_accumulation_steps %d --output_dir %s/%s > %s/%s.log 2>&1",
             launcher, tfswa, data, steps, accum, root, name, root, name);
    int rc = run_cmd(cmd);
    if (rc) fprintf(stderr, "  exit status %d: %s\n", rc, cmd);
    return rc;
}

/* max over i of |a - b| / (|b| + floor * max |b|): a relative error that does not blow up
 * on the (near) zeros of b */
static double rel_err(const double *a, const double *b, size_t n, double floor) {
    double bmax = 0, e = 0;
    for (size_t i = 0; i < n; i++) bmax = fmax(bmax, fabs(b[i]));
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(a[i] - b[i]) / (fabs(b[i]) + floor * bmax));
    return e;
}

static double max_abs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* g = m / (1 - beta1) of a first update (m0 = NULL) or g2 = (m2 - beta1 m1) / (1 - beta1) */
static double *grad_of(const float *m, const float *m_prev, size_t n) {
    double *g = malloc(sizeof(double) * n);
    const double b1 = BETA1;
    for (size_t i = 0; g && i < n; i++)
        g[i] = ((double)m[i] - (m_prev ? b1 * m_prev[i] : 0.0)) / (1.0 - b1);
    return g;
}

static double *to_double(const float *x, size_t n) {
    double *d = malloc(sizeof(double) * n);
    for (size_t i = 0; d && i < n; i++) d[i] = x[i];
    return d;
}

static void test_two_ranks_equal_accumulation(void) {
    if (run_cmd("command -v mpirun > /dev/null") != 0) {
        CHECKF(0, "mpirun not found (openmpi-bin is a declared dependency)");
        return;
    }
    /* one step: 2 ranks x 1, 1 rank x 2, and 1 rank x 1 (micro-batch 0 alone, for BN) */
    CHECK(train("mpi2_1", 2, 1, 1) == 0);
    CHECK(train("acc2_1", 1, 2, 1) == 0);
    CHECK(train("one_1", 1, 1, 1) == 0);
    /* two steps straight (no resume: a resume would reload rank 1 from rank 0's files) */
    CHECK(train("mpi2_2", 2, 1, 2) == 0);
    CHECK(train("acc2_2", 1, 2, 2) == 0);
    snap i0, M1, A1, O1, M2, A2;
    int ok = load_snap("acc2_1", NULL, &i0) == 0;
    ok = load_snap("mpi2_1", "last", &M1) == 0 && ok;
    ok = load_snap("acc2_1", "last", &A1) == 0 && ok;
    ok = load_snap("one_1", "last", &O1) == 0 && ok;
    ok = load_snap("mpi2_2", "last", &M2) == 0 && ok;
    ok = load_snap("acc2_2", "last", &A2) == 0 && ok;
    CHECK(ok);
    if (!ok) goto done;
    const size_t n = A1.n, nb = A1.nb;
    CHECK(M1.pr.updates == 1 && A1.pr.updates == 1 && O1.pr.updates == 1);
    CHECK(M2.pr.updates == 2 && A2.pr.updates == 2);
    CHECK(nb > 0);

    /* 1. the first step's averaged gradient: same value, not only the same direction */
    double *gm = grad_of(M1.m, NULL, n), *ga = grad_of(A1.m, NULL, n);
    double *vm = to_double(M1.v, n), *va = to_double(A1.v, n);
    double e_g = rel_err(gm, ga, n, 1e-3), e_v = rel_err(vm, va, n, 1e-3);
    CHECKF(max_abs(ga, n) > 1e-6, "max |g| %g: no gradient", max_abs(ga, n));
    CHECKF(e_g < 2e-4, "first step gradient (Adam m / (1 - beta1)): max relative error %g", e_g);
    CHECKF(e_v < 1e-4, "first step Adam v: max relative error %g", e_v);
    /* the read-out itself: v = (1 - beta2) g^2 of the same g (no decay or clipping in g) */
    double *vg = malloc(sizeof(double) * n);
    for (size_t i = 0; vg && i < n; i++) vg[i] = (1.0 - BETA2) * ga[i] * ga[i];
    double e_mv = vg ? rel_err(va, vg, n, 1e-6) : 1;
    CHECKF(e_mv < 1e-5, "v vs (1 - beta2) (m / (1 - beta1))^2: max relative error %g", e_mv);
    free(vg);
    free(gm), free(ga), free(vm), free(va);

    /* 2. BN running statistics r (momentum k, r0 the initial ones). Each micro-batch j
     * has batch statistics s_j (the same in every setup: same weights, same data).
     *   1 rank x 1:  R1 = (1-k) r0 + k s0
     *   1 rank x 2:  RA = (1-k) R1 + k s1                 (momentum applied twice)
     *   2 ranks x 1: RM = ((1-k) r0 + k s0 + (1-k) r0 + k s1) / 2   (rank average)
     * so RM = (R1 + (1-k) r0 + RA - (1-k) R1) / 2, and RM != RA in general. */
    double e_bn = 0, d_ma = 0;
    const double k = BN_MOMENTUM;
    for (size_t i = 0; i < nb; i++) {
        double r0 = i0.b[i], R1 = O1.b[i], RA = A1.b[i];
        double want = 0.5 * (R1 + (1 - k) * r0 + RA - (1 - k) * R1);
        e_bn = fmax(e_bn, fabs(M1.b[i] - want) / fmax(1.0, fabs(want)));
        d_ma = fmax(d_ma, fabs((double)M1.b[i] - RA) / fmax(1.0, fabs(RA)));
    }
    CHECKF(e_bn < 2e-6, "BN running stats of 2 ranks vs the rank average: max error %g", e_bn);
    CHECKF(d_ma > 1e-4, "BN running stats: 2 ranks equal 1 rank x 2 (%g): the test is blind", d_ma);

    /* 3. parameters after the first step (Adam: ~ lr sign(g), 1e-3 here) */
    double *pm = to_double(M1.p, n), *pa = to_double(A1.p, n), *p0 = to_double(i0.p, n);
    double e_p = 0, moved = 0;
    for (size_t i = 0; i < n; i++)
        e_p = fmax(e_p, fabs(pm[i] - pa[i])), moved = fmax(moved, fabs(pa[i] - p0[i]));
    CHECKF(e_p < 5e-6 && moved > 1e-4, "first step parameters: max difference %g (moved %g)", e_p,
           moved);
    free(pm), free(pa), free(p0);

    /* 4. the second step, from the weights each rank holds after the first */
    double *g2m = grad_of(M2.m, M1.m, n), *g2a = grad_of(A2.m, A1.m, n);
    double e_g2 = rel_err(g2m, g2a, n, 1e-3);
    CHECKF(max_abs(g2a, n) > 1e-6, "max |g2| %g", max_abs(g2a, n));
    CHECKF(e_g2 < 2e-3, "second step gradient: max relative error %g", e_g2);
    free(g2m), free(g2a);
    double e_p2 = 0;
    for (size_t i = 0; i < n; i++) e_p2 = fmax(e_p2, fabs((double)M2.p[i] - A2.p[i]));
    CHECKF(e_p2 < 1e-5, "second step parameters: max difference %g", e_p2);
    fprintf(stderr,
            "  relative errors 2 ranks vs 1 rank x 2: g %.2g, v %.2g, g2 %.2g; BN %.2g "
            "(RM - RA %.2g); params %.2g, %.2g\n",
            e_g, e_v, e_g2, e_bn, d_ma, e_p, e_p2);
done:
    free_snap(&i0), free_snap(&M1), free_snap(&A1), free_snap(&O1), free_snap(&M2), free_snap(&A2);
}

/* One rank fails while the other waits for it in a collective: rank 0 cannot write its
 * first checkpoint (a file named `checkpoints` stands where its folder goes; only rank 0
 * writes) while rank 1 goes on into the next step's allreduce. Every rank must end, well
 * within 30 s, with rank 0's message; without tf_dist_abort rank 1 waits forever. (A
 * file-size limit would be the natural fault, but Open MPI's own shared-memory files
 * trip it first.) */
static void test_failing_rank_ends_the_job(void) {
    if (run_cmd("command -v mpirun > /dev/null") != 0) {
        CHECKF(0, "mpirun not found (openmpi-bin is a declared dependency)");
        return;
    }
    char cmd[8192], log[600], out[600];
    snprintf(log, sizeof log, "%s/fail.log", root);
    snprintf(out, sizeof out, "%s/fail", root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && touch '%s/checkpoints'", out, out);
    CHECK(run_cmd(cmd) == 0);
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
             "ASAN_OPTIONS=detect_leaks=0 timeout -s KILL 60 mpirun -np 2 -x ASAN_OPTIONS "
             "--oversubscribe --bind-to none %s train --data_root %s --preset tiny "
             "--segment_seconds 0.5 --batch_size 2 --num_workers 0 --val_every 0 --ckpt_every 1 "
             "--num_threads 1 --seed 7 --max_steps 4 --output_dir %s > %s 2>&1",
             tfswa, data, out, log);
    const double t0 = tf_now_s();
    int rc = run_cmd(cmd);
    const double dt = tf_now_s() - t0;
    printf("  a failing rank 0: exit status %d after %.1f s\n", rc, dt);
    CHECKF(rc != 0 && rc != 124 && rc != 137, "exit status %d (124/137: killed at the timeout)",
           rc);
    CHECKF(dt < 30, "the job took %.1f s to end", dt);
    FILE *f = fopen(log, "r");
    char line[1024];
    int why = 0, stop = 0;
    while (f && fgets(line, sizeof line, f)) {
        why |= strstr(line, "checkpoints: exists and is not a directory") != NULL;
        stop |= strstr(line, "rank 0 of 2 failed") != NULL;
    }
    if (f) fclose(f);
    CHECKF(why && stop, "%s: no rank-0 error message (%d) or stop line (%d)", log, why, stop);
}

static int set_old_mtime(const char *p, const struct stat *s, int f, struct FTW *w) {
    (void)s, (void)w;
    if (f != FTW_F) return 0;
    struct timespec ts[2] = {{time(NULL) - 100, 0}, {time(NULL) - 100, 0}};
    return utimensat(AT_FDCWD, p, ts, 0);
}

/* A file that only rank 1 (or 0) reads goes bad after indexing: a validation track's stem
 * whose first bytes are overwritten (same size and mtime, so every rank's index takes it
 * from the cache). Validation is sharded, so only the rank that owns the track opens it;
 * the job must still end within 30 s, with that rank's message naming the file. */
static void test_bad_file_one_rank_reads(void) {
    char vdata[400], cmd[8192], log[600], out[600], bad[1200];
    snprintf(vdata, sizeof vdata, "%s/vdata", root);
    tf_synth_opts o;
    tf_synth_defaults(&o);
    o.train_tracks = 6, o.test_tracks = 1, o.seconds = 2, o.seed = 12;
    CHECKF(tf_synth_dataset(vdata, &o) == TF_OK, "synth: %s", tf_errmsg());
    CHECK(nftw(vdata, set_old_mtime, 16, FTW_PHYS) == 0); /* not "racy": cached next time */
    tf_config c;
    tf_config_defaults(&c);
    snprintf(c.root, sizeof c.root, "%s", vdata);
    c.valid_fraction = 0.5;
    tf_index *ix = NULL;
    tf_status st = tf_index_open(&ix, &c, NULL); /* writes the cache the ranks will read */
    CHECKF(st == TF_OK, "%s", tf_errmsg());
    if (st) return;
    bad[0] = 0;
    int n_valid = 0;
    for (int t = 0; t < ix->n_tracks; t++)
        if (ix->tracks[t].split == TF_SPLIT_VALID && n_valid++ == 0)
            snprintf(bad, sizeof bad, "%s", ix->tracks[t].stems[0].path);
    tf_index_close(ix);
    CHECKF(n_valid >= 2 && bad[0], "%d validation tracks", n_valid);
    if (!bad[0]) return;
    struct stat sb;
    FILE *f = NULL;
    CHECK(stat(bad, &sb) == 0 && (f = fopen(bad, "r+b")) != NULL);
    if (!f) return;
    CHECK(fwrite("JUNK", 1, 4, f) == 4); /* "RIFF" -> "JUNK": not audio any more */
    CHECK(fclose(f) == 0);
    struct timespec ts[2] = {sb.st_atim, sb.st_mtim};
    CHECK(utimensat(AT_FDCWD, bad, ts, 0) == 0);

    snprintf(log, sizeof log, "%s/badfile.log", root);
    snprintf(out, sizeof out, "%s/badfile", root);
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
             "ASAN_OPTIONS=detect_leaks=0 timeout -s KILL 60 mpirun -np 2 -x ASAN_OPTIONS "
             "--oversubscribe --bind-to none %s train --data_root %s --preset tiny "
             "--valid_fraction 0.5 --segment_seconds 0.5 --batch_size 2 --num_workers 0 "
             "--val_every 2 --ckpt_every 0 --num_threads 1 --seed 7 --max_steps 4 "
             "--output_dir %s > %s 2>&1",
             tfswa, vdata, out, log);
    const double t0 = tf_now_s();
    int rc = run_cmd(cmd);
    const double dt = tf_now_s() - t0;
    printf("  a file only one rank reads: exit status %d after %.1f s\n", rc, dt);
    CHECKF(rc != 0 && rc != 124 && rc != 137, "exit status %d (124/137: killed at the timeout)",
           rc);
    CHECKF(dt < 30, "the job took %.1f s to end", dt);
    f = fopen(log, "r");
    char line[2048];
    int why = 0, stop = 0;
    while (f && fgets(line, sizeof line, f)) {
        why |= strstr(line, bad) != NULL && strstr(line, "cannot read audio") != NULL;
        stop |= strstr(line, " of 2 failed") != NULL;
    }
    if (f) fclose(f);
    CHECKF(why && stop, "%s: no line naming %s (%d) or no stop line (%d)", log, bad, why, stop);
}

int main(void) {
    if (!mkdtemp(root) || test_build_path(tfswa, sizeof tfswa, "tfswa") != 0) return 1;
    snprintf(data, sizeof data, "%s/data", root);
    tf_synth_opts o;
    tf_synth_defaults(&o);
    o.train_tracks = 4, o.test_tracks = 1, o.seconds = 3, o.seed = 11;
    if (tf_synth_dataset(data, &o)) {
        fprintf(stderr, "synth: %s\n", tf_errmsg());
        return 1;
    }
    RUN(test_two_ranks_equal_accumulation);
    RUN(test_failing_rank_ends_the_job);
    RUN(test_bad_file_one_rank_reads);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return TEST_END();
}
