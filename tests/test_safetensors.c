/* safetensors reader/writer: round trip, interop with an independent writer (numpy via
 * /usr/bin/python3), and rejection of malformed files. */
#include "test.h"

#include <stdint.h>
#include <unistd.h>

#include "util/bf16.h"
#include "util/safetensors.h"

static char dir[64];

static void path_of(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_raw(const char *path, const char *json, const void *data, size_t nd) {
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(json);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(json, 1, n, f);
    if (nd) fwrite(data, 1, nd, f);
    fclose(f);
}

static void test_bf16_rounding(void) {
    /* 1 + 2^-8 is a tie between 1 and 1+2^-7: even mantissa (1) wins */
    CHECK(tf_bf16_to_f32(tf_f32_to_bf16(1.0f + 0x1p-8f)) == 1.0f);
    /* 1 + 3*2^-8 ties between 1+2^-7 (odd) and 1+2^-6 (even): rounds up */
    CHECK(tf_bf16_to_f32(tf_f32_to_bf16(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);
    CHECK(tf_bf16_to_f32(tf_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f)) == 1.0f + 0x1p-7f);
    CHECK(tf_bf16_to_f32(tf_f32_to_bf16(-2.5f)) == -2.5f);
    CHECK(isinf(tf_bf16_to_f32(tf_f32_to_bf16(INFINITY))));
    CHECK(isnan(tf_bf16_to_f32(tf_f32_to_bf16(NAN))));
    CHECK(tf_bf16_to_f32(tf_f32_to_bf16(3.4e38f)) == INFINITY); /* beyond bf16 max rounds up */
}

static void test_roundtrip(void) {
    char p[128];
    path_of(p, sizeof p, "rt.safetensors");
    float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 12345.678f};
    float b[4] = {1.0f + 0x1p-8f, 2, -3, 0.15625f};
    tf_st_entry e[3] = {
        {"layer.0.weight", TF_ST_F32, 2, {2, 3}, a},
        {"b16", TF_ST_BF16, 1, {4}, b},
        {"empty", TF_ST_F32, 2, {0, 5}, a},
    };
    const char *meta[] = {"format", "pt", "note", "tfswa \"test\""};
    CHECK(tf_st_write(p, e, 3, meta, 2) == TF_OK);
    tf_safetensors st;
    CHECKF(tf_st_open(&st, p) == TF_OK, "%s", tf_errmsg());
    CHECK(st.n == 3);
    CHECK(tf_st_meta(&st, "format") && !strcmp(tf_st_meta(&st, "format"), "pt"));
    CHECK(tf_st_meta(&st, "note") && !strcmp(tf_st_meta(&st, "note"), "tfswa \"test\""));
    CHECK(tf_st_meta(&st, "nope") == NULL);
    float out[6] = {0};
    CHECK(tf_st_read_f32(&st, "layer.0.weight", out, 2, (int64_t[]){2, 3}) == TF_OK);
    CHECK(!memcmp(out, a, sizeof a));
    CHECK(tf_st_read_f32(&st, "b16", out, 1, (int64_t[]){4}) == TF_OK);
    CHECK(out[0] == 1.0f && out[1] == 2 && out[2] == -3 && out[3] == 0.15625f);
    CHECK(tf_st_find(&st, "b16")->dtype == TF_ST_BF16);
    CHECK(tf_st_find(&st, "empty")->numel == 0);
    /* wrong shape and missing names are user errors naming the tensor */
    CHECK(tf_st_read_f32(&st, "layer.0.weight", out, 2, (int64_t[]){3, 2}) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "layer.0.weight") && strstr(tf_errmsg(), "(2, 3)"));
    CHECK(tf_st_read_f32(&st, "missing", out, 1, (int64_t[]){1}) == TF_EUSER);
    CHECK(strstr(tf_errmsg(), "missing") != NULL);
    tf_st_close(&st);
    /* no temporary left behind; file size is 8 + header + data, header multiple of 8 */
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char lb[8];
    CHECK(fread(lb, 1, 8, f) == 8);
    fclose(f);
    CHECK(lb[0] % 8 == 0);
    CHECK(sz == 8 + (long)(lb[0] | lb[1] << 8) + 24 + 8);
    /* duplicate names are refused */
    tf_st_entry d[2] = {{"x", TF_ST_F32, 1, {1}, a}, {"x", TF_ST_F32, 1, {1}, a}};
    CHECK(tf_st_write(p, d, 2, NULL, 0) == TF_EUSER);
}

/* A file written by numpy (an implementation independent of ours). */
static void test_python_interop(void) {
    char p[128], cmd[512];
    path_of(p, sizeof p, "py.safetensors");
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import json,struct,numpy as np\n"
             "a=np.arange(6,dtype='<f4').reshape(2,3)/4\n"
             "h=json.dumps({'w':{'dtype':'F32','shape':[2,3],'data_offsets':[0,24]},"
             "'__metadata__':{'k':'v'}}).encode()\n"
             "open('%s','wb').write(struct.pack('<Q',len(h))+h+a.tobytes())\"",
             p);
    CHECKF(system(cmd) == 0, "python3 (numpy) is needed for this test");
    tf_safetensors st;
    CHECKF(tf_st_open(&st, p) == TF_OK, "%s", tf_errmsg());
    float w[6];
    CHECK(tf_st_read_f32(&st, "w", w, 2, (int64_t[]){2, 3}) == TF_OK);
    for (int i = 0; i < 6; i++) CHECK(w[i] == i / 4.0f);
    CHECK(tf_st_meta(&st, "k") && !strcmp(tf_st_meta(&st, "k"), "v"));
    tf_st_close(&st);
    /* and python reads ours */
    float a[3] = {0.5f, -1, 2};
    tf_st_entry e = {"t", TF_ST_F32, 1, {3}, a};
    CHECK(tf_st_write(p, &e, 1, NULL, 0) == TF_OK);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import json,struct,numpy as np,sys\n"
             "b=open('%s','rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n])\n"
             "x=np.frombuffer(b[8+n:],dtype='<f4')\n"
             "sys.exit(0 if h['t']['shape']==[3] and list(x)==[0.5,-1,2] else 1)\"",
             p);
    CHECK(system(cmd) == 0);
}

static void test_malformed(void) {
    char p[128];
    path_of(p, sizeof p, "bad.safetensors");
    float d[4] = {1, 2, 3, 4};
    tf_safetensors st;
    struct {
        const char *json;
        size_t nd;
        const char *want;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, "bytes for"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, "F64"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "cover"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}",
         16, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,16]}}", 16, "shape"},
        {"{\"a\":{\"dtype\":\"F32\"}}", 0, "data_offsets"},
        {"[1,2]", 0, "not a JSON object"},
        {"{\"a\":", 0, "JSON"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(p, cases[i].json, d, cases[i].nd);
        tf_status s = tf_st_open(&st, p);
        CHECKF(s == TF_EUSER && strstr(tf_errmsg(), cases[i].want) && strstr(tf_errmsg(), p),
               "case %zu: status %d, message '%s'", i, (int)s, tf_errmsg());
        tf_st_close(&st);
    }
    /* header length beyond the file */
    FILE *f = fopen(p, "wb");
    unsigned char b[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    fwrite(b, 1, sizeof b, f);
    fclose(f);
    CHECK(tf_st_open(&st, p) == TF_EUSER && strstr(tf_errmsg(), "header length"));
    /* too short, and missing */
    f = fopen(p, "wb");
    fwrite(b, 1, 3, f);
    fclose(f);
    CHECK(tf_st_open(&st, p) == TF_EUSER);
    char q[128];
    path_of(q, sizeof q, "none.safetensors");
    CHECK(tf_st_open(&st, q) == TF_EUSER && strstr(tf_errmsg(), q));
    tf_st_close(&st);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/tfswa_st_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(test_bf16_rounding);
    RUN(test_roundtrip);
    RUN(test_python_interop);
    RUN(test_malformed);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return TEST_END();
}
