#!/usr/bin/env bash
# Lints the OpenAPI document (pkg/apidocs/openapi.yaml) with Redocly CLI's
# recommended rules, warnings included, and checks that the embedded
# openapi.json is its current conversion. Exits non-zero on any problem.
# Deliberate exceptions live in pkg/apidocs/.redocly.lint-ignore.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

REDOCLY_VERSION="${REDOCLY_VERSION:-2.77.0}"

if ! command -v npx >/dev/null 2>&1; then
  echo "lint-openapi: npx is not on PATH; install Node.js 20.19+ and npm (apt-get install -y nodejs npm)." >&2
  exit 1
fi

cd pkg/apidocs
if ! NO_UPDATE_NOTIFIER=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  npx --yes "@redocly/cli@${REDOCLY_VERSION}" lint --config redocly.yaml --format stylish openapi.yaml; then
  echo "lint-openapi: FAILED: pkg/apidocs/openapi.yaml has lint problems (see above)." >&2
  exit 1
fi
cd ../..

# The served document is the committed openapi.json; it must match the YAML.
if ! go run ./pkg/apidocs/internal/genspec -dir pkg/apidocs -check; then
  echo "lint-openapi: FAILED: pkg/apidocs/openapi.json is stale; run 'go generate ./pkg/apidocs'." >&2
  exit 1
fi
echo "lint-openapi: pkg/apidocs/openapi.yaml is clean"
