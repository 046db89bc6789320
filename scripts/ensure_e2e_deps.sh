#!/usr/bin/env bash
# Installs what the end-to-end suite (tests/e2e) needs beyond the Python venv, only when missing:
#   - Debian packages: postgresql (a throwaway server per test run), chromium (headless UI check),
#     nodejs + npm (to drive chromium with playwright-core) when no node is on PATH;
#   - the browser driver's npm package into tests/e2e/browser/node_modules (playwright-core only:
#     it never downloads a browser of its own; Debian's chromium is used).
# Idempotent: a second run installs nothing. Uses apt directly as root, else `sudo -n`; without
# either it prints the exact command to run and exits 1.
#
# Usage: scripts/ensure_e2e_deps.sh          (from anywhere; paths are relative to the repo)
#        E2E_SKIP_BROWSER=1 scripts/ensure_e2e_deps.sh   (no chromium, no npm install)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser_dir="$repo/tests/e2e/browser"

packages=(postgresql)
if [ "${E2E_SKIP_BROWSER:-0}" != "1" ]; then
  packages+=(chromium)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "e2e: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" = "0" ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "error: the end-to-end tests need these Debian packages: ${missing[*]}" >&2
    echo "       run as root or with sudo: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -qq
  # The postgresql package starts a cluster service on install where services can start; the
  # tests never use it (they run their own server in a temp dir), so policy-rc.d is not needed.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ "${E2E_SKIP_BROWSER:-0}" != "1" ]; then
  if [ ! -f "$browser_dir/node_modules/playwright-core/package.json" ]; then
    echo "e2e: installing playwright-core into tests/e2e/browser"
    # playwright-core has no install script and fetches no browser: only the package itself.
    (cd "$browser_dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi

echo "e2e: dependencies present"
