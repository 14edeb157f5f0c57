#!/usr/bin/env bash
# See the network work: the embedded Kafka broker and PostgreSQL (unless
# REFNET_KAFKA_BOOTSTRAP / REFNET_DATABASE_URL name running ones), the Dallas
# sample region imported, four clinics and fifteen organizations simulated,
# one worker, live progress, then a summary (about a minute). Extra arguments go
# to `refnet demo` (e.g. --duration 90 --seed 7, or --json).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec refnet demo "$@"
