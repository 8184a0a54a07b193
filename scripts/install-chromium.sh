#!/usr/bin/env bash
# Debian's chromium for test/browser.test.ts, which drives it through playwright-core (that package never
# downloads a browser of its own). Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium
/usr/bin/chromium --version
