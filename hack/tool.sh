#!/usr/bin/env bash
# tool.sh NAME: builds the developer tool NAME (controller-gen, staticcheck, buf, protoc-gen-go)
# at the version pinned in hack/tools/dev/go.mod and prints its path. The cache key is the
# hash of that go.mod, so changing a pin rebuilds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

name=${1:?usage: tool.sh NAME}
mod="$REPO_ROOT/hack/tools/dev"
pkg=$(awk -v n="$name" '$0 ~ ("/cmd/" n "$") {print $NF; exit}' "$mod/go.mod")
[ -n "$pkg" ] || die "no tool '$name' in $mod/go.mod"
key=$(sha256sum "$mod/go.mod" | cut -c1-12)
dest="$CACHE_DIR/tools/$key/$name"
if [ ! -x "$dest" ]; then
  mkdir -p "$(dirname "$dest")"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -o "$dest.tmp" "$pkg")
  mv "$dest.tmp" "$dest"
fi
echo "$dest"
