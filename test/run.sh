#!/usr/bin/env bash
# Runs every test file under test/ with node's test runner, TypeScript loaded by tsx.
# Node 20's --test does not expand globs itself, so bash does it here.
# Usage: bash test/run.sh [file-or-dir ...]
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
if [ "$#" -gt 0 ]; then
  files=()
  for arg in "$@"; do
    if [ -d "$arg" ]; then files+=("$arg"/**/*.test.ts); else files+=("$arg"); fi
  done
else
  files=(test/**/*.test.ts)
fi
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
# spec: a failure summary at the end, where a truncated CI log still shows it.
exec node --import tsx --test --test-reporter=spec --test-concurrency="${LAYERPOOL_TEST_CONCURRENCY:-2}" "${files[@]}"
