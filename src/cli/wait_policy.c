/* The OpenMP waiting policy of the tfswa program.
 *
 * libgomp's default makes an idle thread spin (GOMP_SPINCOUNT 300000 pauses, milliseconds)
 * before it sleeps: on a machine shared with another busy process those spinning threads
 * take the cores the working ones need (two separations at once on 2 cores: 64 s each
 * against 2.2 s alone). tfswa therefore runs with OMP_WAIT_POLICY=passive unless the user
 * set OMP_WAIT_POLICY or GOMP_SPINCOUNT, which win (`tfswa bench separate` measures it:
 * concurrent_slowdown). Measured on a shared 2-core EPYC (tiny model, 30 s song): two
 * separations at once took 12-24x the time of one alone with libgomp's default, 1.2-1.7x
 * passive, 1.8-5x with GOMP_SPINCOUNT=10000; alone (SCHED_FIFO, so undisturbed) passive
 * took 1.06 s against 1.10 s for the default. oneDNN runs on libgomp too; OpenBLAS threads
 * stay at 1 inside the model (src/model/forward.c), its idle worker sleeps.
 *
 * libgomp reads the variables once, in its constructor, before main. A function in the
 * executable's .preinit_array runs before every shared library's constructor, but glibc
 * then sets environ to the original environment (setenv there is lost), so this function
 * re-executes the program (the file /proc/self/exe names) with the policy added to its
 * environment: about 10 ms more at start-up (the libraries are loaded twice).
 * TFSWA_WAIT_POLICY=<value> marks that tfswa set OMP_WAIT_POLICY (bench_machine reports
 * it); its presence also stops a second re-execution (so TFSWA_WAIT_POLICY=off keeps
 * libgomp's default, for comparisons). Nothing here may use stdio or
 * malloc: the C library is not initialized yet. If the exec fails the program goes on
 * with libgomp's default. */
#include <string.h>
#include <unistd.h>

#define WAIT_POLICY "passive"

static int has_var(char **envp, const char *name) {
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return 1;
    return 0;
}

static void set_wait_policy(int argc, char **argv, char **envp) {
    (void)argc;
    if (has_var(envp, "OMP_WAIT_POLICY") || has_var(envp, "GOMP_SPINCOUNT") ||
        has_var(envp, "TFSWA_WAIT_POLICY"))
        return;
    size_t n = 0;
    while (envp && envp[n]) n++;
    if (n > 65536) return;
    char *ne[n + 3];
    for (size_t i = 0; i < n; i++) ne[i] = envp[i];
    ne[n] = "OMP_WAIT_POLICY=" WAIT_POLICY;
    ne[n + 1] = "TFSWA_WAIT_POLICY=" WAIT_POLICY;
    ne[n + 2] = NULL;
    /* the program's own path, so that the process keeps its name (ps, top) */
    char self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = 0;
        execve(self, argv, ne);
    }
    execve("/proc/self/exe", argv, ne);
}

typedef void (*preinit_fn)(int, char **, char **);
__attribute__((section(".preinit_array"), used)) static const preinit_fn preinit = set_wait_policy;
