--[[
client_driver.lua: run the plug-in's WebSocketClient under lua5.1 (with the
Lightroom SDK shim) against a real gateway, for tests/system/test_plugin_*.py.

    BRIDGE_URL=http://127.0.0.1:PORT DRIVER_OPTIONS='{"POLL_WAIT": 2}' lua5.1 drivers/client_driver.lua

It prints one JSON object per line on stdout:
    {"ev": "ready"}                              before init()
    {"ev": "connected"|"disconnected"|"reconnecting"|"error"|"messages_dropped"|"recovery", "data": {...}}
    {"ev": "message", "data": {...}}             every server message ('*' listener)
    {"ev": "handler", "type": ..., "data": ...}  registerHandler for HANDLED_TYPES
    {"ev": "listener", "type": ..., "data": ...} addEventListener for LISTENED_TYPES
    {"ev": "sent", "action": ..., "ok": ..., "response"|"error": ..., "seconds": ...}
    {"ev": "command_ran", "action": ..., "id": ...}   a backend's command ran (echo, fail, slow)
    {"ev": "stopped", "tasks": N, "seconds": S}  after a disconnect or shutdown command, once every task ended
    {"ev": "exit", "reason": ...}
    {"ev": "execute", "command": ..., "pid": ..., "status": ...}   LrTasks.execute ran a command (the plug-in
                                                 started the bridge): once when it runs (pid: its process
                                                 group), once more with its exit status when it ended

The test drives it through the bridge itself: a message {type = "test_command",
action = ...} sent to this client (POST /ws/send/<client_id>) runs the action.
PLUGIN_DIR runs the plug-in modules from another folder; `require` finds only its files
and the stand-in's (lr_shim.confine), as in Lightroom. LR_SHIM_PREFS_FILE keeps LrPrefs
in a file, so a second process ("Lightroom started again") finds what the first saved.
DRIVER_FAILING_LISTENER=1 adds, before the recording listeners, a listener that raises
for every type. DRIVER_DEADLINE (seconds, default 60) bounds the run.
DRIVER_LRSOCKET_QUIRKS='{"timeout": 1, ...}' sets the LrSocket stand-in's switches (lr_shim/LrSocket.lua);
the `lrsocket` command prints {"ev": "lrsocket", "open": N, "stats": {...}, "errors": [...], "tasks": N},
and `reload` plays Reload Plug-in: Shutdown.lua, the stand-in's _reload(), the plug-in's modules loaded
afresh and started again, then a late onMessage and onError of every socket of before, as Lightroom
may still call them: {"ev": "reloaded", "old_stale": N} (the old instance's count of ignored callbacks).
]]
local here = (arg and arg[0] or ''):match('^(.*)/drivers/[^/]*$') or '.'
-- PLUGIN_DIR: run the plug-in from another folder (a copy, the release zip unpacked)
local pluginDir = os.getenv('PLUGIN_DIR') or (here .. '/../../plugin/LightroomBridge.lrdevplugin')
package.path = here .. '/?.lua;' .. here .. '/?/init.lua;' .. package.path

-- from here on `require` sees what Lightroom's does: the plug-in folder (and the stand-in)
require('lr_shim').confine(pluginDir)
local LrTasks = import 'LrTasks'
local LrSocket = import 'LrSocket'
local socket = require('lr_shim.system')('socket')
local Json = require 'Json'
local WebSocketClient = require 'WebSocketClient'
local BridgeStatus = require 'BridgeStatus'
local wire -- registers the driver's handlers and listeners on WebSocketClient (again after a reload)
local options

local HANDLED_TYPES = { 'job_created', 'custom_message' }
local LISTENED_TYPES = { 'job_created', 'job_progress', 'job_completed', 'job_failed', 'photo_imported',
	'photo_analyzed', 'system_status', 'resource_warning', 'custom_message' }
local EVENTS = { 'connected', 'disconnected', 'reconnecting', 'error', 'messages_dropped', 'recovery' }

local started = socket.gettime()
local deadline = tonumber(os.getenv('DRIVER_DEADLINE') or '') or 60
local finished = nil

local function emit(record)
	record.t = socket.gettime() - started
	local text = Json.encode(record)
	if not text then text = Json.encode({ ev = 'unencodable', t = record.t }) end
	io.stdout:write(text, '\n')
	io.stdout:flush()
end

local function timed(action, fn)
	local t0 = socket.gettime()
	local ok, result = fn()
	local record = { ev = 'sent', action = action, ok = ok, seconds = socket.gettime() - t0 }
	if ok then record.response = result else record.error = result end
	emit(record)
end

local ACTIONS = {
	send_job_progress = function(c)
		timed('send_job_progress', function()
			return WebSocketClient.sendJobProgress(c.job_id, c.stage, c.progress, c.message)
		end)
	end,
	send_job_complete = function(c)
		timed('send_job_complete', function() return WebSocketClient.sendJobComplete(c.job_id, c.success, c.result) end)
	end,
	send_error = function(c)
		timed('send_error', function() return WebSocketClient.sendError(c.error_type, c.message, c.details) end)
	end,
	send = function(c)
		timed('send', function() return WebSocketClient.send(c.message) end)
	end,
	reconnect = function()
		WebSocketClient.reconnect()
	end,
	status = function()
		emit({ ev = 'status', data = BridgeStatus })
	end,
	disconnect = function()
		local t0 = socket.gettime()
		WebSocketClient.disconnect()
		finished = { reason = 'disconnected', t0 = t0 }
	end,
	lrsocket = function()
		emit({ ev = 'lrsocket', open = #LrSocket._open(), stats = LrSocket._stats, errors = LrSocket._errors,
			tasks = LrTasks._count(), names = LrTasks._names() })
	end,
	reload = function()
		local before, oldStatus = LrSocket._open(), BridgeStatus
		WebSocketClient.shutdown() -- Shutdown.lua (LrShutdownPlugin)
		LrSocket._reload()
		for name in pairs(package.loaded) do
			local file = io.open(pluginDir .. '/' .. name .. '.lua', 'r')
			if file then
				file:close()
				package.loaded[name] = nil
			end
		end
		WebSocketClient = require 'WebSocketClient'
		BridgeStatus = require 'BridgeStatus'
		wire()
		WebSocketClient.init(options)
		for _, old in ipairs(before) do
			LrSocket._fire(old, 'onMessage', '{"type":"custom_message","seq":999999,"stale":true}')
			LrSocket._fire(old, 'onError', 'timeout')
		end
		emit({ ev = 'reloaded', old_sockets = #before, old_stale = oldStatus.pushStale })
	end,
	-- what LrShutdownApp does when Lightroom quits: stop, keeping the session for the next start
	shutdown = function()
		local t0 = socket.gettime()
		WebSocketClient.shutdown()
		finished = { reason = 'shutdown', t0 = t0, call = socket.gettime() - t0 }
	end,
}

-- A command runs in its own task, after `delay` seconds, so that the poll task
-- is parked again meanwhile: a send then shows it does not wait behind the poll.
local function onCommand(message)
	local action = ACTIONS[message.action]
	if not action then
		emit({ ev = 'bad_command', data = message })
		return
	end
	LrTasks.startAsyncTask(function()
		if message.delay then LrTasks.sleep(message.delay) end
		action(message)
	end, 'driver command')
end

-- Commands a backend may call (tests/system/test_plugin_commands.py); each run prints {"ev": "command_ran"}.
WebSocketClient.registerCommand('echo', function(params, command)
	emit({ ev = 'command_ran', action = 'echo', id = command.id })
	return params
end)
WebSocketClient.registerCommand('fail', function(params, command)
	emit({ ev = 'command_ran', action = 'fail', id = command.id })
	error(params.message or 'failed')
end)
WebSocketClient.registerCommand('slow', function(params, command)
	emit({ ev = 'command_ran', action = 'slow', id = command.id })
	local steps = tonumber(params.steps) or 3
	for i = 1, steps do
		LrTasks.sleep(tonumber(params.pause) or 0.2)
		command:progress(100 * i / steps, 'step ' .. i)
	end
	return { steps = steps }
end)

LrTasks._onExecute = function(record)
	emit({ ev = 'execute', command = record.command, pid = record.pid, status = record.status, output = record.output })
end

wire = function()
	WebSocketClient.registerHandler('test_command', onCommand)
	if os.getenv('DRIVER_FAILING_LISTENER') == '1' then
		for _, name in ipairs(LISTENED_TYPES) do
			WebSocketClient.addEventListener(name, function() error('a failing listener for ' .. name) end)
		end
	end
	for _, name in ipairs(HANDLED_TYPES) do
		WebSocketClient.registerHandler(name, function(data) emit({ ev = 'handler', type = name, data = data }) end)
	end
	for _, name in ipairs(LISTENED_TYPES) do
		WebSocketClient.addEventListener(name, function(data) emit({ ev = 'listener', type = name, data = data }) end)
	end
	for _, name in ipairs(EVENTS) do
		WebSocketClient.addEventListener(name, function(data) emit({ ev = name, data = data }) end)
	end
	WebSocketClient.addEventListener('*', function(data) emit({ ev = 'message', data = data }) end)
end
wire()

for key, value in pairs(Json.decode(os.getenv('DRIVER_LRSOCKET_QUIRKS') or '{}') or {}) do
	LrSocket._quirks[key] = value
end

options = Json.decode(os.getenv('DRIVER_OPTIONS') or '{}') or {}
options.HTTP_FALLBACK_URL = options.HTTP_FALLBACK_URL or os.getenv('BRIDGE_URL')

emit({ ev = 'ready' })
WebSocketClient.init(options)

local ok, why = LrTasks._runUntil(function() return finished ~= nil end, deadline)
if not ok then
	emit({ ev = 'exit', reason = why or 'deadline' })
	os.exit(3)
end
-- after disconnect() or shutdown(): every task (poll, ping, commands) must end; the parked poll is released at once
local t0 = finished.t0
LrTasks._runUntil(function() return LrTasks._count() == 0 end, 10)
emit({ ev = 'stopped', tasks = LrTasks._count(), seconds = socket.gettime() - t0, errors = #LrTasks._errors,
	call = finished.call })
emit({ ev = 'exit', reason = finished.reason })
os.exit(LrTasks._count() == 0 and 0 or 4)
