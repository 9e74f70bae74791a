#!/usr/bin/env bash
# Builds helm from helm.sh/helm/v3 at the version pinned in hack/tools/helm/go.mod and prints
# the binary's path. Reuses an earlier build.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mod="$REPO_ROOT/hack/tools/helm"
version=$(module_version "$mod/go.mod" helm.sh/helm/v3)
[ -n "$version" ] || die "cannot read the helm version from $mod/go.mod"
dest="$CACHE_DIR/helm/$version/helm"
if [ -x "$dest" ]; then
  echo "$dest"
  exit 0
fi
mkdir -p "$(dirname "$dest")"
log "building helm $version"
# internal/version.version is what `helm version` prints; the default is only "v3.x".
(cd "$mod" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
  -o "$dest.tmp" helm.sh/helm/v3/cmd/helm)
mv "$dest.tmp" "$dest"
echo "$dest"
