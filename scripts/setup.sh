#!/usr/bin/env bash
# Set up a fresh machine: system packages (when missing), then the project virtualenv in .venv.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

# bubblewrap: the sandbox; fonts-noto-cjk: Chinese reports; chromium, poppler-utils: report tests.
SYSTEM_PACKAGES=(bubblewrap fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0)
if [[ "${1:-}" == "--test" ]]; then
  SYSTEM_PACKAGES+=(chromium poppler-utils)
fi

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "setup: please install these Debian packages first: ${missing[*]}" >&2; exit 2
  fi
  echo "setup: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"
# torch/torchvision are pinned exactly in pyproject.toml; pip takes them from local wheels where
# the machine has them.
.venv/bin/pip install -q --disable-pip-version-check -e ".${extras}"
echo "setup: ready (.venv/bin/grader --version: $(.venv/bin/grader --version))"
