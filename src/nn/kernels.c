/* The kernel interface (nn/kernels.h): the ref backend (nn/conv.h), the oneDNN backend and,
 * in CUDA builds (TFSWA_CUDA), the cuda backend: calls handed to src/cuda/conv.cu through
 * the plain C header cuda/cuda_backend.h (no CUDA header here).
 *
 * oneDNN backend, per registered conv shape: one primitive per pass (forward,
 * backward-data, backward-weights), created with format_tag_any where the primitive
 * should choose its layout (blocked nChw8c/nChw16c, the fast one) and with the plain
 * NCHW/OIHW layout where the plain (gemm) implementation measured faster. The model's
 * tensors stay plain NCHW fp32; each call reorders its operands into the primitive's
 * layout and dtype in the workspace, runs, and reorders the result back, ADDING it where
 * the interface accumulates (reorder with a sum post-op). Scratchpads are user-managed:
 * every byte a call touches is in the workspace the shape reported. */
#include "nn/kernels.h"

#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv.h"
#include "util/bf16.h"
#include "cuda/cuda_backend.h" /* plain C: the plan of cuda's 16-bit copies in any build */

#define ALIGN 64

/* One operand of a primitive: the user's plain fp32 view (umd) and the primitive's
 * (pmd). When they differ a reorder runs (user -> prim for inputs, prim -> user for
 * outputs, with sum for accumulated outputs) through a buffer at `off` in the workspace. */
typedef struct {
    dnnl_memory_desc_t umd, pmd;
    int reorder;                            /* umd != pmd, or an accumulated output */
    int differs;                            /* umd != pmd */
    int sum;                                /* output added into the user's tensor */
    size_t off;                             /* workspace offset of the prim-layout buffer */
    dnnl_primitive_desc_t ro_pd, ro_set_pd; /* reorder (with sum for `sum`), and without */
    dnnl_primitive_t ro, ro_set;
    dnnl_memory_t um, pm; /* handles set per call */
} opnd_t;

enum { PASS_FWD = 0, PASS_BWD_DATA = 1, PASS_BWD_W = 2, N_PASS = 3 };
enum { MAX_OPND = 4 };

typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    int nop;
    int arg[MAX_OPND];
    opnd_t op[MAX_OPND];
    size_t scratch_off, scratch_bytes;
    dnnl_memory_desc_t scratch_md;
    dnnl_memory_t scratch;
    int ready;    /* descriptors set up (the primitive may not exist yet) */
    size_t bytes; /* workspace of this pass */
} pass_t;

typedef struct {
    int B, Cin, Cout, H, W, k, bias, train;
    pass_t pass[N_PASS];
    int committed; /* every pass set up has its primitives */
} conv_t;

struct tf_kernels {
    tf_backend backend;
    tf_dtype compute;
    int threads;
    char desc[600];
    conv_t *conv;
    size_t n_conv, cap_conv;
    tf_status status;
    char msg[640];
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    struct tf_cuda_conv *cuda; /* cuda backend (CUDA builds) */
    int plan_only;             /* tf_kernels_create_bound: shapes answer `bound`, no calls */
    size_t bound;
};

/* ------------------------------------------------------------------ small helpers */

static size_t align_up(size_t x) {
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}

static void fail(tf_kernels *k, const char *what, dnnl_status_t s) {
    if (k->status != TF_OK) return;
    k->status = TF_EINTERNAL;
    snprintf(k->msg, sizeof k->msg, "oneDNN: %s failed (dnnl status %d)", what, (int)s);
}

static tf_status derr(const char *what, dnnl_status_t s) {
    if (s == dnnl_out_of_memory) return tf_err(TF_EINTERNAL, "oneDNN: %s: out of memory", what);
    return tf_err(TF_EINTERNAL, "oneDNN: %s failed (dnnl status %d)", what, (int)s);
}
#define DTRY(what, call)                                                                           \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) return derr(what, s_);                                             \
    } while (0)

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41:
        return "sse4.1";
    case dnnl_cpu_isa_avx:
        return "avx";
    case dnnl_cpu_isa_avx2:
        return "avx2";
    case dnnl_cpu_isa_avx512_mic:
        return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops:
        return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core:
        return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
        return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
        return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
        return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni:
        return "avx2_vnni";
    default:
        return "isa unknown";
    }
}

void tf_kernels_cpu(char *out, size_t n) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(out, n, "oneDNN %d.%d.%d isa %s, bf16 native %s", v->major, v->minor, v->patch,
             isa_name(dnnl_get_effective_cpu_isa()),
             tf_kernels_native_bf16(TF_BACKEND_DNNL) ? "yes" : "no");
}

int tf_kernels_native_bf16(tf_backend backend) {
    if (backend != TF_BACKEND_DNNL) return 0; /* ref: emulated; cuda: per card (create) */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

/* ------------------------------------------------------------------ create / free */

tf_status tf_kernels_create(tf_kernels **out, tf_backend backend, tf_dtype compute, int threads) {
    *out = NULL;
    if (backend != TF_BACKEND_REF && backend != TF_BACKEND_DNNL && backend != TF_BACKEND_CUDA)
        return tf_err(TF_EUSER, "backend %d: expected ref, dnnl or cuda", (int)backend);
    if (compute == TF_DT_FP16 && backend != TF_BACKEND_CUDA)
        return tf_err(TF_EUSER, "fp16 arithmetic (amp_dtype fp16) runs on cuda only; the CPU "
                                "backends compute in bf16 or fp32");
#if !TFSWA_CUDA
    if (backend == TF_BACKEND_CUDA)
        return tf_err(TF_EUSER,
                      "backend cuda: this tfswa was built without CUDA (build with make CUDA=1)");
#endif
    tf_kernels *k = calloc(1, sizeof *k);
    if (!k) return tf_err(TF_EINTERNAL, "out of memory (kernels)");
    k->backend = backend;
    k->threads = threads < 1 ? 1 : threads;
    k->compute = compute;
    if (backend == TF_BACKEND_CUDA) {
#if TFSWA_CUDA
        char err[512];
        if (tf_cuda_conv_create(&k->cuda, TF_KERN_CUDA_WS_LIMIT,
                                compute == TF_DT_BF16   ? TF_CUDA_CONV_BF16
                                : compute == TF_DT_FP16 ? TF_CUDA_CONV_FP16
                                                        : TF_CUDA_CONV_FP32,
                                err, sizeof err)) {
            free(k);
            return tf_err(strncmp(err, "no CUDA device", 14) ? TF_EINTERNAL : TF_EUSER,
                          "backend cuda: %s", err);
        }
        const int dt = tf_cuda_conv_dtype(k->cuda);
        k->compute = dt == TF_CUDA_CONV_BF16   ? TF_DT_BF16
                     : dt == TF_CUDA_CONV_FP16 ? TF_DT_FP16
                                               : TF_DT_FP32;
        snprintf(k->desc, sizeof k->desc, "%s", tf_cuda_conv_describe(k->cuda));
#endif
    } else if (backend == TF_BACKEND_REF) {
        /* bf16: emulated (operands rounded to bf16, fp32 sums): the numerics of native bf16
         * arithmetic on any CPU, for tests and measurements, at fp32 speed */
        snprintf(k->desc, sizeof k->desc, "ref (OpenMP + OpenBLAS sgemm), %s",
                 compute == TF_DT_BF16
                     ? "bf16 arithmetic emulated (operands rounded to bf16, fp32 sums)"
                     : "fp32 arithmetic");
    } else {
        dnnl_status_t s = dnnl_engine_create(&k->eng, dnnl_cpu, 0);
        if (s == dnnl_success)
            s = dnnl_stream_create(&k->stream, k->eng, dnnl_stream_default_flags);
        if (s != dnnl_success) {
            tf_kernels_free(k);
            return derr("engine creation", s);
        }
        if (compute == TF_DT_BF16 && !tf_kernels_native_bf16(backend)) k->compute = TF_DT_FP32;
        const dnnl_version_t *v = dnnl_version();
        const char *isa = isa_name(dnnl_get_effective_cpu_isa());
        snprintf(k->desc, sizeof k->desc, "dnnl (oneDNN %d.%d.%d, isa %s), %s arithmetic%s",
                 v->major, v->minor, v->patch, isa, k->compute == TF_DT_BF16 ? "bf16" : "fp32",
                 compute == TF_DT_BF16 && k->compute != TF_DT_BF16
                     ? " (bf16 requested: no native bf16 on this CPU)"
                     : "");
    }
    *out = k;
    return TF_OK;
}

tf_status tf_kernels_create_bound(tf_kernels **out, tf_backend backend, tf_dtype compute,
                                  size_t ws_bytes, const char *describe) {
    *out = NULL;
    if (backend != TF_BACKEND_REF && backend != TF_BACKEND_DNNL && backend != TF_BACKEND_CUDA)
        return tf_err(TF_EUSER, "backend %d: expected ref, dnnl or cuda", (int)backend);
    tf_kernels *k = calloc(1, sizeof *k);
    if (!k) return tf_err(TF_EINTERNAL, "out of memory (kernels)");
    k->backend = backend;
    k->compute = backend == TF_BACKEND_CUDA ? compute : TF_DT_FP32; /* bf16/fp16: copies */
    k->threads = 1;
    k->plan_only = 1;
    k->bound = ws_bytes;
    snprintf(k->desc, sizeof k->desc, "%s", describe ? describe : "plan only");
    *out = k;
    return TF_OK;
}

static void pass_free(pass_t *p) {
    for (int i = 0; i < p->nop; i++) {
        opnd_t *o = &p->op[i];
        if (o->ro) dnnl_primitive_destroy(o->ro);
        if (o->ro_pd) dnnl_primitive_desc_destroy(o->ro_pd);
        if (o->ro_set) dnnl_primitive_destroy(o->ro_set);
        if (o->ro_set_pd) dnnl_primitive_desc_destroy(o->ro_set_pd);
        if (o->um) dnnl_memory_destroy(o->um);
        if (o->pm) dnnl_memory_destroy(o->pm);
    }
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    memset(p, 0, sizeof *p);
}

void tf_kernels_free(tf_kernels *k) {
    if (!k) return;
    for (size_t i = 0; i < k->n_conv; i++)
        for (int p = 0; p < N_PASS; p++) pass_free(&k->conv[i].pass[p]);
    free(k->conv);
#if TFSWA_CUDA
    tf_cuda_conv_free(k->cuda);
#endif
    if (k->stream) dnnl_stream_destroy(k->stream);
    if (k->eng) dnnl_engine_destroy(k->eng);
    free(k);
}

tf_backend tf_kernels_backend(const tf_kernels *k) {
    return k->backend;
}
tf_dtype tf_kernels_compute(const tf_kernels *k) {
    return k->compute;
}
const char *tf_kernels_describe(const tf_kernels *k) {
    return k->desc;
}
size_t tf_kernels_n_shapes(const tf_kernels *k) {
#if TFSWA_CUDA
    if (k->backend == TF_BACKEND_CUDA && !k->plan_only) return tf_cuda_conv_n_shapes(k->cuda);
#endif
    return k->n_conv;
}

void tf_kernels_shape_algos(const tf_kernels *k, size_t i, char *out, size_t n) {
    if (n) out[0] = 0;
#if TFSWA_CUDA
    if (k->backend == TF_BACKEND_CUDA && !k->plan_only) tf_cuda_conv_algos(k->cuda, i, out, n);
#else
    (void)k, (void)i;
#endif
}

#if TFSWA_CUDA
/* Record a failure of a cuda call (its message in err), the first one wins. */
static void cuda_fail(tf_kernels *k, const char *err) {
    if (k->status != TF_OK) return;
    k->status = TF_EINTERNAL;
    snprintf(k->msg, sizeof k->msg, "cuda: %s", err);
}
#endif

tf_status tf_kernels_status(tf_kernels *k) {
    if (k->status == TF_OK) return TF_OK;
    tf_status s = k->status;
    k->status = TF_OK;
    return tf_err(s, "%s", k->msg);
}

/* ------------------------------------------------------------------ oneDNN passes */

static tf_status md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dims_t d, dnnl_data_type_t dt,
                          dnnl_format_tag_t tag) {
    DTRY("memory descriptor", dnnl_memory_desc_init_by_tag(md, nd, d, dt, tag));
    return TF_OK;
}

static tf_status user_attr(dnnl_primitive_attr_t *attr, int sum) {
    DTRY("attribute", dnnl_primitive_attr_create(attr));
    dnnl_status_t s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && sum) {
        dnnl_post_ops_t po;
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) {
            s = dnnl_post_ops_append_sum(po, 1.f);
            if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(*attr, po);
            dnnl_post_ops_destroy(po);
        }
    }
    if (s != dnnl_success) {
        dnnl_primitive_attr_destroy(*attr);
        return derr("attribute", s);
    }
    return TF_OK;
}

/* Fill p's operand i from the primitive descriptor: `q` is the query of the primitive's
 * md, umd the user's plain fp32 md. out: operand written by the primitive; sum: and added
 * to the user's tensor. Workspace bytes are bumped into *at. */
static tf_status opnd_setup(tf_kernels *k, pass_t *p, int i, int arg, dnnl_query_t q,
                            const dnnl_memory_desc_t *umd, int out, int sum, size_t *at) {
    opnd_t *o = &p->op[i];
    p->arg[i] = arg;
    o->umd = *umd;
    o->pmd = *dnnl_primitive_desc_query_md(p->pd, q, 0);
    o->sum = sum;
    o->differs = !dnnl_memory_desc_equal(&o->umd, &o->pmd);
    o->reorder = sum || o->differs;
    if (!o->reorder) return TF_OK;
    o->off = *at;
    *at += align_up(dnnl_memory_desc_get_size(&o->pmd));
    dnnl_primitive_attr_t attr;
    TF_TRY(user_attr(&attr, sum));
    dnnl_status_t s =
        out ? dnnl_reorder_primitive_desc_create(&o->ro_pd, &o->pmd, k->eng, &o->umd, k->eng, attr)
            : dnnl_reorder_primitive_desc_create(&o->ro_pd, &o->umd, k->eng, &o->pmd, k->eng, attr);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return derr("reorder descriptor", s);
    if (sum && o->differs) { /* the overwriting variant (tf_kern_conv2d_backward's set) */
        TF_TRY(user_attr(&attr, 0));
        s = dnnl_reorder_primitive_desc_create(&o->ro_set_pd, &o->pmd, k->eng, &o->umd, k->eng,
                                               attr);
        dnnl_primitive_attr_destroy(attr);
        if (s != dnnl_success) return derr("reorder descriptor", s);
    }
    /* a reorder needing a scratchpad would need its own workspace share: none of ours does */
    const dnnl_memory_desc_t *sp =
        dnnl_primitive_desc_query_md(o->ro_pd, dnnl_query_scratchpad_md, 0);
    if (sp && dnnl_memory_desc_get_size(sp) > 0)
        return tf_err(TF_EINTERNAL, "oneDNN: a reorder asks for a scratchpad (unsupported)");
    return TF_OK;
}

/* Descriptors of one pass of conv c (no primitives yet). */
static tf_status pass_setup(tf_kernels *k, conv_t *c, int which) {
    pass_t *p = &c->pass[which];
    const dnnl_data_type_t dt = k->compute == TF_DT_BF16 ? dnnl_bf16 : dnnl_f32;
    const int pad = (c->k - 1) / 2;
    dnnl_dims_t sd = {c->B, c->Cin, c->H, c->W}, wd = {c->Cout, c->Cin, c->k, c->k},
                dd = {c->B, c->Cout, c->H, c->W}, bd = {c->Cout}, strides = {1, 1},
                pads = {pad, pad};
    /* layouts: the primitive's choice (any), except the plain gemm path for fp32 forward
     * and backward-weights on small maps, measured faster there on AVX2 (256 and 384
     * channels at 32x38 and 16x19: 165-170 vs 110-155 GFLOP/s) */
    const int plain = dt == dnnl_f32 && which != PASS_BWD_DATA && (long)c->H * c->W < 2400;
    const dnnl_format_tag_t at = plain ? dnnl_nchw : dnnl_format_tag_any;
    const dnnl_format_tag_t wt = plain ? dnnl_oihw : dnnl_format_tag_any;
    dnnl_memory_desc_t s, w, d, b, us, uw, ud, ub;
    TF_TRY(md_plain(&s, 4, sd, dt, at));
    TF_TRY(md_plain(&w, 4, wd, dt, wt));
    /* outputs in fp32: forward dst, backward diff_src / diff_weights */
    TF_TRY(md_plain(&d, 4, dd, which == PASS_FWD ? dnnl_f32 : dt, at));
    TF_TRY(md_plain(&b, 1, bd, dnnl_f32, dnnl_x));
    TF_TRY(md_plain(&us, 4, sd, dnnl_f32, dnnl_nchw));
    TF_TRY(md_plain(&uw, 4, wd, dnnl_f32, dnnl_oihw));
    TF_TRY(md_plain(&ud, 4, dd, dnnl_f32, dnnl_nchw));
    TF_TRY(md_plain(&ub, 1, bd, dnnl_f32, dnnl_x));
    dnnl_convolution_desc_t cd;
    dnnl_status_t st;
    if (which == PASS_FWD) {
        st = dnnl_convolution_forward_desc_init(
            &cd, c->train ? dnnl_forward_training : dnnl_forward_inference, dnnl_convolution_direct,
            &s, &w, c->bias ? &b : NULL, &d, strides, pads, pads);
    } else if (which == PASS_BWD_DATA) {
        dnnl_memory_desc_t ds;
        TF_TRY(md_plain(&ds, 4, sd, dnnl_f32, at));
        st = dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &ds, &w, &d,
                                                      strides, pads, pads);
    } else {
        dnnl_memory_desc_t dw;
        TF_TRY(md_plain(&dw, 4, wd, dnnl_f32, wt));
        /* no diff_bias: summed by hand in double, as the ref kernel does (oneDNN's fp32 sum
         * is noisier on the conv biases before a BatchNorm, whose gradient is 0) */
        st = dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &s, &dw,
                                                         NULL, &d, strides, pads, pads);
    }
    if (st != dnnl_success) return derr("convolution descriptor", st);
    dnnl_primitive_attr_t attr;
    TF_TRY(user_attr(&attr, 0));
    /* the backward passes take the forward's descriptor as a hint */
    dnnl_primitive_desc_t hint = which == PASS_FWD ? NULL : c->pass[PASS_FWD].pd;
    st = dnnl_primitive_desc_create(&p->pd, &cd, attr, k->eng, hint);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return derr("convolution primitive descriptor", st);
    size_t at_off = 0;
    if (which == PASS_FWD) {
        p->nop = c->bias ? 4 : 3;
        TF_TRY(opnd_setup(k, p, 0, DNNL_ARG_SRC, dnnl_query_src_md, &us, 0, 0, &at_off));
        TF_TRY(opnd_setup(k, p, 1, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, &uw, 0, 0, &at_off));
        TF_TRY(opnd_setup(k, p, 2, DNNL_ARG_DST, dnnl_query_dst_md, &ud, 1, 0, &at_off));
        if (c->bias) { /* plain fp32 (Cout) as declared: passed as it is */
            p->arg[3] = DNNL_ARG_BIAS;
            p->op[3].umd = p->op[3].pmd = ub;
        }
    } else if (which == PASS_BWD_DATA) {
        p->nop = 3;
        TF_TRY(opnd_setup(k, p, 0, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, &ud, 0, 0, &at_off));
        TF_TRY(opnd_setup(k, p, 1, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, &uw, 0, 0, &at_off));
        TF_TRY(opnd_setup(k, p, 2, DNNL_ARG_DIFF_SRC, dnnl_query_diff_src_md, &us, 1, 1, &at_off));
    } else {
        p->nop = 3;
        TF_TRY(opnd_setup(k, p, 0, DNNL_ARG_SRC, dnnl_query_src_md, &us, 0, 0, &at_off));
        TF_TRY(opnd_setup(k, p, 1, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, &ud, 0, 0, &at_off));
        TF_TRY(opnd_setup(k, p, 2, DNNL_ARG_DIFF_WEIGHTS, dnnl_query_diff_weights_md, &uw, 1, 1,
                          &at_off));
    }
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
    p->scratch_bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (sp) p->scratch_md = *sp;
    p->ready = 1;
    p->scratch_off = at_off;
    p->bytes = at_off + align_up(p->scratch_bytes);
    return TF_OK;
}

/* Create the primitives of p, then drop the descriptors (their memory is most of what a
 * shape costs besides its JIT code); the forward's stays: the backward passes of a shape
 * registered later take it as their hint. */
static tf_status pass_commit(tf_kernels *k, pass_t *p, int keep_pd) {
    if (!p->ready || p->prim) return TF_OK;
    DTRY("convolution primitive", dnnl_primitive_create(&p->prim, p->pd));
    for (int i = 0; i < p->nop; i++) {
        opnd_t *o = &p->op[i];
        DTRY("memory", dnnl_memory_create(&o->um, &o->umd, k->eng, DNNL_MEMORY_NONE));
        if (o->reorder) {
            DTRY("memory", dnnl_memory_create(&o->pm, &o->pmd, k->eng, DNNL_MEMORY_NONE));
            if (o->ro_pd) {
                DTRY("reorder primitive", dnnl_primitive_create(&o->ro, o->ro_pd));
                dnnl_primitive_desc_destroy(o->ro_pd);
                o->ro_pd = NULL;
            }
            if (o->ro_set_pd) {
                DTRY("reorder primitive", dnnl_primitive_create(&o->ro_set, o->ro_set_pd));
                dnnl_primitive_desc_destroy(o->ro_set_pd);
                o->ro_set_pd = NULL;
            }
        }
    }
    if (p->scratch_bytes)
        DTRY("memory", dnnl_memory_create(&p->scratch, &p->scratch_md, k->eng, DNNL_MEMORY_NONE));
    if (!keep_pd) {
        dnnl_primitive_desc_destroy(p->pd);
        p->pd = NULL;
    }
    return TF_OK;
}

/* ------------------------------------------------------------------ registration */

/* The registered conv of this shape (whatever passes it has), or NULL. */
static conv_t *find_conv(tf_kernels *k, int B, int Cin, int Cout, int H, int W, int ksize,
                         int bias) {
    for (size_t i = 0; i < k->n_conv; i++) {
        conv_t *c = &k->conv[i];
        if (c->B == B && c->Cin == Cin && c->Cout == Cout && c->H == H && c->W == W &&
            c->k == ksize && c->bias == bias)
            return c;
    }
    return NULL;
}

/* Set up the passes of c from `first` on (the forward only, or all three when c->train);
 * on failure those passes are freed again. */
static tf_status setup_passes(tf_kernels *k, conv_t *c, int first) {
    tf_status s = TF_OK;
    for (int p = first; p < (c->train ? N_PASS : 1) && s == TF_OK; p++) s = pass_setup(k, c, p);
    if (s != TF_OK)
        for (int p = first; p < N_PASS; p++) pass_free(&c->pass[p]);
    return s;
}

/* Workspace bytes of the passes a call of c needs: the forward, or the backward's two. */
static size_t conv_bytes(const conv_t *c, int train) {
    /* a training shape's calls: forward, backward-data and backward-weights */
    size_t b = c->pass[PASS_FWD].bytes;
    if (!train) return b;
    if (c->pass[PASS_BWD_W].bytes > b) b = c->pass[PASS_BWD_W].bytes;
    return b > c->pass[PASS_BWD_DATA].bytes ? b : c->pass[PASS_BWD_DATA].bytes;
}

/* ref workspace: the conv2d workspace, then for emulated bf16 the rounded copies of the
 * operands: inp (B, Cin, H, W), weight (Cout, Cin, k, k) and, for the backward, dout
 * (B, Cout, H, W). */
typedef struct {
    size_t conv, inp, weight, dout, total; /* byte offsets; total = bytes */
} ref_ws;

static ref_ws ref_layout(const tf_kernels *k, int B, int Cin, int Cout, int H, int W, int ksize,
                         int train) {
    ref_ws r = {0};
    size_t f = train ? tf_conv2d_workspace_floats(Cin, Cout, H, W, ksize, 0, k->threads)
                     : tf_conv2d_forward_workspace_floats(Cin, H, W, ksize, 0, k->threads);
    size_t at = align_up(f * sizeof(float));
    if (k->compute == TF_DT_BF16) {
        const size_t hw = (size_t)H * W;
        r.inp = at;
        at += align_up((size_t)B * Cin * hw * sizeof(float));
        r.weight = at;
        at += align_up((size_t)Cout * Cin * ksize * ksize * sizeof(float));
        if (train) {
            r.dout = at;
            at += align_up((size_t)B * Cout * hw * sizeof(float));
        }
    }
    r.total = at;
    return r;
}

static size_t ref_bytes(const tf_kernels *k, int B, int Cin, int Cout, int H, int W, int ksize,
                        int train) {
    return ref_layout(k, B, Cin, Cout, H, W, ksize, train).total;
}

/* dst (n) = src rounded to bf16 (round to nearest even), as fp32 */
static const float *round_bf16(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = tf_bf16_to_f32(tf_f32_to_bf16(src[i]));
    return dst;
}

tf_status tf_kern_conv2d_add(tf_kernels *k, int B, int Cin, int Cout, int H, int W, int ksize,
                             int bias, int train, size_t *ws_bytes) {
    *ws_bytes = 0;
    if (B < 1 || Cin < 1 || Cout < 1 || H < 1 || W < 1 || (ksize != 1 && ksize != 3))
        return tf_err(TF_EINTERNAL, "conv2d shape B %d Cin %d Cout %d %dx%d k %d", B, Cin, Cout, H,
                      W, ksize);
    if (k->plan_only) { /* every shape: the bound (shapes are not kept), plus cuda's 16-bit
                         * operand copies, which the shape fixes */
        *ws_bytes = k->bound;
        if (k->backend == TF_BACKEND_CUDA && k->compute != TF_DT_FP32)
            *ws_bytes += tf_cuda_conv_half_copy_bytes(B, Cin, Cout, H, W, ksize, train);
        return TF_OK;
    }
    if (k->backend == TF_BACKEND_REF) {
        *ws_bytes = ref_bytes(k, B, Cin, Cout, H, W, ksize, train);
        return TF_OK;
    }
    if (k->backend == TF_BACKEND_CUDA) {
#if TFSWA_CUDA
        char err[512];
        if (tf_cuda_conv_add(k->cuda, B, Cin, Cout, H, W, ksize, bias, train, ws_bytes, err,
                             sizeof err))
            return tf_err(TF_EINTERNAL, "cuda: %s", err);
#endif
        return TF_OK;
    }
    bias = !!bias;
    train = !!train;
    conv_t *c = find_conv(k, B, Cin, Cout, H, W, ksize, bias);
    if (c && train && !c->train) { /* a forward-only shape now also runs backward */
        c->train = 1;
        tf_status s = setup_passes(k, c, PASS_BWD_DATA);
        if (s != TF_OK) {
            c->train = 0;
            return s;
        }
        c->committed = 0;
    }
    if (c) {
        *ws_bytes = conv_bytes(c, train);
        return TF_OK;
    }
    if (k->n_conv == k->cap_conv) {
        size_t cap = k->cap_conv ? 2 * k->cap_conv : 16;
        conv_t *nc = realloc(k->conv, cap * sizeof *nc);
        if (!nc) return tf_err(TF_EINTERNAL, "out of memory (conv shapes)");
        k->conv = nc;
        k->cap_conv = cap;
    }
    c = &k->conv[k->n_conv];
    memset(c, 0, sizeof *c);
    c->B = B, c->Cin = Cin, c->Cout = Cout, c->H = H, c->W = W, c->k = ksize, c->bias = bias;
    c->train = train;
    TF_TRY(setup_passes(k, c, PASS_FWD));
    k->n_conv++;
    *ws_bytes = conv_bytes(c, train);
    return TF_OK;
}

/* The primitives of every pass of c that is set up, once. */
static tf_status conv_commit(tf_kernels *k, conv_t *c) {
    if (c->committed) return TF_OK;
    for (int p = 0; p < N_PASS; p++) TF_TRY(pass_commit(k, &c->pass[p], p == PASS_FWD));
    c->committed = 1;
    return TF_OK;
}

tf_status tf_kernels_commit(tf_kernels *k) {
    /* cuda: descriptors and algorithms were made at registration; nothing to create */
    for (size_t i = 0; i < k->n_conv; i++) TF_TRY(conv_commit(k, &k->conv[i]));
    return TF_OK;
}

/* The conv of a call, its primitives created: registered before, or registered now (a
 * shape the plan did not list, e.g. a shorter last segment: created here, once) when its
 * passes fit the ws_bytes the caller hands over. NULL after recording a failure. */
static conv_t *get_conv(tf_kernels *k, int B, int Cin, int Cout, int H, int W, int ksize, int bias,
                        int train, size_t ws_bytes) {
    conv_t *c = find_conv(k, B, Cin, Cout, H, W, ksize, bias);
    if (!c || c->train < train) {
        size_t ws;
        if (tf_kern_conv2d_add(k, B, Cin, Cout, H, W, ksize, bias, train, &ws) != TF_OK) {
            fail(k, "conv2d registration", dnnl_runtime_error);
            return NULL;
        }
        c = find_conv(k, B, Cin, Cout, H, W, ksize, bias);
    }
    if (!c) return NULL;
    if (conv_bytes(c, train) > ws_bytes) {
        if (k->status == TF_OK) {
            k->status = TF_EINTERNAL;
            snprintf(k->msg, sizeof k->msg,
                     "conv2d B %d Cin %d Cout %d %dx%d k %d: needs %zu workspace bytes, the "
                     "caller has %zu",
                     B, Cin, Cout, H, W, ksize, conv_bytes(c, train), ws_bytes);
        }
        return NULL;
    }
    if (conv_commit(k, c) != TF_OK) {
        fail(k, "primitive creation", dnnl_runtime_error);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ execution */

static int run(tf_kernels *k, dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *args,
               const char *what) {
    dnnl_status_t s = dnnl_primitive_execute(prim, k->stream, n, args);
    if (s == dnnl_success) s = dnnl_stream_wait(k->stream);
    if (s != dnnl_success) {
        fail(k, what, s);
        return -1;
    }
    return 0;
}

/* Run pass p with user pointers uptr[i]. set: accumulated outputs are overwritten instead
 * (written straight into the user's tensor when the layouts agree). */
static void pass_run(tf_kernels *k, pass_t *p, void *const *uptr, unsigned char *ws, int set) {
    dnnl_exec_arg_t args[MAX_OPND + 1];
    int n = 0;
    for (int i = 0; i < p->nop; i++) {
        opnd_t *o = &p->op[i];
        const int via = o->reorder && !(set && o->sum && !o->differs); /* a buffer in ws */
        if (dnnl_memory_set_data_handle(o->um, uptr[i]) != dnnl_success ||
            (via && dnnl_memory_set_data_handle(o->pm, ws + o->off) != dnnl_success)) {
            fail(k, "set handle", dnnl_runtime_error);
            return;
        }
        args[n++] = (dnnl_exec_arg_t){p->arg[i], via ? o->pm : o->um};
    }
    if (p->scratch) {
        if (dnnl_memory_set_data_handle(p->scratch, ws + p->scratch_off) != dnnl_success) {
            fail(k, "set handle", dnnl_runtime_error);
            return;
        }
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    }
    /* inputs into the primitive's layout */
    for (int i = 0; i < p->nop; i++) {
        opnd_t *o = &p->op[i];
        if (!o->reorder || !o->ro || p->arg[i] == DNNL_ARG_DST || p->arg[i] == DNNL_ARG_DIFF_SRC ||
            p->arg[i] == DNNL_ARG_DIFF_WEIGHTS)
            continue;
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, o->um}, {DNNL_ARG_TO, o->pm}};
        if (run(k, o->ro, 2, ra, "reorder")) return;
    }
    if (run(k, p->prim, n, args, "convolution")) return;
    /* outputs back (added where the interface accumulates, unless set) */
    for (int i = 0; i < p->nop; i++) {
        opnd_t *o = &p->op[i];
        if (!o->reorder || !o->ro ||
            !(p->arg[i] == DNNL_ARG_DST || p->arg[i] == DNNL_ARG_DIFF_SRC ||
              p->arg[i] == DNNL_ARG_DIFF_WEIGHTS))
            continue;
        dnnl_primitive_t ro = o->ro;
        if (set && o->sum) {
            if (!o->differs) continue; /* written in place */
            ro = o->ro_set;
        }
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, o->pm}, {DNNL_ARG_TO, o->um}};
        if (run(k, ro, 2, ra, "reorder")) return;
    }
}

/* dbias (Cout) += sum of dout (B, Cout, hw) over (B, hw), in double (as the ref kernel) */
static void bias_grad(float *dbias, const float *dout, int B, int Cout, size_t hw) {
#pragma omp parallel for schedule(static)
    for (int co = 0; co < Cout; co++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *d = dout + ((size_t)b * Cout + co) * hw;
#pragma omp simd reduction(+ : s)
            for (size_t i = 0; i < hw; i++) s += d[i];
        }
        dbias[co] += (float)s;
    }
}

/* run on k->threads OpenMP threads (oneDNN's OpenMP runtime takes omp_get_max_threads) */
static int threads_begin(tf_kernels *k) {
    int saved = omp_get_max_threads();
    if (saved != k->threads) omp_set_num_threads(k->threads);
    return saved;
}
static void threads_end(tf_kernels *k, int saved) {
    if (saved != k->threads) omp_set_num_threads(saved);
}

/* A call on a plan-only object: an internal error (recorded), 1. */
static int plan_only_call(tf_kernels *k) {
    if (!k->plan_only) return 0;
    if (k->status == TF_OK) {
        k->status = TF_EINTERNAL;
        snprintf(k->msg, sizeof k->msg, "conv2d call on a plan-only kernels object (%.200s)",
                 k->desc);
    }
    return 1;
}

/* ref: the workspace the call needs fits ws_bytes (else the error is recorded) */
static int ref_fits(tf_kernels *k, int B, int Cin, int Cout, int H, int W, int ksize, int train,
                    size_t ws_bytes) {
    size_t need = ref_bytes(k, B, Cin, Cout, H, W, ksize, train);
    if (need <= ws_bytes) return 1;
    if (k->status == TF_OK) {
        k->status = TF_EINTERNAL;
        snprintf(k->msg, sizeof k->msg,
                 "conv2d Cin %d Cout %d %dx%d k %d: needs %zu workspace bytes, the caller has %zu",
                 Cin, Cout, H, W, ksize, need, ws_bytes);
    }
    return 0;
}

void tf_kern_conv2d_forward(tf_kernels *k, float *out, const float *inp, const float *weight,
                            const float *bias, int B, int Cin, int Cout, int H, int W, int ksize,
                            void *ws, size_t ws_bytes) {
    if (plan_only_call(k)) return;
    if (k->backend == TF_BACKEND_REF) {
        if (!ref_fits(k, B, Cin, Cout, H, W, ksize, 0, ws_bytes)) return;
        unsigned char *w8 = ws;
        if (k->compute == TF_DT_BF16) {
            ref_ws r = ref_layout(k, B, Cin, Cout, H, W, ksize, 0);
            inp = round_bf16((float *)(void *)(w8 + r.inp), inp, (size_t)B * Cin * H * W);
            weight = round_bf16((float *)(void *)(w8 + r.weight), weight,
                                (size_t)Cout * Cin * ksize * ksize);
        }
        tf_conv2d_forward(out, inp, weight, bias, B, Cin, Cout, H, W, ksize, ws, 0, k->threads);
        return;
    }
    if (k->backend == TF_BACKEND_CUDA) {
#if TFSWA_CUDA
        char err[512];
        if (tf_cuda_conv_forward(k->cuda, out, inp, weight, bias, B, Cin, Cout, H, W, ksize, ws,
                                 ws_bytes, err, sizeof err))
            cuda_fail(k, err);
#endif
        return;
    }
    conv_t *c = get_conv(k, B, Cin, Cout, H, W, ksize, bias != NULL, 0, ws_bytes);
    if (!c) return;
    void *u[4] = {(void *)inp, (void *)weight, out, (void *)bias};
    int saved = threads_begin(k);
    pass_run(k, &c->pass[PASS_FWD], u, ws, 0);
    threads_end(k, saved);
}

void tf_kern_conv2d_backward(tf_kernels *k, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int B,
                             int Cin, int Cout, int H, int W, int ksize, void *ws, size_t ws_bytes,
                             int set_dinp) {
    if (plan_only_call(k)) return;
    if (k->backend == TF_BACKEND_REF) {
        if (!ref_fits(k, B, Cin, Cout, H, W, ksize, 1, ws_bytes)) return;
        if (dinp && set_dinp) memset(dinp, 0, sizeof(float) * B * Cin * H * W);
        unsigned char *w8 = ws;
        const float *dout_c = dout; /* bf16: dbias too sums the rounded dout, as oneDNN's */
        if (k->compute == TF_DT_BF16) {
            ref_ws r = ref_layout(k, B, Cin, Cout, H, W, ksize, 1);
            const size_t hw = (size_t)H * W;
            inp = round_bf16((float *)(void *)(w8 + r.inp), inp, (size_t)B * Cin * hw);
            weight = round_bf16((float *)(void *)(w8 + r.weight), weight,
                                (size_t)Cout * Cin * ksize * ksize);
            dout_c = round_bf16((float *)(void *)(w8 + r.dout), dout, (size_t)B * Cout * hw);
        }
        tf_conv2d_backward(dinp, dweight, dbias, dout_c, inp, weight, B, Cin, Cout, H, W, ksize, ws,
                           0, k->threads);
        return;
    }
    if (k->backend == TF_BACKEND_CUDA) {
#if TFSWA_CUDA
        char err[512];
        if (tf_cuda_conv_backward(k->cuda, dinp, dweight, dbias, dout, inp, weight, B, Cin, Cout, H,
                                  W, ksize, ws, ws_bytes, set_dinp, err, sizeof err))
            cuda_fail(k, err);
#endif
        return;
    }
    /* the shape as registered (with or without bias), else registered now */
    int bias = dbias != NULL;
    if (!find_conv(k, B, Cin, Cout, H, W, ksize, bias) &&
        find_conv(k, B, Cin, Cout, H, W, ksize, !bias))
        bias = !bias;
    conv_t *c = get_conv(k, B, Cin, Cout, H, W, ksize, bias, 1, ws_bytes);
    if (!c) return;
    int saved = threads_begin(k);
    pass_t *pw = &c->pass[PASS_BWD_W];
    void *uw[4] = {(void *)inp, (void *)dout, dweight, NULL};
    pass_run(k, pw, uw, ws, 0);
    if (dbias && k->status == TF_OK) bias_grad(dbias, dout, B, Cout, (size_t)H * W);
    if (dinp && k->status == TF_OK) {
        void *ud[3] = {(void *)dout, (void *)weight, dinp};
        pass_run(k, &c->pass[PASS_BWD_DATA], ud, ws, set_dinp);
    }
    threads_end(k, saved);
}
