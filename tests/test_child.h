/* Measured memory of child processes, for the constant-memory tests (test_ola, test_separate).
 * Its own header: sys/wait.h declares signal(), which some tests use as a name. */
#ifndef TFSWA_TEST_CHILD_H
#define TFSWA_TEST_CHILD_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* Measured memory of a child (the constant-memory tests): wait for pid and return its peak
 * resident set as the kernel counts it (wait4's ru_maxrss, KiB), or -1 when it did not exit
 * with status 0. */
static inline long test_wait_maxrss(pid_t pid) {
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* RssAnon of this process (KiB), -1 if unknown. A child's ru_maxrss also counts the pages
 * it shares with this process after fork (even after exec, on this kernel): a test keeps
 * this well below the child's peak, or the measurement sees the parent. */
static inline long test_self_anon_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) kib = strtol(line + 8, NULL, 10);
    if (f) fclose(f);
    return kib;
}

#endif
