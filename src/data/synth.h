/* Procedural multi-stem songs in MUSDB18-HQ layout, for tests, the demo and benches.
 * OUT/train/<track>/{mixture,vocals,drums,bass,other}.wav and OUT/test/<track>/...,
 * 44.1 kHz stereo PCM 16-bit; mixture = sum of the (quantised) stems within 1 LSB.
 * Deterministic per seed. */
#ifndef TFSWA_SYNTH_H
#define TFSWA_SYNTH_H
#include <stdint.h>

#include "util/err.h"

typedef struct {
    int train_tracks;  /* tracks under train/ */
    int test_tracks;   /* tracks under test/ */
    double seconds;    /* length of each track */
    uint64_t seed;
    int sample_rate;   /* 44100 */
} tf_synth_opts;

/* Defaults: 8 train tracks, 2 test tracks, 10 s, seed 1, 44100 Hz. */
void tf_synth_defaults(tf_synth_opts *o);

/* Write the dataset under `out` (created; existing track folders are an error). */
tf_status tf_synth_dataset(const char *out, const tf_synth_opts *o);

/* Render one track's 4 stems into planar buffers stems[s] of (2, frames), s in
 * vocals, drums, bass, other order (the caller allocates 4 x 2 x frames floats).
 * `track_seed` picks tempo, key, levels, panning and silent passages. */
tf_status tf_synth_track(float *const stems[4], int64_t frames, int sample_rate,
                         uint64_t track_seed);

#endif
