/* Fault points for `tfswa bench faults`: see fault.h. */
#include "util/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int state = -1; /* -1: not read yet; 0: off; 1: on */
static int marks;
static char pause_point[64], pause_what[64];
static int64_t pause_step = -1; /* -1: no pause */

static void read_env(void) {
    const char *m = getenv("TFSWA_FAULT_MARKS"), *p = getenv("TFSWA_FAULT_PAUSE");
    marks = m && m[0] && strcmp(m, "0") != 0;
    const char *at = p ? strchr(p, '@') : NULL;
    if (at && (size_t)(at - p) < sizeof pause_point) {
        memcpy(pause_point, p, (size_t)(at - p));
        pause_point[at - p] = 0;
        char *end;
        long long s = strtoll(at + 1, &end, 10);
        if (*end == ':' && strlen(end + 1) < sizeof pause_what) strcpy(pause_what, end + 1);
        if ((*end == 0 || (*end == ':' && pause_what[0])) && s >= 0) pause_step = s;
    }
    state = marks || pause_step >= 0;
}

int tf_fault_on(void) {
    if (state < 0) read_env();
    return state;
}

void tf_fault_point(const char *phase, const char *point, int64_t step, const char *what) {
    if (state < 0) read_env();
    if (!state) return;
    const int stop = pause_step >= 0 && step >= pause_step && !strcmp(point, pause_point) &&
                     (!pause_what[0] || (what && !strcmp(what, pause_what)));
    if (marks || stop) {
        char line[256];
        int n =
            snprintf(line, sizeof line, "tfswa-fault: %s %s %lld%s%s%s\n", phase, point,
                     (long long)step, what ? " " : "", what ? what : "", stop ? " (paused)" : "");
        if (n > 0) {
            if ((size_t)n >= sizeof line) n = sizeof line - 1, line[n - 1] = '\n';
            ssize_t w = write(2, line, (size_t)n);
            (void)w;
        }
    }
    if (stop) {
        pause_step = -1;
        for (;;) pause(); /* until the bench's SIGKILL */
    }
}
