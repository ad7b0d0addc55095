--[[
ShutdownApp.lua (LrShutdownApp): Lightroom is quitting; save the session and
the channel positions, release the parked poll (at most DISCONNECT_TIMEOUT
seconds), then let Lightroom quit. The next start resumes the session.
]]
local LrTasks = import 'LrTasks'

local WebSocketClient = require 'WebSocketClient'

return {
	LrShutdownFunction = function(doneFunction, progressFunction)
		LrTasks.startAsyncTask(function()
			LrTasks.pcall(WebSocketClient.shutdown)
			progressFunction(1)
			doneFunction()
		end, 'LightroomBridge shutdown')
	end,
}
