/* Minimal test harness. Each test file defines test functions and a main that calls
 * RUN(fn) for each, then returns TEST_END(). Every CHECK that fails prints the file,
 * line and expression and marks the current test failed; the last line printed is
 * "N passed, M failed" (tests, not checks) and the exit status is nonzero on failure. */
#ifndef TFSWA_TEST_H
#define TFSWA_TEST_H
#include <math.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_pass_, t_fail_, t_cur_failed_;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
            t_cur_failed_ = 1;                                                                     \
        }                                                                                          \
    } while (0)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            t_cur_failed_ = 1;                                                                     \
        }                                                                                          \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol)*fmax(1.0, fabs(b_)))) {                                       \
            fprintf(stderr, "  %s:%d: CHECK_NEAR failed: %s=%.9g vs %s=%.9g (tol %g)\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                                      \
            t_cur_failed_ = 1;                                                                     \
        }                                                                                          \
    } while (0)

/* TEST_ONLY=substring in the environment runs only the tests whose name contains it (for
 * working on one test; the suite never sets it) */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        const char *only_ = getenv("TEST_ONLY");                                                   \
        if (only_ && !strstr(#fn, only_)) break;                                                   \
        t_cur_failed_ = 0;                                                                         \
        fn();                                                                                      \
        if (t_cur_failed_) {                                                                       \
            t_fail_++;                                                                             \
            printf("FAIL %s\n", #fn);                                                              \
        } else {                                                                                   \
            t_pass_++;                                                                             \
            printf("ok %s\n", #fn);                                                                \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

/* out = "<BUILD>/<rel>", BUILD being the build folder of this test binary
 * (build/tests/test_x -> build, build-san under SAN=1), so tests run the tfswa binary
 * and examples of their own build. Returns 0, or -1 if /proc/self/exe is unreadable. */
static inline int test_build_path(char *out, size_t n, const char *rel) {
    char self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) return -1;
    self[k] = 0;
    for (int up = 0; up < 2; up++) { /* strip test_x, then tests */
        char *slash = strrchr(self, '/');
        if (!slash) return -1;
        *slash = 0;
    }
    int w = snprintf(out, n, "%s/%s", self, rel);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* Run cmd through the shell: its stdout (malloc'd, NUL-terminated; NULL when out of
 * memory or popen fails) and *status (its exit status, -1 when it did not exit). */
static inline char *test_run_capture(const char *cmd, int *status) {
    *status = -1;
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + len, 1, cap - 1 - len, p)) > 0;) {
        len += k;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (buf) buf[len] = 0;
    return buf;
}

#define TEST_END() (printf("%d passed, %d failed\n", t_pass_, t_fail_), t_fail_ ? 1 : 0)

#endif
