/* CPU emulation of the NCCL calls src/train/step_cuda.c makes, for tests/gpu run under
 * mpirun (tests/gpu/run_emulated.sh with MPI_NP=2): "device" memory is host memory, so a
 * collective is the MPI one on the same buffers (tests/gpu/emu/nccl_emu.c). The ids, values
 * and layouts are NCCL's (nccl.h of NCCL 2.28) for the part used. Not emulated: streams
 * (the call completes before it returns; only the legacy default stream NULL is accepted,
 * the one the device model's work runs on), group calls, the other collectives. */
#ifndef TFSWA_EMU_NCCL_H
#define TFSWA_EMU_NCCL_H
#include <stddef.h>

#include "cuda_runtime_api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
    char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;
typedef struct ncclComm *ncclComm_t;

typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5
} ncclResult_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;
typedef enum { ncclFloat32 = 7, ncclFloat = 7, ncclFloat64 = 8, ncclDouble = 8 } ncclDataType_t;

/* an id naming this job (the MPI job of the caller): rank 0 makes it, the others get it by
 * broadcast */
ncclResult_t ncclGetUniqueId(ncclUniqueId *id);
/* checks: MPI is up, nranks = the MPI world's size, rank = this process's MPI rank, the id
 * came from ncclGetUniqueId and is the same on every rank (compared with rank 0's) */
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommAbort(ncclComm_t comm); /* the same here: nothing is ever in flight */
/* MPI_Allreduce over the world (in place when sendbuff == recvbuff); float32/float64; sum,
 * max, min, avg (the sum divided by nranks); stream must be NULL */
ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream);
const char *ncclGetErrorString(ncclResult_t result);

/* for the tests: the ncclAllReduce calls made by this process and the elements they
 * reduced, and the communicators created, since the start */
void emu_nccl_stats(long *allreduce_calls, size_t *allreduce_elems, long *comms_created);

#ifdef __cplusplus
}
#endif
#endif
