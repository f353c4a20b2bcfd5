#!/bin/sh
# Create (once) the Python environment the museval cross-checks use: build/pyenv, a venv
# with museval from PyPI (numpy and scipy come with it). Prints the path of its python on
# stdout (everything else goes to stderr). Idempotent: a stamp file marks a complete
# environment, so later calls return at once. Needs the network the first time.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/build/pyenv"
stamp="$venv/.tfswa-stamp"
want="museval==0.4.1"

ready() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; }
if ready; then echo "$venv/bin/python"; exit 0; fi

mkdir -p "$root/build"
# Serialise concurrent callers (tests and benches may start together).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$root/build/.pyenv.lock"
  flock 9
  if ready; then echo "$venv/bin/python"; exit 0; fi
fi

# The first python3 on PATH if it can make a venv, else Debian's (python3-venv).
py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  echo "pyenv: no python3 with the venv module (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
echo "pyenv: creating $venv with $(command -v "$py") and pip install $want" >&2
rm -rf "$venv"
"$py" -m venv "$venv" >&2
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$want" >&2; then
  echo "pyenv: 'pip install $want' failed (no network or no PyPI access?); the museval" \
       "cross-checks need it" >&2
  exit 1
fi
"$venv/bin/python" -c 'import importlib.util, numpy, scipy; assert importlib.util.find_spec("museval")' >&2
echo "$want" > "$stamp"
echo "$venv/bin/python"
