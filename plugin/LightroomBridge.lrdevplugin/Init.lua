--[[
Init.lua (LrInitPlugin, LrEnablePlugin): connect to the bridge in the background.
]]
local WebSocketClient = require 'WebSocketClient'

WebSocketClient.init()
