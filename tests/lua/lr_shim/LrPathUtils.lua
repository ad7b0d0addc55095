--[[
LrPathUtils shim: child, parent, leafName, getStandardFilePath. The standard
folders live under $LR_SHIM_HOME (default: the system's temporary folder), e.g.
getStandardFilePath('documents') = $LR_SHIM_HOME/Documents.
A stand-in for tests; not Adobe code.
]]
local LrPathUtils = {}

local FOLDERS = { home = "", documents = "Documents", desktop = "Desktop", appData = "AppData", temp = "tmp",
	pictures = "Pictures" }

function LrPathUtils.child(path, name)
	return (tostring(path):gsub("/+$", "")) .. "/" .. name
end

function LrPathUtils.parent(path)
	return (tostring(path):match("^(.*)/[^/]+/*$"))
end

function LrPathUtils.leafName(path)
	return (tostring(path):match("([^/]+)/*$"))
end

function LrPathUtils.getStandardFilePath(name)
	local folder = FOLDERS[name]
	if folder == nil then error("LrPathUtils shim: unknown standard folder " .. tostring(name), 2) end
	local home = os.getenv("LR_SHIM_HOME")
	if home == nil or home == "" then home = os.getenv("TMPDIR") or "/tmp" end
	return folder == "" and home or LrPathUtils.child(home, folder)
end

return LrPathUtils
