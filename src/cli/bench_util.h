/* Shared pieces of the `tfswa bench` subcommands: clock, statistics, and the "machine"
 * string every bench JSON carries. */
#ifndef TFSWA_BENCH_UTIL_H
#define TFSWA_BENCH_UTIL_H
#include <stddef.h>

#include "util/clock.h"

/* Median and minimum of v (n > 0,) ; the median does not reorder v. */
double bench_median(const double *v, int n);
double bench_min(const double *v, int n);
/* "Linux 6.1 x86_64, <cpu model>, <N> cpus, <threads> threads[, OPENBLAS_CORETYPE=..]
 * [, OMP_WAIT_POLICY=..]"; threads <= 0 leaves that part out. */
void bench_machine(char *out, size_t n, int threads);

#endif
