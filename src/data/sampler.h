/* Training-chunk sampler: where each stem of a training item is read from.
 *
 * A placement is (track, offset); a chunk is the `frames` = round(segment_seconds *
 * sample_rate) frames starting at `offset`. Offsets lie in [0, max(0, track frames -
 * frames)]: a chunk never runs past the end of a track longer than a segment; a track
 * shorter than a segment is read from 0 and zero-padded.
 *
 * Distribution: uniform over all admissible (track, offset) pairs of the split, so a
 * track is drawn in proportion to its admissible (loud) duration.
 *
 * Silence (cfg->min_mean_abs = thr > 0): an offset is admissible for a stem when a LOWER
 * BOUND of the chunk's mean |x| taken from the index envelope is >= thr * (1 + 1e-3):
 * the bound sums only the envelope blocks that the chunk covers completely for every
 * offset of the same start block (chunk sum >= sum of those block sums), divided by
 * `frames`. So no read is wasted on a chunk the envelope knows to be quiet, and a chunk
 * drawn from the table is loud unless the file disagrees with its envelope; the loader
 * still checks the true mean of every chunk it reads and redraws (rare) if needed.
 *   Remix mode (TF_SAMPLE_REMIX): each stem has its own table.
 *   Aligned mode (TF_SAMPLE_ALIGNED): one (track, offset) for all stems; the filtered
 *   quantity is the MIXTURE of the chunk (the sum of the stems, what the model hears).
 *   Its table uses the per-block maximum of the stem envelopes as the estimate of the
 *   mixture's envelope (not a bound: stems may cancel), and the loader's true check is
 *   on mean |sum of stems|. Individual stems of an aligned item may be silent, as in the
 *   real song.
 * thr = 0: every offset of every track is admissible.
 *
 * Every random choice comes from a tf_rng the caller seeds with tf_rng_seed(seed, step,
 * item, tf_stream(purpose, stem, attempt)), so an item depends only on (seed, step,
 * item). */
#ifndef TFSWA_SAMPLER_H
#define TFSWA_SAMPLER_H
#include <stdint.h>

#include "data/index.h"
#include "util/config.h"
#include "util/err.h"
#include "util/rng.h"

/* Purposes of the random streams of one training item. */
enum {
    TF_STREAM_DRAW = 1,     /* placement of a stem (remix) or of the item (aligned) */
    TF_STREAM_MIX_PICK = 2, /* whether the same-source mix applies to a stem */
    TF_STREAM_MIX_DRAW = 3, /* placement of the same-source partner segment */
    TF_STREAM_AUG = 4,      /* gain, channel swap, polarity of a stem */
};
/* The `c` argument of tf_rng_seed for (purpose, stem, attempt); stem = -1 for the item. */
uint64_t tf_stream(int purpose, int stem, int attempt);

typedef struct {
    int track;      /* index into ix->tracks */
    int64_t offset; /* first frame of the chunk */
} tf_draw;

typedef struct tf_sampler tf_sampler;

/* Build the tables for the tracks of `split`. TF_EUSER when the split has no track,
 * when the rates disagree, or when a stem (remix) / the mixture (aligned) has no loud
 * chunk in any track (the message names the stem and the threshold). The index must
 * outlive the sampler. */
tf_status tf_sampler_open(tf_sampler **s, const tf_config *cfg, const tf_index *ix, tf_split split);
void tf_sampler_close(tf_sampler *s);

int64_t tf_sampler_frames(const tf_sampler *s); /* chunk length N in frames */
/* Number of admissible (track, offset) pairs for stem s (remix) or s = -1 (aligned
 * table; 0 when the sampler is in remix mode). */
int64_t tf_sampler_admissible(const tf_sampler *s, int stem);

/* One placement for stem `stem` from its own table (remix draws and the same-source
 * partner, in both modes). */
void tf_sampler_draw_stem(const tf_sampler *s, tf_rng *r, int stem, tf_draw *out);
/* One placement for a whole item from the aligned table (aligned mode only). */
void tf_sampler_draw_aligned(const tf_sampler *s, tf_rng *r, tf_draw *out);

#endif
