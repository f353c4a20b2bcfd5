/* Procedural multi-stem songs in MUSDB18-HQ layout, for tests, the demo and benches.
 * OUT/train/<track>/{mixture,vocals,drums,bass,other}.wav and OUT/test/<track>/...,
 * 44.1 kHz stereo PCM 16-bit; mixture = sum of the (quantised) stems within 1 LSB.
 * Deterministic per seed: track i of a split depends only on (seed, split, i), never on
 * the number of tracks or threads.
 *
 *   tf_synth_opts o;
 *   tf_synth_defaults(&o);
 *   o.train_tracks = 4, o.seconds = 30;
 *   if (tf_synth_dataset("data/synth", &o)) fprintf(stderr, "%s\n", tf_errmsg());
 *
 * Each track has a tempo (80-160 BPM), key, scale and chord progression; vocals
 * (harmonic voice with formants, vibrato, glides), drums (kick, snare, hats, toms,
 * crash), bass (root/fifth, filtered saw/square) and other (pads, arpeggios or stabs).
 * Every stem rests for whole bars or phrases (10-50 % of the beats per stem and track,
 * as exact digital silence), so about 30 % of each stem's 0.25 s blocks are silent. */
#ifndef TFSWA_SYNTH_H
#define TFSWA_SYNTH_H
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct {
    int train_tracks; /* tracks under train/ */
    int test_tracks;  /* tracks under test/ */
    double seconds;   /* length of each track */
    uint64_t seed;
    int sample_rate; /* 44100 */
    int overwrite;   /* 0: existing non-empty track folders are an error; 1: rewrite them */
    int threads;     /* OpenMP threads over tracks; 0 = OpenMP default */
} tf_synth_opts;

/* Defaults: 8 train tracks, 2 test tracks, 10 s, seed 1, 44100 Hz, no overwrite. */
void tf_synth_defaults(tf_synth_opts *o);

/* Write the dataset under `out` (created; existing non-empty track folders are an error
 * unless o->overwrite, checked before anything is written). Files are written
 * atomically. Tracks are rendered in parallel (o->threads). */
tf_status tf_synth_dataset(const char *out, const tf_synth_opts *o);

/* Render one track's 4 stems into planar buffers stems[s] of (2, frames), s in
 * vocals, drums, bass, other order (the caller allocates 4 x 2 x frames floats).
 * `track_seed` picks tempo, key, levels, panning and silent passages. The stems are
 * scaled together so that neither any stem nor their sum exceeds 0.9 in magnitude.
 * Single-threaded; safe to call from several threads at once. */
tf_status tf_synth_track(float *const stems[4], int64_t frames, int sample_rate,
                         uint64_t track_seed);

/* The seed of track `index` of split 0 (train) or 1 (test) of a dataset seed. */
uint64_t tf_synth_track_seed(uint64_t seed, int split, int index);
/* Track folder name: "Synth 0003 - Seed 7" (train), "Synth Test 0001 - Seed 7" (test).
 * Returns what snprintf returns. */
int tf_synth_track_name(char *buf, size_t n, int split, int index, uint64_t seed);

/* 16-bit grid of the files. libsndfile writes float x as lrint(x * 32767) and reads a
 * sample s back as s / 32768 (sf_readf_float) or s (sf_readf_short). Values k / 32767
 * are therefore written exactly as k, so the mixture file (sum of the quantised stems)
 * equals the sum of the stem files sample for sample. */
#define TF_SYNTH_PCM_SCALE 32767.f
/* Round x[0:n) onto that grid, clipping to [-1, 1]; returns the number clipped. */
int tf_synth_quantize(float *x, int64_t n);

#endif
