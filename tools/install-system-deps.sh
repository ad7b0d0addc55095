#!/bin/sh
# Install the Debian packages the tests need (Lua 5.1 and its libraries, chromium), only if missing.
set -e
need=""
command -v lua5.1 >/dev/null 2>&1 || need="$need lua5.1"
command -v busted >/dev/null 2>&1 || need="$need lua-busted"
command -v luacheck >/dev/null 2>&1 || need="$need lua-check"
# the dashboard test drives Debian's chromium headless (Playwright with executable_path; no browser download)
command -v chromium >/dev/null 2>&1 || need="$need chromium"
# the wall-clock jump test runs the hub under libfaketime
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || command -v faketime >/dev/null 2>&1 || need="$need faketime"
if command -v lua5.1 >/dev/null 2>&1; then
  lua5.1 -e 'require "socket"' >/dev/null 2>&1 || need="$need lua-socket"
  lua5.1 -e 'require "dkjson"' >/dev/null 2>&1 || need="$need lua-dkjson"
else
  need="$need lua-socket lua-dkjson"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages:$need (install them with your package manager)" >&2
  exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $need >/dev/null
