/* The one clock of tfswa: wall time for progress, benchmarks and summaries, and this
 * process's CPU time. */
#ifndef TFSWA_CLOCK_H
#define TFSWA_CLOCK_H

double tf_now_s(void); /* monotonic wall clock, seconds (only differences are meaningful) */
double tf_cpu_s(void); /* CPU time of this process (all threads), seconds */

#endif
