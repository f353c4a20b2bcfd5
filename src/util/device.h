/* Where the model runs: the CPU, or CUDA device N (`--device cpu|cuda|cuda:N`, config key
 * `device`, tfswa_options.device). Parsing works in every build; opening a CUDA device
 * needs a CUDA build (`make CUDA=1`: TFSWA_CUDA) and a usable GPU, and says clearly,
 * in one line, which of the two is missing. */
#ifndef TFSWA_DEVICE_H
#define TFSWA_DEVICE_H
#include <stddef.h>

#include "util/err.h"

typedef enum { TF_DEVICE_CPU = 0, TF_DEVICE_CUDA = 1 } tf_device_kind;

typedef struct {
    tf_device_kind kind;
    int index; /* the CUDA device number (TF_DEVICE_CUDA), 0 for the CPU */
} tf_device;

#define TF_DEVICE_MAX_INDEX 1023

typedef struct {
    tf_device dev;
    int count;      /* CUDA devices visible (0 for the CPU) */
    char name[256]; /* "NVIDIA H200", or "cpu" */
    int cc_major;   /* compute capability (CUDA) */
    int cc_minor;
    size_t total_bytes; /* device memory (CUDA) */
    size_t free_bytes;
    int bf16;            /* native bf16 arithmetic (CUDA: compute capability >= 8.0) */
    int multiprocessors; /* SMs (CUDA) */
    int driver_version;  /* e.g. 13000 (CUDA) */
    int runtime_version;
} tf_device_info;

/* "cpu" | "cuda" (device 0) | "cuda:N" (N decimal, 0..TF_DEVICE_MAX_INDEX): 1 and *out set,
 * else 0 (*out unchanged). */
int tf_device_parse(const char *s, tf_device *out);
/* "cpu" or "cuda:N". */
void tf_device_name(const tf_device *d, char *out, size_t n);
/* 1 when this library was built with CUDA (make CUDA=1). */
int tf_device_cuda_built(void);

/* Parse `value` given as `what` (e.g. "--device"): TF_EUSER "<what> <value>: expected cpu,
 * cuda or cuda:N" for a bad value. */
tf_status tf_device_from_string(const char *what, const char *value, tf_device *out);

/* Open d for this thread (CUDA: cudaSetDevice) and describe it in *info (may be NULL).
 * TF_EUSER, one line starting "<what> <given>: " (given: the value as the user wrote it,
 * NULL: tf_device_name) when the device cannot be used:
 *   "this tfswa was built without CUDA (build with make CUDA=1)",
 *   "no CUDA device: <CUDA error string>",
 *   "device N out of range (K CUDA devices: 0 to K-1)". */
tf_status tf_device_open(const tf_device *d, const char *what, const char *given,
                         tf_device_info *info);

/* "cuda:0 NVIDIA H200 (compute capability 9.0, 132 SMs, 139.8 GiB, 139.2 GiB free, bf16 yes)"
 * or "cpu". */
void tf_device_describe(const tf_device_info *info, char *out, size_t n);

/* The work that cannot run on a CUDA device yet (the model's forward and backward run on
 * the CPU only; the device memory plan exists: train/device_plan.h): TF_EUSER "<what> <given>:
 * <task> on CUDA is not implemented yet (...)" naming the device and what is missing; TF_OK for the
 * CPU. Call after tf_device_open. */
tf_status tf_device_not_yet(const tf_device_info *info, const char *what, const char *given,
                            const char *task);

#endif
