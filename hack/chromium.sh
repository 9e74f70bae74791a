#!/usr/bin/env bash
# Debian's chromium for the browser tests (test/browser), unpacked into the cache and never
# installed into the system: prints the path of an executable that starts it.
#
# The version is the one apt offers now for this Debian release (Debian replaces chromium with
# each security update and keeps no older build to pin). The packages chromium and
# chromium-common, and the libraries they need that this machine lacks, are fetched with
# `apt-get install --download-only` (root: apt's lock) and unpacked with `dpkg -x` into
# $CACHE_DIR/chromium/<version>/root. The printed executable is a small wrapper beside it that
# puts the unpacked libraries on LD_LIBRARY_PATH and execs the browser. Before it is kept, the
# build is checked: every shared library resolves (ldd) and a headless run executes a page's
# script. Reuses a complete earlier build; never leaves a half-built one behind.
#
# Environment: TCPGW_CHROMIUM, when set, is printed as it is (a browser of your own).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ -n "${TCPGW_CHROMIUM:-}" ]; then
  echo "$TCPGW_CHROMIUM"
  exit 0
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "apt-get and dpkg are needed (a Debian machine); or set TCPGW_CHROMIUM"

candidate() { apt-cache policy chromium 2>/dev/null | awk '$1 == "Candidate:" { print $2 }'; }

version=$(candidate)
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  [ "$(id -u)" = 0 ] || die "apt knows no chromium package and only root can run apt-get update; or set TCPGW_CHROMIUM"
  log "apt-get update (apt knows no chromium package yet)"
  apt-get update -q >&2
  version=$(candidate)
fi
[ -n "$version" ] && [ "$version" != "(none)" ] || die "apt offers no chromium package"

base="$CACHE_DIR/chromium"
dest="$base/$version"
if [ -f "$dest/.complete" ]; then
  echo "$dest/chromium"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "fetching chromium $version needs root (apt-get --download-only takes apt's lock); or set TCPGW_CHROMIUM"

mkdir -p "$base"
# One build at a time per cache: parallel test runs wait for the first one's result.
exec 9>"$base/.lock"
flock 9
if [ -f "$dest/.complete" ]; then
  echo "$dest/chromium"
  exit 0
fi

tmp=$(mktemp -d "$base/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/archives/partial" "$tmp/root"

# --reinstall: the two named packages are fetched even where the system has them installed; the
# libraries are fetched only when missing (the ones present are used from the system).
download() {
  # APT::Sandbox::User=root: the cache is root's, where apt's own _apt user cannot write.
  apt-get install -y -q --download-only --reinstall --no-install-recommends \
    -o Dir::Cache::archives="$tmp/archives" -o APT::Sandbox::User=root \
    "chromium=$version" "chromium-common=$version" >&2
}
start=$(date +%s)
log "fetching Debian's chromium $version and the libraries it lacks here into $dest"
if ! download; then
  # The lists may be older than the archive (a security update replaced the version).
  log "download failed: apt-get update, then once more"
  apt-get update -q >&2
  version=$(candidate)
  dest="$base/$version"
  download
fi
for deb in "$tmp"/archives/*.deb; do
  dpkg -x "$deb" "$tmp/root"
done
rm -rf "$tmp/archives"
exe="$tmp/root/usr/lib/chromium/chromium"
[ -x "$exe" ] || die "no usr/lib/chromium/chromium in the unpacked packages"

# Every folder of the unpacked tree that holds shared libraries (pulseaudio keeps its own).
libdirs=$(cd "$tmp/root" && find . -name '*.so*' \( -type f -o -type l \) -printf '%h\n' | sed 's:^\./::' | sort -u)
{
  echo '#!/bin/sh'
  echo "# Written by hack/chromium.sh: Debian's chromium $version unpacked beside this file, run"
  echo '# with the libraries unpacked with it (the ones this machine lacks) on LD_LIBRARY_PATH.'
  echo 'here=$(dirname "$(readlink -f "$0")")'
  printf 'LD_LIBRARY_PATH='
  sep=''
  for d in $libdirs; do
    printf '%s"$here/root/%s"' "$sep" "$d"
    sep=':'
  done
  echo '${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}'
  echo 'export LD_LIBRARY_PATH'
  echo 'exec "$here/root/usr/lib/chromium/chromium" "$@"'
} >"$tmp/chromium"
chmod +x "$tmp/chromium"

# Checks: every library resolves, and a headless run executes a page's script.
check_path=$(for d in $libdirs; do printf '%s:' "$tmp/root/$d"; done)
missing=$(LD_LIBRARY_PATH="${check_path%:}" ldd "$exe" | grep 'not found' || true)
[ -z "$missing" ] || die "libraries still missing after unpacking:
$missing"
page="$tmp/check.html"
echo '<!doctype html><body><script>document.body.textContent = "chromium-" + (40 + 2);</script></body>' >"$page"
out=$(timeout 120 "$tmp/chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$tmp/profile" --dump-dom "file://$page" 2>"$tmp/check.log") || true
if ! grep -q 'chromium-42' <<<"$out"; then
  die "headless chromium did not run the check page's script:
$(tail -n 20 "$tmp/check.log")"
fi
rm -rf "$tmp/profile" "$tmp/check.html" "$tmp/check.log"

touch "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "chromium $version ready in $(( $(date +%s) - start ))s: $dest/chromium"
echo "$dest/chromium"
