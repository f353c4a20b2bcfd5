/* Validation / evaluation data: whole tracks of an index, never segmented, streamed from
 * the start in consecutive blocks, so memory is bounded by the block size whatever the
 * track length.
 *
 *   tf_valtrack *v;
 *   TF_TRY(tf_valtrack_open(&v, ix, tf_index_track_of(ix, TF_SPLIT_VALID, i)));
 *   int64_t got;
 *   do { st = tf_valtrack_read(v, N, mix, stems, &got); ... use got frames ... }
 *   while (st == TF_OK && got == N);
 *   tf_valtrack_close(v);
 */
#ifndef TFSWA_VALTRACK_H
#define TFSWA_VALTRACK_H
#include <stdint.h>

#include "data/index.h"
#include "util/err.h"

typedef struct tf_valtrack tf_valtrack;

/* Open every stem file (and the mixture file, if the track has one) of ix->tracks[track].
 * A file whose length no longer matches the index is TF_EUSER ("changed since it was
 * indexed"). ix must outlive v. */
tf_status tf_valtrack_open(tf_valtrack **v, const tf_index *ix, int track);
/* Read the next `frames` frames: mix (2, frames) = the mixture file if present, else the
 * sum of the stems; stems (S, 2, frames) in ix->stem_names order. Rows have stride
 * `frames`. *got = frames actually left in the track (0 at the end); the tail past *got
 * is zero. Either output may be NULL when not wanted. */
tf_status tf_valtrack_read(tf_valtrack *v, int64_t frames, float *mix, float *stems, int64_t *got);
/* Frames in the track, and the position of the next read. */
int64_t tf_valtrack_frames(const tf_valtrack *v);
int64_t tf_valtrack_pos(const tf_valtrack *v);
void tf_valtrack_close(tf_valtrack *v);

#endif
