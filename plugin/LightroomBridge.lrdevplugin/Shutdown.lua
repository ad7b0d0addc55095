--[[
Shutdown.lua (LrShutdownPlugin, LrDisablePlugin): stop every task of the client
and release its id at the bridge, so a reloaded plug-in starts clean.
]]
local WebSocketClient = require 'WebSocketClient'

WebSocketClient.disconnect()
