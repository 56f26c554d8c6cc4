#!/usr/bin/env bash
# Materialize the whole chain on the demo catalog with `dagster asset materialize`, in a fresh
# project home, and print the wall time (target: under 60 s). SELECTION='*' includes the model.
set -euo pipefail
cd "$(dirname "$0")/.."
home=$(mktemp -d /tmp/tp_bench_home.XXXXXX)
trap 'rm -rf "$home"' EXIT
export TAG_PIPELINE_HOME="$home" DAGSTER_HOME="$home/dagster"
.venv/bin/tag-pipeline init >/dev/null
start=$(date +%s%N)
.venv/bin/dagster asset materialize --select "${SELECTION:-group:ingest or group:cleaning or group:labels}" -m tag_pipeline.definitions >"$home/run.log" 2>&1 \
  || { tail -50 "$home/run.log"; exit 1; }
end=$(date +%s%N)
echo "asset checks passed: $(grep -c "Asset check '.*' on '.*' passed" "$home/run.log" || true)"
echo "asset checks failed: $(grep -c "Asset check '.*' on '.*' failed" "$home/run.log" || true)"
ms=$(( (end - start) / 1000000 ))
printf 'dagster asset materialize (demo, ${SELECTION:-catalog groups}): %d.%03d s\n' $((ms / 1000)) $((ms % 1000))
