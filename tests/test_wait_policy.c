/* The OpenMP waiting policy of the tfswa program (src/cli/wait_policy.c): with neither
 * OMP_WAIT_POLICY nor GOMP_SPINCOUNT in its environment, libgomp in tfswa runs passive
 * (spin count 0; its default spins 300000 times); a policy the user set is left alone.
 * libgomp itself reports what it read (OMP_DISPLAY_ENV=verbose, on stderr at start-up). */
#include <sys/types.h>
#include <sys/wait.h>

#include "test.h"

extern char **environ;

/* Run `tfswa --help` with the environment of this test minus the variables of the waiting
 * policy, plus extra (NULL-terminated "NAME=value" list) and OMP_DISPLAY_ENV=verbose;
 * its stdout and stderr into out (n bytes, NUL-terminated). Returns its exit status or -1. */
static int run_tfswa(const char *const extra[], char *out, size_t n) {
    char exe[1024];
    if (test_build_path(exe, sizeof exe, "tfswa") != 0 || access(exe, X_OK) != 0) return -1;
    size_t ne = 0, cap = 8;
    for (char **e = environ; *e; e++) cap++;
    char **env = calloc(cap, sizeof *env);
    if (!env) return -1;
    static const char *const drop[] = {
        "OMP_WAIT_POLICY=", "GOMP_SPINCOUNT=", "TFSWA_WAIT_POLICY=", "OMP_DISPLAY_ENV="};
    for (char **e = environ; *e; e++) {
        int keep = 1;
        for (int i = 0; i < 4; i++) keep &= strncmp(*e, drop[i], strlen(drop[i])) != 0;
        if (keep) env[ne++] = *e;
    }
    for (int i = 0; extra[i] && ne + 2 < cap; i++) env[ne++] = (char *)extra[i];
    env[ne++] = "OMP_DISPLAY_ENV=verbose";
    env[ne] = NULL;
    int fd[2];
    if (pipe(fd) != 0) return free(env), -1;
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1), dup2(fd[1], 2), close(fd[1]);
        char *argv[] = {exe, "--help", NULL};
        execve(exe, argv, env);
        _exit(127);
    }
    free(env);
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (pid > 0 && got + 1 < n && (r = read(fd[0], out + got, n - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = 0;
    close(fd[0]);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static void test_passive_by_default(void) {
    static char out[1 << 16];
    const char *const extra[] = {NULL};
    CHECK(run_tfswa(extra, out, sizeof out) == 0);
    CHECKF(strstr(out, "OMP_WAIT_POLICY = 'PASSIVE'") && strstr(out, "GOMP_SPINCOUNT = '0'"),
           "libgomp in tfswa did not run passive:\n%s", out);
}

static void test_user_policy_wins(void) {
    static char out[1 << 16];
    const char *const active[] = {"OMP_WAIT_POLICY=active", NULL};
    CHECK(run_tfswa(active, out, sizeof out) == 0);
    CHECKF(strstr(out, "OMP_WAIT_POLICY = 'ACTIVE'") && !strstr(out, "GOMP_SPINCOUNT = '0'"),
           "the user's OMP_WAIT_POLICY=active was overridden:\n%s", out);
    const char *const spin[] = {"GOMP_SPINCOUNT=12345", NULL};
    CHECK(run_tfswa(spin, out, sizeof out) == 0);
    CHECKF(strstr(out, "GOMP_SPINCOUNT = '12345'"), "the user's GOMP_SPINCOUNT was overridden:\n%s",
           out);
}

int main(void) {
    RUN(test_passive_by_default);
    RUN(test_user_policy_wins);
    return TEST_END();
}
