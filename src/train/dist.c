#include "train/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

tf_status tf_dist_init(tf_dist *d, int *argc, char ***argv) {
    d->rank = 0, d->size = 1, d->mpi = 0, d->local_rank = 0, d->local_size = 1;
    if (!launched_by_mpirun()) return TF_OK;
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok && MPI_Init(argc, argv) != MPI_SUCCESS) return tf_err(TF_EINTERNAL, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->mpi = 1;
    /* the ranks that share this node (its memory): the node-local rank picks the GPU */
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        return tf_err(TF_EINTERNAL, "MPI_Comm_split_type (the ranks of this node) failed");
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_size);
    MPI_Comm_free(&node);
    return TF_OK;
}

tf_status tf_dist_device(const tf_dist *d, const tf_device *given, int count, const char *what,
                         const char *value, tf_device *out) {
    tf_device dev = *given;
    if (dev.kind == TF_DEVICE_CUDA && d->size > 1) {
        dev.index = given->index + d->local_rank;
        if (count > 0 && dev.index >= count) {
            char nm[32];
            tf_device_name(&dev, nm, sizeof nm);
            return tf_err(TF_EUSER,
                          "%s %s: rank %d needs %s, but this machine has %d CUDA device%s: start "
                          "at most as many ranks per node as GPUs",
                          what, value, d->rank, nm, count, count == 1 ? "" : "s");
        }
    }
    *out = dev;
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
