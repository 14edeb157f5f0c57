#!/usr/bin/env bash
# ruff (lint + format check) and mypy (strict on schemas/ and streams/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
ruff check .
ruff format --check .
mypy
