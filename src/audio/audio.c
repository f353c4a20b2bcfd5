#include "audio/audio.h"

#include <errno.h>
#include <pthread.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tf_audio_reader {
    SNDFILE *sf;
    tf_audio_info info;
    char *path;
    float *ibuf; /* interleaved scratch, IBUF_FRAMES x channels */
    int64_t pos; /* libsndfile's read position, -1 if unknown (skip redundant seeks) */
    short *sbuf; /* PCM16 files: 16-bit interleaved scratch (NULL otherwise) */
    int lenient; /* MPEG: the frame count may be an estimate, a short read is the end */
};

enum { IBUF_FRAMES = TF_AUDIO_RAW_MAX };

/* sf_open keeps the reason of a failure in a global (read by sf_strerror(NULL)): opens from
 * several threads (loader workers) are serialised so the message and libsndfile's
 * global state stay consistent. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;

static SNDFILE *open_locked(const char *path, int mode, SF_INFO *si, char *why, size_t n) {
    pthread_mutex_lock(&open_mu);
    SNDFILE *sf = sf_open(path, mode, si);
    if (!sf) snprintf(why, n, "%s", sf_strerror(NULL));
    pthread_mutex_unlock(&open_mu);
    return sf;
}

/* A WAV (or W64/RF64) file cut short keeps the length its header says; libsndfile then
 * shortens the file silently and notes "data : N (should be M)" in its log. N > M is a
 * truncated file, except the lengths that streaming writers (ffmpeg to a pipe) put in a
 * header they cannot seek back to: 0 and all ones. */
static int wav_truncated(SNDFILE *sf, long long *said, long long *holds) {
    char log[4096];
    log[0] = 0;
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    log[sizeof log - 1] = 0;
    for (const char *l = log; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "data : ", 7) != 0) continue;
        long long n = 0, m = 0;
        if (sscanf(l + 7, "%lld (should be %lld)", &n, &m) != 2) continue;
        if (n > m && n != 0 && n != 0xFFFFFFFFLL && n != 0x7FFFFFFFLL && n != 0xFFFFFFFELL) {
            *said = n, *holds = m;
            return 1;
        }
    }
    return 0;
}

static tf_status open_sf(const char *path, SNDFILE **sf, tf_audio_info *info, int *format) {
    SF_INFO si;
    memset(&si, 0, sizeof si);
    char why[256];
    *sf = open_locked(path, SFM_READ, &si, why, sizeof why);
    if (!*sf) return tf_err(TF_EUSER, "%s: cannot read audio: %s", path, why);
    if (si.channels < 1 || si.channels > 2) {
        sf_close(*sf);
        return tf_err(TF_EUSER, "%s: %d channels (only mono and stereo are supported)", path,
                      si.channels);
    }
    if (si.frames <= 0) {
        sf_close(*sf);
        return tf_err(TF_EUSER, "%s: empty audio file (0 frames)", path);
    }
    long long said = 0, holds = 0;
    if (wav_truncated(*sf, &said, &holds)) {
        sf_close(*sf);
        return tf_err(TF_EUSER,
                      "%s: truncated: the header says %lld bytes of audio, the file holds %lld",
                      path, said, holds);
    }
    /* libsndfile says SF_COUNT_MAX when the header gives no length; a corrupt header can
     * claim anything. Callers size buffers and compute offset + frames from this count. */
    if (si.frames > TF_AUDIO_MAX_FRAMES) {
        sf_close(*sf);
        return tf_err(TF_EUSER, "%s: the header claims %lld frames (unknown length or corrupt)",
                      path, (long long)si.frames);
    }
    info->frames = si.frames;
    info->rate = si.samplerate;
    info->channels = si.channels;
    if (format) *format = si.format;
    return TF_OK;
}

tf_status tf_audio_probe(const char *path, tf_audio_info *info) {
    SNDFILE *sf;
    TF_TRY(open_sf(path, &sf, info, NULL));
    sf_close(sf);
    return TF_OK;
}

tf_status tf_audio_reader_open(tf_audio_reader **out, const char *path) {
    *out = NULL;
    tf_audio_reader *r = tf_calloc(1, sizeof *r, "audio reader");
    if (!r) return TF_EINTERNAL;
    int format = 0;
    tf_status st = open_sf(path, &r->sf, &r->info, &format);
    if (st) {
        free(r);
        return st;
    }
    r->lenient = (format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;
    r->path = tf_strdup(path);
    r->ibuf =
        tf_malloc(sizeof(float) * IBUF_FRAMES * (size_t)r->info.channels, "audio read buffer");
    /* 16-bit PCM (WAV, FLAC, ...): read shorts and scale by 1/32768 ourselves, which is
     * exactly what sf_readf_float returns (normalised float) but several times faster */
    if ((format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16) {
        r->sbuf =
            tf_malloc(sizeof(short) * IBUF_FRAMES * (size_t)r->info.channels, "audio read buffer");
        if (!r->sbuf) {
            tf_audio_reader_close(r);
            return TF_EINTERNAL;
        }
    }
    if (!r->path || !r->ibuf) {
        tf_audio_reader_close(r);
        return TF_EINTERNAL;
    }
    *out = r;
    return TF_OK;
}

const tf_audio_info *tf_audio_reader_info(const tf_audio_reader *r) {
    return &r->info;
}

tf_status tf_audio_reader_chunk(tf_audio_reader *r, int64_t offset, int64_t frames, float *out,
                                int64_t stride, int64_t *nread) {
    float *L = out, *R = out + stride;
    int64_t begin = offset < 0 ? 0 : offset;
    int64_t end = offset + frames;
    if (end > r->info.frames) end = r->info.frames;
    /* zero the padded head and tail */
    int64_t head = begin - offset; /* frames before the file start */
    if (head > frames) head = frames;
    for (int64_t i = 0; i < head; i++) L[i] = R[i] = 0.f;
    int64_t got_total = 0;
    if (end > begin) {
        /* sequential reads (streaming) skip the seek: a FLAC seek restarts decoding */
        if (r->pos != begin && sf_seek(r->sf, begin, SEEK_SET) < 0) {
            r->pos = -1;
            return tf_err(TF_EUSER, "%s: seek to frame %lld failed: %s", r->path, (long long)begin,
                          sf_strerror(r->sf));
        }
        r->pos = begin;
        int64_t pos = head, want = end - begin;
        const int ch = r->info.channels;
        while (want > 0) {
            sf_count_t n = want < IBUF_FRAMES ? want : IBUF_FRAMES;
            sf_count_t got =
                r->sbuf ? sf_readf_short(r->sf, r->sbuf, n) : sf_readf_float(r->sf, r->ibuf, n);
            if (got <= 0) {
                r->pos = -1;
                if (r->lenient) break; /* MPEG: the count was an estimate, the rest is zero */
                return tf_err(TF_EUSER,
                              "%s: truncated or damaged: the header says %lld frames, reading "
                              "stops at frame %lld",
                              r->path, (long long)r->info.frames, (long long)(begin + got_total));
            }
            r->pos += got;
            if (r->sbuf) {
                const float k = 1.f / 32768.f;
                const short *sb = r->sbuf;
                float *l = L + pos, *rr = R + pos;
                if (ch == 2) {
#pragma omp simd
                    for (sf_count_t i = 0; i < got; i++) {
                        l[i] = (float)sb[2 * i] * k;
                        rr[i] = (float)sb[2 * i + 1] * k;
                    }
                } else {
#pragma omp simd
                    for (sf_count_t i = 0; i < got; i++) l[i] = rr[i] = (float)sb[i] * k;
                }
            } else if (ch == 2) {
                for (sf_count_t i = 0; i < got; i++) {
                    L[pos + i] = r->ibuf[2 * i];
                    R[pos + i] = r->ibuf[2 * i + 1];
                }
            } else {
                for (sf_count_t i = 0; i < got; i++) L[pos + i] = R[pos + i] = r->ibuf[i];
            }
            pos += got;
            want -= got;
            got_total += got;
        }
    }
    for (int64_t i = head + got_total; i < frames; i++) L[i] = R[i] = 0.f;
    if (nread) *nread = got_total;
    return TF_OK;
}

tf_status tf_audio_reader_raw16(tf_audio_reader *r, int64_t offset, int64_t frames,
                                const int16_t **p) {
    *p = NULL;
    if (!r->sbuf || r->info.channels != 2 || frames > IBUF_FRAMES || frames < 1 || offset < 0 ||
        offset + frames > r->info.frames)
        return TF_OK;
    if (r->pos != offset && sf_seek(r->sf, offset, SEEK_SET) < 0) {
        r->pos = -1;
        return tf_err(TF_EUSER, "%s: seek to frame %lld failed: %s", r->path, (long long)offset,
                      sf_strerror(r->sf));
    }
    r->pos = offset;
    sf_count_t got = sf_readf_short(r->sf, r->sbuf, frames);
    if (got != frames) { /* truncated file: the caller falls back to tf_audio_reader_chunk */
        r->pos = -1;
        return TF_OK;
    }
    r->pos += got;
    *p = (const int16_t *)r->sbuf;
    return TF_OK;
}

void tf_audio_reader_close(tf_audio_reader *r) {
    if (!r) return;
    if (r->sf) sf_close(r->sf);
    free(r->ibuf);
    free(r->sbuf);
    free(r->path);
    free(r);
}

tf_status tf_audio_read_chunk(const char *path, int64_t offset, int64_t frames, float *out,
                              int64_t stride) {
    tf_audio_reader *r;
    TF_TRY(tf_audio_reader_open(&r, path));
    tf_status st = tf_audio_reader_chunk(r, offset, frames, out, stride, NULL);
    tf_audio_reader_close(r);
    return st;
}

tf_status tf_audio_read_all(const char *path, float **out, tf_audio_info *info) {
    *out = NULL;
    tf_audio_reader *r;
    TF_TRY(tf_audio_reader_open(&r, path));
    *info = r->info;
    float *buf = tf_malloc(sizeof(float) * 2 * (size_t)info->frames, path);
    tf_status st =
        buf ? tf_audio_reader_chunk(r, 0, info->frames, buf, info->frames, NULL) : TF_EINTERNAL;
    tf_audio_reader_close(r);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    return TF_OK;
}

struct tf_audio_writer {
    SNDFILE *sf;
    char *path, *tmp;
    int channels;
    tf_subtype sub;
    int64_t clipped;
    float *ibuf;
};

tf_status tf_audio_writer_open(tf_audio_writer **out, const char *path, int rate, int channels,
                               tf_format fmt, tf_subtype sub) {
    *out = NULL;
    if (channels < 1 || channels > 2)
        return tf_err(TF_EUSER, "%s: cannot write %d channels", path, channels);
    if (fmt == TF_FMT_FLAC && sub == TF_SUBTYPE_FLOAT)
        return tf_err(TF_EUSER, "%s: FLAC cannot hold FLOAT samples (use PCM_16 or PCM_24)", path);
    tf_audio_writer *w = tf_calloc(1, sizeof *w, "audio writer");
    if (!w) return TF_EINTERNAL;
    w->channels = channels;
    w->sub = sub;
    w->path = tf_strdup(path);
    size_t n = strlen(path) + 32;
    w->tmp = tf_malloc(n, "path");
    w->ibuf = tf_malloc(sizeof(float) * IBUF_FRAMES * (size_t)channels, "audio write buffer");
    if (!w->path || !w->tmp || !w->ibuf) {
        tf_audio_writer_close(w, 0);
        return TF_EINTERNAL;
    }
    snprintf(w->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    SF_INFO si;
    memset(&si, 0, sizeof si);
    si.samplerate = rate;
    si.channels = channels;
    si.format = (fmt == TF_FMT_FLAC ? SF_FORMAT_FLAC : SF_FORMAT_WAV) |
                (sub == TF_SUBTYPE_PCM16   ? SF_FORMAT_PCM_16
                 : sub == TF_SUBTYPE_PCM24 ? SF_FORMAT_PCM_24
                                           : SF_FORMAT_FLOAT);
    char why[256];
    w->sf = open_locked(w->tmp, SFM_WRITE, &si, why, sizeof why);
    if (!w->sf) {
        tf_status st = tf_err(TF_EUSER, "%s: cannot write: %s", w->tmp, why);
        tf_audio_writer_close(w, 0);
        return st;
    }
    /* we clip ourselves (and count), so libsndfile must not rescale */
    sf_command(w->sf, SFC_SET_CLIPPING, NULL, SF_FALSE);
    *out = w;
    return TF_OK;
}

tf_status tf_audio_writer_write(tf_audio_writer *w, const float *data, int64_t frames,
                                int64_t stride) {
    const int ch = w->channels;
    const int pcm = w->sub != TF_SUBTYPE_FLOAT;
    /* largest value that does not wrap: 1 - 1 LSB */
    const float hi = w->sub == TF_SUBTYPE_PCM16 ? 32767.f / 32768.f : 8388607.f / 8388608.f;
    for (int64_t done = 0; done < frames;) {
        int64_t n = frames - done < IBUF_FRAMES ? frames - done : IBUF_FRAMES;
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < ch; c++) {
                float v = data[(int64_t)c * stride + done + i];
                if (pcm) {
                    if (v > hi)
                        v = hi, w->clipped++;
                    else if (v < -1.f)
                        v = -1.f, w->clipped++;
                }
                w->ibuf[i * ch + c] = v;
            }
        if (sf_writef_float(w->sf, w->ibuf, n) != n)
            return tf_err(TF_EUSER, "%s: write failed: %s", w->tmp, sf_strerror(w->sf));
        done += n;
    }
    return TF_OK;
}

int64_t tf_audio_writer_clipped(const tf_audio_writer *w) {
    return w->clipped;
}

tf_status tf_audio_writer_close(tf_audio_writer *w, int commit) {
    if (!w) return TF_OK;
    tf_status st = TF_OK;
    if (w->sf) {
        sf_write_sync(w->sf);
        if (sf_close(w->sf) != 0) st = tf_err(TF_EUSER, "%s: close failed", w->tmp);
        if (commit && st == TF_OK) {
            if (rename(w->tmp, w->path) != 0)
                st = tf_err(TF_EUSER, "%s: cannot rename to %s: %s", w->tmp, w->path,
                            strerror(errno));
        } else {
            remove(w->tmp);
        }
    }
    free(w->ibuf);
    free(w->tmp);
    free(w->path);
    free(w);
    return st;
}

tf_status tf_audio_write_file(const char *path, const float *data, int channels, int64_t frames,
                              int rate, tf_format fmt, tf_subtype sub) {
    tf_audio_writer *w;
    TF_TRY(tf_audio_writer_open(&w, path, rate, channels, fmt, sub));
    tf_status st = tf_audio_writer_write(w, data, frames, frames);
    tf_status st2 = tf_audio_writer_close(w, st == TF_OK);
    return st ? st : st2;
}
