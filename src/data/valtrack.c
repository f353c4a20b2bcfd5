/* Whole-track streaming for validation and evaluation. See valtrack.h. */
#include "data/valtrack.h"

#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

struct tf_valtrack {
    const tf_track *tr;
    int S;
    int64_t frames, pos;
    tf_audio_reader *mix; /* NULL when the track has no mixture file */
    tf_audio_reader *stems[TF_MAX_TARGETS];
    float *scratch; /* (S, 2, cap) stems when the caller wants none */
    int64_t cap;
};

static tf_status open_checked(tf_audio_reader **r, const tf_stem_file *f) {
    TF_TRY(tf_audio_reader_open(r, f->path));
    const tf_audio_info *in = tf_audio_reader_info(*r);
    if (in->frames != f->frames || in->rate != f->rate)
        return tf_err(TF_EUSER,
                      "%s: changed since it was indexed (%lld frames at %d Hz, the index "
                      "says %lld at %d Hz): run 'tfswa index' again",
                      f->path, (long long)in->frames, in->rate, (long long)f->frames, f->rate);
    return TF_OK;
}

tf_status tf_valtrack_open(tf_valtrack **out, const tf_index *ix, int track) {
    *out = NULL;
    if (track < 0 || track >= ix->n_tracks)
        return tf_err(TF_EINTERNAL, "valtrack: track %d out of range (%d tracks)", track,
                      ix->n_tracks);
    tf_valtrack *v = tf_calloc(1, sizeof *v, "valtrack");
    if (!v) return TF_EINTERNAL;
    v->tr = &ix->tracks[track];
    v->S = ix->n_stems;
    v->frames = v->tr->frames;
    tf_status st = TF_OK;
    if (v->tr->mixture.path) st = open_checked(&v->mix, &v->tr->mixture);
    for (int s = 0; st == TF_OK && s < v->S; s++) st = open_checked(&v->stems[s], &v->tr->stems[s]);
    if (st) {
        tf_valtrack_close(v);
        return st;
    }
    *out = v;
    return TF_OK;
}

static tf_status read_one(tf_audio_reader *r, const tf_stem_file *f, int64_t pos, int64_t frames,
                          int64_t want, float *out) {
    int64_t got = 0;
    TF_TRY(tf_audio_reader_chunk(r, pos, frames, out, frames, &got)); /* out: (2, frames) */
    if (got != want)
        return tf_err(TF_EUSER,
                      "%s: changed since it was indexed (%lld frames readable at %lld, "
                      "expected %lld): run 'tfswa index' again",
                      f->path, (long long)got, (long long)pos, (long long)want);
    return TF_OK;
}

tf_status tf_valtrack_read(tf_valtrack *v, int64_t frames, float *mix, float *stems, int64_t *got) {
    *got = 0;
    if (frames < 0) return tf_err(TF_EINTERNAL, "valtrack: negative block size");
    int64_t left = v->frames - v->pos, want = left < frames ? left : frames;
    const size_t plane = 2 * (size_t)frames;
    if (!stems && mix && !v->mix) { /* the mixture is the sum of the stems: need them */
        if (v->cap < frames) {
            free(v->scratch);
            v->scratch = tf_malloc(sizeof(float) * plane * (size_t)v->S, "valtrack stems");
            v->cap = v->scratch ? frames : 0;
            if (!v->scratch) return TF_EINTERNAL;
        }
        stems = v->scratch;
    }
    if (stems)
        for (int s = 0; s < v->S; s++)
            TF_TRY(read_one(v->stems[s], &v->tr->stems[s], v->pos, frames, want,
                            stems + (size_t)s * plane));
    if (mix) {
        if (v->mix) {
            TF_TRY(read_one(v->mix, &v->tr->mixture, v->pos, frames, want, mix));
        } else {
            memcpy(mix, stems, sizeof(float) * plane);
            for (int s = 1; s < v->S; s++) {
                const float *x = stems + (size_t)s * plane;
                for (size_t i = 0; i < plane; i++) mix[i] += x[i];
            }
        }
    }
    v->pos += want;
    *got = want;
    return TF_OK;
}

int64_t tf_valtrack_frames(const tf_valtrack *v) {
    return v->frames;
}
int64_t tf_valtrack_pos(const tf_valtrack *v) {
    return v->pos;
}

void tf_valtrack_close(tf_valtrack *v) {
    if (!v) return;
    tf_audio_reader_close(v->mix);
    for (int s = 0; s < v->S; s++) tf_audio_reader_close(v->stems[s]);
    free(v->scratch);
    free(v);
}
