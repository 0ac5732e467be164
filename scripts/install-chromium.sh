#!/usr/bin/env bash
# Installs Debian's Chromium, which pkg/apidocs's tests use to render the
# interactive reference headlessly. Does nothing when it is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium yourself and put it on PATH (or set MOBIUS_CHROMIUM)." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
/usr/bin/chromium --version
