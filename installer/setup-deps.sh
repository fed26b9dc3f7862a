#!/usr/bin/env bash
# Installs every build and runtime dependency of AttnLab from Debian packages.
# Idempotent and non-interactive: packages already present are skipped.
# Usage: installer/setup-deps.sh   (as root, or with sudo available)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # Qt 6: widgets, OpenGL widgets, SVG, Charts, Test (QtTest ships in qt6-base-dev)
  qt6-base-dev qt6-base-dev-tools libqt6opengl6-dev qt6-svg-dev
  qt6-charts-dev qt6-qpa-plugins libgl-dev
  # numerics, JSON, ImGui, SentencePiece
  libeigen3-dev nlohmann-json3-dev libimgui-dev libsentencepiece-dev sentencepiece
  # headless GUI tests and screenshots
  xvfb xauth xdotool libgl1-mesa-dri mesa-utils imagemagick fonts-dejavu-core
  # data for the translation model (BEOLINGUS German-English dictionary)
  trans-de-en
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "setup-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup-deps: done"
