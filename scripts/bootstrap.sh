#!/usr/bin/env bash
# Installs what openinspect needs on a Debian/Ubuntu machine, idempotently:
# system packages (git, bubblewrap, python3 for the in-sandbox runtime, Node.js and npm to build
# the web app, Chromium for the browser tests), uv, and the locked Python environment.
# Safe to run again; does nothing that is already done, and prints nothing then.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The browser tests drive Debian's Chromium (Playwright cannot download browsers here). Its
# recommendations (upower, udev, a notification daemon, printer tools) are not needed headless.
browser=()
[ -x /usr/bin/chromium ] || browser+=(chromium)
if [ $((${#missing[@]} + ${#browser[@]})) -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${missing[*]:-}${missing[*]:+ }${browser[*]:-}"
    $SUDO apt-get update -qq
    export DEBIAN_FRONTEND=noninteractive
    if [ ${#missing[@]} -gt 0 ]; then
      $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ ${#browser[@]} -gt 0 ]; then
      $SUDO apt-get install -y -qq --no-install-recommends "${browser[@]}" >/dev/null
    fi
  else
    echo "bootstrap: please install: ${missing[*]:-} ${browser[*]:-}" >&2
  fi
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv"
  python3 -m pip install --quiet --disable-pip-version-check uv
fi

# Bytecode is compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every
# process would otherwise compile every module it imports, seconds per server or CLI start.
uv sync --frozen --quiet --compile-bytecode
