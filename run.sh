#!/usr/bin/env bash
# TinyVMI's one entry point on a fresh Debian 12 machine:
#   ./run.sh demo   boot a real Linux guest under QEMU and introspect it
#   ./run.sh test   build everything and run the whole test suite
#   ./run.sh deps   only install the Debian packages the project needs
# It installs what is missing (apt-get; needs root or sudo), then runs make.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
    make gcc libc6-dev binutils          # build
    clang libclang-rt-14-dev             # fuzz targets (libFuzzer)
    python3                              # test runner, guest lab
    qemu-system-x86 qemu-system-arm qemu-utils  # the guest lab (x86, ARM)
    busybox-static cpio gzip xz-utils zstd kmod  # guest initramfs
    liblzma-dev zlib1g-dev libzstd-dev liblz4-dev  # .xz profiles, vmlinuz
    libdw-dev                            # DWARF profiles (tinyvmi profile)
    libxen-dev                           # the Xen driver's headers (Xen's
                                         # libraries are loaded at run time)
    pkgconf ca-certificates
)

deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "run.sh: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

case "${1:-}" in
deps) deps ;;
demo) deps; exec make -j"$(nproc)" demo ;;
test) deps; make -j"$(nproc)" all; exec make -j"$(nproc)" test ;;
*)
    echo "usage: ./run.sh demo|test|deps" >&2
    exit 2
    ;;
esac
