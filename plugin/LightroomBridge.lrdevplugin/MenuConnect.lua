--[[
MenuConnect.lua: File (or Library) > Plug-in Extras > Bridge: Connect. Connects now (no
waiting for the next retry), with the settings of the Plug-in Manager.
]]
local LrDialogs = import 'LrDialogs'

local WebSocketClient = require 'WebSocketClient'

if WebSocketClient.isConnected() then
	LrDialogs.showBezel('Bridge: already connected')
else
	WebSocketClient.reconnect()
	LrDialogs.showBezel('Bridge: connecting to ' .. WebSocketClient.config.HTTP_FALLBACK_URL)
end
