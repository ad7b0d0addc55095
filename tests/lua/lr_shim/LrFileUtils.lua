--[[
LrFileUtils shim: exists(path) -> "file" | "directory" | false, createAllDirectories(path).
A stand-in for tests; not Adobe code.
]]
local LrFileUtils = {}

function LrFileUtils.exists(path)
	local f = io.open(path, "rb")
	if not f then return false end
	local _, err = f:read(0)
	f:close()
	if err and tostring(err):find("directory", 1, true) then return "directory" end
	return "file"
end

function LrFileUtils.createAllDirectories(path)
	return os.execute("mkdir -p '" .. tostring(path):gsub("'", "'\\''") .. "'") == 0
end

return LrFileUtils
