#!/bin/sh
# Build dist/LightroomBridge.lrplugin and dist/LightroomBridge.lrplugin.zip, ready for
# Lightroom's Plug-in Manager: the plug-in's modules with dkjson.lua (Debian's lua-dkjson,
# MIT licence, its notice kept in the file) bundled beside them. `make plugin` runs this.
# A copy of dkjson.lua also goes into the development folder (ignored by git), so that
# plugin/LightroomBridge.lrdevplugin can be added to Lightroom as it is.
# DIST (default: dist) chooses the output folder.
set -e
cd "$(dirname "$0")/.."
SRC=plugin/LightroomBridge.lrdevplugin
NAME=LightroomBridge.lrplugin
DIST=${DIST:-dist}
OUT=$DIST/$NAME

DKJSON=$(lua5.1 -e 'for p in package.path:gmatch("[^;]+") do
  local f = p:gsub("%?", "dkjson"); local h = io.open(f)
  if h then h:close(); print(f); return end end' 2>/dev/null || true)
if [ -z "$DKJSON" ]; then
  echo "dkjson.lua not found for lua5.1: install lua-dkjson (make system-deps)" >&2
  exit 1
fi

rm -rf "$OUT" "$DIST/$NAME.zip"
mkdir -p "$OUT"
for f in "$SRC"/*.lua; do
  [ "$(basename "$f")" = dkjson.lua ] || cp "$f" "$OUT/"
done
cp "$DKJSON" "$OUT/dkjson.lua"
cp "$DKJSON" "$SRC/dkjson.lua"
(cd "$DIST" && python3 -m zipfile -c "$NAME.zip" "$NAME")
echo "built $OUT ($(ls "$OUT" | wc -l | tr -d ' ') files) and $DIST/$NAME.zip"
