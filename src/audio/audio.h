/* Audio I/O over libsndfile. Samples are float32; multi-channel data handed to callers
 * is PLANAR stereo: (2, N) = left row then right row. Mono files are made stereo by
 * duplicating the channel; files with more than 2 channels are an error. */
#ifndef TFSWA_AUDIO_H
#define TFSWA_AUDIO_H
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

typedef struct {
    int64_t frames;
    int rate;
    int channels;
} tf_audio_info;

/* The most frames a file may have (2^36: 18 days at 44.1 kHz); more is refused as a
 * corrupt or unknown length, so frame counts and offsets never overflow. */
#define TF_AUDIO_MAX_FRAMES ((int64_t)1 << 36)

tf_status tf_audio_probe(const char *path, tf_audio_info *info);

/* A file opened for random-access chunk reads (sf_seek + sf_readf_float). */
typedef struct tf_audio_reader tf_audio_reader;
tf_status tf_audio_reader_open(tf_audio_reader **r, const char *path);
const tf_audio_info *tf_audio_reader_info(const tf_audio_reader *r);
/* Read `frames` frames starting at `offset` (may be negative or past the end: those
 * frames are zero) into out (2, frames) planar; out row stride is `stride` floats
 * (>= frames). Returns the number of frames actually read from the file in *nread. */
tf_status tf_audio_reader_chunk(tf_audio_reader *r, int64_t offset, int64_t frames, float *out,
                                int64_t stride, int64_t *nread);
/* Raw access for callers that convert themselves (the loader's fused pass): when r is a
 * 16-bit PCM stereo file and [offset, offset + frames) lies inside it, *p = its samples
 * interleaved (frames, 2), valid until the next call on r; sample v is the float v / 32768,
 * what tf_audio_reader_chunk returns. Otherwise (other formats, mono, a range leaving the
 * file, frames > TF_AUDIO_RAW_MAX, a truncated file) *p = NULL: use
 * tf_audio_reader_chunk. */
#define TF_AUDIO_RAW_MAX 8192
tf_status tf_audio_reader_raw16(tf_audio_reader *r, int64_t offset, int64_t frames,
                                const int16_t **p);
void tf_audio_reader_close(tf_audio_reader *r);

/* Convenience: open, read one chunk, close. */
tf_status tf_audio_read_chunk(const char *path, int64_t offset, int64_t frames, float *out,
                              int64_t stride);
/* Read a whole file into a new (2, frames) planar buffer (free with free()). */
tf_status tf_audio_read_all(const char *path, float **out, tf_audio_info *info);

/* Streaming writer. The file is written under "<path>.tmp-<pid>" and renamed to `path`
 * by tf_audio_writer_close(..., commit=1); commit=0 deletes the temporary. */
typedef enum { TF_SUBTYPE_PCM16, TF_SUBTYPE_PCM24, TF_SUBTYPE_FLOAT } tf_subtype;
typedef enum { TF_FMT_WAV, TF_FMT_FLAC } tf_format;
typedef struct tf_audio_writer tf_audio_writer;
tf_status tf_audio_writer_open(tf_audio_writer **w, const char *path, int rate, int channels,
                               tf_format fmt, tf_subtype sub);
/* Write `frames` frames from planar data (channels, frames) with row stride `stride`.
 * For PCM subtypes, samples outside [-1, 1) are clipped and counted. */
tf_status tf_audio_writer_write(tf_audio_writer *w, const float *data, int64_t frames,
                                int64_t stride);
int64_t tf_audio_writer_clipped(const tf_audio_writer *w);
tf_status tf_audio_writer_close(tf_audio_writer *w, int commit);

/* Write a whole planar buffer to a 16-bit (or other subtype) file atomically. */
tf_status tf_audio_write_file(const char *path, const float *data, int channels, int64_t frames,
                              int rate, tf_format fmt, tf_subtype sub);

#endif
