/* Shared pieces of the `tfswa bench` subcommands: clock, statistics, and the "machine"
 * string every bench JSON carries. */
#ifndef TFSWA_BENCH_UTIL_H
#define TFSWA_BENCH_UTIL_H
#include <stddef.h>

#include "util/clock.h"

/* Median and minimum of v (n > 0,) ; the median does not reorder v. */
double bench_median(const double *v, int n);
double bench_min(const double *v, int n);
/* "Linux 6.1 x86_64, <cpu model>, <N> cpus, <threads> threads[, OPENBLAS_CORETYPE=..],
 * wait policy <passive (set by tfswa) | OMP_WAIT_POLICY=.. GOMP_SPINCOUNT=.. (user's) |
 * libgomp default>"; threads <= 0 leaves that part out. */
void bench_machine(char *out, size_t n, int threads);

/* Bytes of memory in use on the current CUDA device now (cudaMemGetInfo: total - free; the
 * first call in a process creates the CUDA context). NAN in a build without CUDA or when
 * the call fails. */
double bench_device_bytes_in_use(void);

/* The envelope every bench JSON shares (shared/DESIGN.md "Bench JSON"):
 * {"bench": name, "machine": bench_machine(threads), "config": {}, "results": {}}.
 * *config and *results point into it (owned by the root). NULL when out of memory. */
struct cJSON;
struct cJSON *bench_json_open(const char *name, int threads, struct cJSON **config,
                              struct cJSON **results);
/* Print root as one line on stdout and free it. 0, or 1 when it could not be printed
 * (out of memory). */
int bench_json_emit(struct cJSON *root);

#endif
