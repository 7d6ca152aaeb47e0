#!/bin/bash
# Same budget for both decoder modes: 400 steps x 64 patterns, same data, same seed.
# --test-percent 0: the cache of the default checkpoint, built before the test split existed.
cd "$(dirname "$0")/../.."
for mode in mae paper; do
  .venv/bin/attnlens train-apmae --model smollm2 --corpus /usr/lib/jvm/openjdk-17/lib/src.zip --source windows \
    --heads-fraction 1.0 --windows 576 --test-percent 0 --cache data/apmae/cache-smollm2 \
    --out data/apmae/cmp-$mode \
    --decoder-mode $mode --steps 400 --batch-size 64 --lr 1e-3 --warmup 100 --eval-every 200 \
    --checkpoint-every 200 --threads 1
done
