#!/usr/bin/env bash
# Installs every build, test and runtime dependency of Sluice from Debian 12's packages.
# Idempotent: when everything is already installed it only checks and returns in about a second.
set -euo pipefail

PACKAGES=(
    build-essential g++ cmake ninja-build ccache pkg-config git
    libpq-dev libpqxx-dev
    libboost1.81-dev
    libsimdjson-dev libfmt-dev libyaml-cpp-dev catch2 libssl-dev
    postgresql-15 postgresql-client-15
    clang libclang-rt-14-dev
    chromium fonts-dejavu-core
    python3
    # tests/sdk: the PowerSync Node SDK test client (node >= 20 and npm; npm ci compiles
    # better-sqlite3 with node-gyp, which needs python3, make and g++ from above)
    nodejs
    # tests/deploy: systemd-analyze verify/security for deploy/sluice.service; objdump, ldd, dpkg -S
    systemd binutils
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

# The machine's nodejs (NodeSource's build) ships npm; Debian's own nodejs needs the npm package.
if ! command -v npm >/dev/null; then
    missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
