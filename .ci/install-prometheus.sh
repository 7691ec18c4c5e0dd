#!/usr/bin/env bash
# Fetch prometheus and promtool for the tests WITHOUT installing Debian's
# `prometheus` package: installing it would start a Prometheus service on port
# 9090. We download the .deb, unpack it into a temp dir and copy the two
# binaries into <repo>/.cache/prometheus/bin. Idempotent: does nothing when
# both binaries are already on PATH or in the cache.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="$repo/.cache/prometheus/bin"

have() { command -v "$1" >/dev/null 2>&1; }

if [[ -x "$bin_dir/promtool" && -x "$bin_dir/prometheus" ]]; then
  echo "prometheus: $bin_dir/prometheus"
  echo "promtool:   $bin_dir/promtool"
  exit 0
fi
if have promtool && have prometheus; then
  echo "prometheus: $(command -v prometheus)"
  echo "promtool:   $(command -v promtool)"
  exit 0
fi

if ! have apt-get || ! have dpkg-deb; then
  echo "install-prometheus: need apt-get and dpkg-deb (Debian/Ubuntu); otherwise put promtool and prometheus in $bin_dir" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# `apt-get download` runs as the _apt user when root; let it write the temp dir.
chmod 0777 "$tmp"

download() { (cd "$tmp" && apt-get download prometheus >/dev/null 2>"$tmp/apt.err"); }

# Only refresh the package lists when apt does not know the package yet.
if ! download; then
  echo "install-prometheus: package lists out of date, running apt-get update" >&2
  apt-get update >/dev/null
  if ! download; then
    cat "$tmp/apt.err" >&2
    echo "install-prometheus: apt-get download prometheus failed" >&2
    exit 1
  fi
fi

deb="$(ls "$tmp"/prometheus_*.deb)"
dpkg-deb -x "$deb" "$tmp/root"
mkdir -p "$bin_dir"
for b in prometheus promtool; do
  install -m 0755 "$tmp/root/usr/bin/$b" "$bin_dir/$b"
done

echo "prometheus: $bin_dir/prometheus ($("$bin_dir/prometheus" --version 2>&1 | head -n1))"
echo "promtool:   $bin_dir/promtool"
