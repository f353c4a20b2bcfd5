/* Dataset index: every track of a root with the frames, rate and channels of each stem
 * file and a loudness envelope per stem (mean |x| over both channels per block of
 * `env_block` frames = 0.25 s). Built by scanning, cached in a file keyed on
 * (path, size, mtime) so unchanged files are not re-read.
 *
 * Roots: MUSDB18-HQ layout (ROOT/train/<track>/, ROOT/test/<track>/, the official 14
 * validation tracks taken out of train by name), or ROOT/{train,valid,test}/ folders, or
 * any folder of track folders (a deterministic `valid_fraction` of them is valid).
 * Each track folder holds one WAV or FLAC per stem named <stem>.wav|.flac, and optionally
 * mixture.wav|.flac. */
#ifndef TFSWA_INDEX_H
#define TFSWA_INDEX_H
#include <stdint.h>

#include "util/config.h"
#include "util/err.h"

typedef enum { TF_SPLIT_TRAIN = 0, TF_SPLIT_VALID = 1, TF_SPLIT_TEST = 2 } tf_split;

typedef struct {
    char *path;       /* NULL if the file is absent (only allowed for the mixture) */
    int64_t frames;   /* frames in the file */
    int rate, channels;
    int64_t n_env;    /* ceil(frames / env_block) */
    float *env;       /* (n_env,) mean |x| over both channels per block; last block partial */
} tf_stem_file;

typedef struct {
    char *name;       /* track folder name, e.g. "A Classic Education - NightOwl" */
    char *dir;        /* full path of the track folder */
    tf_split split;
    int64_t frames;   /* common length of the stems */
    tf_stem_file mixture;                  /* mixture.wav/.flac, may be absent */
    tf_stem_file stems[TF_MAX_TARGETS];    /* in the order of cfg->targets */
} tf_track;

typedef struct {
    int n_tracks;
    tf_track *tracks;
    int n_stems;                           /* = cfg->n_targets */
    char stem_names[TF_MAX_TARGETS][TF_NAME_MAX];
    int sample_rate;
    int env_block;                         /* frames per envelope block (rate / 4) */
    int64_t files_scanned;                 /* files read in this open (not from cache) */
} tf_index;

/* Scan cfg->root (using and updating the cache at cache_path; NULL = default location)
 * and build the index. Problems (missing stem, stems of one track with different
 * lengths, wrong sample rate, unreadable/empty/non-audio file) are ALL collected: the
 * returned TF_EUSER message holds one line per problem, each naming the file. */
tf_status tf_index_open(tf_index **ix, const tf_config *cfg, const char *cache_path);
void tf_index_close(tf_index *ix);
/* Number of tracks in a split, and the i-th of them (index into ix->tracks). */
int tf_index_count(const tf_index *ix, tf_split split);
int tf_index_track_of(const tf_index *ix, tf_split split, int i);

#endif
