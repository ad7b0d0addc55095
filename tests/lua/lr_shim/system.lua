--[[
lr_shim.system: load a module the stand-in itself needs (LuaSocket, dkjson) from
the system's Lua paths, without making it visible to the plug-in.

Lightroom's `require` finds only the plug-in's own files. The specs therefore
narrow package.path to the plug-in folder and the stand-in (shim.confine), and
the stand-in's own dependencies must not leak into package.loaded either, or a
plug-in module requiring them would pass its tests and fail in Lightroom. So a
module loaded here (and every module it pulled in) is kept in a private table
and removed from package.loaded again.

    local socket = require('lr_shim.system')('socket')

A stand-in for tests; not Adobe code.
]]
local SYSTEM_PATH, SYSTEM_CPATH = package.path, package.cpath -- captured before any confine()

local private = {}

return function(name)
	if private[name] ~= nil then return private[name] end
	local before = {}
	for key in pairs(package.loaded) do before[key] = true end
	for key, value in pairs(private) do package.loaded[key] = value end -- socket.http finds socket
	local path, cpath = package.path, package.cpath
	package.path, package.cpath = SYSTEM_PATH, SYSTEM_CPATH
	local ok, result = pcall(require, name)
	package.path, package.cpath = path, cpath
	for key, value in pairs(package.loaded) do
		if not before[key] then
			private[key] = value
			package.loaded[key] = nil
		end
	end
	if not ok then error(result, 2) end
	return result
end
