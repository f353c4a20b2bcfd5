#!/usr/bin/python3
"""Print a .cu file with every kernel launch `name<<<grid, block[, shmem[, stream]]>>>(args);`
rewritten as `{ emu_run(dim3(grid), dim3(block), [=] { name(args); }); }` for the CPU emulation
of tests/gpu/emu/cuda_runtime.h. Usage: launch2emu.py FILE.cu > FILE_emu.cpp"""
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


def rewrite(m):
    name, cfg, args = m.group(1), split_top(m.group(2)), m.group(3)
    used = "".join(f" (void)({p.strip()});" for p in cfg[2:])  # shmem, stream: unused
    # a block: the launch may be the body of an unbraced if
    return f"{{ emu_run(dim3({cfg[0]}), dim3({cfg[1]}), [=] {{ {name}({args}); }});{used} }}"


def main():
    src = open(sys.argv[1]).read()
    out, n = LAUNCH.subn(rewrite, src)
    if n == 0:
        sys.exit(f"launch2emu: no kernel launch in {sys.argv[1]}")
    sys.stdout.write(out)


main()
