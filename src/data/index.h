/* Dataset index: every track of a root with the frames, rate and channels of each stem
 * file and a loudness envelope per stem (mean |x| over both channels per block of
 * `env_block` frames = 0.25 s). Built by scanning, cached in a file keyed on
 * (path, size, mtime) so unchanged files are not re-read.
 *
 * Roots: MUSDB18-HQ layout (ROOT/train/<track>/, ROOT/test/<track>/, the official 14
 * validation tracks taken out of train by name), or ROOT/{train,valid,test}/ folders, or
 * any folder of track folders (a deterministic `valid_fraction` of them is valid).
 * Each track folder holds one WAV or FLAC per stem named <stem>.wav|.flac, and optionally
 * mixture.wav|.flac.
 *
 * Splits, precisely: if ROOT has a train/, valid/ or test/ folder, those folders are the
 * splits; when there is no valid/ folder, train/ tracks with one of the 14 official
 * MUSDB18 validation names are valid, and when train/ holds none of those names either, a
 * `valid_fraction` of train/ is valid. Otherwise every sub-folder of ROOT is a track and a
 * `valid_fraction` of them is valid. The fraction is decided per track by a hash of its
 * name (adding a track never moves another one); with valid_fraction > 0 and at least two
 * candidates, at least one track is valid. Hidden entries (".name") are ignored.
 * Within a split tracks are sorted by name (bytewise); ix->tracks holds train, valid,
 * test in that order.
 *
 * Cache: default "<root>/.tfswa_index" when the root is writable, else
 * "$XDG_CACHE_HOME/tfswa/index-<hash of realpath(root)>" (or ~/.cache/tfswa/...). Keys are
 * paths relative to the root, so a moved dataset keeps its cache. An entry is reused when
 * size and mtime (ns) match; an entry whose file was modified less than 2 s before it was
 * scanned is "racy" (a same-size rewrite within the file system's timestamp granularity
 * would be invisible) and is scanned again next time. Entries for files this index does not
 * use (e.g. other sources) stay while the file is unchanged; entries for removed or
 * changed files are dropped. A corrupt cache is ignored. The
 * file is rewritten (temporary + fsync + rename) only when something changed, also when
 * the scan found problems (good files are remembered). Native byte order. */
#ifndef TFSWA_INDEX_H
#define TFSWA_INDEX_H
#include <stdint.h>

#include "util/config.h"
#include "util/err.h"

typedef enum { TF_SPLIT_TRAIN = 0, TF_SPLIT_VALID = 1, TF_SPLIT_TEST = 2 } tf_split;

typedef struct {
    char *path;     /* NULL if the file is absent (only allowed for the mixture) */
    int64_t frames; /* frames in the file */
    int rate, channels;
    int64_t n_env; /* ceil(frames / env_block) */
    float *env;    /* (n_env,) mean |x| over both channels per block; last block partial */
} tf_stem_file;

typedef struct {
    char *name; /* track folder name, e.g. "A Classic Education - NightOwl" */
    char *dir;  /* full path of the track folder */
    tf_split split;
    int64_t frames;                     /* common length of the stems */
    tf_stem_file mixture;               /* mixture.wav/.flac, may be absent */
    tf_stem_file stems[TF_MAX_TARGETS]; /* in the order of cfg->sources */
} tf_track;

typedef struct {
    int n_tracks;
    tf_track *tracks;
    int n_stems; /* = cfg->n_sources */
    char stem_names[TF_MAX_TARGETS][TF_NAME_MAX];
    int sample_rate;
    int env_block;                         /* frames per envelope block (rate / 4) */
    int64_t files_scanned;                 /* files read in this open (not from cache) */
    int64_t files_cached;                  /* files taken from the cache in this open */
    int split_start[3], split_count[3];    /* ix->tracks[split_start[s] ...] are split s */
    char root[TF_PATH_MAX];                /* cfg->root without trailing '/' */
    char layout[16];                       /* "musdb18", "splits" or "folder" */
    char cache_path[TF_PATH_MAX];          /* "" when no cache location was usable */
    int cache_written;                     /* 1 if this open rewrote the cache */
    char cache_warning[TF_PATH_MAX + 256]; /* default cache location not writable ("" = ok) */
} tf_index;

/* Scan cfg->root (using and updating the cache at cache_path; NULL = default location)
 * and build the index. Problems (missing stem, stems of one track with different
 * lengths, wrong sample rate, unreadable/empty/non-audio file) are ALL collected: the
 * returned TF_EUSER message holds one line per problem, each naming the file. An explicit
 * cache_path that cannot be written is TF_EUSER; an unwritable default location only sets
 * ix->cache_warning. Files are scanned in parallel (cfg->num_threads, 0 = OpenMP default). */
tf_status tf_index_open(tf_index **ix, const tf_config *cfg, const char *cache_path);
void tf_index_close(tf_index *ix);
/* Number of tracks in a split, and the i-th of them (index into ix->tracks). */
int tf_index_count(const tf_index *ix, tf_split split);
int tf_index_track_of(const tf_index *ix, tf_split split, int i);
/* Total frames of the tracks of a split (sum of tf_track.frames). */
int64_t tf_index_frames(const tf_index *ix, tf_split split);

/* "train", "valid", "test"; and the reverse (TF_EUSER naming the value). */
const char *tf_split_name(tf_split split);
tf_status tf_split_parse(const char *s, tf_split *split);

#endif
