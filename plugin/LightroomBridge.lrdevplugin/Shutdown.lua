--[[
Shutdown.lua (LrShutdownPlugin, LrDisablePlugin): stop every task of the client,
so a reloaded plug-in starts clean. The session stays at the bridge: the
reloaded (or re-enabled) plug-in resumes it.
]]
local WebSocketClient = require 'WebSocketClient'

WebSocketClient.shutdown()
