-- luacheck config for the shim, the specs and the drivers: Lua 5.1 with a few SDK globals
std = "lua51"
read_globals = { "import", "_PLUGIN", "LOC", "WIN_ENV", "MAC_ENV" }
max_line_length = 140
files["spec/"] = { std = "+busted" }
files["lr_shim/init.lua"] = { globals = { "import", "_PLUGIN", "LOC", "WIN_ENV", "MAC_ENV" } }
