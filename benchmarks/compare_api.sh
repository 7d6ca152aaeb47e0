#!/usr/bin/env bash
# The API's latency on two versions of the code, side by side over copies of one atlas:
#   OLD=26a4bd2 bash benchmarks/compare_api.sh          # rounds: old then new, then new then old
# The atlas (80 SmolLM2 inferences of identifiers and eol from the JDK sources, clustered, predictors
# trained) is built once into $ATLAS; each round serves a fresh copy with `attnlens serve` (the old code
# through PYTHONPATH, the same .venv) and runs benchmarks/bench_api.py against it. Results: $OUT/api-<round>-<version>.txt
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${OLD:?set OLD to the commit to compare against}
ATLAS=${ATLAS:-/tmp/attnlens-compare-atlas}
OUT=${OUT:-/tmp/attnlens-compare}
PORT=${PORT:-8765}
export ATTNLENS_ATLAS__BUILD_DEMO=false
mkdir -p "$OUT"
rm -rf "$OUT/old-src" && mkdir -p "$OUT/old-src" && git archive "$OLD" src | tar -x -C "$OUT/old-src"
if [ ! -f "$ATLAS/.built" ]; then
  rm -rf "$ATLAS"; mkdir -p "$ATLAS"; ln -s "$PWD/data/models" "$ATLAS/models"
  ATTNLENS_DATA_DIR=$ATLAS .venv/bin/attnlens atlas build --corpus /usr/lib/jvm/openjdk-17/lib/src.zip \
    --per-task 40 --tasks identifiers,eol --batch-size 4
  ATTNLENS_DATA_DIR=$ATLAS .venv/bin/attnlens atlas cluster
  ATTNLENS_DATA_DIR=$ATLAS .venv/bin/attnlens predictors train --tasks identifiers,eol
  touch "$ATLAS/.built"
fi
serve_and_measure() {  # round, version
  rm -rf "$ATLAS-$2"; cp -a "$ATLAS" "$ATLAS-$2"
  local path=""; [ "$2" = old ] && path="$OUT/old-src/src"
  PYTHONPATH=$path ATTNLENS_DATA_DIR=$ATLAS-$2 .venv/bin/attnlens serve --port "$PORT" > "$OUT/serve-$1-$2.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do
    curl -s "127.0.0.1:$PORT/api/health" | grep -q '"state":"ready"' && break; sleep 2
  done
  .venv/bin/python benchmarks/bench_api.py --url "http://127.0.0.1:$PORT" --sequential "${SEQ:-12}" \
    --clients 4 --per-client 8 --json "$OUT/api-$1-$2.json" > "$OUT/api-$1-$2.txt" 2>&1 || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
serve_and_measure 1 old; serve_and_measure 1 new
serve_and_measure 2 new; serve_and_measure 2 old
grep -H -E "analyze|ablate_first|ablate_again" "$OUT"/api-*-*.txt | grep "p50" | grep -v concurrent
