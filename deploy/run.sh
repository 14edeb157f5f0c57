#!/usr/bin/env bash
# Run the network on this machine: the embedded Kafka broker and PostgreSQL
# (unless REFNET_KAFKA_BOOTSTRAP / REFNET_DATABASE_URL name running ones), the
# topic catalog, and one worker in the foreground. Extra arguments go to
# `refnet run` (e.g. --clinic mott-haven --org bronx-pantry).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec refnet run "$@"
