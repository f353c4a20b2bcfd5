#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 64 KiB: a dataset scan reports every problem (one line per file) in one message. */
static _Thread_local char tf_msg_[65536];

tf_status tf_err(tf_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tf_msg_, sizeof tf_msg_, fmt, ap);
    va_end(ap);
    return code;
}

tf_status tf_err_ctx(tf_status code, const char *fmt, ...) {
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* in place (no second 64 KiB buffer on the stack): shift the old message right */
    size_t n = strlen(prefix);
    if (n > sizeof tf_msg_ - 3) n = sizeof tf_msg_ - 3;
    size_t m = strlen(tf_msg_);
    if (m > sizeof tf_msg_ - n - 3) m = sizeof tf_msg_ - n - 3;
    memmove(tf_msg_ + n + 2, tf_msg_, m);
    memcpy(tf_msg_, prefix, n);
    memcpy(tf_msg_ + n, ": ", 2);
    tf_msg_[n + 2 + m] = 0;
    return code;
}

const char *tf_errmsg(void) {
    return tf_msg_;
}
void tf_err_clear(void) {
    tf_msg_[0] = 0;
}

void *tf_malloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) tf_err(TF_EINTERNAL, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *tf_calloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        tf_err(TF_EINTERNAL, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

void *tf_realloc(void *p, size_t n, const char *what) {
    void *q = realloc(p, n ? n : 1);
    if (!q) tf_err(TF_EINTERNAL, "out of memory reallocating %zu bytes for %s", n, what);
    return q;
}

char *tf_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = tf_malloc(n, "string");
    if (p) memcpy(p, s, n);
    return p;
}
