--[[
ShutdownApp.lua (LrShutdownApp): Lightroom is quitting; tell the bridge this
client is gone (at most DISCONNECT_TIMEOUT seconds), then let Lightroom quit.
]]
local LrTasks = import 'LrTasks'

local WebSocketClient = require 'WebSocketClient'

return {
	LrShutdownFunction = function(doneFunction, progressFunction)
		LrTasks.startAsyncTask(function()
			LrTasks.pcall(WebSocketClient.disconnect)
			progressFunction(1)
			doneFunction()
		end, 'LightroomBridge shutdown')
	end,
}
