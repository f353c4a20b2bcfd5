#!/usr/bin/python3
"""Print a .cu file with every kernel launch `name<<<grid, block[, shmem[, stream]]>>>(args);`
rewritten as `{ emu_run(dim3(grid), dim3(block), [=] { name(args); }); }` for the CPU emulation
of tests/gpu/emu/cuda_runtime.h. A kernel whose threads never meet (no __syncthreads, warp
shuffle or __shared__ in it or in a __device__ function it calls, transitively) is launched
with emu_run_seq instead: its threads run one after another on one OS thread, which is what
any schedule of independent threads may do, and is much faster to emulate.
Usage: launch2emu.py FILE.cu > FILE_emu.cpp"""
import re
import sys

LAUNCH = re.compile(r"(\w+)<<<(.*?)>>>\((.*?)\);", re.S)


def split_top(s):
    """s split at the commas outside parentheses"""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


SYNC = re.compile(r"__syncthreads|__shfl|__shared__")
FUNC = re.compile(r"(?:__global__|__device__)[^;{}]*?\b(\w+)\s*\(")
NAME = re.compile(r"\b(\w+)\s*\(")


def bodies(src):
    """name -> body text of every __global__ / __device__ function defined in src"""
    out = {}
    for m in FUNC.finditer(src):
        name, end = m.group(1), m.end()
        if name == "__launch_bounds__":  # the name follows its (...)
            n = NAME.search(src, src.find(")", end) + 1)
            name, end = n.group(1), n.end()
        i = src.find("{", end)
        if i < 0 or ";" in src[end:i]:
            continue  # a declaration
        depth, j = 0, i
        while j < len(src):
            depth += {"{": 1, "}": -1}.get(src[j], 0)
            if depth == 0:
                break
            j += 1
        out[name] = out.get(name, "") + src[i:j + 1]
    return out


def syncing(src):
    """names of the functions whose threads may meet (directly or through a callee)"""
    b = bodies(src)
    sync = {n for n, t in b.items() if SYNC.search(t)}
    grew = True
    while grew:
        grew = False
        for n, t in b.items():
            if n not in sync and any(re.search(rf"\b{s}\s*[(<]", t) for s in sync):
                sync.add(n)
                grew = True
    return sync


def rewriter(sync):
    def rewrite(m):
        name, cfg, args = m.group(1), split_top(m.group(2)), m.group(3)
        used = "".join(f" (void)({p.strip()});" for p in cfg[2:])  # shmem, stream: unused
        run = "emu_run" if name in sync else "emu_run_seq"
        # a block: the launch may be the body of an unbraced if
        return f"{{ {run}(dim3({cfg[0]}), dim3({cfg[1]}), [=] {{ {name}({args}); }});{used} }}"
    return rewrite


def main():
    src = open(sys.argv[1]).read()
    out, n = LAUNCH.subn(rewriter(syncing(src)), src)
    if n == 0:
        sys.exit(f"launch2emu: no kernel launch in {sys.argv[1]}")
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
