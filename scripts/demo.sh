#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the demo: a patch series mailed through
# the extension to a local TLS server with a throwaway CA, then a forged
# server refused.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py
