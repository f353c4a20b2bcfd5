/* Adam / AdamW / clipping against torch.optim (tests/reference/optim_ref.py), plus the
 * schedule and EMA against their formulas. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optim/optim.h"
#include "test.h"

#define N     7
#define STEPS 6

static double grad(int t, int i) {
    return sin(1.3 * t + 0.7 * i) * (0.1 + i) + 0.05 * t;
}

static void run(const char *name, float out[N]) {
    int adamw = !strcmp(name, "adamw");
    tf_adam_cfg c = tf_adam_default(adamw);
    c.weight_decay = (!strcmp(name, "adam_wd") || adamw) ? 0.1f : 0.f;
    float m[N] = {0}, v[N] = {0}, g[N];
    for (int i = 0; i < N; i++) out[i] = 0.5f - 0.2f * (float)i;
    for (int t = 1; t <= STEPS; t++) {
        for (int i = 0; i < N; i++) g[i] = (float)grad(t, i);
        if (!strcmp(name, "adam_clip")) tf_clip_by_norm(g, N, tf_global_norm(g, N), 1.0);
        tf_adam_step(&c, out, g, m, v, N, t, 1e-2f);
    }
}

static void test_adam_matches_torch(void) {
    FILE *f = popen("/usr/bin/python3 tests/reference/optim_ref.py", "r");
    CHECKF(f != NULL, "cannot run /usr/bin/python3 (python3-torch is a test dependency)");
    if (!f) return;
    char line[1024];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        char name[32];
        int off;
        if (sscanf(line, "%31s%n", name, &off) != 1) continue;
        float ref[N], ours[N];
        char *p = line + off;
        for (int i = 0; i < N; i++) ref[i] = strtof(p, &p);
        run(name, ours);
        for (int i = 0; i < N; i++) CHECK_NEAR(ours[i], ref[i], 2e-6);
        seen++;
    }
    int rc = pclose(f);
    CHECKF(rc == 0 && seen == 4,
           "reference script failed (rc %d, %d variants): is python3-torch installed?", rc, seen);
}

static void test_schedule_steps_every_1_5_epochs(void) {
    /* 100 steps per epoch: decay at 150, 300, ... */
    CHECK_NEAR(tf_lr_at(1e-3, 0.9, 1.5, 100, 0), 1e-3, 1e-12);
    CHECK_NEAR(tf_lr_at(1e-3, 0.9, 1.5, 100, 149), 1e-3, 1e-12);
    CHECK_NEAR(tf_lr_at(1e-3, 0.9, 1.5, 100, 150), 0.9e-3, 1e-12);
    CHECK_NEAR(tf_lr_at(1e-3, 0.9, 1.5, 100, 451), 1e-3 * 0.729, 1e-12);
}

static void test_clip_and_norm(void) {
    float g[3] = {3.f, 4.f, 0.f};
    double n = tf_global_norm(g, 3);
    CHECK_NEAR(n, 5.0, 1e-12);
    CHECK(tf_clip_by_norm(g, 3, n, 10.0) == 1.f && g[0] == 3.f); /* under the bound: untouched */
    tf_clip_by_norm(g, 3, n, 1.0);
    CHECK_NEAR(tf_global_norm(g, 3), 1.0, 1e-6);
    float bad[2] = {1.f, NAN};
    CHECK(!isfinite(tf_global_norm(bad, 2)));
}

static void test_ema(void) {
    float e[2] = {1.f, 2.f}, p[2] = {3.f, -2.f};
    tf_ema_update(e, p, 2, 0.75f);
    CHECK_NEAR(e[0], 1.5, 1e-7);
    CHECK_NEAR(e[1], 1.0, 1e-7);
}

int main(void) {
    RUN(test_adam_matches_torch);
    RUN(test_schedule_steps_every_1_5_epochs);
    RUN(test_clip_and_norm);
    RUN(test_ema);
    return TEST_END();
}
