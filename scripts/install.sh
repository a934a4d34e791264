#!/bin/sh
# scripts/install.sh: puts the helm-bulk binary into the plugin's bin/ directory.
#
# Helm runs it as the plugin's install and update hook (see plugin.yaml); it
# can also be run by hand: sh "$(helm env HELM_PLUGINS)/<dir>/scripts/install.sh"
#
#  1. Downloads the release archive of plugin.yaml's version for this OS and
#     CPU from the project's GitHub releases (curl or wget), checks its SHA-256
#     against the release's SHA256SUMS (or the SHA256SUMS shipped inside a
#     signed Helm 4 plugin archive, which the signature covers) and unpacks it.
#  2. If no download is possible (no curl/wget, offline, no prebuilt binary
#     for this platform), or HELM_BULK_BUILD_FROM_SOURCE=1, builds it from
#     the plugin's source with `cargo build --release --locked`.
#  3. Otherwise fails, saying what to install.
#
# bin/ is replaced only by a complete, working binary: everything is prepared
# in temporary directories and moved into place at the end. A checksum
# mismatch is an error, never a reason to fall back to something else.
#
# Environment:
#   HELM_PLUGIN_DIR                the plugin directory (set by Helm; default:
#                                  the directory above this script)
#   HELM_BULK_BUILD_FROM_SOURCE=1  skip the download and build with cargo
#   HELM_BULK_DOWNLOAD_URL         base URL of the release assets, instead of
#                                  <repository>/releases/download/v<version>
#                                  (a mirror, or file:///dir in tests)
#   CARGO_TARGET_DIR               cargo's target directory for source builds,
#                                  kept for later builds (default: a temporary
#                                  directory, removed afterwards)
#   CARGO_PROFILE_RELEASE_*        cargo's own overrides of the release profile
#                                  (Cargo.toml: thin LTO, 4 codegen units), read
#                                  by cargo as usual; tests/plugin sets
#                                  CARGO_PROFILE_RELEASE_LTO=false and
#                                  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 to build fast
set -eu

# Cargo.toml's `repository` (tests/plugin/install_script.rs checks that they agree).
REPOSITORY=https://github.com/helm-bulk/helm-bulk

log() { printf 'helm-bulk install: %s\n' "$*" >&2; }
die() {
  printf 'helm-bulk install: error: %s\n' "$*" >&2
  exit 1
}

script_dir=$(cd "$(dirname "$0")" && pwd -P)
plugin_dir=${HELM_PLUGIN_DIR:-$(dirname "$script_dir")}
[ -f "$plugin_dir/plugin.yaml" ] || die "no plugin.yaml in $plugin_dir (set HELM_PLUGIN_DIR)"
plugin_dir=$(cd "$plugin_dir" && pwd -P)

version=$(sed -n 's/^version:[[:space:]]*["'\'']\{0,1\}\([0-9A-Za-z.+-]*\)["'\'']\{0,1\}[[:space:]]*$/\1/p' \
  "$plugin_dir/plugin.yaml" | head -n 1)
[ -n "$version" ] || die "cannot read the version from $plugin_dir/plugin.yaml"

# --- platform ----------------------------------------------------------------

os=$(uname -s 2>/dev/null || echo unknown)
arch=$(uname -m 2>/dev/null || echo unknown)
exe=
case $os in
  MINGW* | MSYS* | CYGWIN* | Windows_NT) exe=.exe ;;
esac

# The release target triple for this OS and CPU, empty when none is published.
target=
case $os/$arch in
  Linux/x86_64 | Linux/amd64) target=x86_64-unknown-linux-musl ;;
  Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-musl ;;
  Darwin/x86_64) target=x86_64-apple-darwin ;;
  Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
  MINGW*/x86_64 | MSYS*/x86_64 | CYGWIN*/x86_64 | Windows_NT/x86_64) target=x86_64-pc-windows-msvc ;;
  MINGW*/amd64 | MSYS*/amd64 | CYGWIN*/amd64 | Windows_NT/amd64) target=x86_64-pc-windows-msvc ;;
esac

# --- temporary state, removed on exit ------------------------------------------

tmp=
stage=
old=
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  [ -z "$tmp" ] || rm -rf "$tmp"
  [ -z "$stage" ] || rm -rf "$stage"
  [ -z "$old" ] || rm -rf "$old"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/helm-bulk-install.XXXXXX") || die "cannot create a temporary directory"

# install_binary FILE: checks that FILE runs, then makes it bin/helm-bulk.
# The new bin/ is assembled next to the old one and renamed into place.
install_binary() {
  stage=$(mktemp -d "$plugin_dir/.bin.new.XXXXXX") || die "cannot write to $plugin_dir"
  chmod 755 "$stage" || die "cannot chmod $stage"
  cp "$1" "$stage/helm-bulk$exe" || die "cannot copy the binary into $stage"
  chmod 755 "$stage/helm-bulk$exe" || die "cannot make $stage/helm-bulk$exe executable"
  reported=$("$stage/helm-bulk$exe" --version 2>/dev/null) || die "the new binary does not run: $1"
  case $reported in
    *" $version") ;;
    *) log "warning: the binary reports '$reported', plugin.yaml says $version" ;;
  esac
  if [ -e "$plugin_dir/bin" ] || [ -L "$plugin_dir/bin" ]; then
    old=$(mktemp -d "$plugin_dir/.bin.old.XXXXXX") || die "cannot write to $plugin_dir"
    mv "$plugin_dir/bin" "$old/" || die "cannot move the old $plugin_dir/bin aside"
  fi
  mv "$stage" "$plugin_dir/bin" || die "cannot move the new binary into $plugin_dir/bin"
  stage=
  log "installed $plugin_dir/bin/helm-bulk$exe ($reported)"
}

# --- download ----------------------------------------------------------------

# fetch URL FILE: 0 on success; 1 on failure; 2 when there is no download tool.
fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 --connect-timeout 20 -o "$2" "$1" || return 1
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 20 -t 3 -O "$2" "$1" || return 1
  else
    return 2
  fi
}

# sha256 FILE: prints the file's SHA-256 in hex; fails without a tool for it.
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sum=$(sha256sum "$1") || return 1
  elif command -v shasum >/dev/null 2>&1; then
    sum=$(shasum -a 256 "$1") || return 1
  elif command -v openssl >/dev/null 2>&1; then
    sum=$(openssl dgst -sha256 -r "$1") || return 1
  else
    return 1
  fi
  printf '%s\n' "${sum%% *}"
}

# download: installs the release binary. Returns 1 when that is not possible
# (then building from source is the fallback); dies on a bad download.
why_no_download=
download() {
  if [ -z "$target" ]; then
    why_no_download="no prebuilt binary for $os/$arch"
    return 1
  fi
  base=${HELM_BULK_DOWNLOAD_URL:-$REPOSITORY/releases/download/v$version}
  base=${base%/}
  asset=helm-bulk-$version-$target.tar.gz
  log "downloading $base/$asset"
  status=0
  fetch "$base/$asset" "$tmp/$asset" || status=$?
  case $status in
    0) ;;
    2)
      why_no_download="neither curl nor wget is installed"
      return 1
      ;;
    *)
      why_no_download="could not download $base/$asset"
      return 1
      ;;
  esac
  if [ -f "$plugin_dir/SHA256SUMS" ]; then
    sums=$plugin_dir/SHA256SUMS
  else
    sums=$tmp/SHA256SUMS
    fetch "$base/SHA256SUMS" "$sums" || die "downloaded $asset but not $base/SHA256SUMS to check it against"
  fi
  expected=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1; exit }' "$sums") \
    || die "cannot read $sums"
  [ -n "$expected" ] || die "$sums lists no checksum for $asset"
  actual=$(sha256 "$tmp/$asset") \
    || die "cannot check the download: install sha256sum (coreutils), shasum or openssl"
  [ "$actual" = "$expected" ] \
    || die "SHA-256 mismatch for $asset: expected $expected, got $actual; not installing it"
  log "SHA-256 verified ($actual)"
  mkdir "$tmp/unpack" || die "cannot create $tmp/unpack"
  tar -xzf "$tmp/$asset" -C "$tmp/unpack" || die "cannot unpack $asset"
  binary=$tmp/unpack/helm-bulk-$version-$target/helm-bulk$exe
  [ -f "$binary" ] || die "$asset holds no helm-bulk-$version-$target/helm-bulk$exe"
  install_binary "$binary"
}

# --- build from source -------------------------------------------------------

# build: builds and installs from source. Returns 1 when that is not possible.
why_no_build=
build() {
  if [ ! -f "$plugin_dir/Cargo.toml" ]; then
    why_no_build="$plugin_dir holds no source to build (install the plugin from the git repository for that)"
    return 1
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    why_no_build="cargo is not installed"
    return 1
  fi
  target_dir=${CARGO_TARGET_DIR:-$tmp/target}
  case $target_dir in
    /* | [A-Za-z]:*) ;;
    *) target_dir=$(pwd -P)/$target_dir ;;
  esac
  log "building helm-bulk $version from source with cargo (this takes a few minutes)"
  (cd "$plugin_dir" && CARGO_TARGET_DIR=$target_dir cargo build --release --locked) \
    || die "cargo build --release --locked failed in $plugin_dir (see above)"
  install_binary "$target_dir/release/helm-bulk$exe"
}

# --- main --------------------------------------------------------------------

if [ "${HELM_BULK_BUILD_FROM_SOURCE:-}" = 1 ]; then
  log "HELM_BULK_BUILD_FROM_SOURCE=1: building from source"
  build || die "HELM_BULK_BUILD_FROM_SOURCE=1, but $why_no_build. Install Rust (https://rustup.rs) or unset HELM_BULK_BUILD_FROM_SOURCE to download a release binary."
  exit 0
fi

if download; then
  exit 0
fi
log "$why_no_download; trying to build from source instead"
if build; then
  exit 0
fi
die "could not install helm-bulk $version: $why_no_download, and $why_no_build.
  Either make the download possible (install curl or wget and allow access to
  ${HELM_BULK_DOWNLOAD_URL:-$REPOSITORY/releases}), or install Rust
  (https://rustup.rs) so that the plugin can be built with cargo; then run
  sh \"$plugin_dir/scripts/install.sh\" (or reinstall the plugin)."
