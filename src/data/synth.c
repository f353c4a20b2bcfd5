/* Procedural multi-stem songs (see synth.h).
 *
 * A track is a tempo grid (beats of 4/4 bars), a key, a scale and a chord progression.
 * Each stem first draws a rest plan (which beats it plays: whole bars or phrases off,
 * 10-50 % of the beats), then renders note by note into its stereo buffer, skipping the
 * rests entirely (they stay exact zeros):
 *   vocals  sum of 20-30 harmonics by a Chebyshev recurrence on one phasor per sample,
 *           glottal tilt, 3 formants per vowel (changing per note), vibrato ramping in,
 *           glides between notes, breath and consonant noise, phrases with gaps.
 *   drums   kick (falling sine + click), snare (tone + band-passed noise), hi-hats and
 *           crash (high-passed noise + metallic squares), toms, bar patterns with fills.
 *   bass    root/fifth/octave of the chord, polyBLEP saw or square, resonant low-pass
 *           with a plucky filter and amplitude envelope.
 *   other   detuned pads, arpeggios or electric-piano stabs over the progression.
 * Levels are set by RMS over the sounding frames (+-6 dB per stem), then every stem is
 * scaled by one factor so the mixture peak hits a per-track target below 1.
 * No allocation per note; one scratch block per track. */
#include "data/synth.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "util/fsutil.h"
#include "util/rng.h"

#define TWO_PI 6.283185307179586
#define PI     3.141592653589793

enum { VOC = 0, DRM = 1, BAS = 2, OTH = 3, NSTEM = 4 };
enum { CTL = 64 }; /* control-rate block of the vocal synthesiser (frames) */
/* rng purposes: tf_rng_seed(r, track_seed, stem, purpose, 0) */
enum { P_SONG = 0, P_REST = 1, P_NOTES = 2, P_SOUND = 3, P_MIX = 4 };

static const char *const STEM_NAMES[NSTEM] = {"vocals", "drums", "bass", "other"};

/* ------------------------------------------------------------------------------------ */
/* Small DSP pieces                                                                     */

static inline float white(uint32_t *s) { /* xorshift32 -> [-1, 1) */
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return (float)(int32_t)x * (1.f / 2147483648.f);
}

static uint32_t noise_seed(tf_rng *r) {
    uint32_t s = (uint32_t)tf_rng_u64(r);
    return s ? s : 0x9E3779B9u;
}

/* sin(x) for x in [0, 2 pi], |error| < 2e-6: cheaper than libm's sin per sample */
static inline float sin_2pi(float x) {
    float y = x > (float)PI ? x - (float)PI : x, sg = x > (float)PI ? -1.f : 1.f; /* [0, pi] */
    y = y > (float)(PI / 2) ? (float)PI - y : y;                                  /* [0, pi/2] */
    float y2 = y * y;
    float p =
        y * (1.f + y2 * (-1.6666654611e-1f + y2 * (8.3321608736e-3f + y2 * (-1.9515295891e-4f))));
    return sg * p;
}

static double mtof(double m) {
    return 440.0 * pow(2.0, (m - 69.0) / 12.0);
}

/* Topology-preserving state-variable filter (Zavalishin): stable under modulation. */
typedef struct {
    float ic1, ic2, a1, a2, a3, k;
} svf;

static void svf_set(svf *f, double fc, double q, int sr) {
    double ny = 0.45 * sr;
    if (fc < 10.0) fc = 10.0;
    if (fc > ny) fc = ny;
    double g = tan(PI * fc / sr), k = 1.0 / q;
    double a1 = 1.0 / (1.0 + g * (g + k));
    f->a1 = (float)a1;
    f->a2 = (float)(g * a1);
    f->a3 = (float)(g * g * a1);
    f->k = (float)k;
}

static void svf_reset(svf *f) {
    f->ic1 = f->ic2 = 0.f;
}

/* one sample; returns the low-pass, band-pass in *bp, high-pass in *hp */
static inline float svf_tick(svf *f, float v0, float *bp, float *hp) {
    float v3 = v0 - f->ic2;
    float v1 = f->a1 * f->ic1 + f->a2 * v3;
    float v2 = f->ic2 + f->a2 * f->ic1 + f->a3 * v3;
    f->ic1 = 2.f * v1 - f->ic1;
    f->ic2 = 2.f * v2 - f->ic2;
    *bp = v1;
    *hp = v0 - f->k * v1 - v2;
    return v2;
}

static inline float polyblep(float t, float dt) {
    if (t < dt) {
        t /= dt;
        return t + t - t * t - 1.f;
    }
    if (t > 1.f - dt) {
        t = (t - 1.f) / dt;
        return t * t + t + t + 1.f;
    }
    return 0.f;
}

/* band-limited saw (shape 0) or square (shape 1) at phase ph in [0, 1), increment dt */
static inline float osc_blep(float ph, float dt, int shape) {
    if (shape == 0) return 2.f * ph - 1.f - polyblep(ph, dt);
    float ph2 = ph + 0.5f;
    if (ph2 >= 1.f) ph2 -= 1.f;
    return (ph < 0.5f ? 1.f : -1.f) + polyblep(ph, dt) - polyblep(ph2, dt);
}

static void pan_gains(double pan, float *gl, float *gr) {
    if (pan < -1) pan = -1;
    if (pan > 1) pan = 1;
    double a = (pan + 1.0) * PI / 4.0;
    *gl = (float)(cos(a) * 1.41421356);
    *gr = (float)(sin(a) * 1.41421356);
}

static double clampd(double x, double lo, double hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

/* ------------------------------------------------------------------------------------ */
/* The song: tempo grid, key, progression, rest plans                                    */

static const int SCALES[5][7] = {
    {0, 2, 4, 5, 7, 9, 11}, /* major */
    {0, 2, 3, 5, 7, 8, 10}, /* natural minor */
    {0, 2, 3, 5, 7, 9, 10}, /* dorian */
    {0, 2, 4, 5, 7, 9, 10}, /* mixolydian */
    {0, 2, 3, 5, 7, 8, 11}, /* harmonic minor */
};
/* chord roots as scale degrees (0 = tonic) */
static const int PROGS[][4] = {{0, 4, 5, 3}, {5, 3, 0, 4}, {0, 3, 4, 3}, {0, 5, 3, 4},
                               {1, 4, 0, 0}, {0, 3, 0, 4}, {0, 6, 5, 4}, {0, 5, 2, 6},
                               {0, 2, 3, 4}, {0, 3, 5, 4}};

typedef struct {
    int sr;
    int64_t n;  /* frames */
    double spb; /* seconds per beat */
    double t0;  /* time of beat 0 in seconds, in (-1 bar, 0] */
    int nbeats; /* beats from beat 0 past the end of the track */
    int key;    /* tonic pitch class */
    const int *scale;
    int prog[4], chord_bars;
    unsigned char *act[NSTEM]; /* (nbeats,) 1 = the stem plays in this beat */
    float *scratch, *scratch2; /* mono note buffers, scratch_len frames each */
    int64_t scratch_len;
} song;

static int64_t beat_frame(const song *s, double b) {
    return (int64_t)llround((s->t0 + b * s->spb) * s->sr);
}

/* MIDI pitch of scale degree d (any integer), degree 0 = tonic in octave 3 (48 + key) */
static int degree_pitch(const song *s, int d) {
    int oct = d >= 0 ? d / 7 : -((-d + 6) / 7);
    return 48 + s->key + 12 * oct + s->scale[d - 7 * oct];
}

static int chord_root(const song *s, double beat) {
    int bar = beat < 0 ? 0 : (int)(beat / 4.0);
    return s->prog[(bar / s->chord_bars) % 4];
}

static int active(const song *s, int stem, double beat) {
    int b = (int)floor(beat);
    return b >= 0 && b < s->nbeats && s->act[stem][b];
}

/* first beat >= b (integer) where the stem rests, or nbeats */
static int run_end(const song *s, int stem, int b) {
    while (b < s->nbeats && s->act[stem][b]) b++;
    return b;
}

/* Rests: whole bars, half bars or beats, bar-aligned, until a fraction p of the beats
 * rests. Vocals often wait for an intro. */
static void plan_rests(song *s, int stem, double p, tf_rng *r) {
    unsigned char *act = s->act[stem];
    int nb = s->nbeats;
    memset(act, 1, (size_t)nb);
    int target = (int)floor(p * nb + tf_rng_uniform(r)), rest = 0;
    if (target > nb / 2 + 1) target = nb / 2 + 1;
    if (stem == VOC && tf_rng_uniform(r) < 0.5) { /* intro without vocals */
        int len = nb >= 24 ? 8 : 4;
        if (len > target) len = target;
        for (int b = 0; b < len; b++) act[b] = 0;
        rest = len;
    }
    static const int lens_long[4] = {8, 4, 4, 2}, lens_short[4] = {4, 2, 2, 1};
    for (int tries = 0; rest < target && tries < 256; tries++) {
        int len = nb >= 24 ? lens_long[tf_rng_below(r, 4)] : lens_short[tf_rng_below(r, 4)];
        if (len > target - rest) len = target - rest;
        int align = len >= 4 ? 4 : len >= 2 ? 2 : 1;
        int start = align * (int)tf_rng_below(r, (uint64_t)((nb + align - 1) / align));
        for (int b = start; b < start + len && b < nb; b++)
            if (act[b]) act[b] = 0, rest++;
    }
}

/* Add mono buf (len frames, frame 0 = track frame `start`) into L/R with gains. */
static void mix_mono(const song *s, float *L, float *R, int64_t start, const float *buf,
                     int64_t len, float gl, float gr) {
    int64_t i0 = start < 0 ? -start : 0, i1 = len;
    if (start + i1 > s->n) i1 = s->n - start;
    for (int64_t i = i0; i < i1; i++) {
        L[start + i] += gl * buf[i];
        R[start + i] += gr * buf[i];
    }
}

/* Length of a note starting at frame `start` wanting `len` frames, clipped to the track
 * end and the scratch buffer. 0 if nothing of it is audible. */
static int64_t clip_len(const song *s, int64_t start, int64_t len) {
    if (start + len > s->n) len = s->n - start;
    if (len > s->scratch_len) len = s->scratch_len;
    if (len <= 0 || start + len <= 0) return 0;
    return len;
}

/* Fade the last `fade` frames of buf[0:len) to zero (raised cosine by a rotating phasor). */
static void fade_out(float *buf, int64_t len, int64_t fade) {
    if (fade > len) fade = len;
    if (fade <= 0) return;
    double w = PI / (double)fade, cw = cos(w), sw = sin(w), c = 1.0, sn = 0.0;
    for (int64_t i = 0; i < fade; i++) {
        double c2 = c * cw - sn * sw;
        sn = c * sw + sn * cw;
        c = c2; /* cos(pi (i + 1) / fade) */
        buf[len - fade + i] *= (float)(0.5 + 0.5 * c);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Vocals                                                                                */

/* formant frequencies (Hz, adult male) of a, e, i, o, u; bandwidths and gains shared */
static const float VOWELS[5][3] = {
    {730, 1090, 2440}, {530, 1840, 2480}, {300, 2250, 3000}, {570, 840, 2410}, {320, 870, 2240}};
static const float FBW[3] = {90, 120, 170}, FGAIN[3] = {1.0f, 0.55f, 0.3f};

enum { MAXPART = 32, MAXVNOTES = 64 };

typedef struct {
    int64_t s, e; /* frames relative to the phrase start */
    float midi, vel;
    int vowel, cons;
} vnote;

typedef struct {
    int npart;                  /* harmonics */
    double tilt;                /* amplitude of harmonic k ~ k^-tilt */
    float tiltk[MAXPART];       /* (k + 1)^-tilt */
    double fscale;              /* formant scale (1 male, ~1.15 female) */
    double vib_rate, vib_depth; /* Hz, semitones */
    double glide;               /* s */
    double breath, cons_level;
    double attack, release;
} voice;

/* Render one phrase (notes sorted, contiguous or with gaps) into out[0:len). */
static void render_phrase(const song *s, const voice *v, const vnote *nt, int nn, float *out,
                          int64_t len, tf_rng *r, uint32_t *ns) {
    const int sr = s->sr;
    const int64_t rel = (int64_t)(v->release * sr), att = (int64_t)(v->attack * sr);
    const int64_t pend = nt[nn - 1].e; /* release starts here */
    float amp[MAXPART], namp[MAXPART];
    float cph[CTL], sph[CTL], sk[CTL], skm[CTL], blk[CTL], ramp[CTL];
    for (int i = 0; i < CTL; i++) ramp[i] = (float)i;
    double pc = 1.0, ps = 0.0; /* fundamental phasor */
    double vib_ph = tf_rng_uniform(r) * TWO_PI, drift = 0.0;
    int cur = 0;
    svf breath_f, cons_f;
    svf_set(&breath_f, 2500.0, 0.6, sr);
    svf_set(&cons_f, tf_rng_range(r, 3500, 7000), 1.2, sr);
    svf_reset(&breath_f);
    svf_reset(&cons_f);
    memset(amp, 0, sizeof amp);
    float env_prev = 0.f;
    for (int64_t b0 = 0; b0 < len; b0 += CTL) {
        int m = (int)(len - b0 < CTL ? len - b0 : CTL);
        while (cur + 1 < nn && b0 >= nt[cur + 1].s) cur++;
        const vnote *q = &nt[cur];
        double tn = (double)(b0 - q->s) / sr; /* time into the note */
        /* pitch: glide from the previous note, vibrato ramping in, slow drift */
        double pitch = q->midi;
        if (cur > 0 && nt[cur - 1].e >= q->s - sr / 20 && tn < v->glide && tn >= 0) {
            double u = tn / v->glide;
            u = u * u * (3 - 2 * u);
            pitch = nt[cur - 1].midi + (q->midi - nt[cur - 1].midi) * u;
        }
        double vd = v->vib_depth * clampd((tn - 0.15) / 0.35, 0.0, 1.0);
        pitch += vd * sin(vib_ph) + drift;
        vib_ph += TWO_PI * v->vib_rate * m / sr;
        drift = 0.995 * drift + 0.004 * tf_rng_normal(r);
        double f0 = mtof(pitch);
        /* loudness: phrase attack and release, notes sounding or between notes */
        double env = b0 < att ? (double)b0 / att : 1.0;
        if (b0 >= pend) env = b0 - pend < rel ? 0.5 + 0.5 * cos(PI * (double)(b0 - pend) / rel) : 0;
        double in_note = 0.0;
        if (b0 >= q->s && b0 < q->e) {
            double te = (double)(q->e - b0) / sr; /* time to note end */
            in_note = clampd(te / 0.03, 0.0, 1.0) * clampd(tn / 0.025, 0.0, 1.0);
        } else if (b0 >= pend) {
            in_note = 1.0; /* release shapes it */
        }
        double cons_env = 0.0; /* unvoiced consonant at the note start */
        if (q->cons && tn >= 0 && tn < 0.05) cons_env = sin(PI * tn / 0.05);
        double voiced = env * q->vel * (0.25 + 0.75 * in_note) * (1.0 - 0.7 * cons_env);
        /* formants: glide from the previous vowel over 60 ms */
        double F[3];
        double uf = cur > 0 ? clampd(tn / 0.06, 0.0, 1.0) : 1.0;
        for (int j = 0; j < 3; j++) {
            double a = VOWELS[cur > 0 ? nt[cur - 1].vowel : q->vowel][j], bb = VOWELS[q->vowel][j];
            F[j] = (a + (bb - a) * uf) * v->fscale;
        }
        int np = v->npart;
        for (int k = 0; k < np; k++) {
            double fk = f0 * (k + 1), g = 0.12;
            for (int j = 0; j < 3; j++) {
                double d = (fk - F[j]) / (FBW[j] * v->fscale);
                g += FGAIN[j] / (1.0 + d * d);
            }
            double taper = clampd((0.45 * sr - fk) / (0.05 * sr), 0.0, 1.0);
            namp[k] = (float)(voiced * g * taper) * v->tiltk[k];
        }
        /* phasor for this block, renormalised */
        double w = TWO_PI * f0 / sr, cw = cos(w), sw = sin(w);
        double mag = 1.0 / sqrt(pc * pc + ps * ps);
        pc *= mag, ps *= mag;
        for (int i = 0; i < CTL; i++) {
            double c2 = pc * cw - ps * sw;
            ps = pc * sw + ps * cw;
            pc = c2;
            cph[i] = (float)pc;
            sph[i] = (float)ps;
            blk[i] = 0.f, skm[i] = 0.f, sk[i] = sph[i];
        }
        /* harmonic k+1: sin((k+2) phi) = 2 cos(phi) sin((k+1) phi) - sin(k phi) */
        for (int k = 0; k < np; k++) {
            float a = amp[k], da = (namp[k] - amp[k]) * (1.f / CTL);
            for (int i = 0; i < CTL; i++) {
                blk[i] += (a + da * ramp[i]) * sk[i];
                float nx = 2.f * cph[i] * sk[i] - skm[i];
                skm[i] = sk[i];
                sk[i] = nx;
            }
            amp[k] = namp[k];
        }
        float *o = out + b0;
        for (int i = 0; i < m; i++) o[i] = blk[i];
        /* aspiration and consonant noise */
        float env_now = (float)(env * q->vel * (0.4 + 0.6 * in_note));
        float denv = (env_now - env_prev) / (float)CTL;
        float br = (float)v->breath, cl = (float)(v->cons_level * cons_env * env);
        for (int i = 0; i < m; i++) {
            float bp, hp, z = white(ns);
            svf_tick(&breath_f, z, &bp, &hp);
            float cb;
            svf_tick(&cons_f, z, &cb, &hp);
            o[i] += br * (env_prev + denv * (float)i) * hp + cl * cb;
        }
        env_prev = env_now;
    }
}

static void render_vocals(song *s, float *L, float *R, tf_rng *r, uint32_t *ns, float *mono) {
    const int sr = s->sr;
    voice v;
    int high = tf_rng_uniform(r) < 0.5;
    v.npart = 20 + (int)tf_rng_below(r, 11);
    v.tilt = tf_rng_range(r, 0.9, 1.4);
    for (int k = 0; k < MAXPART; k++) v.tiltk[k] = (float)pow(k + 1.0, -v.tilt);
    v.fscale = high ? tf_rng_range(r, 1.1, 1.2) : tf_rng_range(r, 0.95, 1.05);
    v.vib_rate = tf_rng_range(r, 5.0, 6.2);
    v.vib_depth = tf_rng_range(r, 0.25, 0.6);
    v.glide = tf_rng_range(r, 0.04, 0.09);
    v.breath = tf_rng_range(r, 0.01, 0.04);
    v.cons_level = tf_rng_range(r, 0.1, 0.3);
    v.attack = tf_rng_range(r, 0.02, 0.06);
    v.release = tf_rng_range(r, 0.06, 0.14);
    /* range of degrees the voice sings */
    int lo = high ? 57 : 45, hi = high ? 77 : 65;
    int dlo = -14, dhi = 28;
    while (degree_pitch(s, dlo) < lo) dlo++;
    while (degree_pitch(s, dhi) > hi) dhi--;
    int center = (dlo + dhi) / 2, deg = center;
    static const double DURS[6] = {0.5, 1, 1, 1.5, 2, 0.5};
    vnote nt[MAXVNOTES];
    memset(mono, 0, sizeof(float) * (size_t)s->n);
    for (int b = 0; b < s->nbeats;) {
        if (!s->act[VOC][b]) {
            b++;
            continue;
        }
        int re = run_end(s, VOC, b); /* active run [b, re) */
        double pos = b + (tf_rng_uniform(r) < 0.3 ? 0.5 : 0.0);
        while (pos < re - 0.75) {
            double plen = (double)(2 + 2 * (int)tf_rng_below(r, 4)); /* 2..8 beats */
            double pend = pos + plen > re ? re : pos + plen;
            int nn = 0;
            /* phrase start: a chord tone near the current degree */
            int root = chord_root(s, pos);
            int best = deg, bd = 99;
            for (int c = root - 14; c <= root + 18; c += 2) {
                int cc = c - root, ok = cc == 0 || cc == 2 || cc == 4 || cc % 7 == 0 ||
                                        (cc - 2) % 7 == 0 || (cc - 4) % 7 == 0;
                if (ok && c >= dlo && c <= dhi && abs(c - deg) < bd) bd = abs(c - deg), best = c;
            }
            deg = best;
            int vowel = (int)tf_rng_below(r, 5);
            for (double p = pos; p < pend - 0.2 && nn < MAXVNOTES;) {
                double d = DURS[tf_rng_below(r, 6)];
                if (s->spb < 0.5 && d < 1) d = 1; /* fast tempo: no eighth notes */
                if (p + d > pend || pend - (p + d) < 0.45) d = pend - p;
                vnote *q = &nt[nn++];
                q->s = beat_frame(s, p);
                q->e = beat_frame(s, p + d);
                q->midi = (float)degree_pitch(s, deg);
                q->vel = (float)tf_rng_range(r, 0.75, 1.0);
                int same = tf_rng_uniform(r) < 0.3;
                if (!same) vowel = (int)tf_rng_below(r, 5);
                q->vowel = vowel;
                q->cons = !same && tf_rng_uniform(r) < 0.5;
                p += d;
                /* next degree: steps mostly, leaps sometimes, pulled to the centre */
                double u = tf_rng_uniform(r);
                int step = u < 0.2 ? 0 : u < 0.65 ? 1 : u < 0.85 ? 2 : u < 0.95 ? 3 : 4;
                int dir = tf_rng_uniform(r) < 0.5 + 0.08 * (center - deg) ? 1 : -1;
                deg += dir * step;
                if (deg < dlo) deg = dlo + 1;
                if (deg > dhi) deg = dhi - 1;
                /* strong beats land on chord tones more often */
                double pf = p - floor(p);
                if (pf < 1e-9 && tf_rng_uniform(r) < 0.6) {
                    int rt = chord_root(s, p), x = ((deg - rt) % 7 + 7) % 7;
                    if (x == 1 || x == 3)
                        deg -= 1;
                    else if (x == 5)
                        deg += (deg + 2 <= dhi) ? 2 : -1;
                    else if (x == 6)
                        deg += 1;
                }
            }
            if (nn > 0) {
                int64_t ps = nt[0].s;
                for (int i = 0; i < nn; i++) nt[i].s -= ps, nt[i].e -= ps;
                int64_t len = clip_len(s, ps, nt[nn - 1].e + (int64_t)(v.release * sr) + CTL);
                if (len > 0) {
                    render_phrase(s, &v, nt, nn, s->scratch, len, r, ns);
                    int64_t i0 = ps < 0 ? -ps : 0;
                    for (int64_t i = i0; i < len; i++) mono[ps + i] += s->scratch[i];
                }
            }
            /* breath between phrases */
            static const double GAPS[4] = {0.5, 0.5, 1.0, 1.5};
            pos = pend + GAPS[tf_rng_below(r, 4)];
        }
        b = re;
    }
    /* stereo: pan, and sometimes a quiet ping-pong echo */
    float gl, gr;
    pan_gains(tf_rng_range(r, -0.2, 0.2), &gl, &gr);
    int echo = tf_rng_uniform(r) < 0.5;
    int64_t dly = (int64_t)(s->spb * (tf_rng_uniform(r) < 0.5 ? 0.75 : 0.5) * sr);
    float eg = (float)tf_rng_range(r, 0.12, 0.25);
    for (int64_t i = 0; i < s->n; i++) {
        float x = mono[i], el = 0.f, er = 0.f;
        if (echo) {
            if (i >= dly) er = eg * mono[i - dly];
            if (i >= 2 * dly) el = 0.6f * eg * mono[i - 2 * dly];
        }
        L[i] += gl * x + el;
        R[i] += gr * x + er;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Drums                                                                                 */

enum { KICK, SNARE, HAT, OHAT, TOM, CRASH };

typedef struct {
    double kick_f0, kick_f1, kick_tp, kick_ta, kick_click;
    double sn_f, sn_tt, sn_tn, sn_fc, sn_mix;
    double hat_fc, hat_tc, hat_to, hat_metal, hat_ratio;
    double tom_f, crash_t;
    double pan_hat, pan_sn, pan_tom, pan_crash;
    double corr; /* left/right correlation of the noise of cymbals and snare */
} drumkit;

/* Render one hit of `type` into out[0:len) (mono, before velocity and panning). */
static void render_hit(const drumkit *k, int type, double pitch_mul, float *out, int64_t len,
                       int sr, uint32_t *ns) {
    const double dt = 1.0 / sr;
    if (type == KICK || type == TOM) {
        double f0 = type == KICK ? k->kick_f0 : k->tom_f * pitch_mul * 1.6;
        double f1 = type == KICK ? k->kick_f1 : k->tom_f * pitch_mul;
        double tp = type == KICK ? k->kick_tp : 0.06, ta = type == KICK ? k->kick_ta : 0.22;
        float pe = 1.f, pd = (float)exp(-dt / tp), ae = 1.f, ad = (float)exp(-dt / ta), ph = 0.f;
        float ce = 1.f, cd = (float)exp(-dt / 0.0015);
        float click = (float)(type == KICK ? k->kick_click : 0.1);
        float w1 = (float)(TWO_PI * f1 * dt), wd = (float)(TWO_PI * (f0 - f1) * dt);
        int64_t na = sr / 1000;
        for (int64_t i = 0; i < len; i++) {
            ph += w1 + wd * pe;
            if (ph > (float)TWO_PI) ph -= (float)TWO_PI;
            float att = i < na ? (float)i / (float)na : 1.f;
            out[i] = att * ae * sin_2pi(ph) + click * ce * white(ns);
            pe *= pd, ae *= ad, ce *= cd;
        }
    } else if (type == SNARE) {
        double w1 = TWO_PI * k->sn_f * dt, w2 = TWO_PI * k->sn_f * 1.78 * dt;
        double c1 = 2 * cos(w1), c2 = 2 * cos(w2), y1 = 0, y1m = -sin(w1), y2 = 0, y2m = -sin(w2);
        double te = 1.0, td = exp(-dt / k->sn_tt), ne = 1.0, nd = exp(-dt / k->sn_tn);
        svf f;
        svf_set(&f, k->sn_fc, 0.8, sr);
        svf_reset(&f);
        float mix = (float)k->sn_mix;
        for (int64_t i = 0; i < len; i++) {
            double a = c1 * y1 - y1m, b = c2 * y2 - y2m;
            y1m = y1, y1 = a, y2m = y2, y2 = b;
            float bp, hp;
            svf_tick(&f, white(ns), &bp, &hp);
            out[i] = (float)(te * (y1 + 0.5 * y2) * (1.0 - mix)) +
                     mix * 2.f * (float)ne * (bp + 0.5f * hp);
            te *= td, ne *= nd;
        }
    } else { /* hats and crash: high-passed noise + detuned squares ("808 metal") */
        static const double MF[6] = {205.3, 304.4, 369.6, 522.7, 540.0, 800.0};
        double t = type == HAT ? k->hat_tc : type == OHAT ? k->hat_to : k->crash_t;
        float ae = 1.f, ad = (float)exp(-dt / t), ph[6] = {0}, inc[6];
        for (int j = 0; j < 6; j++) inc[j] = (float)(MF[j] * k->hat_ratio * dt);
        svf f;
        svf_set(&f, type == CRASH ? k->hat_fc * 0.6 : k->hat_fc, 0.7, sr);
        svf_reset(&f);
        float metal = (float)(type == CRASH ? 0.3 : k->hat_metal);
        for (int64_t i = 0; i < len; i++) {
            float m = 0.f;
            for (int j = 0; j < 6; j++) {
                ph[j] += inc[j];
                if (ph[j] >= 1.f) ph[j] -= 1.f;
                m += ph[j] < 0.5 ? 1.f : -1.f;
            }
            float bp, hp, x = (1.f - metal) * white(ns) + metal * m * (1.f / 6.f);
            svf_tick(&f, x, &bp, &hp);
            float att = type == CRASH && i < sr / 200 ? (float)i / (float)(sr / 200) : 1.f;
            out[i] = ae * att * 2.5f * hp;
            ae *= ad;
        }
    }
}

static double hit_seconds(const drumkit *k, int type) {
    switch (type) {
    case KICK:
        return 5 * k->kick_ta;
    case SNARE:
        return 5 * (k->sn_tn > k->sn_tt ? k->sn_tn : k->sn_tt);
    case HAT:
        return 5 * k->hat_tc;
    case OHAT:
        return 4 * k->hat_to;
    case TOM:
        return 1.0;
    default:
        return 3 * k->crash_t;
    }
}

/* kick, snare and hat patterns as 16-step bit masks (bit i = 16th note i) */
static const uint16_t KICKS[6] = {0x1111, 0x0501, 0x0141, 0x0509, 0x0401, 0x2491};
static const uint16_t SNARES[2] = {0x1010, 0x0100};
static const uint16_t HATS[4] = {0x5555, 0xFFFF, 0x1111, 0x5555};

static void drum_hit(song *s, float *L, float *R, const drumkit *k, int type, double beat,
                     double vel, double pitch_mul, double pan, tf_rng *r, uint32_t *ns) {
    int sr = s->sr;
    int64_t start = beat_frame(s, beat) + (int64_t)(tf_rng_normal(r) * 0.003 * sr);
    int64_t len = (int64_t)(hit_seconds(k, type) * sr);
    /* stop (muted/choked) where the stem rests */
    int64_t stop = beat_frame(s, run_end(s, DRM, (int)floor(beat))) + sr / 40 - start;
    if (len > stop) len = stop;
    len = clip_len(s, start, len);
    if (len <= 0) return;
    render_hit(k, type, pitch_mul, s->scratch, len, sr, ns);
    fade_out(s->scratch, len, sr / 50);
    float gl, gr;
    pan_gains(pan, &gl, &gr);
    if (type == KICK || type == TOM) {
        mix_mono(s, L, R, start, s->scratch, len, (float)(gl * vel), (float)(gr * vel));
        return;
    }
    /* noisy hits: the right channel partly hears other noise (overhead pair), so
     * cymbals and snare are wide while kick and toms stay point sources */
    render_hit(k, type, pitch_mul, s->scratch2, len, sr, ns);
    fade_out(s->scratch2, len, sr / 50);
    const float *a = s->scratch, *b = s->scratch2;
    float c = (float)k->corr, d = sqrtf(1.f - c * c);
    float vl = (float)(gl * vel), vr = (float)(gr * vel);
    int64_t i0 = start < 0 ? -start : 0, i1 = len;
    if (start + i1 > s->n) i1 = s->n - start;
    for (int64_t i = i0; i < i1; i++) {
        L[start + i] += vl * a[i];
        R[start + i] += vr * (c * a[i] + d * b[i]);
    }
}

static void render_drums(song *s, float *L, float *R, tf_rng *r, uint32_t *ns) {
    drumkit k;
    k.kick_f0 = tf_rng_range(r, 100, 180), k.kick_f1 = tf_rng_range(r, 42, 62);
    k.kick_tp = tf_rng_range(r, 0.02, 0.05), k.kick_ta = tf_rng_range(r, 0.12, 0.3);
    k.kick_click = tf_rng_range(r, 0.1, 0.4);
    k.sn_f = tf_rng_range(r, 160, 260), k.sn_tt = tf_rng_range(r, 0.03, 0.08);
    k.sn_tn = tf_rng_range(r, 0.05, 0.14), k.sn_fc = tf_rng_range(r, 1500, 4500);
    k.sn_mix = tf_rng_range(r, 0.5, 0.8);
    k.hat_fc = tf_rng_range(r, 6000, 9500), k.hat_tc = tf_rng_range(r, 0.015, 0.045);
    k.hat_to = tf_rng_range(r, 0.12, 0.3), k.hat_metal = tf_rng_range(r, 0.1, 0.6);
    k.hat_ratio = tf_rng_range(r, 1.0, 1.8);
    k.tom_f = tf_rng_range(r, 80, 130), k.crash_t = tf_rng_range(r, 0.4, 0.9);
    k.pan_hat = tf_rng_range(r, -0.4, 0.4), k.pan_sn = tf_rng_range(r, -0.15, 0.15);
    k.pan_tom = tf_rng_range(r, 0.3, 0.6), k.pan_crash = tf_rng_range(r, -0.5, 0.5);
    k.corr = tf_rng_range(r, 0.3, 0.8);
    int kp = (int)tf_rng_below(r, 6), hp = (int)tf_rng_below(r, 4);
    uint16_t kick = KICKS[kp], snare = SNARES[kp == 4 ? 1 : 0], hats = HATS[hp];
    if (s->spb < 0.45 && hats == 0xFFFF) hats = 0x5555; /* no 16th hats at fast tempos */
    int open_offbeat = hp == 3;
    double swing = tf_rng_uniform(r) < 0.3 ? tf_rng_range(r, 0.05, 0.15) : 0.0;
    double fill_p = tf_rng_range(r, 0.3, 0.8);
    int nbars = (s->nbeats + 3) / 4;
    for (int bar = 0; bar < nbars; bar++) {
        int b0 = bar * 4;
        int bar_active = 1;
        for (int j = 0; j < 4; j++) bar_active &= active(s, DRM, b0 + j);
        int next_rest = !active(s, DRM, b0 + 4) && b0 + 4 < s->nbeats;
        int fill = bar_active && ((next_rest && tf_rng_uniform(r) < 0.8) ||
                                  (bar % 4 == 3 && tf_rng_uniform(r) < fill_p));
        uint16_t kb = kick, sb = snare;
        if (tf_rng_uniform(r) < 0.3) kb ^= (uint16_t)(1u << (2 * tf_rng_below(r, 8) + 1)) & 0xEEEE;
        int ghost = tf_rng_uniform(r) < 0.35 ? 2 * (int)tf_rng_below(r, 8) + 1 : -1;
        int crash = active(s, DRM, b0) && (bar == 0 || !active(s, DRM, b0 - 1) || bar % 8 == 0) &&
                    tf_rng_uniform(r) < 0.7;
        if (crash) drum_hit(s, L, R, &k, CRASH, b0, 0.8, 1, k.pan_crash, r, ns);
        for (int st = 0; st < 16; st++) {
            double beat = b0 + st / 4.0 + ((st & 1) ? swing : 0.0);
            if (!active(s, DRM, b0 + st / 4)) continue;
            double acc = (st % 4 == 0) ? 1.0 : 0.8;
            double hv = tf_rng_range(r, 0.85, 1.0);
            if (fill && st >= 8) { /* fill: snare and toms in 16ths or 8ths, crescendo */
                if ((st & 1) && tf_rng_uniform(r) < 0.5) continue;
                double v = 0.55 + 0.45 * (st - 8) / 8.0;
                if (tf_rng_uniform(r) < 0.5)
                    drum_hit(s, L, R, &k, SNARE, beat, v * hv, 1, k.pan_sn, r, ns);
                else {
                    int t = (int)((15 - st) / 3);
                    double mul = 1.0 + 0.35 * t;
                    drum_hit(s, L, R, &k, TOM, beat, v * hv, mul, k.pan_tom * (t - 1.5) / 1.5, r,
                             ns);
                }
                if (st == 8) drum_hit(s, L, R, &k, KICK, beat, hv, 1, 0, r, ns);
                continue;
            }
            if (kb >> st & 1) drum_hit(s, L, R, &k, KICK, beat, acc * hv, 1, 0, r, ns);
            if (sb >> st & 1) drum_hit(s, L, R, &k, SNARE, beat, hv, 1, k.pan_sn, r, ns);
            if (st == ghost) drum_hit(s, L, R, &k, SNARE, beat, 0.25 * hv, 1, k.pan_sn, r, ns);
            if (hats >> st & 1) {
                int open = (open_offbeat && st % 4 == 2) || (st == 14 && tf_rng_uniform(r) < 0.15);
                drum_hit(s, L, R, &k, open ? OHAT : HAT, beat, (open ? 0.7 : 0.55) * acc * hv, 1,
                         k.pan_hat, r, ns);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Bass                                                                                  */

typedef struct {
    int shape; /* 0 saw, 1 square, 2 saw + sub sine */
    double fc, fenv, tf, q;
    double sustain, td, release;
} basspatch;

static void render_bass_note(const song *s, const basspatch *p, double midi, int64_t gate,
                             float *out, int64_t len) {
    const int sr = s->sr;
    double f = mtof(midi);
    float dt = (float)(f / sr), ph = 0.f, sub = 0.f;
    float sub_inc = (float)(TWO_PI * f / sr);
    svf fl;
    svf_reset(&fl);
    int64_t att = sr / 250, rel = (int64_t)(p->release * sr);
    double dd = exp(-1.0 / (p->td * sr)), de = 1.0;
    for (int64_t b0 = 0; b0 < len; b0 += 32) {
        double t = (double)b0 / sr;
        svf_set(&fl, p->fc + p->fenv * exp(-t / p->tf), p->q, sr);
        int64_t m = len - b0 < 32 ? len - b0 : 32;
        for (int64_t i = b0; i < b0 + m; i++) {
            float x = osc_blep(ph, dt, p->shape == 1);
            if (p->shape == 2) x = 0.6f * x + 0.8f * sin_2pi(sub);
            ph += dt;
            if (ph >= 1.f) ph -= 1.f;
            sub += sub_inc;
            if (sub > (float)TWO_PI) sub -= (float)TWO_PI;
            double env = p->sustain + (1.0 - p->sustain) * de;
            de *= dd;
            if (i < att) env *= (double)i / att;
            if (i >= gate)
                env *= i - gate < rel ? 0.5 + 0.5 * cos(PI * (double)(i - gate) / rel) : 0;
            float bp, hp;
            out[i] = (float)env * svf_tick(&fl, x, &bp, &hp);
        }
    }
}

/* bass patterns: steps (16ths) and roles (0 root, 1 fifth, 2 octave) */
typedef struct {
    int n;
    int step[8], role[8];
} bpat;
static const bpat BPATS[6] = {
    {4, {0, 4, 8, 12}, {0, 0, 0, 0}},
    {4, {0, 4, 8, 12}, {0, 0, 1, 0}},
    {8, {0, 2, 4, 6, 8, 10, 12, 14}, {0, 0, 2, 0, 0, 0, 2, 1}},
    {6, {0, 3, 6, 8, 11, 14}, {0, 0, 1, 0, 2, 1}},
    {2, {0, 8}, {0, 1}},
    {5, {0, 3, 6, 10, 12}, {0, 0, 0, 1, 2}},
};

static void render_bass(song *s, float *L, float *R, tf_rng *r) {
    const int sr = s->sr;
    basspatch p;
    p.shape = (int)tf_rng_below(r, 3);
    p.fc = tf_rng_range(r, 150, 350), p.fenv = tf_rng_range(r, 300, 1200);
    p.tf = tf_rng_range(r, 0.05, 0.2), p.q = tf_rng_range(r, 0.7, 1.8);
    p.sustain = tf_rng_range(r, 0.3, 0.7), p.td = tf_rng_range(r, 0.1, 0.4);
    p.release = tf_rng_range(r, 0.02, 0.05);
    int pat = (int)tf_rng_below(r, 6);
    if (s->spb < 0.45 && (pat == 2 || pat == 3)) pat = 1; /* keep fast tempos playable */
    const bpat *bp = &BPATS[pat];
    double gate = tf_rng_range(r, 0.6, 0.95);
    int lo = 28 + (int)tf_rng_below(r, 4); /* root in [lo, lo + 12): 41-92 Hz */
    float gl, gr;
    pan_gains(tf_rng_range(r, -0.1, 0.1), &gl, &gr);
    int nbars = (s->nbeats + 3) / 4;
    for (int bar = 0; bar < nbars; bar++) {
        int deg = chord_root(s, bar * 4);
        int root = degree_pitch(s, deg);
        root = lo + (((root - lo) % 12) + 12) % 12;
        int fifth = root + degree_pitch(s, deg + 4) - degree_pitch(s, deg);
        int next = degree_pitch(s, chord_root(s, bar * 4 + 4));
        next = lo + (((next - lo) % 12) + 12) % 12;
        for (int j = 0; j < bp->n; j++) {
            double beat = bar * 4 + bp->step[j] / 4.0;
            if (!active(s, BAS, beat)) continue;
            double nbeat = j + 1 < bp->n ? bar * 4 + bp->step[j + 1] / 4.0 : bar * 4 + 4.0;
            int re = run_end(s, BAS, (int)floor(beat));
            if (nbeat > re) nbeat = re;
            int midi = bp->role[j] == 0 ? root : bp->role[j] == 1 ? fifth : root + 12;
            if (j == bp->n - 1 && bp->n > 2 && next != root && tf_rng_uniform(r) < 0.3)
                midi = next +
                       (next > root ? -1 : 1) * (tf_rng_uniform(r) < 0.5 ? 1 : 2); /* approach */
            int64_t start = beat_frame(s, beat);
            int64_t g = (int64_t)((beat_frame(s, nbeat) - start) * gate);
            int64_t len = clip_len(s, start, g + (int64_t)(p.release * sr) + 1);
            if (len <= 0) continue;
            double vel = (bp->step[j] % 4 == 0 ? 1.0 : 0.85) * tf_rng_range(r, 0.85, 1.0);
            render_bass_note(s, &p, midi, g, s->scratch, len);
            mix_mono(s, L, R, start, s->scratch, len, (float)(gl * vel), (float)(gr * vel));
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Other: pads, arpeggios, stabs                                                         */

enum { PAD, ARP, STAB, PAD_ARP };

/* chord tones (MIDI) of the chord at `beat`, voiced in [lo, lo + 12), sorted */
static int voicing(const song *s, double beat, int ntones, int lo, int *out) {
    int d = chord_root(s, beat);
    for (int i = 0; i < ntones; i++) {
        int m = degree_pitch(s, d + 2 * i);
        out[i] = lo + (((m - lo) % 12) + 12) % 12;
    }
    for (int i = 1; i < ntones; i++) /* insertion sort */
        for (int j = i; j > 0 && out[j] < out[j - 1]; j--) {
            int t = out[j];
            out[j] = out[j - 1], out[j - 1] = t;
        }
    return ntones;
}

/* detuned oscillator pair, one per side, with an attack/release envelope */
static void render_pad_note(const song *s, double midi, double detune, int shape, double att,
                            int64_t gate, double rel, float *L, float *R, int64_t start,
                            int64_t len, double width, double vel, float gl, float gr) {
    const int sr = s->sr;
    float d1 = (float)(mtof(midi + detune / 100) / sr),
          d2 = (float)(mtof(midi - detune / 100) / sr);
    float p1 = (float)fmod(midi * 0.137, 1.0), p2 = (float)fmod(midi * 0.291, 1.0);
    int64_t a = (int64_t)(att * sr), rl = (int64_t)(rel * sr);
    float wa = (float)(0.5 + 0.5 * width), wb = (float)(0.5 - 0.5 * width);
    int64_t i0 = start < 0 ? -start : 0;
    for (int64_t i = i0; i < len; i++) {
        float x1 = osc_blep(p1, d1, shape), x2 = osc_blep(p2, d2, shape);
        p1 += d1, p2 += d2;
        if (p1 >= 1.f) p1 -= 1.f;
        if (p2 >= 1.f) p2 -= 1.f;
        double env = i < a ? (double)i / a : 1.0;
        if (i >= gate) env *= i - gate < rl ? 0.5 + 0.5 * cos(PI * (double)(i - gate) / rl) : 0.0;
        float e = (float)(env * vel);
        L[start + i] += gl * e * (wa * x1 + wb * x2);
        R[start + i] += gr * e * (wb * x1 + wa * x2);
    }
}

/* electric-piano-like pluck: partials 1, 2, 3 with decays; mono into out */
static void render_pluck(const song *s, double midi, int shape, double decay, int64_t gate,
                         float *out, int64_t len) {
    const int sr = s->sr;
    double f = mtof(midi);
    int64_t att = sr / 500 + 1, rel = sr / 40;
    double e1 = 1.0, d1 = exp(-1.0 / (decay * sr)), d2 = exp(-2.5 / (decay * sr)), e2 = 1.0;
    if (shape == 2) { /* sine partials by recurrence */
        double w = TWO_PI * f / sr, c = 2 * cos(w), y = 0, ym = -sin(w);
        double w2 = 2 * w, c2 = 2 * cos(w2), z = 0, zm = -sin(w2);
        for (int64_t i = 0; i < len; i++) {
            double a = c * y - ym, b = c2 * z - zm;
            ym = y, y = a, zm = z, z = b;
            double env = i < att ? (double)i / att : 1.0;
            if (i >= gate)
                env *= i - gate < rel ? 0.5 + 0.5 * cos(PI * (double)(i - gate) / rel) : 0;
            out[i] = (float)(env * (e1 * y + 0.4 * e2 * z));
            e1 *= d1, e2 *= d2;
        }
    } else {
        float dt = (float)(f / sr), ph = 0.f;
        for (int64_t i = 0; i < len; i++) {
            float x = osc_blep(ph, dt, shape);
            ph += dt;
            if (ph >= 1.f) ph -= 1.f;
            double env = i < att ? (double)i / att : 1.0;
            if (i >= gate)
                env *= i - gate < rel ? 0.5 + 0.5 * cos(PI * (double)(i - gate) / rel) : 0;
            out[i] = (float)(env * e1) * x * 0.6f;
            e1 *= d1;
        }
    }
}

/* per-channel low-pass over the stem, skipping silent blocks (stay exact zeros) */
static void lowpass_stem(const song *s, float *x, double fc) {
    svf f;
    svf_set(&f, fc, 0.7, s->sr);
    svf_reset(&f);
    for (int64_t b0 = 0; b0 < s->n; b0 += 256) {
        int64_t m = s->n - b0 < 256 ? s->n - b0 : 256;
        int zero = 1;
        for (int64_t i = 0; i < m && zero; i++) zero = x[b0 + i] == 0.f;
        if (zero && fabsf(f.ic1) < 1e-7f && fabsf(f.ic2) < 1e-7f) {
            svf_reset(&f);
            continue;
        }
        for (int64_t i = b0; i < b0 + m; i++) {
            float bp, hp;
            x[i] = svf_tick(&f, x[i], &bp, &hp);
        }
    }
}

static void render_other(song *s, float *L, float *R, tf_rng *r) {
    const int sr = s->sr;
    double u = tf_rng_uniform(r);
    int mode = u < 0.4 ? PAD : u < 0.65 ? ARP : u < 0.85 ? STAB : PAD_ARP;
    int ntones = tf_rng_uniform(r) < 0.5 ? 3 : 4;
    int lo = 52 + (int)tf_rng_below(r, 8);
    int pad_shape = (int)tf_rng_below(r, 2), pl_shape = (int)tf_rng_below(r, 3);
    double detune = tf_rng_range(r, 5, 14), width = tf_rng_range(r, 0.3, 0.9);
    double att = tf_rng_range(r, 0.08, 0.5), rel = tf_rng_range(r, 0.15, 0.35);
    double pad_vel = mode == PAD_ARP ? 0.35 : 0.6;
    double decay = tf_rng_range(r, 0.15, 0.6);
    int arp_16 = s->spb > 0.55, arp_dir = (int)tf_rng_below(r, 4);
    static const uint16_t STABS[4] = {0x4444, 0x1249, 0x1010, 0x4924};
    uint16_t stab = STABS[tf_rng_below(r, 4)];
    double pan_c = tf_rng_range(r, -0.5, 0.5), pan_spread = tf_rng_range(r, 0.1, 0.5);
    int tones[4];
    int nbars = (s->nbeats + 3) / 4;
    /* pads: one segment per chord, cut at rests */
    if (mode == PAD || mode == PAD_ARP) {
        for (int b = 0; b < s->nbeats; b++) {
            if (!s->act[OTH][b]) continue;
            /* segment: from b to the next chord change or rest */
            int e = b + 1;
            while (e < s->nbeats && s->act[OTH][e] && (e % (4 * s->chord_bars)) != 0) e++;
            int64_t start = beat_frame(s, b), gate = beat_frame(s, e) - start;
            int64_t len = gate + (int64_t)(rel * sr) + 1;
            if (start + len > s->n) len = s->n - start;
            if (len > 0) {
                voicing(s, b, ntones, lo, tones);
                float gl, gr;
                pan_gains(0.5 * pan_c, &gl, &gr);
                double a = att < 0.5 * gate / sr ? att : 0.5 * gate / sr;
                for (int i = 0; i < ntones; i++)
                    render_pad_note(s, tones[i], detune, pad_shape, a, gate, rel, L, R, start, len,
                                    width, pad_vel / ntones * 2.0, gl, gr);
            }
            b = e - 1;
        }
    }
    if (mode == ARP || mode == PAD_ARP || mode == STAB) {
        int step16 = mode == STAB ? 1 : arp_16 ? 1 : 2;
        int idx = 0;
        for (int bar = 0; bar < nbars; bar++) {
            for (int st = 0; st < 16; st += step16) {
                double beat = bar * 4 + st / 4.0;
                if (!active(s, OTH, beat)) continue;
                if (mode == STAB && !(stab >> st & 1)) continue;
                int re = run_end(s, OTH, (int)floor(beat));
                double nb = beat + step16 / 4.0;
                if (mode == STAB) { /* hold until the next stab */
                    int k = st + 1;
                    while (k < 16 && !(stab >> k & 1)) k++;
                    nb = bar * 4 + k / 4.0;
                }
                if (nb > re) nb = re;
                int64_t start = beat_frame(s, beat);
                int64_t gate = (int64_t)((beat_frame(s, nb) - start) * (mode == STAB ? 0.85 : 0.8));
                int64_t len = clip_len(s, start, gate + sr / 40 + 1);
                if (len <= 0) continue;
                voicing(s, beat, ntones, lo + (mode == STAB ? 0 : 12), tones);
                if (mode == STAB) {
                    for (int i = 0; i < ntones; i++) {
                        render_pluck(s, tones[i], pl_shape, decay * 2, gate, s->scratch, len);
                        float gl, gr;
                        pan_gains(pan_c + pan_spread * (i - 1.5) / 1.5, &gl, &gr);
                        float g = (float)(0.9 / ntones * 2.0 * tf_rng_range(r, 0.85, 1.0));
                        mix_mono(s, L, R, start, s->scratch, len, gl * g, gr * g);
                    }
                } else {
                    int n = ntones, j;
                    int c = idx++ % (2 * n - 2 > 0 ? 2 * n - 2 : 1);
                    switch (arp_dir) {
                    case 0:
                        j = idx % n;
                        break; /* up */
                    case 1:
                        j = n - 1 - idx % n;
                        break; /* down */
                    case 2:
                        j = c < n ? c : 2 * n - 2 - c;
                        break; /* up-down */
                    default:
                        j = (int)tf_rng_below(r, (uint64_t)n); /* random */
                    }
                    render_pluck(s, tones[j], pl_shape, decay, gate, s->scratch, len);
                    float gl, gr;
                    pan_gains(pan_c + pan_spread * ((idx & 1) ? 1 : -1), &gl, &gr);
                    float g = (float)(0.8 * tf_rng_range(r, 0.8, 1.0));
                    mix_mono(s, L, R, start, s->scratch, len, gl * g, gr * g);
                }
            }
        }
    }
    double fc = mode == PAD ? tf_rng_range(r, 2000, 6000) : tf_rng_range(r, 3000, 9000);
    lowpass_stem(s, L, fc);
    lowpass_stem(s, R, fc);
}

/* ------------------------------------------------------------------------------------ */
/* One track                                                                             */

static void setup_song(song *s, int64_t frames, int sr, uint64_t seed) {
    tf_rng r;
    tf_rng_seed(&r, seed, NSTEM, P_SONG, 0);
    s->sr = sr;
    s->n = frames;
    double bpm = tf_rng_range(&r, 80, 160);
    s->spb = 60.0 / bpm;
    s->t0 = -tf_rng_uniform(&r) * 4 * s->spb;
    s->key = (int)tf_rng_below(&r, 12);
    s->scale = SCALES[tf_rng_below(&r, 5)];
    const int *p = PROGS[tf_rng_below(&r, sizeof PROGS / sizeof PROGS[0])];
    memcpy(s->prog, p, sizeof s->prog);
    s->chord_bars = bpm > 125 && tf_rng_uniform(&r) < 0.6 ? 2 : 1;
    s->nbeats = (int)ceil(((double)frames / sr - s->t0) / s->spb) + 1;
}

void tf_synth_defaults(tf_synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->train_tracks = 8;
    o->test_tracks = 2;
    o->seconds = 10.0;
    o->seed = 1;
    o->sample_rate = 44100;
    o->overwrite = 0;
    o->threads = 0;
}

tf_status tf_synth_track(float *const stems[4], int64_t frames, int sample_rate,
                         uint64_t track_seed) {
    if (frames < 1)
        return tf_err(TF_EUSER, "synth: frames must be >= 1 (got %lld)", (long long)frames);
    if (sample_rate < 8000 || sample_rate > 384000)
        return tf_err(TF_EUSER, "synth: sample rate %d outside [8000, 384000]", sample_rate);
    for (int st = 0; st < NSTEM; st++) {
        if (!stems[st]) return tf_err(TF_EUSER, "synth: stem buffer %d is NULL", st);
        memset(stems[st], 0, sizeof(float) * 2 * (size_t)frames);
    }
    song s;
    memset(&s, 0, sizeof s);
    setup_song(&s, frames, sample_rate, track_seed);
    /* scratch: a phrase or a note never exceeds the track plus a few seconds */
    s.scratch_len = frames + 8 * (int64_t)sample_rate;
    unsigned char *act = tf_malloc((size_t)NSTEM * (size_t)s.nbeats, "synth rest plan");
    s.scratch = tf_malloc(sizeof(float) * 2 * (size_t)s.scratch_len, "synth scratch");
    s.scratch2 = s.scratch ? s.scratch + s.scratch_len : NULL;
    float *mono = tf_malloc(sizeof(float) * (size_t)frames, "synth vocal buffer");
    if (!act || !s.scratch || !mono) {
        free(act), free(s.scratch), free(mono);
        return TF_EINTERNAL;
    }
    for (int st = 0; st < NSTEM; st++) {
        tf_rng r;
        tf_rng_seed(&r, track_seed, (uint64_t)st, P_REST, 0);
        s.act[st] = act + (size_t)st * (size_t)s.nbeats;
        plan_rests(&s, st, tf_rng_range(&r, 0.15, 0.52), &r);
    }
    for (int st = 0; st < NSTEM; st++) {
        tf_rng r;
        tf_rng_seed(&r, track_seed, (uint64_t)st, P_NOTES, 0);
        uint32_t ns = 0;
        {
            tf_rng rn;
            tf_rng_seed(&rn, track_seed, (uint64_t)st, P_SOUND, 0);
            ns = noise_seed(&rn);
        }
        float *L = stems[st], *R = stems[st] + frames;
        switch (st) {
        case VOC:
            render_vocals(&s, L, R, &r, &ns, mono);
            break;
        case DRM:
            render_drums(&s, L, R, &r, &ns);
            break;
        case BAS:
            render_bass(&s, L, R, &r);
            break;
        default:
            render_other(&s, L, R, &r);
            break;
        }
    }
    /* levels: RMS over the sounding samples to a per-stem target +-6 dB; then one factor
     * for all stems so the mixture peak (and every stem's) hits a per-track target */
    static const double BASE_RMS[NSTEM] = {0.12, 0.12, 0.10, 0.09};
    tf_rng rm;
    tf_rng_seed(&rm, track_seed, NSTEM, P_MIX, 0);
    float g[NSTEM];
    for (int st = 0; st < NSTEM; st++) {
        const float *x = stems[st];
        double ss = 0.0;
        int64_t cnt = 0;
        for (int64_t b0 = 0; b0 < 2 * frames; b0 += 1024) { /* float partial sums */
            int64_t e = b0 + 1024 < 2 * frames ? b0 + 1024 : 2 * frames;
            float acc[8] = {0};
            int c = 0;
            int64_t i = b0;
            for (; i + 8 <= e; i += 8)
                for (int j = 0; j < 8; j++)
                    acc[j] += x[i + j] * x[i + j], c += fabsf(x[i + j]) > 1e-4f;
            for (; i < e; i++) acc[0] += x[i] * x[i], c += fabsf(x[i]) > 1e-4f;
            for (int j = 0; j < 8; j++) ss += acc[j];
            cnt += c;
        }
        double gdb = tf_rng_range(&rm, -6.0, 6.0);
        g[st] = cnt ? (float)(BASE_RMS[st] * pow(10.0, gdb / 20.0) / sqrt(ss / (double)cnt)) : 0.f;
    }
    float peak = 0.f, target = (float)tf_rng_range(&rm, 0.5, 0.9);
    const float *x0 = stems[0], *x1 = stems[1], *x2 = stems[2], *x3 = stems[3];
    for (int64_t i = 0; i < 2 * frames; i++) {
        float a0 = g[0] * x0[i], a1 = g[1] * x1[i], a2 = g[2] * x2[i], a3 = g[3] * x3[i];
        float m = fabsf(a0 + a1 + a2 + a3), b0 = fabsf(a0), b1 = fabsf(a1), b2 = fabsf(a2),
              b3 = fabsf(a3);
        b0 = b0 > b1 ? b0 : b1;
        b2 = b2 > b3 ? b2 : b3;
        b0 = b0 > b2 ? b0 : b2;
        m = m > b0 ? m : b0;
        peak = peak > m ? peak : m;
    }
    float scale = peak > 0.f ? target / peak : 1.f;
    for (int st = 0; st < NSTEM; st++) {
        float gs = g[st] * scale;
        float *x = stems[st];
        int64_t i = 0;
        for (; i + 8 <= 2 * frames; i += 8)
            for (int j = 0; j < 8; j++) x[i + j] *= gs;
        for (; i < 2 * frames; i++) x[i] *= gs;
    }
    free(act);
    free(s.scratch);
    free(mono);
    return TF_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Dataset                                                                               */

uint64_t tf_synth_track_seed(uint64_t seed, int split, int index) {
    tf_rng r;
    tf_rng_seed(&r, seed, 0x5157u + (uint64_t)split, (uint64_t)index, 0);
    return tf_rng_u64(&r);
}

int tf_synth_track_name(char *buf, size_t n, int split, int index, uint64_t seed) {
    return snprintf(buf, n, split == 0 ? "Synth %04d - Seed %llu" : "Synth Test %04d - Seed %llu",
                    index, (unsigned long long)seed);
}

/* Round to nearest (ties to even, as lrintf) by the 1.5 * 2^23 trick: exact for
 * |v| < 2^22 with IEEE float arithmetic (no -ffast-math), and plain float operations the
 * compiler vectorises, unlike a call to lrintf per sample. */
static inline float round_small(float v) {
    const float magic = 12582912.f;
    return (v + magic) - magic;
}

int tf_synth_quantize(float *x, int64_t n) {
    const float hi = TF_SYNTH_PCM_SCALE, inv = 1.f / TF_SYNTH_PCM_SCALE;
    int clipped = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float v = x[i + j] * hi;
            clipped += (v > hi) + (v < -hi);
            v = v > hi ? hi : v;
            v = v < -hi ? -hi : v;
            x[i + j] = round_small(v) * inv;
        }
    for (; i < n; i++) {
        float v = x[i] * hi;
        clipped += (v > hi) + (v < -hi);
        v = v > hi ? hi : v;
        v = v < -hi ? -hi : v;
        x[i] = round_small(v) * inv;
    }
    return clipped;
}

/* 1 if dir holds no entries besides . and .. (or cannot be listed: then mkdir fails later) */
static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
    closedir(d);
    return empty;
}

static tf_status track_dir(char *out, size_t n, const char *root, int split, int index,
                           uint64_t seed) {
    char name[128];
    tf_synth_track_name(name, sizeof name, split, index, seed);
    int w = snprintf(out, n, "%s/%s/%s", root, split == 0 ? "train" : "test", name);
    if (w < 0 || (size_t)w >= n) return tf_err(TF_EUSER, "%s: output path too long", root);
    return TF_OK;
}

/* Render one track and write its 5 files. */
static tf_status write_track(const char *dir, const tf_synth_opts *o, int split, int index) {
    int64_t n = (int64_t)llround(o->seconds * o->sample_rate);
    float *buf = tf_malloc(sizeof(float) * 2 * (size_t)n * (NSTEM + 1), "synth track buffers");
    if (!buf) return TF_EINTERNAL;
    float *stems[NSTEM], *mix = buf + (size_t)NSTEM * 2 * (size_t)n;
    for (int st = 0; st < NSTEM; st++) stems[st] = buf + (size_t)st * 2 * (size_t)n;
    tf_status rc =
        tf_synth_track(stems, n, o->sample_rate, tf_synth_track_seed(o->seed, split, index));
    if (rc == TF_OK) rc = tf_mkdirs(dir);
    char path[4096];
    int clipped = 0;
    for (int st = 0; st < NSTEM && rc == TF_OK; st++) {
        clipped += tf_synth_quantize(stems[st], 2 * n);
        if (snprintf(path, sizeof path, "%s/%s.wav", dir, STEM_NAMES[st]) >= (int)sizeof path) {
            rc = tf_err(TF_EUSER, "%s: output path too long", dir);
            break;
        }
        rc = tf_audio_write_file(path, stems[st], 2, n, o->sample_rate, TF_FMT_WAV,
                                 TF_SUBTYPE_PCM16);
    }
    if (rc == TF_OK) {
        /* the quantised stems are integers / scale: their sum is exact in float */
        for (int64_t i = 0; i < 2 * n; i++)
            mix[i] = stems[0][i] + stems[1][i] + stems[2][i] + stems[3][i];
        clipped += tf_synth_quantize(mix, 2 * n);
        if (snprintf(path, sizeof path, "%s/mixture.wav", dir) >= (int)sizeof path)
            rc = tf_err(TF_EUSER, "%s: output path too long", dir);
        else
            rc = tf_audio_write_file(path, mix, 2, n, o->sample_rate, TF_FMT_WAV, TF_SUBTYPE_PCM16);
    }
    if (rc == TF_OK && clipped)
        rc = tf_err(TF_EINTERNAL, "%s: %d samples clipped (synth level bug)", dir, clipped);
    free(buf);
    return rc;
}

tf_status tf_synth_dataset(const char *out, const tf_synth_opts *o) {
    if (!out || !*out) return tf_err(TF_EUSER, "synth: empty output path");
    if (o->train_tracks < 0 || o->test_tracks < 0 || o->train_tracks + o->test_tracks < 1)
        return tf_err(TF_EUSER, "synth: need at least one track (train %d, test %d)",
                      o->train_tracks, o->test_tracks);
    if (o->train_tracks > 100000 || o->test_tracks > 100000)
        return tf_err(TF_EUSER, "synth: at most 100000 tracks per split");
    if (!(o->seconds > 0.0) || o->seconds > 3600.0)
        return tf_err(TF_EUSER, "synth: seconds must be in (0, 3600] (got %g)", o->seconds);
    if (o->sample_rate < 8000 || o->sample_rate > 384000)
        return tf_err(TF_EUSER, "synth: sample rate %d outside [8000, 384000]", o->sample_rate);
    if (llround(o->seconds * o->sample_rate) < 1)
        return tf_err(TF_EUSER, "synth: %g s is less than one frame", o->seconds);
    int total = o->train_tracks + o->test_tracks;
    /* refuse before writing anything: existing, non-empty track folders */
    char dir[4096];
    for (int i = 0; i < total; i++) {
        int split = i < o->train_tracks ? 0 : 1, idx = split ? i - o->train_tracks : i;
        TF_TRY(track_dir(dir, sizeof dir, out, split, idx, o->seed));
        if (!tf_path_exists(dir)) continue;
        if (!tf_is_dir(dir)) return tf_err(TF_EUSER, "%s: exists and is not a folder", dir);
        if (!o->overwrite && !dir_is_empty(dir))
            return tf_err(
                TF_EUSER,
                "%s: track folder exists and is not empty (pass --overwrite to replace it)", dir);
    }
    TF_TRY(tf_mkdirs(out));
    tf_status first = TF_OK;
    int bad = total;
    char msg[1024] = "";
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    if (nt > total) nt = total;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < total; i++) {
        int split = i < o->train_tracks ? 0 : 1, idx = split ? i - o->train_tracks : i;
        char d[4096];
        tf_status st = track_dir(d, sizeof d, out, split, idx, o->seed);
        if (st == TF_OK) st = write_track(d, o, split, idx);
        if (st != TF_OK) {
#pragma omp critical(tf_synth_err)
            if (i < bad) {
                bad = i, first = st;
                snprintf(msg, sizeof msg, "%s", tf_errmsg());
            }
        }
    }
    if (first != TF_OK) return tf_err(first, "%s", msg);
    return TF_OK;
}
