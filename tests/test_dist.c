/* train/dist.h: the node-local rank of an MPI job and the GPU each rank takes from it
 * (tf_dist_device: the given device + the node-local rank, one clear line when the node has
 * too few GPUs). The local rank is read from a real 2-rank job: this program run again
 * under mpirun (`test_dist --child` prints each rank's view). */
#include "test.h"
#include "train/dist.h"
#include "util/err.h"

/* tf_dist_device of given "cuda:<gi>" on rank `rank` (local rank `lr`) of `size`, `count`
 * devices: the status, *idx the index chosen */
static tf_status map(int rank, int lr, int size, int gi, int count, int *idx) {
    const tf_dist d = {
        .rank = rank, .size = size, .mpi = size > 1, .local_rank = lr, .local_size = size};
    const tf_device g = {TF_DEVICE_CUDA, gi};
    tf_device out = {TF_DEVICE_CPU, -1};
    tf_status s = tf_dist_device(&d, &g, count, "--device", gi ? "cuda:2" : "cuda", &out);
    *idx = s == TF_OK ? out.index : -1;
    if (s == TF_OK) CHECK(out.kind == TF_DEVICE_CUDA);
    return s;
}

static void test_device_of_each_rank(void) {
    int idx = -1;
    /* one process: the given device, unchecked here (tf_device_open checks it) */
    CHECK(map(0, 0, 1, 0, 1, &idx) == TF_OK && idx == 0);
    CHECK(map(0, 0, 1, 2, 1, &idx) == TF_OK && idx == 2);
    /* several ranks: given + local rank */
    CHECK(map(0, 0, 2, 0, 2, &idx) == TF_OK && idx == 0);
    CHECK(map(1, 1, 2, 0, 2, &idx) == TF_OK && idx == 1);
    CHECK(map(5, 1, 8, 2, 4, &idx) == TF_OK && idx == 3); /* second node: local rank 1 */
    CHECK(map(3, 3, 4, 0, 8, &idx) == TF_OK && idx == 3);
    /* count unknown (no CUDA here): mapped, tf_device_open says why there is no device */
    CHECK(map(1, 1, 2, 0, 0, &idx) == TF_OK && idx == 1);
    /* the CPU: unchanged */
    const tf_dist d2 = {.rank = 1, .size = 2, .mpi = 1, .local_rank = 1, .local_size = 2};
    tf_device cpu = {TF_DEVICE_CPU, 0}, out;
    CHECK(tf_dist_device(&d2, &cpu, 1, "--device", "cpu", &out) == TF_OK &&
          out.kind == TF_DEVICE_CPU && out.index == 0);
}

static void test_too_few_gpus_is_one_line(void) {
    int idx = 0;
    CHECK(map(1, 1, 2, 0, 1, &idx) == TF_EUSER);
    CHECKF(!strcmp(tf_errmsg(), "--device cuda: rank 1 needs cuda:1, but this machine has 1 "
                                "CUDA device: start at most as many ranks per node as GPUs"),
           "%s", tf_errmsg());
    CHECK(map(3, 3, 4, 2, 4, &idx) == TF_EUSER); /* cuda:2 + 3 = cuda:5 of 4 */
    CHECKF(strstr(tf_errmsg(), "--device cuda:2: rank 3 needs cuda:5, but this machine has 4 "
                               "CUDA devices") &&
               !strchr(tf_errmsg(), '\n'),
           "%s", tf_errmsg());
    /* the last device is fine */
    CHECK(map(3, 3, 4, 0, 4, &idx) == TF_OK && idx == 3);
}

/* --child (under mpirun): "rank R of W local L of K" */
static int child(int argc, char **argv) {
    tf_dist d;
    if (tf_dist_init(&d, &argc, &argv) != TF_OK) return 1;
    printf("rank %d of %d local %d of %d\n", d.rank, d.size, d.local_rank, d.local_size);
    fflush(stdout);
    tf_dist_finalize(&d);
    return 0;
}

static void test_local_rank_from_mpi(void) {
    tf_dist one;
    int argc = 1;
    char *args[] = {"test_dist", NULL}, **argv = args;
    CHECK(tf_dist_init(&one, &argc, &argv) == TF_OK); /* not under mpirun: no MPI */
    CHECK(one.size == 1 && one.rank == 0 && !one.mpi && one.local_rank == 0 && one.local_size == 1);
    char self[4096], cmd[8400];
    CHECK(test_build_path(self, sizeof self, "tests/test_dist") == 0);
    int st = -1;
    char *v = test_run_capture("command -v mpirun", &st);
    free(v);
    if (st != 0) {
        CHECKF(0, "mpirun not found (openmpi-bin is a declared dependency)");
        return;
    }
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
             "ASAN_OPTIONS=detect_leaks=0 timeout -s KILL 60 mpirun -np 2 -x ASAN_OPTIONS "
             "--oversubscribe --bind-to none '%s' --child",
             self);
    char *out = test_run_capture(cmd, &st);
    CHECKF(st == 0 && out, "exit %d", st);
    if (!out) return;
    /* one node: the local rank is the rank, both ranks are local */
    CHECKF(strstr(out, "rank 0 of 2 local 0 of 2\n") && strstr(out, "rank 1 of 2 local 1 of 2\n"),
           "%s", out);
    free(out);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child")) return child(argc, argv);
    RUN(test_device_of_each_rank);
    RUN(test_too_few_gpus_is_one_line);
    RUN(test_local_rank_from_mpi);
    return TEST_END();
}
