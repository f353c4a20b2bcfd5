/* A checkpoint whose model.safetensors disagrees with model.json (tensor names, shapes,
 * dtypes) or whose header lies about offsets is refused with a user error naming the file
 * and the tensor, through the real loaders (tf_model_from_checkpoint, and `tfswa separate`
 * for the exit status); never a crash or an out-of-bounds read (run under SAN=1 too).
 * Each case edits the header of a real checkpoint of a tiny model with cJSON and keeps
 * the data section. */
#include "test.h"

#include <cJSON.h>
#include <stdint.h>
#include <sys/wait.h>

#include "audio/audio.h"
#include "model/checkpoint.h"

static char tmp[64], good[128];
static char *hjson; /* the good checkpoint's header */
static unsigned char *hdata;
static size_t ndata;

static tf_model_config tiny(void) {
    tf_model_config mc;
    memset(&mc, 0, sizeof mc);
    mc.n_levels = 2, mc.channels[0] = 2, mc.channels[1] = 4;
    mc.rcms_per_block = 1, mc.tfswa_blocks = 1, mc.heads = 1;
    mc.window_t = 2, mc.window_f = 2, mc.mlp_ratio = 1.0, mc.subbands = 1;
    mc.n_targets = 1, mc.n_fft = 64, mc.hop = 32, mc.output = TF_OUT_MAGNITUDE;
    mc.backend = TF_BACKEND_REF, mc.threads = 1;
    return mc;
}

static int copy_file(const char *from, const char *to) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    return system(cmd);
}

/* The good checkpoint <tmp>/good and its safetensors split into header and data. */
static int setup(void) {
    tf_model_config mc = tiny();
    tf_model *m = NULL;
    if (tf_model_create_mode(&m, &mc, 1, 2048, 1, TF_MODEL_INFER)) return -1;
    tf_ckpt_info info;
    memset(&info, 0, sizeof info);
    info.model = mc, info.sample_rate = 8000, info.segment_seconds = 0.25;
    snprintf(info.targets[0], TF_NAME_MAX, "vocals");
    snprintf(good, sizeof good, "%s/good", tmp);
    tf_status s = tf_ckpt_write(good, m, &info, 0, NULL, NULL);
    tf_model_free(m);
    if (s) return -1;
    char p[256];
    snprintf(p, sizeof p, "%s/model.safetensors", good);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    unsigned char b[8];
    uint64_t n = 0;
    if (fread(b, 1, 8, f) != 8) return fclose(f), -1;
    for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
    hjson = calloc(n + 1, 1);
    fseek(f, 0, SEEK_END);
    ndata = (size_t)ftell(f) - 8 - n;
    hdata = malloc(ndata);
    fseek(f, 8, SEEK_SET);
    int ok = hjson && hdata && fread(hjson, 1, n, f) == n && fread(hdata, 1, ndata, f) == ndata;
    fclose(f);
    return ok ? 0 : -1;
}

/* A checkpoint folder <tmp>/<name> with model.json of the good one (or model_json) and a
 * safetensors of header `root` and the good data section; path of the safetensors to st. */
static void write_case(const char *name, cJSON *root, const char *model_json, char *dir, size_t n,
                       char *st, size_t sn) {
    snprintf(dir, n, "%s/%s", tmp, name);
    char p[256];
    snprintf(p, sizeof p, "mkdir -p '%s'", dir);
    if (system(p) != 0) return;
    snprintf(p, sizeof p, "%s/model.json", dir);
    if (model_json) {
        FILE *f = fopen(p, "wb");
        if (f) fputs(model_json, f), fclose(f);
    } else {
        char g[256];
        snprintf(g, sizeof g, "%s/model.json", good);
        if (copy_file(g, p) != 0) return;
    }
    snprintf(st, sn, "%s/model.safetensors", dir);
    char *h = cJSON_PrintUnformatted(root);
    FILE *f = fopen(st, "wb");
    if (!h || !f) {
        free(h);
        if (f) fclose(f);
        return;
    }
    uint64_t len = strlen(h);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(len >> (8 * i));
    fwrite(b, 1, 8, f), fwrite(h, 1, len, f), fwrite(hdata, 1, ndata, f);
    fclose(f);
    free(h);
}

/* Load the case as separate does; it must be TF_EUSER naming the file, the tensor and
 * `what`. */
static void expect_refused(const char *name, cJSON *root, const char *model_json,
                           const char *tensor, const char *what) {
    char dir[256], st[300];
    write_case(name, root, model_json, dir, sizeof dir, st, sizeof st);
    tf_model_config run = tiny();
    tf_model *m = NULL;
    tf_status s = tf_model_from_checkpoint(&m, NULL, dir, &run, 1, 0, TF_MODEL_INFER);
    const char *msg = tf_errmsg();
    CHECKF(s == TF_EUSER && strstr(msg, st) && strstr(msg, tensor) && strstr(msg, what),
           "%s: status %d, message '%s' (want the file, '%s' and '%s')", name, (int)s, msg, tensor,
           what);
    CHECK(m == NULL);
    tf_model_free(m);
}

static cJSON *header(void) {
    return cJSON_Parse(hjson);
}

/* The entry of the tensor whose data begins at byte `at` (NULL if none). */
static cJSON *tensor_at(cJSON *root, double at) {
    cJSON *it;
    cJSON_ArrayForEach(it, root) {
        cJSON *of = cJSON_GetObjectItem(it, "data_offsets");
        if (of && cJSON_GetArrayItem(of, 0)->valuedouble == at) return it;
    }
    return NULL;
}

static void set_offsets(cJSON *t, double b, double e) {
    cJSON *of = cJSON_GetObjectItem(t, "data_offsets");
    cJSON_SetNumberValue(cJSON_GetArrayItem(of, 0), b);
    cJSON_SetNumberValue(cJSON_GetArrayItem(of, 1), e);
}

static double offset(cJSON *t, int k) {
    return cJSON_GetArrayItem(cJSON_GetObjectItem(t, "data_offsets"), k)->valuedouble;
}

static void test_good_loads(void) {
    tf_model_config run = tiny();
    tf_model *m = NULL;
    tf_status s = tf_model_from_checkpoint(&m, NULL, good, &run, 1, 0, TF_MODEL_INFER);
    CHECKF(s == TF_OK && m, "%s", tf_errmsg());
    tf_model_free(m);
    /* and the header's first tensor is the one the cases below edit */
    cJSON *r = header();
    CHECK(r && tensor_at(r, 0) && cJSON_GetArraySize(r) > 3);
    cJSON_Delete(r);
}

static void test_names(void) {
    /* a tensor of the model missing (renamed) */
    cJSON *r = header();
    cJSON *t = tensor_at(r, 0);
    char name[128];
    snprintf(name, sizeof name, "%s", t->string);
    char renamed[160];
    snprintf(renamed, sizeof renamed, "%s.renamed", name);
    cJSON_AddItemToObject(r, renamed, cJSON_DetachItemFromObject(r, name));
    expect_refused("renamed", r, NULL, name, "missing");
    cJSON_Delete(r);
    /* a tensor the model does not have (an empty one at the end of the data) */
    r = header();
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "dtype", "F32");
    cJSON_AddItemToObject(e, "shape", cJSON_CreateIntArray((int[]){0}, 1));
    cJSON_AddItemToObject(e, "data_offsets", cJSON_CreateDoubleArray((double[]){0, 0}, 2));
    set_offsets(e, (double)ndata, (double)ndata);
    cJSON_AddItemToObject(r, "extra.weight", e);
    expect_refused("extra", r, NULL, "extra.weight", "not a tensor of the model");
    cJSON_Delete(r);
    /* a name given twice */
    r = header();
    t = tensor_at(r, 0);
    snprintf(name, sizeof name, "%s", t->string);
    cJSON *dup = cJSON_Duplicate(t, 1);
    set_offsets(dup, (double)ndata, (double)ndata);
    cJSON_SetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(dup, "shape"), 0), 0);
    cJSON_AddItemToObject(r, name, dup);
    expect_refused("twice", r, NULL, name, "appears twice");
    cJSON_Delete(r);
}

static void test_shapes_and_dtypes(void) {
    /* a shape with the same number of values but another layout: the first 2-d+ tensor,
     * its dims reversed */
    cJSON *r = header(), *it, *t = NULL;
    cJSON_ArrayForEach(it, r) {
        cJSON *sh = cJSON_GetObjectItem(it, "shape");
        if (sh && cJSON_GetArraySize(sh) >= 2 &&
            cJSON_GetArrayItem(sh, 0)->valueint != cJSON_GetArrayItem(sh, 1)->valueint) {
            t = it;
            break;
        }
    }
    CHECK(t != NULL);
    if (t) {
        cJSON *sh = cJSON_GetObjectItem(t, "shape");
        int d0 = cJSON_GetArrayItem(sh, 0)->valueint, d1 = cJSON_GetArrayItem(sh, 1)->valueint;
        cJSON_SetNumberValue(cJSON_GetArrayItem(sh, 0), d1);
        cJSON_SetNumberValue(cJSON_GetArrayItem(sh, 1), d0);
        expect_refused("shape", r, NULL, t->string, "has shape");
    }
    cJSON_Delete(r);
    /* a shape whose size is not the tensor's byte count */
    r = header();
    t = tensor_at(r, 0);
    cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "shape"), 0);
    cJSON_SetNumberValue(d0, d0->valuedouble + 1);
    expect_refused("size", r, NULL, t->string, "bytes for");
    cJSON_Delete(r);
    /* dtypes: one tfswa does not read, and BF16 over F32-sized data */
    r = header();
    t = tensor_at(r, 0);
    cJSON_SetValuestring(cJSON_GetObjectItem(t, "dtype"), "F16");
    expect_refused("dtype_f16", r, NULL, t->string, "F16");
    cJSON_Delete(r);
    r = header();
    t = tensor_at(r, 0);
    cJSON_SetValuestring(cJSON_GetObjectItem(t, "dtype"), "BF16");
    expect_refused("dtype_bf16", r, NULL, t->string, "BF16");
    cJSON_Delete(r);
    /* model.json of another architecture than the weights: the wider model's first
     * tensor of another shape is named */
    char p[256], *mj = NULL;
    snprintf(p, sizeof p, "%s/model.json", good);
    FILE *f = fopen(p, "rb");
    if (f) {
        mj = calloc(1, 4096);
        if (mj && fread(mj, 1, 4095, f) == 0) mj[0] = 0;
        fclose(f);
    }
    cJSON *j = mj ? cJSON_Parse(mj) : NULL;
    free(mj);
    CHECK(j != NULL);
    if (!j) return;
    cJSON *ch = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "channels");
    cJSON_SetNumberValue(cJSON_GetArrayItem(ch, 1), 8); /* [2, 4] -> [2, 8] */
    char *js = cJSON_Print(j);
    r = header();
    expect_refused("model_json", r, js, "tensor '", "has shape");
    cJSON_Delete(r);
    free(js);
    cJSON_Delete(j);
}

static void test_offsets(void) {
    cJSON *r = header();
    cJSON *t = tensor_at(r, 0);
    double e0 = offset(t, 1);
    /* beyond the file */
    set_offsets(t, 0, (double)ndata + 4);
    expect_refused("beyond", r, NULL, t->string, "outside");
    /* end before begin */
    set_offsets(t, e0, 0);
    expect_refused("reversed", r, NULL, t->string, "end before");
    /* the second tensor starting inside the first (overlap) */
    set_offsets(t, 0, e0);
    cJSON *t2 = tensor_at(r, e0);
    CHECK(t2 != NULL);
    if (t2) {
        double b2 = offset(t2, 0), e2 = offset(t2, 1);
        set_offsets(t2, b2 - 4, e2 - 4);
        expect_refused("overlap", r, NULL, t2->string, "overlap");
        set_offsets(t2, b2, e2);
    }
    /* a tensor skipping bytes (hole): the first one moved 4 bytes on */
    set_offsets(t, 4, e0 + 4);
    expect_refused("hole", r, NULL, t->string, "hole");
    cJSON_Delete(r);
}

/* The CLI: a refused checkpoint is exit status 2 with one line naming the tensor. */
static void test_cli_status(void) {
    char tfswa[4096], in[256], cmd[8192], out[256];
    CHECK(test_build_path(tfswa, sizeof tfswa, "tfswa") == 0);
    snprintf(in, sizeof in, "%s/in.wav", tmp);
    float x[2 * 4000] = {0};
    for (int i = 0; i < 8000; i++) x[i] = 0.1f * (float)((i * 37 % 101) - 50) / 50.f;
    CHECK(tf_audio_write_file(in, x, 2, 4000, 8000, TF_FMT_WAV, TF_SUBTYPE_PCM16) == TF_OK);
    cJSON *r = header();
    cJSON *t = tensor_at(r, 0);
    char dir[256], st[300], name[128];
    snprintf(name, sizeof name, "%s", t->string);
    set_offsets(t, 0, (double)ndata + 4);
    write_case("cli", r, NULL, dir, sizeof dir, st, sizeof st);
    cJSON_Delete(r);
    snprintf(out, sizeof out, "%s/cli.log", tmp);
    snprintf(cmd, sizeof cmd, "'%s' separate '%s' -o '%s/out' --checkpoint '%s' > '%s' 2>&1", tfswa,
             in, tmp, dir, out);
    int rc = system(cmd);
    CHECKF(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "exit %d", WEXITSTATUS(rc));
    char log[2048] = "";
    FILE *f = fopen(out, "rb");
    if (f) {
        size_t n = fread(log, 1, sizeof log - 1, f);
        log[n] = 0;
        fclose(f);
    }
    CHECKF(strstr(log, name) && strstr(log, "outside"), "output: %s", log);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/tfswa_ckc_XXXXXX");
    if (!mkdtemp(tmp) || setup() != 0) {
        printf("setup failed: %s\n0 passed, 1 failed\n", tf_errmsg());
        return 1;
    }
    RUN(test_good_loads);
    RUN(test_names);
    RUN(test_shapes_and_dtypes);
    RUN(test_offsets);
    RUN(test_cli_status);
    free(hjson), free(hdata);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return TEST_END();
}
