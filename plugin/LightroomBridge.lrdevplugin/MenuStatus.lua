--[[
MenuStatus.lua: File (or Library) > Plug-in Extras > Bridge: Show Status: the
status in plain words at the moment it is chosen (the Plug-in Manager's section
shows it live).
]]
local LrDialogs = import 'LrDialogs'

local StatusText = require 'StatusText'

LrDialogs.message('Lightroom Bridge', StatusText.describe(), 'info')
