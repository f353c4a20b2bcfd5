/* CPU emulation of NCCL over MPI (see nccl.h): "device" buffers are host memory here. */
#include "nccl.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID_MAGIC   "tfswa-emu-nccl-id"
#define COMM_MAGIC 0x6e63636cu

struct ncclComm {
    unsigned magic;
    int nranks, rank;
};

static long n_calls, n_comms;
static size_t n_elems;

void emu_nccl_stats(long *calls, size_t *elems, long *comms) {
    *calls = n_calls, *elems = n_elems, *comms = n_comms;
}

static ncclResult_t bad(const char *fn, const char *why) {
    fprintf(stderr, "emulated %s: %s\n", fn, why);
    return ncclInvalidArgument;
}

static int mpi_up(void) {
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    return up && !down;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return bad("ncclGetUniqueId", "id is NULL");
    memset(id, 0, sizeof *id);
    static int made;
    snprintf(id->internal, sizeof id->internal, "%s %ld %d", ID_MAGIC, (long)getpid(), ++made);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    if (!comm) return bad("ncclCommInitRank", "comm is NULL");
    *comm = NULL;
    if (!mpi_up()) return bad("ncclCommInitRank", "MPI is not initialised (run under mpirun)");
    int wr = -1, ws = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    MPI_Comm_size(MPI_COMM_WORLD, &ws);
    if (nranks != ws) return bad("ncclCommInitRank", "nranks is not the MPI world's size");
    if (rank < 0 || rank >= nranks || rank != wr)
        return bad("ncclCommInitRank", "rank is not this process's MPI rank");
    if (strncmp(id.internal, ID_MAGIC, strlen(ID_MAGIC)) != 0)
        return bad("ncclCommInitRank", "the id did not come from ncclGetUniqueId");
    /* every rank must hold rank 0's id (the bootstrap broadcast): compare (collective, as
     * the real call is) */
    ncclUniqueId root = id;
    if (MPI_Bcast(&root, (int)sizeof root, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ncclSystemError;
    int same = memcmp(&root, &id, sizeof id) == 0, all = 0;
    if (MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ncclSystemError;
    if (!all) return bad("ncclCommInitRank", "the ranks hold different ids (not broadcast)");
    struct ncclComm *c = calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    c->magic = COMM_MAGIC, c->nranks = nranks, c->rank = rank;
    *comm = c;
    n_comms++;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm || comm->magic != COMM_MAGIC) return bad("ncclCommDestroy", "not a communicator");
    comm->magic = 0;
    free(comm);
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
    if (!comm || comm->magic != COMM_MAGIC) return bad("ncclAllReduce", "not a communicator");
    if (stream) return bad("ncclAllReduce", "a stream other than the legacy default (NULL)");
    if (count && (!sendbuff || !recvbuff)) return bad("ncclAllReduce", "a NULL buffer");
    MPI_Datatype t;
    size_t es;
    if (datatype == ncclFloat32)
        t = MPI_FLOAT, es = sizeof(float);
    else if (datatype == ncclFloat64)
        t = MPI_DOUBLE, es = sizeof(double);
    else
        return bad("ncclAllReduce", "data type not emulated");
    MPI_Op o = op == ncclSum || op == ncclAvg ? MPI_SUM
               : op == ncclMax                ? MPI_MAX
               : op == ncclMin                ? MPI_MIN
                                              : MPI_OP_NULL;
    if (o == MPI_OP_NULL) return bad("ncclAllReduce", "reduction not emulated");
    if (!mpi_up()) return bad("ncclAllReduce", "MPI is not initialised");
    n_calls++, n_elems += count;
    for (size_t off = 0; off < count;) {
        const size_t m = count - off < (size_t)INT_MAX ? count - off : (size_t)INT_MAX;
        char *r = (char *)recvbuff + off * es;
        const void *s = sendbuff == recvbuff ? MPI_IN_PLACE : (const char *)sendbuff + off * es;
        if (MPI_Allreduce(s, r, (int)m, t, o, MPI_COMM_WORLD) != MPI_SUCCESS)
            return ncclSystemError;
        if (op == ncclAvg)
            for (size_t i = 0; i < m; i++) {
                if (datatype == ncclFloat32)
                    ((float *)r)[i] /= (float)comm->nranks;
                else
                    ((double *)r)[i] /= (double)comm->nranks;
            }
        off += m;
    }
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (!comm || comm->magic != COMM_MAGIC) return bad("ncclCommAbort", "not a communicator");
    comm->magic = 0;
    free(comm);
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess:
        return "no error";
    case ncclUnhandledCudaError:
        return "unhandled cuda error (emulated)";
    case ncclSystemError:
        return "unhandled system error (emulated: an MPI call failed)";
    case ncclInternalError:
        return "internal error (emulated)";
    case ncclInvalidArgument:
        return "invalid argument (emulated)";
    case ncclInvalidUsage:
        return "invalid usage (emulated)";
    }
    return "unknown result code (emulated)";
}
