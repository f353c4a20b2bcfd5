#!/bin/sh
# Regenerate the seed corpus fuzz/seeds/<reader>/ from real tfswa output (run from the
# repository root after `make all tests-bin`): a tiny synthetic dataset, two training steps
# of the tiny architecture of fuzz/fuzz.h (fz_tiny_config) giving config.yaml, model.json,
# model.safetensors (14 KB) and train_state.bin (10 KB), the shipped configs/, a few short
# audio files written by tfswa's own writer (WAV 16/24-bit/float, FLAC; mono and stereo),
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
#include <stdio.h>
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
