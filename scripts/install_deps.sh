#!/usr/bin/env bash
# Installs the Debian 12 packages Kiln builds with. Safe to re-run: does nothing when all are present.
set -euo pipefail
packages=(build-essential cmake pkg-config protobuf-compiler libprotobuf-dev libfmt-dev nlohmann-json3-dev libonnx-dev libonnx-testdata
          libcli11-dev libgtest-dev libgmock-dev libdnnl-dev libzstd-dev python3 python3-venv python3-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "kiln: installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
