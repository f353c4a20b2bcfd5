#include "util/clock.h"

#include <time.h>

static double clock_s(clockid_t id) {
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double tf_now_s(void) {
    return clock_s(CLOCK_MONOTONIC);
}
double tf_cpu_s(void) {
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}
