#!/usr/bin/env bash
# The IEEE 2030.5 test peer: the open-source envoy utility server (MIT, github.com/bsgip/envoy v1.5.0,
# shipped here as a source archive since it is not published on PyPI) in its own venv under .peers/envoy,
# its dependencies from PyPI pinned as in its lock file, and nginx as the TLS-terminating proxy that
# checks the client certificate and hands it to envoy in a header (as envoy expects in production).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PEER=.peers/envoy
HERE=tests/peers/envoy
if [ ! -x "$PEER/bin/uvicorn" ] || ! cmp -s "$HERE/requirements.txt" "$PEER/requirements.txt"; then
  rm -rf "$PEER"
  "${PYTHON:-$(command -v python3.11 || command -v python3)}" -m venv "$PEER"
  "$PEER/bin/pip" install --disable-pip-version-check -q -r "$HERE/requirements.txt"
  "$PEER/bin/pip" install --disable-pip-version-check -q --no-deps "$HERE/envoy-1.5.0.tar.gz"
  cp "$HERE/requirements.txt" "$PEER/requirements.txt"
fi
command -v nginx >/dev/null || (apt-get update -qq && apt-get install -y -qq nginx-light)
