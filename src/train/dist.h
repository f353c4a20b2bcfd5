/* Data parallelism over MPI processes (OpenMPI). The same binary runs without mpirun:
 * MPI is initialised only when a launcher started us (OMPI_COMM_WORLD_SIZE, PMIX_RANK or
 * PMI_RANK in the environment); otherwise rank 0 of 1 and every call is local. */
#ifndef TFSWA_DIST_H
#define TFSWA_DIST_H
#include <stddef.h>

#include "util/device.h"
#include "util/err.h"

typedef struct {
    int rank, size;
    int mpi; /* 1 if MPI was initialised by tf_dist_init */
    /* this rank among the ranks of its node (MPI_Comm_split_type MPI_COMM_TYPE_SHARED): the
     * GPU it uses (tf_dist_device); 0 and 1 without MPI */
    int local_rank, local_size;
} tf_dist;

/* one process, no MPI: `tf_dist d = TF_DIST_SINGLE;` */
#define TF_DIST_SINGLE                                                                             \
    { .rank = 0, .size = 1, .mpi = 0, .local_rank = 0, .local_size = 1 }

tf_status tf_dist_init(tf_dist *d, int *argc, char ***argv);
void tf_dist_finalize(tf_dist *d);
/* End every rank of the job now (MPI_Abort with `code`) when more than one runs: for an
 * error on one rank while the others may be waiting in a collective. No-op otherwise. */
void tf_dist_abort(const tf_dist *d, int code);
/* In-place sums over all ranks. */
tf_status tf_dist_sum_f32(const tf_dist *d, float *x, size_t n);
tf_status tf_dist_sum_f64(const tf_dist *d, double *x, size_t n);
/* Broadcast n bytes from rank 0. */
tf_status tf_dist_bcast(const tf_dist *d, void *buf, size_t n);
void tf_dist_barrier(const tf_dist *d);

/* The device of this rank: with several ranks each takes its own GPU of its node,
 * cuda:(given->index + local_rank) of the `count` CUDA devices there; one rank, or the CPU:
 * *given itself. TF_EUSER, one line, when that device does not exist: "<what> <value>: rank
 * R needs cuda:I, but this machine has K CUDA device(s): start at most as many ranks per node
 * as GPUs" (value: as the user wrote it). count < 1 (unknown): no check (tf_device_open
 * says why there is no device). */
tf_status tf_dist_device(const tf_dist *d, const tf_device *given, int count, const char *what,
                         const char *value, tf_device *out);

#endif
