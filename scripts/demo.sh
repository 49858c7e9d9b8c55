#!/usr/bin/env bash
# The README's demo command: installs the Debian packages troupe needs,
# builds (release preset) and runs the demo pipeline
# (examples/pipeline/pipeline.yaml: word counts over a bundled corpus on a
# process pool, then a thread-pool job reading the second job's records),
# with its progress lines, then shows where the results are and a few of
# them; then inspects the bundled text plugin and calls one of its tasks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target troupe_cli troupe_text troupe_worker
build=build/release
troupe="$build/bin/troupe"
plugin="$build/plugins/libtroupe_text.so"
export TROUPE_PLUGINS="$PWD/$build/plugins" TROUPE_OUT="$PWD/build/demo"

set -x
"$troupe" run examples/pipeline/pipeline.yaml --overwrite --progress always
head -n 3 build/demo/words.jsonl build/demo/top.jsonl
"$troupe" inspect "$plugin"
"$troupe" call "$plugin" text.words '{"id": "d1", "text": "The quick brown fox jumps over the lazy dog"}'
