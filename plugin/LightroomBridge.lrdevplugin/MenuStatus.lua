--[[
MenuStatus.lua: File > Plug-in Extras > Bridge: Show Status.
]]
local LrDialogs = import 'LrDialogs'

local StatusText = require 'StatusText'

LrDialogs.message('Lightroom Bridge', StatusText.describe(), 'info')
