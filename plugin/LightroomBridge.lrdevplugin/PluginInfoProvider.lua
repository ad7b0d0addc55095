--[[
PluginInfoProvider.lua: the plug-in's section in Lightroom's Plug-in Manager.

Shows the connection in plain words (connected, reconnecting, unreachable;
last message time; the queue and dropped counts from the poll answers),
refreshed every second while the dialog is open, and edits every preference
kept in LrPrefs: the connection settings (each checked as it is typed: a value
that cannot be used shows why beside it, and is not saved), and three switches
(a bezel when the connection is lost or back, logging, staying disconnected),
and the transport: long-poll, or LrSocket push with long-poll behind it
(SocketPush.lua), with the one in use and why it fell back.
Changed settings reconnect when the dialog closes, or at once with Connect.
]]
local LrColor = import 'LrColor'
local LrDialogs = import 'LrDialogs'
local LrPrefs = import 'LrPrefs'
local LrTasks = import 'LrTasks'
local LrView = import 'LrView'

local Config = require 'Config'
local StatusText = require 'StatusText'
local WebSocketClient = require 'WebSocketClient'

local bind = LrView.bind
local share = LrView.share

local D = Config.DEFAULTS

-- Every text preference: key, label, default (as shown), note under the field.
local FIELDS = {
	{ key = 'serverUrl', label = 'Server URL', default = D.HTTP_FALLBACK_URL,
		note = 'The bridge\'s address (BRIDGE_HTTP_PORT), e.g. http://127.0.0.1:5100.' },
	{ key = 'channels', label = 'Channels', default = table.concat(D.CHANNELS, ', '),
		note = 'Separated by commas: jobs, system, photos, sessions.' },
	{ key = 'clientName', label = 'Client name', default = D.CLIENT_NAME },
	{ key = 'startCommand', label = 'Start command', default = D.START_COMMAND,
		note = 'Runs when no bridge answers (empty: off): the full path of lrbridge, then run.' },
	{ key = 'reconnectDelay', label = 'Retry delay (s)', default = tostring(D.RECONNECT_DELAY), number = true,
		note = 'After a lost connection the first retry is at once, then this delay, doubling.' },
	{ key = 'maxReconnectDelay', label = 'Longest retry delay (s)', default = tostring(D.RECONNECT_MAX_DELAY),
		number = true },
	{ key = 'maxReconnectAttempts', label = 'Attempts before "unreachable"', default = tostring(D.MAX_RECONNECT_ATTEMPTS),
		number = true, note = 'Then it retries every 2 minutes, forever.' },
	{ key = 'pingInterval', label = 'Keep-alive ping (s)', default = tostring(D.PING_INTERVAL), number = true },
}

-- The switches: key, title of the checkbox.
local SWITCHES = {
	{ key = 'showBezel', title = 'Show a message when the connection is lost or comes back' },
	{ key = 'logging', title = 'Write a log (LightroomBridge.log)' },
	{ key = 'stayDisconnected', title = 'Stay disconnected (do not connect when Lightroom starts)' },
}

-- The transport menu (preference `transport`; the default is not stored).
local TRANSPORTS = {
	{ title = 'Long-poll', value = 'longpoll' },
	{ title = 'LrSocket push (long-poll behind it)', value = 'lrsocket' },
}

local refreshing = nil -- token of the refresh task of the open dialog

local function problemKey(key) return key .. 'Problem' end

local function refresh(propertyTable)
	local fields = StatusText.fields()
	propertyTable.stateText = fields.state
	propertyTable.stateDetailText = fields.detail
	propertyTable.clientIdText = fields.clientId
	propertyTable.lastMessageText = fields.lastMessage
	propertyTable.queueText = fields.queue
	propertyTable.countsText = fields.counts
	propertyTable.launchText = fields.launch
	propertyTable.transportText = fields.transport
end

-- Check one field's value; its message (empty when fine) goes beside the field.
local function check(propertyTable, field)
	local problem = Config.check(field.key, propertyTable[field.key])
	propertyTable[problemKey(field.key)] = problem and (field.label .. ' ' .. problem) or ''
	return problem
end

-- Copy the dialog's values into the preferences. Returns whether a connection setting changed,
-- which switches changed ({key = true}), and the messages of the values not saved.
local function save(propertyTable)
	local prefs = LrPrefs.prefsForPlugin()
	local changed, switched, problems = false, {}, {}
	for _, field in ipairs(FIELDS) do
		if check(propertyTable, field) then
			problems[#problems + 1] = propertyTable[problemKey(field.key)]
		else
			local value = propertyTable[field.key]
			if value == nil or value == field.default then value = nil end
			if value ~= nil and field.number then value = tonumber(value) end
			if prefs[field.key] ~= value then
				prefs[field.key] = value
				changed = true
			end
		end
	end
	local transport = propertyTable.transport
	if transport == D.TRANSPORT or not Config.TRANSPORTS[transport or ''] then transport = nil end
	if prefs.transport ~= transport then
		prefs.transport = transport
		changed = true
	end
	for _, switch in ipairs(SWITCHES) do
		local value = propertyTable[switch.key] == true
		local stored = prefs[switch.key]
		if stored == nil then stored = Config.SWITCHES[switch.key] end
		if stored ~= value then
			prefs[switch.key] = value
			switched[switch.key] = true
		end
	end
	return changed, switched, problems
end

-- Apply what save() found: logging at once; stay disconnected stops the connection (keeping the
-- session); a changed setting (or stay disconnected turned off) reconnects.
local function apply(changed, switched)
	local prefs = LrPrefs.prefsForPlugin()
	WebSocketClient.setLogging(prefs.logging)
	if prefs.stayDisconnected then
		if switched.stayDisconnected then WebSocketClient.shutdown() end
	elseif changed or switched.stayDisconnected then
		WebSocketClient.reconnect()
	end
end

local function tell(problems)
	if #problems == 0 then return end
	LrDialogs.message('Lightroom Bridge: not saved', table.concat(problems, '\n')
		.. '\n\nThe previous value stays in use.', 'warning')
end

local function startDialog(propertyTable)
	local prefs = LrPrefs.prefsForPlugin()
	for _, field in ipairs(FIELDS) do
		local value = prefs[field.key]
		propertyTable[field.key] = value ~= nil and tostring(value) or field.default
		propertyTable[problemKey(field.key)] = ''
		if propertyTable.addObserver then
			propertyTable:addObserver(field.key, function() check(propertyTable, field) end)
		end
		check(propertyTable, field)
	end
	for _, switch in ipairs(SWITCHES) do
		local value = prefs[switch.key]
		if value == nil then value = Config.SWITCHES[switch.key] end
		propertyTable[switch.key] = value == true
	end
	propertyTable.transport = Config.TRANSPORTS[prefs.transport or ''] and prefs.transport or D.TRANSPORT
	propertyTable.logFileText = (WebSocketClient.logFile())
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
	local changed, switched, problems = save(propertyTable)
	tell(problems)
	apply(changed, switched)
end

local function row(f, label, view)
	return f:row {
		f:static_text { title = label, alignment = 'right', width = share 'bridge_label_width' },
		view,
	}
end

local function fieldRows(f, rows)
	local red = LrColor(0.75, 0, 0)
	for _, field in ipairs(FIELDS) do
		rows[#rows + 1] = row(f, field.label .. ':', f:edit_field {
			value = bind(field.key), width_in_chars = field.number and 8 or 32, immediate = true,
		})
		rows[#rows + 1] = row(f, '', f:static_text { title = bind(problemKey(field.key)), text_color = red,
			fill_horizontal = 1 })
		if field.note then rows[#rows + 1] = row(f, '', f:static_text { title = field.note, fill_horizontal = 1 }) end
	end
end

local function sectionsForTopOfDialog(f, propertyTable)
	local rows = {
		title = 'Bridge connection',
		synopsis = bind 'stateText',
		bind_to_object = propertyTable,
		row(f, 'Status:', f:static_text { title = bind 'stateText', fill_horizontal = 1 }),
		row(f, '', f:static_text { title = bind 'stateDetailText', fill_horizontal = 1 }),
		row(f, 'Last message:', f:static_text { title = bind 'lastMessageText', fill_horizontal = 1 }),
		row(f, 'Queue:', f:static_text { title = bind 'queueText', fill_horizontal = 1 }),
		row(f, 'Messages:', f:static_text { title = bind 'countsText', fill_horizontal = 1 }),
		row(f, 'Client id:', f:static_text { title = bind 'clientIdText', fill_horizontal = 1 }),
		row(f, 'Bridge start:', f:static_text { title = bind 'launchText', fill_horizontal = 1 }),
		row(f, 'Transport:', f:popup_menu { value = bind 'transport', items = TRANSPORTS }),
		row(f, 'In use:', f:static_text { title = bind 'transportText', fill_horizontal = 1 }),
		f:row {
			f:static_text { title = '', width = share 'bridge_label_width' },
			f:push_button {
				title = 'Connect',
				action = function()
					local _, _, problems = save(propertyTable)
					tell(problems)
					WebSocketClient.setLogging(LrPrefs.prefsForPlugin().logging)
					WebSocketClient.reconnect() -- the photographer asks: even with Stay disconnected
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
		f:separator { fill_horizontal = 1 },
	}
	fieldRows(f, rows)
	rows[#rows + 1] = f:separator { fill_horizontal = 1 }
	for _, switch in ipairs(SWITCHES) do
		rows[#rows + 1] = row(f, '', f:checkbox { title = switch.title, value = bind(switch.key) })
	end
	rows[#rows + 1] = row(f, 'Log file:', f:static_text { title = bind 'logFileText', fill_horizontal = 1 })
	rows[#rows + 1] = f:row {
		f:static_text { title = '', width = share 'bridge_label_width' },
		f:push_button {
			title = 'Show Log File',
			action = function()
				if not WebSocketClient.revealLog() then
					LrDialogs.message('Lightroom Bridge', 'There is no log yet: ' .. (WebSocketClient.logFile()), 'info')
				end
			end,
		},
	}
	return { rows }
end

return {
	startDialog = startDialog,
	endDialog = endDialog,
	sectionsForTopOfDialog = sectionsForTopOfDialog,
	FIELDS = FIELDS,
	SWITCHES = SWITCHES,
}
