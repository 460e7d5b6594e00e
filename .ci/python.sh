#!/usr/bin/env bash
# CI, after the Rust tests: the Python package (python/, issue 20). Builds and installs the wheel
# the way the README says (`pip install ./python`, maturin from PyPI) on the same target/ as the
# Rust build, then runs the pytest suite against the CLI binary that build made. Measured: 48 s
# with a warm target/. On a cold one most dependencies compile a second time (pyo3's macros
# enable more syn features, which changes the hash of every crate built with a derive), several
# minutes on 2 cores: keep target/ between CI runs. python/Cargo.lock is used as committed (locked): after a change of
# the root crate's dependencies, refresh it with `cargo update --manifest-path python/Cargo.toml -p ssvae`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="$PWD/target"
export SSVAE_BIN="$PWD/target/release/ssvae"
cargo fmt --check --manifest-path python/Cargo.toml
start=$(date +%s)
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q numpy scikit-learn pytest
"$venv/bin/pip" install -q ./python
built=$(date +%s)
"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
echo "ci: python: wheel built and installed in $((built - start)) s, pytest in $(($(date +%s) - built)) s"
