--[[
WebSocketClient: the plug-in's connection to the bridge, with the seed's API.

    local WebSocketClient = require 'WebSocketClient'
    WebSocketClient.init()
    WebSocketClient.addEventListener('job_created', function(data) ... end)
    WebSocketClient.sendJobProgress('job123', 'processing', 50, 'Applying settings')

Lightroom has no WebSocket: the client long-polls the gateway over HTTP
(HTTP_FALLBACK_URL). The logic lives in SDK-free modules (Connection,
Dispatcher, Envelope, SeqTracker, SessionStore, Positions, Backoff, Config,
Json); this file binds them to the Lightroom SDK (LrHttp, LrTasks, LrDate,
LrLogger, LrPrefs, LrDialogs, LrShell). The session and the channel positions
are kept in LrPrefs, so a restarted Lightroom resumes, or recovers what it missed.
Every event reaches its listeners inside a task, whoever caused it. The run is
recorded in `_G` (RunRegistry), so a Shutdown.lua loaded afresh still stops it.
See docs/PLUGIN.md.
]]
local LrDate = import 'LrDate'
local LrDialogs = import 'LrDialogs'
local LrFileUtils = import 'LrFileUtils'
local LrFunctionContext = import 'LrFunctionContext'
local LrHttp = import 'LrHttp'
local LrLogger = import 'LrLogger'
local LrPathUtils = import 'LrPathUtils'
local LrPrefs = import 'LrPrefs'
local LrShell = import 'LrShell'
local LrSocket = import 'LrSocket'
local LrTasks = import 'LrTasks'

local BridgeStatus = require 'BridgeStatus'
local Commands = require 'Commands'
local Config = require 'Config'
local Connection = require 'Connection'
local Dispatcher = require 'Dispatcher'
local Envelope = require 'Envelope'
local Launcher = require 'Launcher'
local RunRegistry = require 'RunRegistry'
local SessionStore = require 'SessionStore'

local M = {}

M.PLUGIN_VERSION = '0.1.0' -- keep in step with VERSION in Info.lua and pyproject.toml

local LOG_NAME = 'LightroomBridge'
local logger = LrLogger(LOG_NAME)
local loggingOn = nil

--- Log to LightroomBridge.log or not (the Plug-in Manager's Logging switch, on by default).
function M.setLogging(on)
	on = on ~= false
	if on == loggingOn then return end
	loggingOn = on
	if on then logger:enable('logfile') else logger:disable() end
end
M.setLogging(LrPrefs.prefsForPlugin().logging)

local log = {
	info = function(text) logger:info(text) end,
	warn = function(text) logger:warn(text) end,
	error = function(text) logger:error(text) end,
}

local runtime = {
	http = LrHttp,
	sleep = function(seconds) LrTasks.sleep(seconds) end,
	now = function() return LrDate.currentTime() end,
	spawn = function(fn, name) LrTasks.startAsyncTask(fn, name) end,
	protect = LrTasks.pcall,
	canYield = function() return LrTasks.canYield() end,
	random = math.random,
	log = log,
	shared = RunRegistry.shared(_PLUGIN and _PLUGIN.id),
	execute = function(command)
		-- Windows runs it through `cmd /c`, which drops the first and last quote of a command
		-- that starts with one: one more pair keeps a quoted path with spaces whole.
		if WIN_ENV then command = '"' .. command .. '"' end
		return LrTasks.execute(command)
	end,
	-- LrSocket push (SocketPush.lua, setting TRANSPORT = 'lrsocket')
	bindSocket = function(params) return LrSocket.bind(params) end,
	withContext = function(name, fn) return LrFunctionContext.callWithContext(name, fn) end,
}

local dispatcher = Dispatcher.new(LrTasks.pcall, function(what, eventType, err)
	logger:warn(string.format('%s for %s failed: %s', what, tostring(eventType), tostring(err)))
end, { canYield = LrTasks.canYield, spawn = runtime.spawn })

-- The optional bezel (Plug-in Manager: "Show a message when the connection is lost or back").
local CHOSEN = { disconnect = true, shutdown = true, reconnect = true, replaced = true }
local lost = false
dispatcher:addEventListener('disconnected', function(data)
	if CHOSEN[data.reason] then return end
	lost = true
	if LrPrefs.prefsForPlugin().showBezel then LrDialogs.showBezel('Bridge: connection lost, reconnecting') end
end)
dispatcher:addEventListener('connected', function()
	if not lost then return end
	lost = false
	if LrPrefs.prefsForPlugin().showBezel then LrDialogs.showBezel('Bridge: connected again') end
end)

-- one for the plug-in, whatever the connections: it never starts a second bridge
local launcher = Launcher.new(runtime, BridgeStatus)
launcher.onError = function(data)
	data.type = 'error'
	dispatcher:emit('error', data, false)
end
runtime.launcher = launcher

local connection = nil -- the current Connection (nil before init)
local options = nil -- what init() was given, reused by reconnect()
local seeded = false

--- The settings in use (after init), by their seed names; read-only by convention.
M.config = Config.resolve(nil, nil)

local function start(opts)
	if connection and connection.running then return true end
	if opts ~= nil then options = opts end
	if not seeded then
		math.randomseed(os.time())
		seeded = true
	end
	local prefs = LrPrefs.prefsForPlugin()
	local config, warnings = Config.resolve(prefs, options)
	config.PLUGIN_VERSION = M.PLUGIN_VERSION
	for _, warning in ipairs(warnings) do logger:warn('setting ignored: ' .. warning) end
	M.config = config
	runtime.prefs = prefs
	launcher:configure(config)
	connection = Connection.new(config, runtime, dispatcher, BridgeStatus)
	BridgeStatus.stayingDisconnected = nil
	connection:start()
	return true
end

--- Connect to the bridge (in the background) with settings from the Plug-in
--- Manager and `opts` (setting names, e.g. { HTTP_FALLBACK_URL = '...' }).
--- Does nothing when already started; returns true. With "Stay disconnected"
--- set in the Plug-in Manager it connects nothing (Bridge: Connect still does).
function M.init(opts)
	if connection and connection.running then return true end
	if LrPrefs.prefsForPlugin().stayDisconnected then
		if opts ~= nil then options = opts end
		if not BridgeStatus.stayingDisconnected then logger:info('staying disconnected (the plug-in\'s setting)') end
		BridgeStatus.stayingDisconnected = true
		return true
	end
	return start(opts)
end

-- Stop the current run: this environment's connection, or the one another load of the
-- plug-in started (Lightroom may run Shutdown.lua in a fresh module environment).
local function stopRun(reason, keepSession)
	if connection then
		connection:stop(reason, keepSession)
	elseif runtime.shared.stop then
		runtime.shared.stop(reason, keepSession)
	end
end

--- Stop every task of the client and tell the bridge to forget it; returns true.
--- The channel positions are kept: the next connection recovers what it missed.
function M.disconnect()
	stopRun('disconnect')
	return true
end

--- Stop every task but keep the session at the bridge, so that the next start
--- (Lightroom started again, the plug-in reloaded) resumes it; returns true.
function M.shutdown()
	stopRun('shutdown', true)
	return true
end

--- Drop the connection and connect again at once (re-reading the settings);
--- the session is resumed when the server is the same. Connects even with
--- "Stay disconnected" set: it is the photographer's explicit request.
function M.reconnect()
	stopRun('reconnect', true)
	connection = nil
	return start()
end

function M.isConnected()
	return connection ~= nil and connection:isConnected()
end

function M.getClientId()
	return connection and connection.clientId or nil
end

--- Send a message ({type = ..., ...}) to the bridge's backends.
--- Inside a task: returns true and the bridge's response, or false and why.
--- Outside a task: the message is sent from a new task; returns true.
function M.send(message)
	local problem = Envelope.invalid(message)
	if problem then return false, problem end
	if (message.type == 'subscribe' or message.type == 'unsubscribe') and message.channels ~= nil then
		-- kept like subscribe()/unsubscribe(), so a resumed session does not undo it
		return M[message.type](message.channels)
	end
	if not M.isConnected() then return false, 'not connected' end
	local current = connection
	if LrTasks.canYield() then
		local result = current:sendNow(message)
		if result.ok then return true, result.response end
		return false, result.reason or result.kind
	end
	LrTasks.startAsyncTask(function()
		local result = current:sendNow(message)
		if not result.ok then
			logger:warn('sending ' .. message.type .. ' failed: ' .. tostring(result.reason or result.kind))
		end
	end, 'LightroomBridge send')
	return true
end

-- The store the run-time subscription changes go to: the connection's, or one opened for the
-- purpose when there is none (the change then applies at the next connection).
local function channelStore()
	if connection then return connection.store end
	local config = Config.resolve(LrPrefs.prefsForPlugin(), options)
	return SessionStore.new(LrPrefs.prefsForPlugin(), config.HTTP_FALLBACK_URL, runtime.now, config.SAVE_INTERVAL)
end

local function setSubscribed(channels, on)
	local list = Config.channelList(channels)
	if #list == 0 then return false, 'channels must name at least one channel' end
	if not connection then
		channelStore():setChannels(list, on)
		return true, 'applied at the next connection'
	end
	local current = connection
	if LrTasks.canYield() then
		local result = current:setSubscribed(list, on)
		if result.ok then return true, result.response or 'applied at the next connection' end
		return false, result.reason or result.kind
	end
	current.store:setChannels(list, on) -- kept now; told to the bridge from a task
	LrTasks.startAsyncTask(function()
		local result = current:setSubscribed(list, on)
		if not result.ok then
			logger:warn((on and 'subscribing' or 'unsubscribing') .. ' failed: ' .. tostring(result.reason or result.kind))
		end
	end, 'LightroomBridge subscribe')
	return true
end

--- Subscribe to `channels` (a list, or names separated by commas) now and at every later
--- connection, resumed or new, until unsubscribe(); kept in LrPrefs. Inside a task: true and
--- the bridge's reply, or false and why; outside a task (or when not connected): true.
function M.subscribe(channels)
	return setSubscribed(channels, true)
end

--- Unsubscribe from `channels` now and at every later connection (a channel of the Channels
--- setting included) until subscribe(); returns like subscribe().
function M.unsubscribe(channels)
	return setSubscribed(channels, false)
end

--- The channels the plug-in subscribes: the Channels setting with the changes made by
--- subscribe() and unsubscribe().
function M.getSubscriptions()
	local store = channelStore()
	local config = connection and connection.config or Config.resolve(LrPrefs.prefsForPlugin(), options)
	return Config.effectiveChannels(config.CHANNELS, store.channelChanges)
end

--- Where Lightroom writes the plug-in's log: Documents/LrClassicLogs/LightroomBridge.log.
function M.logFile()
	local folder = LrPathUtils.child(LrPathUtils.getStandardFilePath('documents'), 'LrClassicLogs')
	return LrPathUtils.child(folder, LOG_NAME .. '.log'), folder
end

--- Show the log file in Finder or Explorer (its folder when there is no log yet); returns
--- the path shown, or nil when neither exists.
function M.revealLog()
	local file, folder = M.logFile()
	local target = (LrFileUtils.exists(file) and file) or (LrFileUtils.exists(folder) and folder) or nil
	if target then LrShell.revealInShell(target) end
	return target
end

function M.sendJobProgress(jobId, stage, progress, message)
	return M.send(Envelope.jobProgress(jobId, stage, progress, message))
end

function M.sendJobComplete(jobId, success, result)
	return M.send(Envelope.jobComplete(jobId, success, result))
end

function M.sendError(errorType, message, details)
	return M.send(Envelope.error(errorType, message, details))
end

--- Call `listener(data)` for each message of `eventType` ('*': every message),
--- and for the connection events connected, disconnected, reconnecting, error,
--- messages_dropped and recovery.
function M.addEventListener(eventType, listener)
	dispatcher:addEventListener(eventType, listener)
end

function M.removeEventListener(eventType, listener)
	return dispatcher:removeEventListener(eventType, listener)
end

--- The one handler for messages of `messageType` (called before the listeners).
function M.registerHandler(messageType, handler)
	dispatcher:registerHandler(messageType, handler)
end

-- Commands from backends (docs/PLUGIN.md): each runs in its own task, its outcome goes back to the caller.
local commands = Commands.new(runtime, function(message) return M.send(message) end)
dispatcher:registerHandler('command', function(message) commands:handle(message) end)

--- Run `fn(params, command)` for each backend call of `action`; what it returns goes back to the caller,
--- an error it raises goes back as CommandFailed; command:progress(pct, text) reports progress.
function M.registerCommand(action, fn)
	commands:register(action, fn)
end

return M
