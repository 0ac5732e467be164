#!/usr/bin/env bash
# Fails loudly, naming the fix, when a tool that `make test` needs is missing.
# The Go tools and stand-ins (aws-lambda-rie, local-kms, benchstat) are
# pinned in the tools module, tools/go.mod, and built from it by the go
# command on first use; this checks the ones that come from the machine image.
set -uo pipefail
fail=0
need() { # name, hint
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "check-tools: '$1' is not on PATH. $2" >&2
    fail=1
  fi
}
need go "Install Go 1.26 or newer."
need moto_server "It serves DynamoDB and KMS for the AWS tests: pip install 'moto[server]==5.2.1'."
need cfn-lint "It lints template.yaml as 'sam validate --lint' does: pip install 'cfn-lint==1.51.0'."
need aws "Version 1 of the AWS CLI drives the Lambda Invoke API of mobius serve in tests: pip install awscli."
need node "It runs the OpenAPI linter: apt-get install -y nodejs npm."
need npx "It runs the OpenAPI linter: apt-get install -y npm."
if [ $fail -ne 0 ]; then exit 1; fi
echo "check-tools: $(go version | cut -d' ' -f3), moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?'), $(cfn-lint --version 2>&1 | head -1), node $(node --version)"
