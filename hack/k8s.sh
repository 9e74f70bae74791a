#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the tests and the local cluster:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from k8s.io/kubernetes
# (hack/tools/k8s) and etcd from go.etcd.io/etcd/server/v3 (hack/tools/etcd), at the versions
# pinned in those modules. Prints the directory holding them, which is what envtest calls
# KUBEBUILDER_ASSETS. Reuses a complete earlier build; never leaves a half-built one behind.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

k8s_mod="$REPO_ROOT/hack/tools/k8s"
etcd_mod="$REPO_ROOT/hack/tools/etcd"
k8s_version=$(module_version "$k8s_mod/go.mod" k8s.io/kubernetes)
etcd_version=$(module_version "$etcd_mod/go.mod" go.etcd.io/etcd/server/v3)
[ -n "$k8s_version" ] && [ -n "$etcd_version" ] || die "cannot read pinned versions from hack/tools/{k8s,etcd}/go.mod"

dest="$CACHE_DIR/k8s/kubernetes-${k8s_version}_etcd-${etcd_version}"
if [ -f "$dest/.complete" ]; then
  echo "$dest"
  exit 0
fi

minor=${k8s_version#v1.}; minor=${minor%%.*}
# version.gitVersion makes `--version` truthful; without it the binaries report v0.0.0.
ldflags="-s -w \
  -X k8s.io/component-base/version.gitVersion=${k8s_version} \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=${minor} \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version}"

mkdir -p "$CACHE_DIR/k8s"
tmp=$(mktemp -d "$CACHE_DIR/k8s/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s)
log "building etcd ${etcd_version} (about 1 min on a cold cache)"
(cd "$etcd_mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl ${k8s_version} (about 10 min on 2 cores on a cold cache)"
(cd "$k8s_mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl)

got=$("$tmp/kube-apiserver" --version)
[ "$got" = "Kubernetes ${k8s_version}" ] || die "kube-apiserver --version printed '$got', want 'Kubernetes ${k8s_version}'"
touch "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "built in $(( $(date +%s) - start ))s into $dest"
echo "$dest"
