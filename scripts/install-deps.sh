#!/usr/bin/env bash
# Installs the Debian packages troupe needs. Idempotent: skips what is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libtbb-dev libboost-dev libboost-stacktrace-dev
  libyaml-cpp-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libcli11-dev
  libssl-dev libgtest-dev libgmock-dev libbenchmark-dev libconcurrentqueue-dev
  python3 python3-joblib clang-format parallel
  libopenmpi-dev openmpi-bin python3-mpi4py
  file lintian
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "troupe: installing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "troupe: missing Debian packages (${missing[*]}); run this script as root or install sudo" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
