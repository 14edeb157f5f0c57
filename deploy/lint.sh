#!/usr/bin/env bash
# ruff (lint + format check), mypy (strict on schemas/ and streams/) and
# import-linter (the layers in pyproject.toml stay one-way).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
ruff check .
ruff format --check .
mypy
lint-imports
