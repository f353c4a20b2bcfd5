/* safetensors: the standard tensor file format (Hugging Face), read and written here.
 *
 *   bytes 0..7   N, little-endian uint64: length of the JSON header
 *   bytes 8..8+N JSON object: "name": {"dtype": "F32"|"BF16", "shape": [..],
 *                "data_offsets": [begin, end]} per tensor (offsets relative to the data
 *                section), plus an optional "__metadata__": {string: string}
 *   rest         the data section, little-endian, every byte covered by exactly one tensor
 *
 * The reader checks everything against the file size (header length, offsets, sizes
 * implied by dtype and shape, no holes or overlaps, every name and __metadata__ once)
 * and returns TF_EUSER naming the file and tensor on any mismatch. The writer writes
 * atomically (temporary, fsync, rename).
 *
 *   tf_safetensors st;
 *   TF_TRY(tf_st_open(&st, "model.safetensors"));
 *   tf_status s = tf_st_read_f32(&st, "head.weight", w, 4, (int64_t[]){8, 8, 1, 1});
 *   tf_st_close(&st);
 */
#ifndef TFSWA_SAFETENSORS_H
#define TFSWA_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TF_ST_MAX_DIMS 8

typedef enum { TF_ST_F32 = 0, TF_ST_BF16 = 1 } tf_st_dtype;

typedef struct {
    char *name;
    tf_st_dtype dtype;
    int ndim;
    int64_t shape[TF_ST_MAX_DIMS];
    size_t numel;
    size_t begin, end; /* byte offsets into the data section */
} tf_st_tensor;

typedef struct {
    char *path;
    size_t n;        /* number of tensors */
    tf_st_tensor *t; /* in file order of the header */
    size_t n_meta;
    char **meta_key, **meta_val;
    unsigned char *data; /* the whole data section */
    size_t data_size;
} tf_safetensors;

/* Read and validate the whole file (header + data) into memory. On failure st is left
 * empty (tf_st_close is still safe). */
tf_status tf_st_open(tf_safetensors *st, const char *path);
void tf_st_close(tf_safetensors *st);
/* The tensor called name, or NULL. */
const tf_st_tensor *tf_st_find(const tf_safetensors *st, const char *name);
/* The metadata value of key, or NULL. */
const char *tf_st_meta(const tf_safetensors *st, const char *key);
/* Copy tensor `name` into dst as float32 (BF16 is widened). The stored shape must equal
 * (ndim, shape) exactly; a missing tensor or another shape is TF_EUSER naming the file,
 * the tensor and both shapes. ndim < 0 skips the shape check (dst must hold numel). */
tf_status tf_st_read_f32(const tf_safetensors *st, const char *name, float *dst, int ndim,
                         const int64_t *shape);

/* One tensor to write: float32 data, stored as dtype (BF16 rounds to nearest even). */
typedef struct {
    const char *name;
    tf_st_dtype dtype;
    int ndim;
    int64_t shape[TF_ST_MAX_DIMS];
    const float *data;
} tf_st_entry;

/* Write n tensors and n_meta metadata pairs (meta[2i] = key, meta[2i+1] = value) to path
 * atomically. Names must be unique and not "__metadata__". */
tf_status tf_st_write(const char *path, const tf_st_entry *e, size_t n, const char *const *meta,
                      size_t n_meta);

#endif
