#!/usr/bin/env bash
# The arm64 half of the determinism matrix (docs/determinism.md): cross-compiles `vouch` for
# aarch64 with Debian's Rust toolchain, then runs crates/cli/tests/kernel_families.rs's arm64
# tests, which require exact-fused/1 under qemu-aarch64 as a Cortex-A72 (NEON), a Neoverse-N1
# (NEON + dot product), an A64FX (SVE, 512-bit vectors) and qemu's `max` CPU (SVE2), at 1 and 2
# threads, for a row alone and inside a batch, to give the output commitments and trace roots
# this x86_64 machine gives, on every fixture model.
# Usage: scripts/arm64_matrix.sh [--install] [--engine-tests]   (--install needs root)
# The aarch64 build goes to target/arm64 (its own rustc; it would otherwise invalidate the
# host build's cache). About 15 minutes on 2 cores from cold, most of it the cross build.
#
# The aarch64 binaries are linked statically (+crt-static): under Debian's qemu-user 7.2 a
# dynamically linked aarch64 program hangs in glibc's pthread_create (a three-line C program
# that starts one thread does too), so a dynamic `vouch` could only run single-threaded.
#
# With --engine-tests it also runs crates/engine/tests/exact_fused.rs built for aarch64 on each
# CPU (a second cross build of the engine with its test dependencies: 23 minutes in all).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }
TARGET=aarch64-unknown-linux-gnu
ARM_DIR="${VOUCH_ARM64_TARGET_DIR:-target/arm64}"
SYSROOT=/usr/aarch64-linux-gnu

install=0; engine_tests=0
for arg in "$@"; do
  case "$arg" in
    --install) install=1 ;;
    --engine-tests) engine_tests=1 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done

if [ $install = 1 ]; then
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
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    /usr/bin/cargo "$@" --release --target $TARGET
}

step "Cross build ($(/usr/bin/rustc --version))"
cross build -p vouch-cli
if [ $engine_tests = 1 ]; then
  # The test binary's path, from cargo's own report of what it built.
  test_bin=$(cross test -p vouch-engine --test exact_fused --no-run --message-format=json |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "exact_fused" and m.get("executable"):
        print(m["executable"])')
  [ -x "$test_bin" ] || { echo "the exact_fused test binary was not built" >&2; exit 1; }
  for cpu in cortex-a72 neoverse-n1 a64fx max; do
    step "exact_fused.rs under qemu-aarch64 -cpu $cpu"
    qemu-aarch64 -cpu "$cpu" "$test_bin" --test-threads 1 -q
  done
fi

step "Kernel families: aarch64 CPUs against this machine"
VOUCH_AARCH64_VOUCH="$PWD/$ARM_DIR/$TARGET/release/vouch" VOUCH_REQUIRE_AARCH64=1 \
  cargo test -p vouch-cli --test kernel_families -- arm64 --test-threads 1
echo "arm64 matrix passed: cortex-a72, neoverse-n1, a64fx, max"
