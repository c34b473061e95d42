#!/usr/bin/env bash
# Refresh requirements/dev.txt, the versions the tests ran on, with pip-tools (pip-compile):
#   bash requirements/lock.sh            # keep the pins, add what pyproject.toml newly needs
#   bash requirements/lock.sh --upgrade  # move every pin to the newest release
# torch stays at requirements/torch.in's release. The file pins Python 3.11 (the CI machine's).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${TMPDIR:-/tmp}/rim-pip-tools"
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q "pip-tools>=7.4"; }
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)   # the CPU wheel of torch on this project's machines
CUSTOM_COMPILE_COMMAND="bash requirements/lock.sh" "$tools/bin/pip-compile" -q "$@" "${links[@]}" \
  --extra dev --strip-extras --no-emit-find-links --no-emit-index-url --no-emit-trusted-host \
  --output-file requirements/dev.txt pyproject.toml requirements/torch.in
# A local build tag (torch==2.13.0+cpu) names a wheel only this disk has: pin the release itself.
sed -i -E 's/^(torch==[0-9.]+)\+[a-z0-9]+$/\1/' requirements/dev.txt
