#include "train/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

tf_status tf_dist_init(tf_dist *d, int *argc, char ***argv) {
    d->rank = 0, d->size = 1, d->mpi = 0;
    if (!launched_by_mpirun()) return TF_OK;
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok && MPI_Init(argc, argv) != MPI_SUCCESS) return tf_err(TF_EINTERNAL, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->mpi = 1;
    return TF_OK;
}

void tf_dist_abort(const tf_dist *d, int code) {
    if (d->mpi && d->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void tf_dist_finalize(tf_dist *d) {
    if (d->mpi) MPI_Finalize();
    d->mpi = 0;
}

/* MPI counts are int: reduce in pieces of at most INT_MAX elements. */
static tf_status sum(const tf_dist *d, void *x, size_t n, MPI_Datatype t, size_t esize) {
    if (!d->mpi || d->size == 1) return TF_OK;
    for (size_t off = 0; off < n;) {
        size_t m = n - off < (size_t)INT_MAX ? n - off : (size_t)INT_MAX;
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)x + off * esize, (int)m, t, MPI_SUM,
                          MPI_COMM_WORLD) != MPI_SUCCESS)
            return tf_err(TF_EINTERNAL, "MPI_Allreduce of %zu values failed", m);
        off += m;
    }
    return TF_OK;
}

tf_status tf_dist_sum_f32(const tf_dist *d, float *x, size_t n) {
    return sum(d, x, n, MPI_FLOAT, sizeof(float));
}

tf_status tf_dist_sum_f64(const tf_dist *d, double *x, size_t n) {
    return sum(d, x, n, MPI_DOUBLE, sizeof(double));
}

tf_status tf_dist_bcast(const tf_dist *d, void *buf, size_t n) {
    if (!d->mpi || d->size == 1) return TF_OK;
    for (size_t off = 0; off < n;) {
        size_t m = n - off < (size_t)INT_MAX ? n - off : (size_t)INT_MAX;
        if (MPI_Bcast((char *)buf + off, (int)m, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return tf_err(TF_EINTERNAL, "MPI_Bcast of %zu bytes failed", m);
        off += m;
    }
    return TF_OK;
}

void tf_dist_barrier(const tf_dist *d) {
    if (d->mpi && d->size > 1) MPI_Barrier(MPI_COMM_WORLD);
}
