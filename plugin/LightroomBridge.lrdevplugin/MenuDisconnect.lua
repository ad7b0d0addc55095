--[[
MenuDisconnect.lua: File (or Library) > Plug-in Extras > Bridge: Disconnect. Stays
disconnected until Bridge: Connect or the next start of Lightroom.
]]
local LrDialogs = import 'LrDialogs'

local WebSocketClient = require 'WebSocketClient'

WebSocketClient.disconnect()
LrDialogs.showBezel('Bridge: disconnected')
