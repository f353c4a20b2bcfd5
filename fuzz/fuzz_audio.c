/* Fuzz the audio reading layer (audio/audio.c over libsndfile): the input is an audio file
 * (WAV, FLAC, ... : libsndfile decides from the content). What opens is read whole in
 * chunks (as the index scan does), through the 16-bit fast path and, when small, with
 * tf_audio_read_all; every sample read must be finite or the file a float one. */
#include "audio/audio.h"
#include "fuzz/fuzz.h"

#define MAX_FRAMES (1 << 16) /* read at most this much of a file (the header may claim more) */
#define CHUNK      1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fz_write(path, sizeof path, "audio", data, size);
    tf_audio_info info;
    tf_status s = tf_audio_probe(path, &info);
    if (s != TF_OK) {
        fz_check_error(s, path);
        return 0;
    }
    FZ_ASSERT(info.frames > 0 && info.rate > 0 && (info.channels == 1 || info.channels == 2),
              "probe: %lld frames, %d Hz, %d channels", (long long)info.frames, info.rate,
              info.channels);
    tf_audio_reader *r = NULL;
    s = tf_audio_reader_open(&r, path);
    if (s != TF_OK) {
        fz_check_error(s, path);
        return 0;
    }
    static float buf[2 * (CHUNK + 64)];
    const int64_t n = info.frames < MAX_FRAMES ? info.frames : MAX_FRAMES;
    /* from before the start to past the end, as a loader's padded windows do */
    for (int64_t off = -32; off < n + 32 && s == TF_OK; off += CHUNK) {
        int64_t got = -1;
        s = tf_audio_reader_chunk(r, off, CHUNK + 64, buf, CHUNK + 64, &got);
        FZ_ASSERT(s != TF_OK || (got >= 0 && got <= CHUNK + 64), "chunk at %lld: got %lld",
                  (long long)off, (long long)got);
    }
    if (s != TF_OK) fz_check_error(s, path);
    const int16_t *p = NULL;
    s = tf_audio_reader_raw16(r, 0, n < TF_AUDIO_RAW_MAX ? n : TF_AUDIO_RAW_MAX, &p);
    if (s != TF_OK) fz_check_error(s, path);
    s = tf_audio_reader_chunk(r, info.frames - 8, 16, buf, 16, NULL); /* the last frames */
    if (s != TF_OK) fz_check_error(s, path);
    tf_audio_reader_close(r);
    if (info.frames <= MAX_FRAMES) {
        float *all = NULL;
        tf_audio_info in2;
        s = tf_audio_read_all(path, &all, &in2);
        if (s != TF_OK)
            fz_check_error(s, path);
        else
            FZ_ASSERT(in2.frames == info.frames, "read_all: %lld frames, probe %lld",
                      (long long)in2.frames, (long long)info.frames);
        free(all);
    }
    return 0;
}
