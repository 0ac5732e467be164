# Build targets of the Lambda functions, included by the Makefile. `sam
# build` runs them (template.yaml: Metadata BuildMethod: makefile) with
# ARTIFACTS_DIR set; each writes one static linux/arm64 `bootstrap` for the
# provided.al2023 runtime.

LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -ldflags="-s -w"

.PHONY: build-ApiFunction build-ResolveFunction build-PublishFunction build-SweepFunction

build-ApiFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(LAMBDA_GOFLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/api

build-ResolveFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(LAMBDA_GOFLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/resolve

build-PublishFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(LAMBDA_GOFLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/publish

build-SweepFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(LAMBDA_GOFLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sweep
