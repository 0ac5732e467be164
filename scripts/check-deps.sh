#!/usr/bin/env bash
# Keeps the dependency direction of the codebase true: the domain
# (pkg/secrets) depends on the standard library and pkg/envelope only, and
# adapters never import each other.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0

# 1. pkg/secrets: standard library and pkg/envelope only.
bad=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./pkg/secrets | grep -v -E "^${mod}/pkg/(secrets|envelope)$" || true)
if [ -n "$bad" ]; then
  echo "check-deps: pkg/secrets must import only the standard library and pkg/envelope, but depends on:" >&2
  echo "$bad" >&2
  fail=1
fi

# 2. Adapters import pkg/secrets (and pkg/envelope), never each other or pkg/app.
adapters=$(go list ./pkg/store/... ./pkg/keys/... ./pkg/httpapi/... ./pkg/resolve/... 2>/dev/null | grep -v -E '/(storetest|keystest|modeltest)$' || true)
for a in $adapters; do
  imports=$(go list -f '{{join .Imports "\n"}}' "$a" | grep "^${mod}/" || true)
  for i in $imports; do
    case "$i" in
      "$mod/pkg/secrets"|"$mod/pkg/envelope"|"$mod/pkg/apidocs"|"$mod/pkg/internal/"*) ;;
      *) echo "check-deps: $a must not import $i" >&2; fail=1 ;;
    esac
  done
done

# 3. Only cmd/ and functions/ import pkg/app.
for p in $(go list ./pkg/...); do
  if go list -f '{{join .Imports "\n"}}' "$p" | grep -qx "$mod/pkg/app"; then
    echo "check-deps: $p must not import pkg/app (only cmd/ and functions/ may)" >&2
    fail=1
  fi
done
exit $fail
