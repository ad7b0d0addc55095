-- luacheck config for the plug-in: Lightroom runs Lua 5.1 with a few SDK globals.
-- Run from the repository root: luacheck --config plugin/.luacheckrc plugin
std = "lua51"
read_globals = { "import", "_PLUGIN", "LOC", "WIN_ENV", "MAC_ENV" }
max_line_length = 120
