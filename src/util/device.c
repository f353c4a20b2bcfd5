/* Devices: util/device.h. The CUDA calls are in src/cuda/device.cu (CUDA builds only). */
#include "util/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if TFSWA_CUDA
#include "cuda/cuda_backend.h"
#endif

int tf_device_parse(const char *s, tf_device *out) {
    if (!s) return 0;
    if (!strcmp(s, "cpu")) {
        *out = (tf_device){TF_DEVICE_CPU, 0};
        return 1;
    }
    if (strncmp(s, "cuda", 4) != 0) return 0;
    if (!s[4]) {
        *out = (tf_device){TF_DEVICE_CUDA, 0};
        return 1;
    }
    if (s[4] != ':' || !s[5]) return 0;
    long v = 0;
    for (const char *p = s + 5; *p; p++) { /* digits only: no sign, space or hex */
        if (*p < '0' || *p > '9' || p - (s + 5) >= 4) return 0;
        v = v * 10 + (*p - '0');
    }
    if (v > TF_DEVICE_MAX_INDEX) return 0;
    *out = (tf_device){TF_DEVICE_CUDA, (int)v};
    return 1;
}

void tf_device_name(const tf_device *d, char *out, size_t n) {
    if (d->kind == TF_DEVICE_CUDA)
        snprintf(out, n, "cuda:%d", d->index);
    else
        snprintf(out, n, "cpu");
}

int tf_device_cuda_built(void) {
#if TFSWA_CUDA
    return 1;
#else
    return 0;
#endif
}

tf_status tf_device_from_string(const char *what, const char *value, tf_device *out) {
    if (tf_device_parse(value, out)) return TF_OK;
    return tf_err(TF_EUSER, "%s %s: expected cpu, cuda or cuda:N", what, value ? value : "(null)");
}

tf_status tf_device_open(const tf_device *d, const char *what, const char *given,
                         tf_device_info *info) {
    tf_device_info tmp;
    if (!info) info = &tmp;
    memset(info, 0, sizeof *info);
    info->dev = *d;
    char nm[32];
    tf_device_name(d, nm, sizeof nm);
    if (!given) given = nm;
    if (d->kind == TF_DEVICE_CPU) {
        snprintf(info->name, sizeof info->name, "cpu");
        return TF_OK;
    }
    if (d->kind != TF_DEVICE_CUDA)
        return tf_err(TF_EUSER, "%s %s: expected cpu, cuda or cuda:N", what, given);
#if TFSWA_CUDA
    tf_cuda_device_info ci;
    char err[512];
    if (tf_cuda_device_open(d->index, &ci, err, sizeof err))
        return tf_err(TF_EUSER, "%s %s: %s", what, given, err);
    info->count = ci.count;
    snprintf(info->name, sizeof info->name, "%s", ci.name);
    info->cc_major = ci.cc_major, info->cc_minor = ci.cc_minor;
    info->total_bytes = ci.total_bytes, info->free_bytes = ci.free_bytes;
    info->bf16 = ci.bf16;
    info->multiprocessors = ci.multiprocessors;
    info->driver_version = ci.driver_version, info->runtime_version = ci.runtime_version;
    return TF_OK;
#else
    return tf_err(TF_EUSER, "%s %s: this tfswa was built without CUDA (build with make CUDA=1)",
                  what, given);
#endif
}

void tf_device_describe(const tf_device_info *i, char *out, size_t n) {
    if (i->dev.kind != TF_DEVICE_CUDA) {
        snprintf(out, n, "cpu");
        return;
    }
    const double gib = 1024.0 * 1024.0 * 1024.0;
    snprintf(out, n,
             "cuda:%d %s (compute capability %d.%d, %d SMs, %.1f GiB, %.1f GiB free, bf16 %s, "
             "driver %d.%d)",
             i->dev.index, i->name, i->cc_major, i->cc_minor, i->multiprocessors,
             (double)i->total_bytes / gib, (double)i->free_bytes / gib, i->bf16 ? "yes" : "no",
             i->driver_version / 1000, i->driver_version % 1000 / 10);
}

tf_status tf_device_not_yet(const tf_device_info *info, const char *what, const char *given,
                            const char *task) {
    if (info->dev.kind != TF_DEVICE_CUDA) return TF_OK;
    char nm[32];
    tf_device_name(&info->dev, nm, sizeof nm);
    return tf_err(TF_EUSER,
                  "%s %s: %s on CUDA is not implemented yet (found %s, %s): the cuda backend "
                  "has conv2d only; the model's other layers and its forward/backward run on the "
                  "CPU only for now (use --device cpu; `tfswa plan --device cuda` prints the "
                  "device memory plan)",
                  what, given ? given : nm, task, nm, info->name);
}
