/* File-system helpers: recursive mkdir, atomic whole-file writes (temporary name, fsync,
 * rename, fsync of the directory), existence checks. */
#ifndef TFSWA_FSUTIL_H
#define TFSWA_FSUTIL_H
#include <stddef.h>
#include <stdio.h>

#include "util/err.h"

/* mkdir -p; TF_EUSER naming the path on failure. */
tf_status tf_mkdirs(const char *path);
/* Write n bytes to path atomically ("<path>.tmp-<pid>", fsync, rename, fsync dir). */
tf_status tf_write_file_atomic(const char *path, const void *data, size_t n);

/* Streaming atomic write: open returns a FILE* on the temporary name; commit flushes,
 * fsyncs, closes and renames; abort closes and removes the temporary. */
typedef struct {
    FILE *f;
    char path[4096], tmp[4096 + 32];
} tf_atomic_file;
tf_status tf_atomic_open(tf_atomic_file *a, const char *path);
tf_status tf_atomic_commit(tf_atomic_file *a);
void tf_atomic_abort(tf_atomic_file *a);

/* rm -r: remove dir and everything below it, never following symbolic links. A missing
 * dir is not an error. */
tf_status tf_remove_tree(const char *dir);

int tf_path_exists(const char *path);
int tf_is_dir(const char *path);
/* fsync a directory (after a rename inside it). */
tf_status tf_fsync_dir(const char *dir);
/* dirname of path into out (size n). */
void tf_dirname(const char *path, char *out, size_t n);

#endif
