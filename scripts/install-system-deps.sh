#!/usr/bin/env bash
# Installs the system packages the tests need beyond npm:
# - Debian's Python 3 with confluent-kafka (librdkafka), Apache Avro and requests, used by
#   test/clients/produce_request.py to prove a non-JavaScript client can submit requests;
# - Debian's `prometheus` package: `promtool test rules` checks the alert rules
#   (helm/arbiter/files/prometheus, run by .ci/run) and test/integration/prometheus.test.ts runs
#   the real server (/usr/bin/prometheus) against two workers.
#
# Idempotent: installs only what is missing, and nothing when everything is there.
# Non-interactive. Debian/Ubuntu only (apt-get). Uses sudo only when not running as root.
# Services are never started by the install (the prometheus package ships one).
set -euo pipefail

PYTHON=/usr/bin/python3
PYTHON_PACKAGES=(python3-confluent-kafka python3-avro python3-requests python3-cryptography)
PYTHON_CHECK='import confluent_kafka, avro, requests, cryptography'
PROMETHEUS_PACKAGES=(prometheus)
PROMETHEUS_BINARIES=(/usr/bin/prometheus /usr/bin/promtool)

have_python_deps() {
  [ -x "$PYTHON" ] && "$PYTHON" -c "$PYTHON_CHECK" >/dev/null 2>&1
}

have_prometheus() {
  local binary
  for binary in "${PROMETHEUS_BINARIES[@]}"; do
    [ -x "$binary" ] || return 1
  done
}

fail() {
  echo "install-system-deps: ERROR: $*" >&2
  echo "install-system-deps: needed: ${PYTHON_PACKAGES[*]} (for $PYTHON) and ${PROMETHEUS_PACKAGES[*]} (${PROMETHEUS_BINARIES[*]})" >&2
  exit 1
}

MISSING=()
if have_python_deps; then
  echo "install-system-deps: $PYTHON already has confluent_kafka $("$PYTHON" -c 'import confluent_kafka; print(confluent_kafka.version()[0])'), avro, requests and cryptography"
else
  echo "install-system-deps: $PYTHON cannot import confluent_kafka/avro/requests/cryptography"
  MISSING+=("${PYTHON_PACKAGES[@]}")
fi
if have_prometheus; then
  echo "install-system-deps: $(/usr/bin/promtool --version 2>&1 | head -1) and /usr/bin/prometheus are installed"
else
  echo "install-system-deps: ${PROMETHEUS_BINARIES[*]} missing"
  MISSING+=("${PROMETHEUS_PACKAGES[@]}")
fi

if [ "${#MISSING[@]}" -eq 0 ]; then
  echo "install-system-deps: nothing to do"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: this script supports Debian/Ubuntu only; install ${MISSING[*]} by other means"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and sudo is not available"
  SUDO=(sudo)
fi

# A package's maintainer scripts must not start its service (prometheus would listen on :9090):
# where no policy says so already (container images ship one), one is put in place for the install.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# Written by arbiter scripts/install-system-deps.sh for one install; removed after it.\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system-deps: apt-get update"
"${SUDO[@]}" apt-get update -qq || fail "apt-get update failed"
echo "install-system-deps: apt-get install -y --no-install-recommends ${MISSING[*]}"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${MISSING[@]}" ||
  fail "apt-get install failed"

if ! have_python_deps; then
  "$PYTHON" -c "$PYTHON_CHECK" || true
  fail "packages installed but $PYTHON still cannot import confluent_kafka, avro and requests"
fi
have_prometheus || fail "the prometheus package is installed but ${PROMETHEUS_BINARIES[*]} are not all there"
echo "install-system-deps: installed; $PYTHON has confluent_kafka, avro and requests; $(/usr/bin/promtool --version 2>&1 | head -1)"
