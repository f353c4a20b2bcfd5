/* Threaded training-batch loader: sampler -> chunk reads -> silence check -> augment ->
 * batch. A batch is a pure function of (config, index, seed, step): the same bits with
 * 0, 1 or 16 worker threads, persistent or not.
 *
 *   tf_loader *l;
 *   TF_TRY(tf_loader_open(&l, cfg, ix, seed));
 *   for (int e = 0; e < epochs; e++) {
 *       TF_TRY(tf_loader_start_epoch(l, e, e * steps, steps));
 *       for (int i = 0; i < steps; i++) {
 *           const tf_batch *b;
 *           TF_TRY(tf_loader_next(l, &b));   // b->step == e * steps + i
 *           ... use b->stems, b->mixture until the next call ...
 *       }
 *   }
 *   tf_loader_close(l);
 *
 * Config: num_workers threads (0 = synchronous, in tf_loader_next) fill a ring of
 * num_workers x prefetch_factor batches ahead of the caller, plus the one the caller
 * holds (PyTorch's prefetch_factor meaning). A slot of the ring holds a batch's stems; the
 * mixture of the batch the caller holds is summed from them by tf_loader_next into one
 * buffer (each worker checks its item's mixture in a buffer of its own). persistent_workers:
 * threads (and their open files) live from the first epoch to close; otherwise they are created by
 * every tf_loader_start_epoch and joined at the next one (or at close). pin_memory: batch memory is
 * mlock'ed; if that fails (RLIMIT_MEMLOCK) the loader goes on unpinned and counts it in the stats.
 * use_efficient_loading: each chunk is read with sf_seek + sf_readf_float through a small
 * per-worker LRU cache of open files, never a whole file; when false, every chunk reads its whole
 * stem file (tf_audio_read_all) and slices it, as the original code did. min_mean_abs, sampling and
 * augment.*: see sampler.h and augment.h. Chunks are checked on the samples as read, before
 * augmentation: remix mode redraws a stem whose chunk has mean |x| < min_mean_abs,
 * aligned mode redraws the item when the mixture of its stems does; a same-source
 * partner is redrawn when its own chunk does.
 *
 * Provenance: b->info says where every delivered stem came from (track, first frame,
 * partner, gain with its sign, swap), so a caller can re-read the source frames from the
 * files and check both the samples and the silence filter independently of the loader
 * (tests/test_loader.c and `tfswa bench data` do). Delivered stem (item, s) is
 *   y = chunk(track, s, offset), or (y + chunk(mix_track, s, mix_offset)) * 1/sqrt 2
 *       when mix_track >= 0;
 *   x = swapped ? (R * gain, L * gain) : (L * gain, R * gain) of y = (L, R),
 * where chunk() is the file's frames as float (zero past the end; mono duplicated), and
 * the mixture is the sum of the delivered stems in stem order.
 *
 * Speed: with use_efficient_loading each item is made in one fused pass (all its stems
 * and partners read TF_AUDIO_RAW_MAX frames at a time, each block checked, augmented and added to
 * the mixture while in cache), bit for bit what the chunk-at-a-time reference path gives
 * (tf_loader_set_fused). */
#ifndef TFSWA_LOADER_H
#define TFSWA_LOADER_H
#include <stddef.h>
#include <stdint.h>

#include "data/index.h"
#include "util/config.h"
#include "util/err.h"

typedef struct {
    int track;          /* index into ix->tracks */
    int64_t offset;     /* first frame of the chunk */
    int redraws;        /* silent chunks rejected for this stem (remix) or item (aligned) */
    int mix_track;      /* same-source partner's track, -1 when not mixed */
    int64_t mix_offset; /* and offset */
    float mean_abs;     /* mean |x| of the chunk as read (before the partner and gain) */
    float gain;         /* linear gain applied after the mix, sign included (-1 = polarity) */
    int swapped;        /* channels exchanged (after the gain) */
} tf_chunk_info;

typedef struct {
    int64_t step;
    int B, S;            /* batch_size, stems = cfg->n_sources (all stems that sum to the
                            mixture, in cfg->sources order; targets are a subset) */
    int64_t N;           /* frames per chunk */
    float *stems;        /* (B, S, 2, N) */
    float *mixture;      /* (B, 2, N) = sum over S of stems, in stem order */
    tf_chunk_info *info; /* (B, S) */
} tf_batch;

typedef struct {
    int64_t batches;          /* batches filled (including ones discarded by a new epoch) */
    int64_t delivered_chunks; /* stem chunks in batches handed to the caller (B*S each) */
    int64_t stem_reads;       /* stem-file reads (chunk or whole-file), every purpose; after
                                 a rejected partner the stem's chunk is read once more */
    int64_t mix_reads;        /* of which for same-source partners */
    int64_t redraws;          /* chunks (remix, partners) or items (aligned) rejected as
                                 silent */
    int64_t file_opens;       /* reader opens (cache misses) */
    int64_t worker_starts;    /* threads created */
    int64_t pin_failures;     /* mlock failures (batches then stay unpinned) */
    size_t pinned_bytes;      /* bytes currently mlock'ed */
    size_t batch_bytes;       /* bytes of all batch slots */
} tf_loader_counters;

typedef struct tf_loader tf_loader;

/* Checks the data keys of cfg (TF_EUSER naming the key), builds the sampler for the
 * train split, allocates every batch slot. cfg is copied; ix must outlive the loader. */
tf_status tf_loader_open(tf_loader **l, const tf_config *cfg, const tf_index *ix, uint64_t seed);
/* Start producing steps first_step .. first_step + n_steps - 1. Batches of a previous
 * epoch not yet taken are discarded. */
tf_status tf_loader_start_epoch(tf_loader *l, int epoch, int64_t first_step, int64_t n_steps);
/* Block until the batch of the next step is ready. *b stays valid until the next call
 * (or close). Errors of a worker (e.g. an unreadable file) come back here. Calling it
 * after the last step of the epoch is an error. */
tf_status tf_loader_next(tf_loader *l, const tf_batch **b);
/* Bytes of the batch block tf_loader_open allocates for cfg (n_stems = the sources,
 * frames = the segment length), computed without allocating: the slots' stems, the
 * delivered mixture and the workers' item mixtures. */
size_t tf_loader_plan_bytes(const tf_config *cfg, int n_stems, int64_t frames);
/* Data sharding for data parallelism: the batch of logical step k is drawn as the batch
 * of step k * stride + offset would be without sharding (default stride 1, offset 0).
 * Call before the first tf_loader_start_epoch. */
void tf_loader_set_shard(tf_loader *l, int64_t stride, int64_t offset);
void tf_loader_stats(const tf_loader *l, tf_loader_counters *st);
/* The one block of all batch slots (page-aligned, allocated once by tf_loader_open) and
 * its bytes: a device trainer page-locks it for the CUDA driver (cudaHostRegister). */
void *tf_loader_block(const tf_loader *l, size_t *bytes);
/* on = 0: make every item with the reference path (one chunk at a time, each then checked,
 * augmented and added to the mixture in separate passes) instead of the fused pass; for
 * tests and `tfswa bench data`. The batches are the same bits either way. */
void tf_loader_set_fused(tf_loader *l, int on);
/* Stops the workers (also mid-batch), closes files, frees everything. */
void tf_loader_close(tf_loader *l);

/* Reader cache entries per worker (open files kept for chunk reads). */
#define TF_LOADER_OPEN_FILES 32

#endif
