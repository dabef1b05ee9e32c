#!/usr/bin/env bash
# Installs what swift-detr needs to build and run, and makes it visible to SwiftPM.
#
#   1. libtorch, from the first of: $LIBTORCH (a folder with include/ and lib/, e.g. a CUDA build);
#      the torch wheel this machine ships ($TORCH_WHEEL, or a torch-*+cpu-*.whl under /opt/wheels);
#      the torch wheel from PyPI (pip download). Only include/ and lib/ are unpacked: no Python needed.
#   2. the CTorch shim (Shim/), built with CMake against that libtorch into libctorch.so.
#   3. a pkg-config file (ctorch.pc) and, as root, a loader entry (ldconfig), so that plain
#      `swift build`, `swift test` and the built `detr` work from any folder with no variables set.
#
# Idempotent: a second run checks stamps and rebuilds the shim incrementally, in seconds.
# Environment: LIBTORCH, TORCH_WHEEL, TORCH_VERSION (for PyPI, default below), SWIFT_DETR_PREFIX
# (default /usr/local as root, else ~/.local).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
torch_version_default=2.13.0
say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then prefix=${SWIFT_DETR_PREFIX:-/usr/local}; else prefix=${SWIFT_DETR_PREFIX:-$HOME/.local}; fi
home_dir=$prefix/lib/swift-detr
mkdir -p "$home_dir" "$prefix/lib/pkgconfig" || die "cannot write to $prefix: set SWIFT_DETR_PREFIX to a writable folder"

need() { command -v "$1" >/dev/null 2>&1; }
install_debian_packages() {
  local missing=()
  need cmake || missing+=(cmake)
  need ninja || missing+=(ninja-build)
  need pkg-config || missing+=(pkg-config)
  need unzip || missing+=(unzip)
  need c++ || missing+=(g++)
  dpkg -s libjpeg62-turbo-dev >/dev/null 2>&1 || dpkg -s libjpeg-turbo8-dev >/dev/null 2>&1 || missing+=(libjpeg-dev)
  dpkg -s libpng-dev >/dev/null 2>&1 || missing+=(libpng-dev)
  dpkg -s libcairo2-dev >/dev/null 2>&1 || missing+=(libcairo2-dev)
  dpkg -s libgloo-dev >/dev/null 2>&1 || missing+=(libgloo-dev)
  dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && need apt-get; then
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  else
    die "missing tools: ${missing[*]}; install them with your package manager and run this again"
  fi
}
install_debian_packages

check_libtorch() { # a usable libtorch has headers and the three core libraries
  [ -f "$1/include/ATen/ATen.h" ] && [ -f "$1/include/torch/csrc/api/include/torch/version.h" ] \
    && [ -e "$1/lib/libc10.so" ] && [ -e "$1/lib/libtorch_cpu.so" ] && [ -e "$1/lib/libtorch.so" ]
}

unpack_wheel() { # $1 wheel, $2 destination
  local wheel=$1 dest=$2 tmp
  tmp=$(mktemp -d "$home_dir/.unpack.XXXXXX")
  say "unpacking libtorch from $(basename "$wheel")"
  unzip -q -o "$wheel" 'torch/include/*' 'torch/lib/*' -d "$tmp" || { rm -rf "$tmp"; die "cannot unpack $wheel: is it a torch wheel?"; }
  rm -rf "$dest"
  mkdir -p "$dest"
  mv "$tmp/torch/include" "$tmp/torch/lib" "$dest/"
  rm -rf "$tmp"
  basename "$wheel" > "$dest/.from-wheel"
}

if [ -n "${LIBTORCH:-}" ]; then
  libtorch=$(cd "$LIBTORCH" 2>/dev/null && pwd) || die "LIBTORCH=$LIBTORCH is not a folder"
  check_libtorch "$libtorch" || die "LIBTORCH=$LIBTORCH has no include/ATen/ATen.h or lib/libtorch_cpu.so: point it at an unpacked libtorch (the folder with include/ and lib/)"
  say "using LIBTORCH=$libtorch"
else
  libtorch=$home_dir/libtorch
  wheel=${TORCH_WHEEL:-$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | sort | tail -n 1 || true)}
  if [ -n "$wheel" ]; then
    [ -f "$wheel" ] || die "TORCH_WHEEL=$wheel does not exist"
    if ! check_libtorch "$libtorch" || [ "$(cat "$libtorch/.from-wheel" 2>/dev/null)" != "$(basename "$wheel")" ]; then
      unpack_wheel "$wheel" "$libtorch"
    fi
  elif ! check_libtorch "$libtorch" || [ ! -f "$libtorch/.from-wheel" ]; then
    need python3 || die "no libtorch found: set LIBTORCH to an unpacked libtorch, or TORCH_WHEEL to a torch wheel"
    cache=$home_dir/wheels
    mkdir -p "$cache"
    version=${TORCH_VERSION:-$torch_version_default}
    say "downloading torch==$version from PyPI (no machine wheel under /opt/wheels)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$cache" "torch==$version" \
      || die "pip could not download torch==$version; set LIBTORCH or TORCH_WHEEL instead"
    unpack_wheel "$(ls "$cache"/torch-"$version"*.whl | tail -n 1)" "$libtorch"
  fi
  check_libtorch "$libtorch" || die "the unpacked libtorch in $libtorch is incomplete; delete it and run this again"
fi

# The shim: configure once, then incremental builds.
build=$root/.build-shim
generator=()
need ninja && generator=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q "^LIBTORCH:PATH=$libtorch\$" "$build/CMakeCache.txt"; then
  rm -rf "$build"
  cmake -S "$root/Shim" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DLIBTORCH:PATH="$libtorch" \
    -DCMAKE_INSTALL_PREFIX="$home_dir" >/dev/null || die "cmake could not configure the shim (see above)"
fi
cmake --build "$build" --parallel "$(nproc)" >/dev/null || { cmake --build "$build" 2>&1 | tail -40; die "the shim did not build"; }
# Installed through a staging folder and a rename, never written in place: a `detr` running meanwhile
# keeps the library it mapped (overwriting a mapped library can crash it).
rm -rf "$build/staging"
cmake --install "$build" --prefix "$build/staging" >/dev/null
mkdir -p "$home_dir/lib"
for file in "$build/staging/lib/"*; do
  target=$home_dir/lib/$(basename "$file")
  if ! cmp -s "$file" "$target"; then cp -p "$file" "$target.new" && mv -f "$target.new" "$target"; fi
done

cat > "$prefix/lib/pkgconfig/ctorch.pc" <<PC
# Written by swift-detr's Scripts/setup.sh
libdir=$home_dir/lib
includedir=$root/Sources/CTorch

Name: ctorch
Description: swift-detr's C ABI over libtorch ($(cat "$libtorch/.from-wheel" 2>/dev/null || echo "$libtorch"))
Version: 1
Libs: -L\${libdir} -lctorch
Cflags: -I\${includedir}
PC

if [ "$(id -u)" = 0 ] && [ -d /etc/ld.so.conf.d ]; then
  conf=/etc/ld.so.conf.d/swift-detr.conf
  if [ "$(cat "$conf" 2>/dev/null)" != "$home_dir/lib" ]; then echo "$home_dir/lib" > "$conf"; fi
  ldconfig
else
  case ":${PKG_CONFIG_PATH:-}:" in *":$prefix/lib/pkgconfig:"*) ;; *) say "add to your shell profile: export PKG_CONFIG_PATH=$prefix/lib/pkgconfig:\$PKG_CONFIG_PATH";; esac
  case ":${LD_LIBRARY_PATH:-}:" in *":$home_dir/lib:"*) ;; *) say "add to your shell profile: export LD_LIBRARY_PATH=$home_dir/lib:\$LD_LIBRARY_PATH";; esac
fi

"$build/ctorch_smoke" >/dev/null || die "the shim's smoke test failed: libtorch in $libtorch does not work on this machine"
say "ready: $("$build/ctorch_smoke"), shim at $home_dir/lib"
