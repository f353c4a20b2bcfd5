/* Data parallelism over MPI processes (OpenMPI). The same binary runs without mpirun:
 * MPI is initialised only when a launcher started us (OMPI_COMM_WORLD_SIZE, PMIX_RANK or
 * PMI_RANK in the environment); otherwise rank 0 of 1 and every call is local. */
#ifndef TFSWA_DIST_H
#define TFSWA_DIST_H
#include <stddef.h>

#include "util/err.h"

typedef struct {
    int rank, size;
    int mpi; /* 1 if MPI was initialised by tf_dist_init */
} tf_dist;

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

#endif
