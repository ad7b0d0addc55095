#!/bin/sh
# Install Debian's nginx and its nchan module for `make bench-compare`, only if missing.
set -e
[ -x /usr/sbin/nginx ] && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "bench-compare needs nginx and libnginx-mod-nchan (install them with your package manager)" >&2
  exit 1
fi
echo "installing: nginx libnginx-mod-nchan"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
