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
LrLogger, LrPrefs). The session and the channel positions are kept in LrPrefs,
so a restarted Lightroom resumes, or recovers what it missed.
See docs/PLUGIN.md.
]]
local LrDate = import 'LrDate'
local LrFunctionContext = import 'LrFunctionContext'
local LrHttp = import 'LrHttp'
local LrLogger = import 'LrLogger'
local LrPrefs = import 'LrPrefs'
local LrSocket = import 'LrSocket'
local LrTasks = import 'LrTasks'

local BridgeStatus = require 'BridgeStatus'
local Config = require 'Config'
local Connection = require 'Connection'
local Dispatcher = require 'Dispatcher'
local Envelope = require 'Envelope'
local Launcher = require 'Launcher'

local M = {}

M.PLUGIN_VERSION = '0.1.0' -- keep in step with VERSION in Info.lua and pyproject.toml

local logger = LrLogger('LightroomBridge')
logger:enable('logfile')

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

--- Connect to the bridge (in the background) with settings from the Plug-in
--- Manager and `opts` (setting names, e.g. { HTTP_FALLBACK_URL = '...' }).
--- Does nothing when already started; returns true.
function M.init(opts)
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
	connection:start()
	return true
end

--- Stop every task of the client and tell the bridge to forget it; returns true.
--- The channel positions are kept: the next connection recovers what it missed.
function M.disconnect()
	if connection then connection:stop('disconnect') end
	return true
end

--- Stop every task but keep the session at the bridge, so that the next start
--- (Lightroom started again, the plug-in reloaded) resumes it; returns true.
function M.shutdown()
	if connection then connection:stop('shutdown', true) end
	return true
end

--- Drop the connection and connect again at once (re-reading the settings);
--- the session is resumed when the server is the same.
function M.reconnect()
	if connection then connection:stop('reconnect', true) end
	connection = nil
	return M.init()
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

return M
