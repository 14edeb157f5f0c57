#!/usr/bin/env bash
# Run every test: unit tests and integration tests against a real Kafka broker
# and a real PostgreSQL (embedded ones unless REFNET_KAFKA_BOOTSTRAP /
# REFNET_DATABASE_URL name running servers). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec python -m pytest "$@"
