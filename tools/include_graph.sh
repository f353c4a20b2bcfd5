#!/bin/sh
# Include graph of the library's parts (shared/DESIGN.md "Parts"): prints every arrow
# "part -> part (count)" between two parts of src/ (part of the including file -> part of
# the included header; include/tfswa.h counts as infer, whose api.c implements it) and
# exits 1 when one is forbidden:
#   - upward or sideways against the order  cuda < util < audio,dsp,nn,metrics,optim
#     < data,model < train,infer < cli  (an arrow must go to a strictly lower level; cuda is
#     the C face of the CUDA code, cuda/cuda_backend.h, which includes nothing of ours);
#   - train <-> infer (what both need lives below them);
#   - model -> util/config.h (the model's only input is tf_model_config).
# Usage: tools/include_graph.sh [SRC_DIR]   (default: src next to this script)
set -eu
src=${1:-$(dirname "$0")/../src}
cd "$src"
grep -H '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' */*.c */*.h |
    sed 's|^\([a-z_]*\)/[^:]*:[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*|\1 \2|' |
    awk '
    function level(p) {
        if (p == "cuda") return 0
        if (p == "util") return 1
        if (p == "audio" || p == "dsp" || p == "nn" || p == "metrics" || p == "optim") return 2
        if (p == "data" || p == "model") return 3
        if (p == "train" || p == "infer") return 4
        if (p == "cli") return 5
        return -1
    }
    {
        from = $1; hdr = $2
        if (hdr == "tfswa.h") to = "infer"
        else if (index(hdr, "/") > 0) to = substr(hdr, 1, index(hdr, "/") - 1)
        else next                      # a header next to the file (none today)
        if (from == "model" && hdr == "util/config.h") {
            printf "FORBIDDEN: model includes util/config.h\n"; bad = 1
        }
        if (from == to) next
        n[from " -> " to]++
        lf = level(from); lt = level(to)
        if (lf < 0 || lt < 0) { printf "FORBIDDEN: unknown part in %s -> %s\n", from, hdr; bad = 1 }
        else if ((from == "train" && to == "infer") || (from == "infer" && to == "train")) {
            printf "FORBIDDEN: %s -> %s (%s)\n", from, to, hdr; bad = 1
        } else if (lt >= lf) {
            printf "FORBIDDEN: %s -> %s (%s): not below it in the order\n", from, to, hdr; bad = 1
        }
    }
    END {
        for (k in n) printf "%s (%d)\n", k, n[k] | "sort"
        close("sort")
        exit bad
    }'
