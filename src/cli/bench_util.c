#include "cli/bench_util.h"

#include "nn/kernels.h"

#include <cJSON.h>

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#if TFSWA_CUDA
#include <cuda_runtime_api.h>
#endif

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *v, int n) {
    double *t = malloc(sizeof *t * (size_t)n);
    if (!t) return v[0];
    memcpy(t, v, sizeof *t * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    double m = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    free(t);
    return m;
}

double bench_min(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

void bench_machine(char *out, size_t n, int threads) {
    char cpu[256] = "unknown cpu";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            char *c = strchr(line, ':');
            if (!c) break;
            c++;
            while (*c == ' ') c++;
            c[strcspn(c, "\n")] = 0;
            snprintf(cpu, sizeof cpu, "%s", c);
            break;
        }
        fclose(f);
    }
    struct utsname u;
    int ok = uname(&u) == 0;
    int k = snprintf(out, n, "%s %s %s, %s, %ld cpus", ok ? u.sysname : "?", ok ? u.release : "?",
                     ok ? u.machine : "?", cpu, sysconf(_SC_NPROCESSORS_ONLN));
    if (threads > 0 && k >= 0 && (size_t)k < n)
        k += snprintf(out + k, n - (size_t)k, ", %d threads", threads);
    char isa[128];
    tf_kernels_cpu(isa, sizeof isa);
    if (k >= 0 && (size_t)k < n) k += snprintf(out + k, n - (size_t)k, ", %s", isa);
    const char *core = getenv("OPENBLAS_CORETYPE");
    if (core && *core && k >= 0 && (size_t)k < n)
        k += snprintf(out + k, n - (size_t)k, ", OPENBLAS_CORETYPE=%s", core);
    /* the OpenMP waiting policy libgomp read at start-up: the one tfswa sets
     * (src/cli/wait_policy.c marks it with TFSWA_WAIT_POLICY), the user's, or the default */
    const char *pol = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    const char *mark = getenv("TFSWA_WAIT_POLICY");
    if (k < 0 || (size_t)k >= n) return;
    if (pol && mark && !strcmp(pol, mark) && !spin)
        k += snprintf(out + k, n - (size_t)k, ", wait policy %s (set by tfswa)", pol);
    else if (pol || spin)
        k += snprintf(out + k, n - (size_t)k, ", wait policy%s%s%s%s (user's)",
                      pol ? " OMP_WAIT_POLICY=" : "", pol ? pol : "",
                      spin ? " GOMP_SPINCOUNT=" : "", spin ? spin : "");
    else
        k += snprintf(out + k, n - (size_t)k, ", wait policy libgomp default");
}

cJSON *bench_json_open(const char *name, int threads, cJSON **config, cJSON **results) {
    char machine[512];
    bench_machine(machine, sizeof machine, threads);
    cJSON *root = cJSON_CreateObject();
    if (!root || !cJSON_AddStringToObject(root, "bench", name) ||
        !cJSON_AddStringToObject(root, "machine", machine) ||
        !(*config = cJSON_AddObjectToObject(root, "config")) ||
        !(*results = cJSON_AddObjectToObject(root, "results"))) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int bench_json_emit(cJSON *root) {
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(root);
    return s ? 0 : 1;
}

double bench_device_bytes_in_use(void) {
#if TFSWA_CUDA
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) return NAN;
    return (double)(tot - fr);
#else
    return NAN;
#endif
}
