#!/usr/bin/env bash
# Keeps the dependency direction of the codebase true (docs/ARCHITECTURE.md):
# the storage port (pkg/kv) depends on the standard library only; the
# domain (pkg/secrets) on the standard library, pkg/envelope, pkg/kv and
# its records' CBOR codec;
# store drivers on pkg/kv and their one outside dependency, never on the
# domain; other adapters on the domain and the port, never on each other;
# the HTTP API and its Go client share the wire types of pkg/api.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0

# 1. pkg/kv and pkg/api (the API's wire types): the standard library only.
#    pkg/secrets: the standard library, pkg/envelope, pkg/kv and the CBOR
#    codec of its records (with the codec's one dependency). The Go
#    client (pkg/client) speaks only the HTTP contract: the standard
#    library and pkg/api.
only() { # package, allowed import pattern, allowed outside modules' packages
  local bad allowed="^${mod}/($2)$"
  if [ -n "${3:-}" ]; then allowed="$allowed|^($3)$"; fi
  bad=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' "./$1" | grep -v -E "$allowed" || true)
  if [ -n "$bad" ]; then
    echo "check-deps: $1 may import only the standard library and ${2//|/, }${3:+, ${3//|/, }}, but depends on:" >&2
    echo "$bad" >&2
    fail=1
  fi
}
only pkg/kv 'pkg/kv'
only pkg/api 'pkg/api'
only pkg/client 'pkg/client|pkg/api'
only pkg/secrets 'pkg/secrets|pkg/envelope|pkg/kv' 'github\.com/fxamacker/cbor/v2|github\.com/x448/float16'

# 2. Store drivers import pkg/kv, their own dependency and the file
#    writer internal/atomicfile (no domain in it): never the domain, so
#    that every rule stays in it. Other adapters import the
#    domain and the port, never each other or pkg/app; the strict JSON
#    reader (internal/strictjson) is shared by the API, resolve and the CLI.
for a in $(go list ./pkg/store/bolt ./pkg/store/dynamo); do
  imports=$(go list -f '{{join .Imports "\n"}}' "$a" | grep "^${mod}/" || true)
  for i in $imports; do
    case "$i" in
      "$mod/pkg/kv"|"$mod/internal/atomicfile") ;;
      *) echo "check-deps: the store driver $a must not import $i" >&2; fail=1 ;;
    esac
  done
done
adapters=$(go list ./pkg/keys/... ./pkg/httpapi/... ./pkg/resolve/... 2>/dev/null | grep -v -E '/(keystest)$' || true)
for a in $adapters; do
  imports=$(go list -f '{{join .Imports "\n"}}' "$a" | grep "^${mod}/" || true)
  for i in $imports; do
    case "$i" in
      "$mod/pkg/secrets"|"$mod/pkg/envelope"|"$mod/pkg/kv"|"$mod/pkg/api"|"$mod/pkg/apidocs"|"$mod/pkg/internal/"*|"$mod/internal/strictjson") ;;
      *) echo "check-deps: $a must not import $i" >&2; fail=1 ;;
    esac
  done
done

# 3. Only cmd/ and functions/ import the composition roots (pkg/app, and
#    pkg/app/awsapp, which pkg/app builds on).
for p in $(go list ./pkg/...); do
  for root in "$mod/pkg/app" "$mod/pkg/app/awsapp"; do
    [ "$p" = "$mod/pkg/app" ] && [ "$root" = "$mod/pkg/app/awsapp" ] && continue
    if go list -f '{{join .Imports "\n"}}' "$p" | grep -qx "$root"; then
      echo "check-deps: $p must not import ${root#$mod/} (only cmd/ and functions/ may)" >&2
      fail=1
    fi
  done
done

# 4. The Lambda functions link only what they run: none links the
#    embedded store, and neither the resolve function nor the sweep links
#    the HTTP handler or reference page (docs/PERFORMANCE.md: bootstrap
#    sizes); the publisher uses the handler's event rendering only.
check_absent() { # function, forbidden package patterns...
  local fn=$1; shift
  local deps; deps=$(go list -deps "./functions/$fn")
  for pat in "$@"; do
    if grep -qE "$pat" <<<"$deps"; then
      echo "check-deps: functions/$fn must not link $(grep -E "$pat" <<<"$deps" | head -1)" >&2
      fail=1
    fi
  done
}
check_absent api '^go\.etcd\.io/bbolt$' "^$mod/pkg/store/bolt$" "^$mod/pkg/keys/local$"
check_absent resolve '^go\.etcd\.io/bbolt$' "^$mod/pkg/store/bolt$" "^$mod/pkg/keys/local$" "^$mod/pkg/httpapi$" "^$mod/pkg/apidocs$" '^net/http/httptest$'
check_absent publish '^go\.etcd\.io/bbolt$' "^$mod/pkg/store/bolt$" "^$mod/pkg/keys/local$" '^net/http/httptest$'
check_absent sweep '^go\.etcd\.io/bbolt$' "^$mod/pkg/store/bolt$" "^$mod/pkg/keys/local$" "^$mod/pkg/httpapi$" "^$mod/pkg/apidocs$" '^net/http/httptest$'

# 5. The Lambda Invoke API adapter is the standard library only: it takes
#    the function it serves and knows nothing of resolve, stores or the app.
bad=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./pkg/lambdainvoke | grep -v -x "$mod/pkg/lambdainvoke" || true)
if [ -n "$bad" ]; then
  echo "check-deps: pkg/lambdainvoke must import only the standard library, but depends on:" >&2
  echo "$bad" >&2
  fail=1
fi

# 6. The loop runners' package links the AWS SDK's Lambda client and
#    nothing of the server: no store, no key wrapper, no HTTP handler.
deps=$(go list -deps ./pkg/runner)
for pat in '^go\.etcd\.io/bbolt$' "^$mod/pkg/(store|keys|httpapi|apidocs|app|secrets|resolve|lambdainvoke)(/|$)" '^net/http/httptest$'; do
  if grep -qE "$pat" <<<"$deps"; then
    echo "check-deps: pkg/runner must not link $(grep -E "$pat" <<<"$deps" | head -1)" >&2
    fail=1
  fi
done
# 7. The main module's go.mod lists only what the product runs and tests
#    with: the emulator, local-kms, benchstat and deadcode are the tools
#    module's (tools/go.mod), no build or test of the main module links a
#    module only they need, and both go.mod files are tidy.
if grep -qE '^tool[[:space:]]' go.mod; then
  echo "check-deps: go.mod has a tool directive; tools belong in tools/go.mod" >&2
  fail=1
fi
toolonly='^(github\.com/(sirupsen/logrus|syndtr/goleveldb|btcsuite/btcd|go-chi/chi|aclements/go-moremath|nsmithuk/local-kms|aws/aws-lambda-runtime-interface-emulator|awslabs/aws-lambda-go-api-proxy|aws/aws-sdk-go)|golang\.org/x/(perf|tools)|gopkg\.in/yaml\.v3)($|/)'
bad=$(go list -deps -test -f '{{with .Module}}{{.Path}}{{end}}' ./... | sort -u | grep -E "$toolonly" || true)
if [ -n "$bad" ]; then
  echo "check-deps: the main module's builds and tests link modules only tools need (or a second YAML library):" >&2
  echo "$bad" >&2
  fail=1
fi
for m in . tools; do
  if ! out=$(go -C "$m" mod tidy -diff 2>&1); then
    echo "check-deps: $m/go.mod is not tidy; run 'go -C $m mod tidy':" >&2
    echo "$out" >&2
    fail=1
  fi
done
exit $fail
