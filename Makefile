# tcpgateway — build, test and run everything from a fresh clone.
# Heavy components are fetched or built by hack/ scripts into $(CACHE_DIR), shared by every
# clone on the machine; bin/ holds our own binaries and links into the cache.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

CACHE_DIR ?= $(or $(TCPGW_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tcpgateway)
export TCPGW_CACHE_DIR := $(CACHE_DIR)

GO        ?= go
BIN       := $(CURDIR)/bin
TOOL      := hack/tool.sh
GO_PKGS   := ./...
# The Go modules: this one and the Go SDK's (sdk/go: apps that use it depend on protobuf only).
# ./... does not enter a nested module, so each is vetted, checked and tested from its directory.
GO_MODS   := . sdk/go
# The fuzz targets run for this long each within `make test`: enough to explore new splits of
# the seed corpus, short enough for CI.
FUZZTIME  ?= 10s

# Files written by `make generate manifests`; committed, and checked to be up to date.
GENERATED := '*.pb.go' '*zz_generated*' config/crd config/rbac charts/tcpgateway/files/crds sdk/ts/src/gen

# Build tags of test files that make test does not run (whole-system tests, benchmarks): lint
# still compiles and checks them, so that they do not rot.
LINT_TAGS := e2e,bench

# Same flags as the Dockerfile's build stage (a test keeps them equal).
BUILD_FLAGS := -trimpath -ldflags "-s -w"

# Deployment, as kubebuilder projects name it: IMG is the image docker-build builds and
# docker-push pushes, and the one deploy installs the chart with.
IMG            ?= ghcr.io/tcpgateway/tcpgateway:latest
CONTAINER_TOOL ?= docker
# kubectl and helm default to the pinned builds of hack/k8s.sh and hack/helm.sh; they act on
# the current kubeconfig's cluster ($$KUBECONFIG or ~/.kube/config).
KUBECTL        ?= $$(hack/k8s.sh)/kubectl
HELM           ?= $$(hack/helm.sh)
NAMESPACE      ?= tcpgateway-system
RELEASE        ?= tcpgateway
# run: the manager's endpoints on loopback only (the defaults listen on every interface).
RUN_ARGS       ?= -metrics-bind-address=127.0.0.1:8080 -health-probe-bind-address=127.0.0.1:8081
ignore-not-found ?= false

.PHONY: help
help: ## Show the targets.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

##@ Build

.PHONY: build
build: ## Build manager, gateway and tcpgwctl into bin/.
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $(BIN)/ ./cmd/...

.PHONY: generate
generate: ## Generate deepcopy code and protobuf Go and TypeScript code.
	@cg=$$($(TOOL) controller-gen); \
	if ls api/*/ >/dev/null 2>&1; then $$cg object:headerFile=hack/boilerplate.go.txt paths=./api/...; fi
	@if [ -n "$$(find . -name '*.proto' -not -path './bin/*' -print -quit)" ]; then \
		PATH=$$(dirname $$($(TOOL) protoc-gen-go)):$$PATH $$($(TOOL) buf) generate; fi
	hack/ts.sh generate

.PHONY: manifests
manifests: ## Generate the CRD and RBAC manifests from the API types and RBAC markers.
	@if ls api/*/ >/dev/null 2>&1; then \
		$$($(TOOL) controller-gen) rbac:roleName=manager-role crd webhook paths=./... \
			output:crd:artifacts:config=config/crd/bases; fi
	@if [ -d charts/tcpgateway/files/crds ]; then cp config/crd/bases/*.yaml charts/tcpgateway/files/crds/; fi

.PHONY: verify-generated
verify-generated: generate manifests ## Fail when committed generated files differ from a fresh generation.
	@changed=$$(git diff --name-only -- $(GENERATED); git ls-files --others --exclude-standard -- $(GENERATED)); \
	if [ -n "$$changed" ]; then echo "generated files are stale; run 'make generate manifests':"; echo "$$changed"; exit 1; fi

##@ Quality

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: ## gofmt check, go vet, staticcheck, buf lint, and tsc + eslint for sdk/ts (all pinned).
	@bad=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	for m in $(GO_MODS); do (cd $$m && $(GO) vet -tags $(LINT_TAGS) $(GO_PKGS)); done
	@sc=$$($(TOOL) staticcheck); for m in $(GO_MODS); do echo "staticcheck in $$m"; (cd $$m && $$sc -tags $(LINT_TAGS) $(GO_PKGS)); done
	$$($(TOOL) buf) lint
	hack/ts.sh lint

##@ Test

.PHONY: test
test: ## Everything: lint, generated-code check, unit, integration (real etcd, kube-apiserver, Kafka, helm) and short fuzzing.
	hack/test.sh all

.PHONY: test-unit
test-unit: ## Unit tests only: no external components.
	for m in $(GO_MODS); do (cd $$m && $(GO) test -short -count=1 $(GO_PKGS)); done

.PHONY: test-java
test-java: ## Build and test the Java SDKs (sdk/java; pinned Maven and dependencies, checked against sdk/java/dependencies.lock). Kafka tests need TCPGW_KAFKA_BOOTSTRAP.
	hack/java.sh test

.PHONY: test-ts
test-ts: ## Build and test the TypeScript SDK (sdk/ts), then run the conformance suite against its driver. Kafka tests use TCPGW_KAFKA_BOOTSTRAP.
	hack/ts.sh test
	hack/ts.sh conformance

.PHONY: test-e2e
test-e2e: ## Whole-system tests.
	hack/test.sh e2e

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME.
	FUZZTIME=$(FUZZTIME) hack/test.sh fuzz

##@ Components

.PHONY: envtest-assets
envtest-assets: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl; link bin/k8s.
	@mkdir -p $(BIN)
	@dir=$$(hack/k8s.sh); ln -sfn "$$dir" $(BIN)/k8s; echo "KUBEBUILDER_ASSETS=$$dir"

.PHONY: helm
helm: ## Build helm; link bin/helm.
	@mkdir -p $(BIN)
	@ln -sfn "$$(hack/helm.sh)" $(BIN)/helm; echo "$(BIN)/helm"

.PHONY: kafka-up
kafka-up: ## Start a single-node Kafka on 127.0.0.1 and print its bootstrap address.
	@hack/kafka.sh start

.PHONY: kafka-down
kafka-down: ## Stop the Kafka started by kafka-up.
	@hack/kafka.sh stop

##@ Deployment

.PHONY: install
install: ## Install the CRDs (config/crd/bases) into the current kubeconfig's cluster.
	$(KUBECTL) apply --server-side --force-conflicts -f config/crd/bases

.PHONY: uninstall
uninstall: ## Remove the CRDs (and with them every TCPGateway) from the current kubeconfig's cluster; ignore-not-found=true to ignore missing ones.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f config/crd/bases

.PHONY: deploy
deploy: ## Install or upgrade the operator with the Helm chart (release RELEASE in NAMESPACE), image IMG, in the current kubeconfig's cluster; the chart adopts a CRD that make install put there.
	@img='$(IMG)'; repo=$${img%:*}; tag=$${img##*:}; \
	if [ "$$repo" = "$$img" ] || [[ $$tag == */* ]]; then repo=$$img; tag=; fi; \
	set -x; $(HELM) upgrade --install $(RELEASE) charts/tcpgateway --namespace $(NAMESPACE) --create-namespace --take-ownership \
		--set image.repository="$$repo" --set image.tag="$$tag"

.PHONY: undeploy
undeploy: ## Uninstall the chart's release (the CRD stays: the chart marks it helm.sh/resource-policy keep; make uninstall removes it).
	$(HELM) uninstall $(RELEASE) --namespace $(NAMESPACE) --ignore-not-found

.PHONY: run
run: ## Run the manager from source against the current kubeconfig's cluster (make install first); RUN_ARGS adds flags.
	$(GO) run ./cmd/manager $(RUN_ARGS)

.PHONY: docker-build
docker-build: ## Build the image IMG from the Dockerfile (manager, gateway and tcpgwctl, built like make build).
	$(CONTAINER_TOOL) build -t $(IMG) -f Dockerfile .

.PHONY: docker-push
docker-push: ## Push the image IMG.
	$(CONTAINER_TOOL) push $(IMG)

##@ Run

.PHONY: demo
demo: ## Start the local system and print how to use it; Ctrl-C tears it down.
	hack/demo.sh

.PHONY: clean
clean: ## Remove build outputs (the component cache stays; rm -rf $(CACHE_DIR) drops it).
	rm -rf $(BIN)
