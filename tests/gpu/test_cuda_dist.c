/* Several GPUs: the device training step with 2 MPI ranks (src/train/step_cuda.c: the
 * gradient block and the BN running statistics averaged with NCCL) against the CPU step with
 * the same 2 ranks (train/step.c: averaged over MPI through host memory). Each rank takes its
 * own GPU (tf_dist_device: cuda:<local rank>) and its own micro-batches (rank-dependent
 * data); the tiny preset, batch 1, gradient accumulation 2, l1 loss, gradient clipping active,
 * EMA on, ONE optimizer step (the emulation is slow): the loss and the gradient norm, then the
 * weights, the Adam moments, the EMA weights and the BN running statistics against the CPU's
 * (test_cuda_step's tolerances), and every rank's against rank 0's (identical bits). In the
 * emulation also: one NCCL communicator, exactly two ncclAllReduce calls per step (the
 * gradient block and the BN buffers).
 *
 * Run as 2 ranks, one GPU each: mpirun --allow-run-as-root --oversubscribe -np 2
 * build-cuda/tests/gpu/test_cuda_dist; without a GPU: MPI_NP=2 tests/gpu/run_emulated.sh build
 * test_cuda_dist (NCCL over MPI, tests/gpu/emu/nccl.h). With fewer than 2 ranks or fewer GPUs
 * than ranks on a node (tools/gpu_check.sh runs it without mpirun on a one-GPU machine) it
 * says why and passes nothing: "0 passed, 0 failed", exit 0. */
#include "train/step_cuda.h"
#include "dsp/stft.h"
#include "gpu_test.h"
#include "model_ref.h"
#include "test.h"
#include "train/dist.h"
#include "util/rng.h"

#ifdef TFSWA_GPU_EMU
#include <nccl.h> /* emu_nccl_stats */
#define CONV_BACKEND TF_BACKEND_REF
#else
#define CONV_BACKEND TF_BACKEND_CUDA
#endif

static tf_dist dist;

typedef struct {
    float *mix, *tgt;
    int B, k;
    int64_t N;
    int S;
} batches;

/* micro-batch k of this rank's fixed random sequence (each rank its own data) */
static tf_status next_batch(void *ctx, tf_micro_batch *mb) {
    batches *b = ctx;
    const size_t nin = (size_t)b->B * 2 * b->N, nout = (size_t)b->B * b->S * 2 * b->N;
    tf_rng r;
    tf_rng_seed(&r, 0x5eed, 1 + (uint64_t)dist.rank, (uint64_t)b->k, 0);
    const float amp = 0.25f * (float)(1 + dist.rank); /* the ranks' gradients differ clearly */
    for (size_t i = 0; i < nin; i++) b->mix[i] = (float)tf_rng_range(&r, -amp, amp);
    for (size_t i = 0; i < nout; i++)
        b->tgt[i] = 0.3f * b->mix[i % nin] + (float)tf_rng_range(&r, -0.05, 0.05);
    b->k++;
    *mb = (tf_micro_batch){b->mix, b->tgt, b->B, b->N};
    return TF_OK;
}

/* near_where (gpu_test.h) with the rank in its messages */
static int rank_near(const char *what, const float *a, const float *b, size_t n, double tol,
                     const float *sel) {
    char w[128];
    snprintf(w, sizeof w, "rank %d: %s", dist.rank, what);
    return near_where(w, a, b, n, tol, sel);
}

/* x (n floats) is bit for bit rank 0's x on every rank; the answer is the same on all ranks */
static int same_as_rank0(const char *what, const float *x, size_t n) {
    float *r0 = hcopy(x, n);
    double differ = 0;
    if (tf_dist_bcast(&dist, r0, n * sizeof(float)) != TF_OK) differ = 1;
    if (memcmp(r0, x, n * sizeof(float))) {
        differ += 1;
        fprintf(stderr, "  rank %d: %s differ from rank 0's\n", dist.rank, what);
    }
    free(r0);
    if (tf_dist_sum_f64(&dist, &differ, 1) != TF_OK) return 0;
    return differ == 0;
}

/* a setup failure on one rank would leave the other waiting in a collective: end both */
static void fatal(const char *what) {
    fprintf(stderr, "test_cuda_dist: rank %d: %s: %s\n", dist.rank, what, tf_errmsg());
    fflush(stderr);
    tf_dist_abort(&dist, 1);
    exit(1);
}

static void test_two_ranks(void) {
    tf_config c = preset_config("tiny");
    c.batch_size = 1;
    c.gradient_accumulation_steps = 2;
    c.grad_clip = 1e-4;
    c.learning_rate = 1e-3;
    c.ema_decay = 0.9;
    c.loss = TF_LOSS_L1;
    const int64_t N = 4096;
    const int B = c.batch_size, S = c.n_targets;
    const tf_model_config mc = tf_train_model_config(&c);
    tf_model *m = NULL;
    tf_trainer *ct = NULL;
    tf_dtrainer *dt = NULL;
    tf_kernels *k = NULL;
    tf_stft *st = NULL;
    tf_arch a;
    /* the same initial weights on both ranks (the model's seeded initialisation), as a run's */
    if (tf_arch_from_config(&a, &mc) || tf_model_create(&m, &mc, B, N, 2) ||
        tf_trainer_open(&ct, &c, &dist, m, N) ||
        tf_kernels_create(&k, CONV_BACKEND, TF_DT_FP32, 2) || tf_stft_create(&st, a.n_fft, a.hop))
        fatal("CPU trainer");
    const size_t np = tf_model_get_plan(m)->n_params, nb = tf_model_get_plan(m)->n_buffers;
    CHECK(same_as_rank0("initial weights", tf_model_params(m), np));
    /* collective: creates the NCCL communicator */
    if (tf_dtrainer_open(&dt, &c, &dist, &a, N, k, st, tf_model_params(m), tf_model_buffers(m)))
        fatal("tf_dtrainer_open");
    float *p0 = hcopy(tf_model_params(m), np);
    batches bc = {host((size_t)B * 2 * N, 0, 0), host((size_t)B * S * 2 * N, 0, 0), B, 0, N, S};
    batches bd = {host((size_t)B * 2 * N, 0, 0), host((size_t)B * S * 2 * N, 0, 0), B, 0, N, S};
#ifdef TFSWA_GPU_EMU
    long calls0 = 0, comms = 0;
    size_t elems0 = 0;
    emu_nccl_stats(&calls0, &elems0, &comms);
    CHECK(comms == 1);
#endif
    int64_t uc = 0, ud = 0;
    tf_step_result rc, rd;
    CHECKF(tf_train_step(ct, 0, &uc, next_batch, &bc, &rc) == TF_OK, "%s", tf_errmsg());
    CHECKF(tf_dtrainer_step(dt, 0, &ud, next_batch, &bd, &rd) == TF_OK, "%s", tf_errmsg());
    printf("  rank %d: loss cpu %.9g device %.9g, norm cpu %.9g device %.9g\n", dist.rank, rc.loss,
           rd.loss, rc.grad_norm, rd.grad_norm);
#ifdef TFSWA_GPU_EMU
    long calls = 0;
    size_t elems = 0;
    emu_nccl_stats(&calls, &elems, &comms);
    printf("  rank %d: %ld ncclAllReduce calls, %zu floats (%zu parameters + %zu BN buffers)\n",
           dist.rank, calls - calls0, elems - elems0, np, nb);
    CHECK(calls - calls0 == 2 && elems - elems0 == np + nb);
#endif
    CHECK(rc.applied && rd.applied && uc == 1 && ud == 1);
    CHECK(rc.samples == 4 && rd.samples == 4); /* B x A x W */
    CHECK(fabs(rd.loss - rc.loss) <= 1e-4 * rc.loss);
    CHECK(fabs(rd.grad_norm - rc.grad_norm) <= 1e-3 * rc.grad_norm);
    CHECK(rc.grad_norm > c.grad_clip); /* clipping is active */
    float *p = host(np, 0, 0), *bu = host(nb, 0, 0), *mm = host(np, 0, 0), *vv = host(np, 0, 0),
          *ema = host(np, 0, 0);
    CHECK(tf_dtrainer_pull(dt, p, bu, mm, vv, ema) == TF_OK);
    /* as test_cuda_step: the weights' change where Adam's first moment is not noise, the
     * moments relative to their largest values */
    float *dp = host(np, 0, 0), *dc = host(np, 0, 0);
    for (size_t i = 0; i < np; i++) dp[i] = p[i] - p0[i], dc[i] = tf_model_params(m)[i] - p0[i];
    CHECK(rank_near("weight change", dp, dc, np, 2e-2, ct->opt.m));
    CHECK(rank_near("Adam m", mm, ct->opt.m, np, 5e-3, NULL));
    CHECK(rank_near("Adam v", vv, ct->opt.v, np, 1e-2, NULL));
    CHECK(rank_near("EMA weights", ema, ct->ema, np, 1e-4, NULL));
    CHECK(rank_near("running statistics", bu, tf_model_buffers(m), nb, 1e-5, NULL));
    /* every rank holds the same model after the step: the device's and the CPU's */
    CHECK(same_as_rank0("device weights", p, np));
    CHECK(same_as_rank0("device BN running statistics", bu, nb));
    CHECK(same_as_rank0("device Adam v", vv, np));
    CHECK(same_as_rank0("device EMA weights", ema, np));
    CHECK(same_as_rank0("CPU weights", tf_model_params(m), np));
    CHECK(same_as_rank0("CPU BN running statistics", tf_model_buffers(m), nb));
    free(p), free(bu), free(mm), free(vv), free(ema), free(dp), free(dc), free(p0);
    free(bc.mix), free(bc.tgt), free(bd.mix), free(bd.tgt);
    tf_dtrainer_close(dt);
    tf_trainer_close(ct);
    tf_model_free(m);
    tf_kernels_free(k);
    tf_stft_destroy(st);
}

int main(int argc, char **argv) {
    if (tf_dist_init(&dist, &argc, &argv) != TF_OK) {
        fprintf(stderr, "test_cuda_dist: %s\n", tf_errmsg());
        return 1;
    }
    if (!gpu_present("test_cuda_dist")) {
        tf_dist_abort(&dist, 1);
        return 1;
    }
    int count = 0;
    CU(cudaGetDeviceCount(&count));
    /* the same decision on every rank (a node may have fewer GPUs than another) */
    double short_of = dist.size < 2 || count < dist.local_size;
    tf_dist_sum_f64(&dist, &short_of, 1);
    if (short_of > 0) {
        if (dist.rank == 0)
            printf("test_cuda_dist: skipped: needs 2 or more MPI ranks, one GPU each (mpirun -np "
                   "2 test_cuda_dist); this run has %d rank%s, %d CUDA device%s on rank 0's "
                   "node\n",
                   dist.size, dist.size == 1 ? "" : "s", count, count == 1 ? "" : "s");
        tf_dist_finalize(&dist);
        return TEST_END();
    }
    tf_device dev;
    if (tf_dist_device(&dist, &(tf_device){TF_DEVICE_CUDA, 0}, count, "--device", "cuda", &dev))
        fatal("tf_dist_device");
    CU(cudaSetDevice(dev.index));
    printf("test_cuda_dist: rank %d of %d (local rank %d) on cuda:%d\n", dist.rank, dist.size,
           dist.local_rank, dev.index);
    RUN(test_two_ranks);
    const int rc = TEST_END();
    tf_dist_finalize(&dist);
    return rc;
}
