#!/usr/bin/env bash
# Builds helm from helm.sh/helm/v3 at the version pinned in hack/tools/helm/go.mod and prints
# the binary's path. Reuses an earlier build.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mod="$REPO_ROOT/hack/tools/helm"
version=$(module_version "$mod/go.mod" helm.sh/helm/v3)
[ -n "$version" ] || die "cannot read the helm version from $mod/go.mod"
# As helm's own Makefile does, the Kubernetes version `helm template` and `helm lint` assume
# without a cluster is the one of the client-go helm is built with; built without it, helm
# assumes v1.20.0, which the chart's kubeVersion (>= 1.31) refuses. client-go v0.N is
# Kubernetes 1.N.
client_go=$(module_version "$mod/go.mod" k8s.io/client-go)
k8s_minor=$(echo "$client_go" | cut -d. -f2)
[ -n "$k8s_minor" ] || die "cannot read the client-go version from $mod/go.mod"
dest="$CACHE_DIR/helm/$version-k8s1.$k8s_minor/helm"
if [ -x "$dest" ]; then
  echo "$dest"
  exit 0
fi
mkdir -p "$(dirname "$dest")"
log "building helm $version"
# internal/version.version is what `helm version` prints; the default is only "v3.x".
(cd "$mod" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor" \
  -o "$dest.tmp" helm.sh/helm/v3/cmd/helm)
mv "$dest.tmp" "$dest"
echo "$dest"
