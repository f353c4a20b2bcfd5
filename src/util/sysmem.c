#include "util/sysmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value in kB of "key:" in a /proc file, 0 if absent. */
static size_t proc_kb(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') {
            kb = (size_t)strtoull(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

size_t tf_rss_bytes(void) {
    return proc_kb("/proc/self/status", "VmRSS") * 1024;
}
size_t tf_peak_rss_bytes(void) {
    return proc_kb("/proc/self/status", "VmHWM") * 1024;
}
size_t tf_mem_available(void) {
    return proc_kb("/proc/meminfo", "MemAvailable") * 1024;
}
