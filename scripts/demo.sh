#!/usr/bin/env bash
# The README's demo command: installs the Debian packages troupe needs,
# builds (release preset) and runs the demo: inspect the bundled text
# plugin, call its tasks from the CLI, and run the embedding example host.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target troupe_cli troupe_text embed_host
build=build/release
plugin="$build/plugins/libtroupe_text.so"

set -x
"$build/bin/troupe" inspect "$plugin"
"$build/bin/troupe" call "$plugin" text.words '{"id": "d1", "text": "The quick brown fox jumps over the lazy dog"}'
"$build/bin/troupe" call "$plugin" word_counts '"to be or not to be"' --kw min_count=2
"$build/bin/troupe" call "$plugin" sha256 '"abc"'
"$build/bin/embed_host" "$plugin" examples/data/docs.jsonl
