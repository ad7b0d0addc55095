--[[
PluginInfoProvider.lua: the plug-in's section in Lightroom's Plug-in Manager.

Shows the connection (state, client id, last message time, refreshed every
second while the dialog is open) and edits the settings kept in LrPrefs:
server URL, channels, client name, the command that starts the bridge
when none answers (empty: never), and the transport (long-poll, or LrSocket
push with long-poll behind it: SocketPush.lua). Changed settings reconnect when the
dialog closes, or at once with the Connect button.
]]
local LrPrefs = import 'LrPrefs'
local LrTasks = import 'LrTasks'
local LrView = import 'LrView'

local Config = require 'Config'
local StatusText = require 'StatusText'
local WebSocketClient = require 'WebSocketClient'

local bind = LrView.bind
local share = LrView.share

local refreshing = nil -- token of the refresh task of the open dialog

local SETTINGS = {
	serverUrl = Config.DEFAULTS.HTTP_FALLBACK_URL,
	channels = table.concat(Config.DEFAULTS.CHANNELS, ', '),
	clientName = Config.DEFAULTS.CLIENT_NAME,
	startCommand = Config.DEFAULTS.START_COMMAND,
	transport = Config.DEFAULTS.TRANSPORT,
}

local function refresh(propertyTable)
	local fields = StatusText.fields()
	propertyTable.stateText = fields.state
	propertyTable.clientIdText = fields.clientId
	propertyTable.lastMessageText = fields.lastMessage
	propertyTable.countsText = fields.detail
	propertyTable.launchText = fields.launch
	propertyTable.transportText = fields.transport
end

-- Copy the dialog's settings into the preferences; true when one changed.
local function save(propertyTable)
	local prefs = LrPrefs.prefsForPlugin()
	local changed = false
	for key, default in pairs(SETTINGS) do
		local value = propertyTable[key]
		if value == default then value = nil end
		if prefs[key] ~= value then
			prefs[key] = value
			changed = true
		end
	end
	return changed
end

local function startDialog(propertyTable)
	local prefs = LrPrefs.prefsForPlugin()
	for key, default in pairs(SETTINGS) do
		propertyTable[key] = prefs[key] or default
	end
	refresh(propertyTable)
	local token = {}
	refreshing = token
	LrTasks.startAsyncTask(function()
		while refreshing == token do
			refresh(propertyTable)
			LrTasks.sleep(1)
		end
	end, 'LightroomBridge status refresh')
end

local function endDialog(propertyTable)
	refreshing = nil
	if save(propertyTable) then WebSocketClient.reconnect() end
end

local function row(f, label, view)
	return f:row {
		f:static_text { title = label, alignment = 'right', width = share 'bridge_label_width' },
		view,
	}
end

local function sectionsForTopOfDialog(f, propertyTable)
	return {
		{
			title = 'Bridge connection',
			synopsis = bind 'stateText',
			bind_to_object = propertyTable,
			row(f, 'Status:', f:static_text { title = bind 'stateText', fill_horizontal = 1 }),
			row(f, 'Client id:', f:static_text { title = bind 'clientIdText', fill_horizontal = 1 }),
			row(f, 'Last message:', f:static_text { title = bind 'lastMessageText', fill_horizontal = 1 }),
			row(f, 'Messages:', f:static_text { title = bind 'countsText', fill_horizontal = 1 }),
			f:separator { fill_horizontal = 1 },
			row(f, 'Server URL:', f:edit_field { value = bind 'serverUrl', width_in_chars = 32, immediate = true }),
			row(f, 'Channels:', f:edit_field { value = bind 'channels', width_in_chars = 32, immediate = true }),
			row(f, 'Client name:', f:edit_field { value = bind 'clientName', width_in_chars = 32, immediate = true }),
			row(f, 'Start command:', f:edit_field { value = bind 'startCommand', width_in_chars = 32, immediate = true }),
			row(f, '', f:static_text {
				title = 'Runs when no bridge answers (empty: off): the full path of lrbridge, then run.',
				fill_horizontal = 1,
			}),
			row(f, 'Bridge start:', f:static_text { title = bind 'launchText', fill_horizontal = 1 }),
			row(f, 'Transport:', f:popup_menu {
				value = bind 'transport',
				items = {
					{ title = 'Long-poll', value = 'longpoll' },
					{ title = 'LrSocket push (long-poll behind it)', value = 'lrsocket' },
				},
			}),
			row(f, 'In use:', f:static_text { title = bind 'transportText', fill_horizontal = 1 }),
			f:row {
				f:static_text { title = '', width = share 'bridge_label_width' },
				f:push_button {
					title = 'Connect',
					action = function()
						save(propertyTable)
						WebSocketClient.reconnect()
						refresh(propertyTable)
					end,
				},
				f:push_button {
					title = 'Disconnect',
					action = function()
						WebSocketClient.disconnect()
						refresh(propertyTable)
					end,
				},
			},
		},
	}
end

return {
	startDialog = startDialog,
	endDialog = endDialog,
	sectionsForTopOfDialog = sectionsForTopOfDialog,
}
