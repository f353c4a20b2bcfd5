#!/bin/sh
# Regenerate the seed corpus fuzz/seeds/<reader>/ from real tfswa output (run from the
# repository root after `make all tests-bin`): a tiny synthetic dataset, two training steps
# of the tiny architecture of fuzz/fuzz.h (fz_tiny_config) giving config.yaml, model.json,
# model.safetensors (14 KB) and train_state.bin (10 KB), the shipped configs/, a few short
# audio files written by tfswa's own writer (WAV 16/24-bit/float, FLAC; mono and stereo) and
# by libsndfile in the other containers and codecs it reads (AIFF, AU, W64, CAF, RF64, Ogg
# Vorbis, ADPCM, GSM 6.10, 8-bit),
# and the index cache the index harness's dataset gets from a real tf_index_open.
set -e
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S="$ROOT/fuzz/seeds"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$S/safetensors" "$S/model_json" "$S/train_state" "$S/config" "$S/index" "$S/audio"
cat > "$T/tiny.yaml" << 'Y'
channels: [2, 4]
rcms_per_block: 1
tfswa_blocks: 1
heads: 1
window: [2, 2]
mlp_ratio: 1.0
subbands: 1
stft:
  window_size: 64
  hop_length: 32
targets: [vocals]
sample_rate: 8000
segment_seconds: 0.25
batch_size: 1
Y
"$BUILD/tfswa" synth "$T/data" --tracks 2 --test_tracks 1 --seconds 1 --sample_rate 8000 > /dev/null
"$BUILD/tfswa" train --config "$T/tiny.yaml" --data_root "$T/data" --max_steps 2 --ckpt_every 1 \
  --val_every 2 --num_workers 0 --output_dir "$T/run" --num_threads 1 > /dev/null
c="$T/run/checkpoints/last"
cp "$c/model.safetensors" "$S/safetensors/tiny.safetensors"
cp "$c/model.json" "$S/model_json/tiny.json"
cp "$c/train_state.bin" "$S/train_state/tiny.bin"
cp "$T/run/config.yaml" "$S/config/run.yaml"
cp "$T/tiny.yaml" "$S/config/tiny.yaml"
for f in "$ROOT"/configs/*/*.yaml; do
  cp "$f" "$S/config/$(basename "$(dirname "$f")")-$(basename "$f")"
done
cat > "$T/gen.c" << 'C'
#include "audio/audio.h"
#include <sndfile.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    static float x[2 * 100];
    for (int i = 0; i < 200; i++) x[i] = (float)((i * 37 % 101) - 50) / 60.f;
    const char *d = argv[1];
    char p[4096];
    struct { const char *n; int ch; tf_format f; tf_subtype s; } v[] = {
        {"stereo16.wav", 2, TF_FMT_WAV, TF_SUBTYPE_PCM16}, {"mono16.wav", 1, TF_FMT_WAV, TF_SUBTYPE_PCM16},
        {"stereo24.wav", 2, TF_FMT_WAV, TF_SUBTYPE_PCM24}, {"float.wav", 2, TF_FMT_WAV, TF_SUBTYPE_FLOAT},
        {"stereo16.flac", 2, TF_FMT_FLAC, TF_SUBTYPE_PCM16}, {"mono24.flac", 1, TF_FMT_FLAC, TF_SUBTYPE_PCM24}};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", d, v[i].n);
        if (tf_audio_write_file(p, x, v[i].ch, 100, 8000, v[i].f, v[i].s)) return 1;
    }
    /* other containers and codecs libsndfile reads (tfswa separate accepts them) */
    struct { const char *n; int fmt; } o[] = {
        {"pcm16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16}, {"ulaw.au", SF_FORMAT_AU | SF_FORMAT_ULAW},
        {"pcm16.w64", SF_FORMAT_W64 | SF_FORMAT_PCM_16}, {"float.caf", SF_FORMAT_CAF | SF_FORMAT_FLOAT},
        {"pcm16.rf64", SF_FORMAT_RF64 | SF_FORMAT_PCM_16}, {"vorbis.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
        {"ima_adpcm.wav", SF_FORMAT_WAV | SF_FORMAT_IMA_ADPCM}, {"ms_adpcm.wav", SF_FORMAT_WAV | SF_FORMAT_MS_ADPCM},
        {"gsm610.wav", SF_FORMAT_WAV | SF_FORMAT_GSM610}, {"pcm8.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8}};
    float y[2 * 100];
    for (int i = 0; i < 100; i++) y[2 * i] = x[i], y[2 * i + 1] = x[100 + i];
    for (int i = 0; i < 10; i++) {
        SF_INFO si = {0};
        si.samplerate = 8000, si.channels = strstr(o[i].n, "gsm") ? 1 : 2, si.format = o[i].fmt;
        snprintf(p, sizeof p, "%s/%s", d, o[i].n);
        SNDFILE *f = sf_open(p, SFM_WRITE, &si);
        if (!f) { fprintf(stderr, "%s: %s (skipped)\n", p, sf_strerror(NULL)); continue; }
        sf_writef_float(f, y, si.channels == 1 ? 200 / 2 : 100);
        sf_close(f);
    }
    (void)argc;
    return 0;
}
C
${CC:-cc} -std=c11 -I"$ROOT/src" -o "$T/gen" "$T/gen.c" "$BUILD/libtfswa.a" \
  $(pkg-config --libs sndfile fftw3f soxr yaml-0.1 libcjson) -lm -lpthread -fopenmp
"$T/gen" "$S/audio"
: > "$T/empty"
TFSWA_FUZZ_SAVE_CACHE="$S/index/tiny.idx" "$BUILD/fuzz/replay_index" "$T/empty" > /dev/null
ls -l "$S"/*
