#!/usr/bin/env bash
# Re-resolve requirements-reader.txt: what the REST reader needs at run time, at the versions
# of requirements.txt (used as constraints), in a scratch environment. Run after `make lock`.
# Usage: tests/reader_slim/lock.sh [python]   (default: python3.11)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${1:-python3.11}
SCRATCH=${NEWSREC_READER_LOCK_VENV:-/tmp/newsrec-reader-lock}

# What pipelines.reader, pipelines.serving.explanations and the `newsrec` entry point import (checked by
# tests/reader_slim/runtime_check.py); everything else comes in as their dependencies.
TOP=(
  fastapi "uvicorn[standard]" asyncpg   # the app, its server (uvloop, httptools) and its driver
  psycopg2-binary                       # pipelines.core.db: `newsrec reader keys`, the main database URL
  pydantic-settings PyYAML              # settings and params.yaml
  prometheus-client                     # /metrics
  typer                                 # the `newsrec` command
  numpy pandas pyarrow lightgbm         # explanations: the model and the user x category partition
  "feast[postgres,duckdb]"              # explanations: online features (Feast parses the duckdb offline config)
)

rm -rf "$SCRATCH"
"$PYTHON" -m venv "$SCRATCH"
"$SCRATCH/bin/pip" install -q --disable-pip-version-check -c "$ROOT/requirements.txt" "${TOP[@]}"
{
  echo "# The REST reader's run-time environment (docker/reader.Dockerfile), pinned to the versions"
  echo "# of requirements.txt; resolved by tests/reader_slim/lock.sh from: ${TOP[*]}"
  echo "# No Airflow, Beam, Great Expectations, Evidently or MLflow. Python 3.11."
  "$SCRATCH/bin/pip" freeze --exclude-editable | sort -f
} > "$ROOT/requirements-reader.txt"
echo "wrote $ROOT/requirements-reader.txt ($(grep -vc '^#' "$ROOT/requirements-reader.txt") packages)"
