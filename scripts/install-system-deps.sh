#!/usr/bin/env bash
# Installs the system packages the tests need beyond npm: Debian's Python 3 with
# confluent-kafka (librdkafka), Apache Avro and requests, used by
# test/clients/produce_request.py to prove a non-JavaScript client can submit requests.
#
# Idempotent: does nothing when /usr/bin/python3 can already import them.
# Debian/Ubuntu only (apt-get). Uses sudo only when not running as root.
set -euo pipefail

PYTHON=/usr/bin/python3
PACKAGES=(python3-confluent-kafka python3-avro python3-requests)
CHECK='import confluent_kafka, avro, requests'

have_deps() {
  [ -x "$PYTHON" ] && "$PYTHON" -c "$CHECK" >/dev/null 2>&1
}

fail() {
  echo "install-system-deps: ERROR: $*" >&2
  echo "install-system-deps: needed: ${PACKAGES[*]} (for $PYTHON)" >&2
  exit 1
}

if have_deps; then
  echo "install-system-deps: $PYTHON already has confluent_kafka $("$PYTHON" -c 'import confluent_kafka; print(confluent_kafka.version()[0])'), avro and requests; nothing to do"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: this script supports Debian/Ubuntu only; install ${PACKAGES[*]} by other means"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and sudo is not available"
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system-deps: $PYTHON cannot import confluent_kafka/avro/requests; installing ${PACKAGES[*]}"
echo "install-system-deps: apt-get update"
"${SUDO[@]}" apt-get update -qq || fail "apt-get update failed"
echo "install-system-deps: apt-get install -y --no-install-recommends ${PACKAGES[*]}"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" || fail "apt-get install failed"

if ! have_deps; then
  "$PYTHON" -c "$CHECK" || true
  fail "packages installed but $PYTHON still cannot import confluent_kafka, avro and requests"
fi
echo "install-system-deps: installed; $PYTHON now has confluent_kafka $("$PYTHON" -c 'import confluent_kafka; print(confluent_kafka.version()[0])'), avro and requests"
