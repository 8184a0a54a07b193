#!/usr/bin/env bash
# The full test run CI gates on: the unit tests, then what needs system packages or real kernels.
# Each step installs what it needs itself; any failure stops the run with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "system tools the tests use (xmllint for the JUnit schema check)"
command -v xmllint >/dev/null || { apt-get update -qq && apt-get install -y -qq libxml2-utils; }

step "chromium for the browser test of the HTML report and spec site"
bash scripts/install-chromium.sh
export KVMSPEC_BROWSER=1

step "unit tests, lint, format, types"
npm test

step "conformance run against the bundled reference, and its results verified as a conformance claim"
node bin/kvmspec.js run --backend reference
node bin/kvmspec.js verify reports/results.json

step "the same suite through the stdio protocol: kvmspec serve as a process backend"
node bin/kvmspec.js run --backend process --junit reports/process/junit.xml --json reports/process/results.json \
  --tap reports/process/results.tap --bundles reports/process/bundles -- node bin/kvmspec.js serve --backend reference

step "the Python example backend (the x86_64 suite)"
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3; }
node bin/kvmspec.js run --backend process --arch x86_64 --junit reports/python/junit.xml --json reports/python/results.json \
  --tap reports/python/results.tap --bundles reports/python/bundles -- python3 examples/python-backend/backend.py

if [ -e /dev/kvm ]; then
  step "conformance run against this host's /dev/kvm, compared call by call with the reference"
  node bin/kvmspec.js run --backend linux --diff reference --junit reports/linux/junit.xml --json reports/linux/results.json --tap reports/linux/results.tap --bundles reports/linux/bundles
  node bin/kvmspec.js verify reports/linux/results.json
else
  step "no /dev/kvm on this machine: the linux backend run is skipped"
fi

step "real arm64 and ppc64le KVM inside QEMU: setup from Debian packages (cached in .cache/qemu)"
npm run setup:qemu
KVMSPEC_QEMU=1 npx mocha --no-config --node-option import=tsx --timeout 600000 test/qemu-backends.test.ts
# qemu-arm64-gicv3: the arm64 machine with a GICv3 (vCPU ids above 7, PFR0.GIC hidden at the first run).
# --jobs 2: two machines, each with one emulated CPU, keep both host cores busy (docs/qemu-backends.md).
for backend in qemu-arm64 qemu-arm64-gicv3 qemu-ppc64le; do
  step "conformance run against real KVM in QEMU ($backend), compared with the reference"
  node bin/kvmspec.js run --backend "$backend" --jobs 2 --diff reference --junit "reports/$backend/junit.xml" \
    --json "reports/$backend/results.json" --tap "reports/$backend/results.tap" --bundles "reports/$backend/bundles"
  node bin/kvmspec.js verify "reports/$backend/results.json"
done

step "ABI cross-check against the uapi headers of four architectures"
npm run abi:check
