#!/usr/bin/env bash
# Set up a fresh environment and run the test suite (the README's test command; .ci/run runs it).
#   bash tools/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/_setup_env.sh
python -m pytest -q -p no:cacheprovider "$@"
