#!/usr/bin/env bash
# Create .venv and install refnet with its dev extra, only when pyproject.toml
# changed since the last install. Sourced by run.sh, test.sh and lint.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REFNET_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "refnet needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
for tool in java mvn; do
  command -v "$tool" >/dev/null || echo "warning: '$tool' not found: the embedded Kafka broker needs Java 17+ and Maven (or set REFNET_KAFKA_BOOTSTRAP)" >&2
done

stamp="$VENV/.refnet-installed"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "refnet: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "refnet: installing refnet and its dev extra into $VENV (a minute or two)..." >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"

# Debian tools the tests use: promtool (checks deploy/prometheus/) and a headless
# chromium (the status page). Installed once when missing, where apt-get runs as root.
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core fonts-liberation)
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "refnet: installing ${missing[*]} (apt-get)..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "warning: ${missing[*]} missing (apt-get install them): the observability tests need them" >&2
  fi
fi
