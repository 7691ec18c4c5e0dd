#!/usr/bin/env bash
# Everything the test suite needs from outside npm, installed only when missing,
# so that `npm test` (through `pretest`) works on a fresh clone and `.ci/run`
# uses the very same step. Idempotent and quiet when everything is there:
# `apt-get update` runs only when a package has to be installed.
#   - Debian packages, named by the command they provide (list below);
#   - prometheus/promtool unpacked into .cache/ (never installed as a service).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# command:package — one per tool the tests start.
tools=(
  "redis-server:redis-server"
  "openssl:openssl"
  "systemd-analyze:systemd"
  "chromium:chromium"
)

missing=()
for entry in "${tools[@]}"; do
  cmd="${entry%%:*}"; pkg="${entry#*:}"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: missing ${missing[*]} and no apt-get to install them; install them by hand" >&2
    exit 1
  fi
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  echo "ensure-tools: installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash "$repo/.ci/install-prometheus.sh" >/dev/null
