# Mobius Secrets. `make run` serves the API on the embedded store;
# `make test` runs every test, including those against the local AWS
# stand-ins, which it starts and stops itself.

GO        ?= go
BIN       ?= bin
ADDR      ?= 127.0.0.1:8080
export GOFLAGS := -buildvcs=false
# Packages whose concurrency tests also run under the race detector.
RACE_PKGS ?= ./pkg/kv/... ./pkg/secrets/... ./pkg/envelope/... ./pkg/store/bolt/... ./pkg/httpapi/... \
             ./pkg/resolve/... ./pkg/internal/faults/... ./pkg/client/... ./cmd/mobius/... \
             ./pkg/lambdainvoke/... ./pkg/runner/...
# Where tests leave artifacts worth keeping (the reference page's screenshot).
export MOBIUS_ARTIFACTS ?= $(CURDIR)/artifacts

include functions/build.mk
include reliability.mk
include perf.mk

.PHONY: all run build test test-go test-race lint fmt-check vet deps-check tools lint-openapi test-setup deadcode

all: build

## run: build and start `mobius serve` on the embedded store at $(ADDR)
run: build
	./$(BIN)/mobius serve --addr $(ADDR)

## build: build the mobius command into ./bin
build:
	$(GO) build -o $(BIN)/mobius ./cmd/mobius

## test: every test: lint, unit, conformance on every backend, Lambda, template
test: tools test-setup lint test-go test-race
	@echo "make test: all checks passed"

tools:
	@./scripts/check-tools.sh

# Installs what the tests need beyond the Go module proxy: Debian's
# Chromium for the browser test of /docs (a no-op when present).
test-setup:
	@./scripts/install-chromium.sh
	@mkdir -p $(MOBIUS_ARTIFACTS)

test-go:
	$(GO) test -count=1 -timeout 20m ./...

test-race:
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)

## lint: formatting, vet, the dependency direction, and the OpenAPI document
lint: fmt-check vet deps-check lint-openapi

lint-openapi:
	@./scripts/lint-openapi.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) -C tools vet ./...

deps-check:
	@./scripts/check-deps.sh

## deadcode: list functions no command or test reaches (deadcode, pinned in tools/go.mod); pkg/client's unused options are its public API
deadcode:
	$(GO) -C tools build -o $(CURDIR)/$(BIN)/deadcode golang.org/x/tools/cmd/deadcode
	./$(BIN)/deadcode -test ./...

help:
	@grep -h -E '^## ' $(MAKEFILE_LIST) | sed 's/^## //'
