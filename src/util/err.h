/* Errors: every fallible function returns a tf_status; the message (naming the file,
 * key or value) is kept per thread and read with tf_errmsg(). The CLI prints
 * "tfswa: <message>" and exits with the status: 2 for anything a user caused,
 * 1 for internal faults (out of memory, library failures). */
#ifndef TFSWA_ERR_H
#define TFSWA_ERR_H
#include <stddef.h>

typedef enum { TF_OK = 0, TF_EINTERNAL = 1, TF_EUSER = 2 } tf_status;

/* Set the thread's message (printf-style) and return code, for `return tf_err(...)`. */
tf_status tf_err(tf_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "<prefix>: " (adds context while unwinding). */
tf_status tf_err_ctx(tf_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *tf_errmsg(void);
void tf_err_clear(void);

/* Checked allocation helpers: on failure set an internal error naming `what` and the size. */
void *tf_malloc(size_t n, const char *what);
void *tf_calloc(size_t count, size_t size, const char *what);
void *tf_realloc(void *p, size_t n, const char *what);
char *tf_strdup(const char *s);

/* Propagate a failing status. */
#define TF_TRY(expr)                                                                               \
    do {                                                                                           \
        tf_status tf_st_ = (expr);                                                                 \
        if (tf_st_ != TF_OK) return tf_st_;                                                        \
    } while (0)

#endif
