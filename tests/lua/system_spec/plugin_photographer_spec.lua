-- Issue point 6, against the real bridge: the Plug-in Manager section built from the LrView
-- stand-in (every preference has a field; a bad value shows a message and is not saved), the
-- live status in plain words (never a raw SDK code), the bezel on loss and return, the
-- logging switch and Show Log File, and Stay disconnected honoured at start.
local LrBinding = import 'LrBinding'
local LrDialogs = import 'LrDialogs'
local LrFileUtils = import 'LrFileUtils'
local LrHttp = import 'LrHttp'
local LrPathUtils = import 'LrPathUtils'
local LrPrefs = import 'LrPrefs'
local LrShell = import 'LrShell'
local LrTasks = import 'LrTasks'
local LrView = import 'LrView'
local live = require 'support.live'

local RAW_CODES = { 'cannotConnectToHost', 'timedOut', 'cannotFindHost', 'networkConnectionLost', 'badServerResponse',
	'badURL', 'unknown_client', 'hub_unavailable' }

local function openDialog()
	local provider = live.runFile('PluginInfoProvider.lua')
	local props = LrBinding.makePropertyTable()
	provider.startDialog(props)
	local views = {}
	LrView._walk(provider.sectionsForTopOfDialog(LrView.osFactory(), props), function(v) views[#views + 1] = v end)
	return provider, props, views
end

local function find(views, kind, pred)
	for _, v in ipairs(views) do
		if v._kind == kind and (pred == nil or pred(v)) then return v end
	end
end

local function statusText(props)
	return table.concat({ props.stateText, props.stateDetailText, props.queueText, props.countsText,
		props.lastMessageText }, ' | ')
end

local function assertNoRawCode(text)
	for _, code in ipairs(RAW_CODES) do
		assert.is_nil(text:find(code, 1, true), 'raw code ' .. code .. ' in: ' .. text)
	end
end

describe("the Plug-in Manager section", function()
	before_each(function()
		live.reset()
		LrDialogs._calls = {}
		LrShell._calls = {}
	end)

	it("has a field for every preference and a checkbox for every switch", function()
		local provider, props, views = openDialog()
		local fields, boxes = {}, {}
		for _, v in ipairs(views) do
			if v._kind == 'edit_field' or v._kind == 'popup_menu' then fields[v.value.key] = true end -- transport: a menu
			if v._kind == 'checkbox' then boxes[v.value.key] = true end
		end
		for key in pairs(require('Config').PREF_KEYS) do assert.is_true(fields[key], 'no field for ' .. key) end
		for key in pairs(require('Config').SWITCHES) do assert.is_true(boxes[key], 'no checkbox for ' .. key) end
		provider.endDialog(props)
	end)

	it("shows a message for a bad value as it is typed, and does not save it", function()
		local provider, props, views = openDialog()
		local prefs = LrPrefs.prefsForPlugin()
		local message = find(views, 'static_text', function(v)
			return LrView._isBinding(v.title) and v.title.key == 'serverUrlProblem'
		end)
		assert.is_table(message)
		assert.are.equal('', LrView._resolve(message.title, props))
		props.serverUrl = 'ftp://127.0.0.1:5100'
		assert.matches('^Server URL must look like http://', LrView._resolve(message.title, props))
		props.reconnectDelay = 'soon'
		assert.matches('^Retry delay %(s%) must be a number', props.reconnectDelayProblem)
		props.maxReconnectAttempts = '7'
		provider.endDialog(props)
		assert.is_nil(prefs.serverUrl)
		assert.is_nil(prefs.reconnectDelay)
		assert.are.equal(7, prefs.maxReconnectAttempts)
		local said = LrDialogs._calls[#LrDialogs._calls]
		assert.are.equal('message', said.kind)
		assert.matches('Server URL must look like', said[2], 1, true)
		assert.are.equal('warning', said[3])
		live.finish(require 'WebSocketClient')
	end)

	it("shows the live status in plain words while open, never a raw SDK code", function()
		local closed = require('support.server').closedPort()
		local prefs = LrPrefs.prefsForPlugin()
		prefs.serverUrl = 'http://127.0.0.1:' .. closed
		prefs.reconnectDelay = 0.2
		prefs.maxReconnectAttempts = 3
		local ws = live.client()
		live.runFile('Init.lua')
		local provider, props, views = openDialog()
		live.runUntil(function() return props.stateText == 'Reconnecting' end, 10, 'Reconnecting in the dialog')
		assert.matches('nothing answers at http://127.0.0.1:' .. closed .. ': is the bridge running?',
			props.stateDetailText, 1, true)
		assertNoRawCode(statusText(props))
		live.runUntil(function() return props.stateText == 'Bridge unreachable' end, 10, 'unreachable')
		assertNoRawCode(statusText(props))
		assertNoRawCode(require('StatusText').describe())
		-- the photographer enters the right URL: Connect applies it at once, the dialog still open
		props.serverUrl = live.url
		find(views, 'push_button', function(v) return v.title == 'Connect' end).action()
		live.runUntil(function() return props.stateText == 'Connected' end, 10, 'Connected in the dialog')
		live.runUntil(function() return props.stateText == 'Connected' and props.queueText ~= 'no answer yet' end, 10,
			'a poll answer')
		assert.matches('in the last answer', props.queueText, 1, true)
		assert.matches('0 dropped by the bridge', props.countsText, 1, true)
		assertNoRawCode(statusText(props))
		provider.endDialog(props)
		live.finish(ws)
	end)

	it("shows a bezel when the connection is lost and when it comes back, if asked to", function()
		LrPrefs.prefsForPlugin().showBezel = true
		local ws, events = live.client()
		ws.init(live.options())
		live.wait(events, 'connected')
		live.request('POST', '/ws/disconnect', { client_id = ws.getClientId() })
		live.wait(events, 'connected', nil, 2)
		live.runUntil(function() return #LrDialogs._calls >= 2 end, 5, 'two bezels')
		assert.are.same({ 'bezel', 'bezel' }, { LrDialogs._calls[1].kind, LrDialogs._calls[2].kind })
		assert.matches('lost', LrDialogs._calls[1][1], 1, true)
		assert.matches('connected again', LrDialogs._calls[2][1], 1, true)
		live.finish(ws)
		assert.are.equal(2, #LrDialogs._calls) -- Bridge: Disconnect by the photographer shows none
	end)

	it("turns logging off and on, and reveals the log file", function()
		local ws = live.client()
		local file, folder = ws.logFile()
		assert.matches('Documents/LrClassicLogs/LightroomBridge.log$', file)
		assert.is_nil(ws.revealLog())
		LrFileUtils.createAllDirectories(folder)
		assert.are.equal(folder, ws.revealLog())
		local f = assert(io.open(file, 'w')); f:write('x\n'); f:close()
		local provider, props, views = openDialog()
		find(views, 'push_button', function(v) return v.title == 'Show Log File' end).action()
		assert.are.same({ kind = 'reveal', path = file }, LrShell._calls[#LrShell._calls])
		-- logging off: nothing more reaches the logger's file
		local logger = (import 'LrLogger')('LightroomBridge')
		props.logging = false
		provider.endDialog(props)
		assert.is_false(LrPrefs.prefsForPlugin().logging)
		local sinks = 0
		for _ in pairs(logger._sinks) do sinks = sinks + 1 end
		assert.are.equal(0, sinks)
		ws.setLogging(true)
		sinks = 0
		for _ in pairs(logger._sinks) do sinks = sinks + 1 end
		assert.is_true(sinks > 0)
		live.finish(ws)
		assert.are.equal(LrPathUtils.child(folder, 'LightroomBridge.log'), file)
	end)

	it("honours Stay disconnected at start; Bridge: Connect still connects", function()
		LrPrefs.prefsForPlugin().stayDisconnected = true
		LrPrefs.prefsForPlugin().serverUrl = live.url
		LrHttp._log = {}
		local ws, events = live.client()
		live.runFile('Init.lua')
		LrTasks._runUntil(function() return false end, 0.5)
		assert.are.same({}, LrHttp._log)
		assert.is_false(ws.isConnected())
		assert.matches('Stay disconnected is on', require('StatusText').describe(), 1, true)
		live.runFile('MenuConnect.lua')
		live.wait(events, 'connected')
		live.finish(ws)
	end)
end)
