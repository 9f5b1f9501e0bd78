#!/usr/bin/env bash
# The arm64 half of the determinism matrix (docs/determinism.md): cross-compiles `vouch` for
# aarch64 with Debian's Rust toolchain, then runs crates/cli/tests/kernel_families.rs's arm64
# tests, which require exact-fused/1 under qemu-aarch64 as a Cortex-A72 (NEON), a Neoverse-N1
# (NEON + dot product), an A64FX (SVE, 512-bit vectors) and qemu's `max` CPU (SVE2), at 1 and 2
# threads, for a row alone and inside a batch, to give the output commitments and trace roots
# this x86_64 machine gives, on every fixture model.
# Usage: scripts/arm64_matrix.sh [--install]   (--install: the Debian packages, needs root)
# The aarch64 build goes to target/arm64 (its own rustc; it would otherwise invalidate the
# host build's cache). About 15 minutes on 2 cores from cold, most of it the cross build.
#
# Not run here: crates/engine/tests/exact_fused.rs built for aarch64. Its test binary spins
# under qemu-user 7.2 before the first test body runs (no system call after the test's name is
# printed), while the same engine code through the `vouch` binary runs in seconds; the cause
# is not found yet (docs/determinism.md, known limits).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }
TARGET=aarch64-unknown-linux-gnu
ARM_DIR="${VOUCH_ARM64_TARGET_DIR:-target/arm64}"
SYSROOT=/usr/aarch64-linux-gnu

if [ "${1:-}" = "--install" ]; then
  step "Debian packages: rustc-web, cargo-web, the arm64 std, the cross linker, qemu-user"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ dpkg --add-architecture arm64
  $sudo_ apt-get update -qq
  $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi

missing=()
[ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] || missing+=("rustc-web cargo-web")
[ -d /usr/lib/rustlib/$TARGET ] || missing+=("libstd-rust-web-dev:arm64")
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
[ -d $SYSROOT/lib ] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]} (run $0 --install)" >&2
  exit 2
fi

cross() {
  env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$ARM_DIR" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    /usr/bin/cargo "$@" --release --target $TARGET
}

step "Cross build ($(/usr/bin/rustc --version))"
cross build -p vouch-cli
step "Kernel families: aarch64 CPUs against this machine"
VOUCH_AARCH64_VOUCH="$PWD/$ARM_DIR/$TARGET/release/vouch" VOUCH_REQUIRE_AARCH64=1 \
  cargo test -p vouch-cli --test kernel_families -- arm64 --test-threads 1
echo "arm64 matrix passed: cortex-a72, neoverse-n1, a64fx, max"
