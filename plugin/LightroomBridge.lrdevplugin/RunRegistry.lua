--[[
RunRegistry: the one record of the plug-in's running connection, kept in `_G`
under a key made of the plug-in's id (pure logic, no SDK).

Lightroom may run Shutdown.lua (reload, disable) in a fresh module
environment: `require` then loads new copies of every module, and a copy of
WebSocketClient knows nothing of the connection the old copy started. The
record in `_G` is what both copies see:

    generation   bumped by every start and stop; a task of a run ends as soon as
                 it differs from the value its run started with
    stop         stop(reason, keepSession) of the run that is current, or nil
    owner        that run (to tell whether a stop concerns the current run)

So a Shutdown.lua that finds no connection of its own still stops the old
tasks, and a start stops a run that another environment left behind: never
two pollers on one session.
]]
local M = {}

local PREFIX = 'LightroomBridge.run:'

--- The record for plug-in `id` (created on first use).
function M.shared(id)
	local key = PREFIX .. tostring(id or 'default')
	local record = rawget(_G, key)
	if type(record) ~= 'table' then
		record = { generation = 0 }
		rawset(_G, key, record)
	end
	return record
end

return M
