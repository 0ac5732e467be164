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

# 4. The Lambda functions link only what they run: neither links the
#    embedded store, and the resolve function links no HTTP handler or
#    reference page (docs/PERFORMANCE.md: bootstrap sizes).
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
exit $fail
