#include "util/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

tf_status tf_mkdirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return tf_err(TF_EUSER, "invalid directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return tf_err(TF_EUSER, "%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = c;
    }
    if (!tf_is_dir(path)) return tf_err(TF_EUSER, "%s: exists and is not a directory", path);
    return TF_OK;
}

void tf_dirname(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, n, ".");
    } else if (slash == path) {
        snprintf(out, n, "/");
    } else {
        size_t len = (size_t)(slash - path);
        snprintf(out, n, "%.*s", (int)len, path);
    }
}

tf_status tf_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return tf_err(TF_EUSER, "%s: cannot open directory: %s", dir, strerror(errno));
    fsync(fd); /* some file systems refuse fsync on directories: not an error */
    close(fd);
    return TF_OK;
}

tf_status tf_atomic_open(tf_atomic_file *a, const char *path) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->path) return tf_err(TF_EUSER, "path too long: %s", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp-%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) return tf_err(TF_EUSER, "%s: cannot write: %s", a->tmp, strerror(errno));
    return TF_OK;
}

tf_status tf_atomic_commit(tf_atomic_file *a) {
    if (!a->f) return tf_err(TF_EINTERNAL, "%s: not open", a->path);
    int bad = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int err = errno;
    if (fclose(a->f) != 0) bad = 1, err = errno;
    a->f = NULL;
    if (bad) {
        remove(a->tmp);
        return tf_err(TF_EUSER, "%s: write failed: %s", a->tmp, strerror(err));
    }
    if (rename(a->tmp, a->path) != 0) {
        err = errno;
        remove(a->tmp);
        return tf_err(TF_EUSER, "%s: cannot rename to %s: %s", a->tmp, a->path, strerror(err));
    }
    char dir[4096];
    tf_dirname(a->path, dir, sizeof dir);
    return tf_fsync_dir(dir);
}

void tf_atomic_abort(tf_atomic_file *a) {
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
        remove(a->tmp);
    }
}

tf_status tf_write_file_atomic(const char *path, const void *data, size_t n) {
    tf_atomic_file a;
    TF_TRY(tf_atomic_open(&a, path));
    if (n && fwrite(data, 1, n, a.f) != n) {
        tf_atomic_abort(&a);
        return tf_err(TF_EUSER, "%s: write failed", path);
    }
    return tf_atomic_commit(&a);
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb, (void)flag, (void)f;
    return remove(p) == 0 ? 0 : -1;
}

tf_status tf_remove_tree(const char *dir) {
    struct stat st;
    if (lstat(dir, &st) != 0 && errno == ENOENT) return TF_OK;
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return tf_err(TF_EUSER, "%s: cannot remove: %s", dir, strerror(errno));
    return TF_OK;
}

int tf_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int tf_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
