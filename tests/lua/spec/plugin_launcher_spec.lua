-- Launcher: the plug-in starts the bridge when none answers, through the stand-in's
-- LrTasks.execute (which runs the command for real), on the stand-in's task scheduler.
-- The scripted bridge answers once the command has left its mark (a file it creates),
-- so the command's real effect is what brings the bridge "up".
local Config = require 'Config'
local Connection = require 'Connection'
local Dispatcher = require 'Dispatcher'
local Launcher = require 'Launcher'
local LrTasks = import 'LrTasks'
local socket = require('lr_shim.system')('socket')

local REFUSED = { error = { errorCode = 'cannotConnectToHost', name = 'connection refused' } }

local function exists(path)
	local f = io.open(path)
	if f then f:close() end
	return f ~= nil
end

local function freshPath()
	local path = os.tmpname()
	os.remove(path)
	return path
end

-- A bridge that answers while `isUp()`: /ws/status, handshake, send, poll (held briefly).
local function scriptedBridge(isUp)
	local bridge = { statusChecks = 0, handshakes = 0 }
	bridge.http = {
		get = function(url)
			if not isUp() then return nil, REFUSED end
			if url:find('/ws/status', 1, true) then
				bridge.statusChecks = bridge.statusChecks + 1
				return '{"success":true,"status":{"running":true}}', { status = 200 }
			end
			LrTasks.sleep(0.05)
			return '{"success":true,"messages":[]}', { status = 200 }
		end,
		post = function(url)
			if not isUp() then return nil, REFUSED end
			if url:find('/ws/handshake', 1, true) then
				bridge.handshakes = bridge.handshakes + 1
				return '{"success":true,"client_id":"c' .. bridge.handshakes .. '","client_secret":"s"}', { status = 200 }
			end
			return '{"success":true,"response":{"type":"ack"}}', { status = 200 }
		end,
	}
	return bridge
end

local function newRuntime(http, lines)
	local function logger(level) return function(text) lines[#lines + 1] = level .. ' ' .. text end end
	return {
		http = http,
		sleep = LrTasks.sleep,
		now = socket.gettime,
		spawn = LrTasks.startAsyncTask,
		protect = LrTasks.pcall,
		canYield = LrTasks.canYield,
		random = function() return 0 end,
		execute = LrTasks.execute,
		log = { info = logger('INFO'), warn = logger('WARN'), error = logger('ERROR') },
	}
end

local function settings(extra)
	local options = {
		HTTP_FALLBACK_URL = 'http://127.0.0.1:9', START_TIMEOUT = 3, START_RETRY_DELAY = 0.3,
		START_RETRY_MAX_DELAY = 10, RECONNECT_DELAY = 30, PING_INTERVAL = 30,
	}
	for k, v in pairs(extra or {}) do options[k] = v end
	local config = Config.resolve(nil, options)
	return config
end

-- ensure() from a task of its own; returns a table that gets .outcome
local function ensureInTask(launcher)
	local call = {}
	LrTasks.startAsyncTask(function() call.outcome = launcher:ensure() end, 'spec ensure')
	return call
end

local function newConnection(config, runtime, events)
	local dispatcher = Dispatcher.new(LrTasks.pcall, function(_, _, err) error(err) end)
	dispatcher:addEventListener('connected', function(data) events[#events + 1] = data end)
	return Connection.new(config, runtime, dispatcher, {})
end

local function stopAll(connections)
	for _, c in ipairs(connections) do c:stop('spec') end
	assert.is_true((LrTasks._runAll(10)))
end

describe("Launcher", function()
	local probeInterval = Launcher.PROBE_INTERVAL
	local marker, lines

	before_each(function()
		LrTasks._reset()
		Launcher.PROBE_INTERVAL = 0.05
		marker = freshPath()
		lines = {}
	end)

	after_each(function()
		Launcher.PROBE_INTERVAL = probeInterval
		os.remove(marker)
	end)

	it("never runs anything when no start command is set", function()
		local bridge = scriptedBridge(function() return false end)
		local runtime = newRuntime(bridge.http, lines)
		local launcher = Launcher.new(runtime, {})
		launcher:configure(settings())
		runtime.launcher = launcher
		assert.is_false(launcher:isConfigured())
		local call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return call.outcome end, 5)))
		assert.are.equal('off', call.outcome)
		-- a connection that keeps failing to reach the bridge never asks for a start either
		local connection = newConnection(settings({ RECONNECT_DELAY = 0.05, RECONNECT_MAX_DELAY = 0.05 }), runtime, {})
		connection:start()
		LrTasks._runUntil(function() return connection.status.attempts >= 5 end, 5)
		assert.is_true(connection.status.attempts >= 5)
		stopAll({ connection })
		assert.are.equal(0, #LrTasks._executions)
	end)

	it("never starts a bridge that answers", function()
		local bridge = scriptedBridge(function() return true end)
		local runtime = newRuntime(bridge.http, lines)
		local launcher = Launcher.new(runtime, {})
		launcher:configure(settings({ START_COMMAND = "touch '" .. marker .. "'" }))
		runtime.launcher = launcher
		local call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return call.outcome end, 5)))
		assert.are.equal('up', call.outcome)
		local events = {}
		local connection = newConnection(settings({ START_COMMAND = "touch '" .. marker .. "'" }), runtime, events)
		connection:start()
		assert.is_true((LrTasks._runUntil(function() return #events == 1 end, 5)))
		stopAll({ connection })
		assert.are.equal(0, #LrTasks._executions)
		assert.is_false(exists(marker))
	end)

	it("starts the bridge once when none answers, and the connection connects at once", function()
		local bridge = scriptedBridge(function() return exists(marker) end)
		local runtime = newRuntime(bridge.http, lines)
		local config = settings({ START_COMMAND = "sleep 0.2; touch '" .. marker .. "'" })
		local launcher = Launcher.new(runtime, {})
		launcher:configure(config)
		runtime.launcher = launcher
		local events = {}
		local connection = newConnection(config, runtime, events)
		local t0 = socket.gettime()
		connection:start()
		-- RECONNECT_DELAY is 30 s: connecting within 5 s shows no backoff after the start
		assert.is_true((LrTasks._runUntil(function() return #events == 1 end, 5)))
		assert.is_true(socket.gettime() - t0 < 5)
		assert.are.equal(1, #LrTasks._executions)
		assert.are.equal(config.START_COMMAND, LrTasks._executions[1].command)
		assert.are.equal('started', launcher.status.launchState)
		assert.are.equal(1, bridge.handshakes)
		stopAll({ connection })
		assert.are.equal(1, #LrTasks._executions)
	end)

	it("starts one bridge for two connections that find none at the same time", function()
		local bridge = scriptedBridge(function() return exists(marker) end)
		local runtime = newRuntime(bridge.http, lines)
		local config = settings({ START_COMMAND = "sleep 0.3; touch '" .. marker .. "'" })
		local launcher = Launcher.new(runtime, {})
		launcher:configure(config)
		runtime.launcher = launcher
		local events = {}
		local first, second = newConnection(config, runtime, events), newConnection(config, runtime, events)
		first:start()
		second:start()
		local direct = ensureInTask(launcher) -- and a third trigger, not through a connection
		assert.is_true((LrTasks._runUntil(function() return #events == 2 and direct.outcome end, 8)))
		assert.are.equal(1, #LrTasks._executions)
		assert.are.equal('started', direct.outcome)
		stopAll({ first, second })
	end)

	it("reports a start that does not come up, and waits longer before each next one", function()
		local bridge = scriptedBridge(function() return false end)
		local runtime = newRuntime(bridge.http, lines)
		local status, errors = {}, {}
		local launcher = Launcher.new(runtime, status)
		launcher.onError = function(data) errors[#errors + 1] = data end
		-- a 1 s first delay: the 'waiting' check below holds on a loaded machine too
		launcher:configure(settings({ START_COMMAND = 'exit 7', START_RETRY_DELAY = 1 }))
		local call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return call.outcome end, 5)))
		assert.are.equal('failed', call.outcome)
		assert.are.equal(1, #errors)
		assert.are.equal('start_failed', errors[1].code)
		assert.matches('exit status 7', errors[1].message, 1, true)
		assert.matches('exit status 7', status.launchMessage, 1, true)
		assert.are.equal('failed', status.launchState)
		assert.are.equal(1, launcher.lastDelay)
		assert.is_true(launcher.nextStart > socket.gettime())
		-- at once: no second start
		call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return call.outcome end, 5)))
		assert.are.equal('waiting', call.outcome)
		assert.are.equal(1, #LrTasks._executions)
		-- once the delay passed: another start, and a doubled delay after it fails
		LrTasks.startAsyncTask(function()
			while socket.gettime() <= launcher.nextStart do LrTasks.sleep(0.02) end
		end)
		assert.is_true((LrTasks._runAll(2)))
		call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return call.outcome end, 5)))
		assert.are.equal('failed', call.outcome)
		assert.are.equal(2, #LrTasks._executions)
		assert.are.equal(2, launcher.lastDelay) -- doubled
		assert.is_true(launcher.nextStart > socket.gettime())
		local errorLines = 0
		for _, line in ipairs(lines) do
			if line:match('^ERROR could not start the bridge') then errorLines = errorLines + 1 end
		end
		assert.are.equal(2, errorLines)
	end)

	it("does not start a second bridge while the first one's command still runs", function()
		local bridge = scriptedBridge(function() return false end)
		local runtime = newRuntime(bridge.http, lines)
		local launcher = Launcher.new(runtime, {})
		launcher:configure(settings({ START_COMMAND = 'sleep 1', START_TIMEOUT = 0.3, START_RETRY_DELAY = 0.01 }))
		local call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return call.outcome end, 5)))
		assert.are.equal('failed', call.outcome) -- no answer within START_TIMEOUT
		assert.is_true(launcher.processRunning)
		call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return call.outcome end, 5)))
		assert.are.equal('running', call.outcome)
		assert.are.equal(1, #LrTasks._executions)
		-- the command ended: now a start may be tried again
		assert.is_true((LrTasks._runUntil(function() return LrTasks._executions[1].status ~= nil end, 5)))
		assert.are.equal(0, LrTasks._executions[1].status)
		call = ensureInTask(launcher)
		assert.is_true((LrTasks._runUntil(function() return #LrTasks._executions == 2 end, 5)))
		LrTasks._runAll(10)
	end)

	it("stops a connection cleanly while the bridge it asked for is starting", function()
		local bridge = scriptedBridge(function() return exists(marker) end)
		local runtime = newRuntime(bridge.http, lines)
		local config = settings({ START_COMMAND = "sleep 0.5; touch '" .. marker .. "'" })
		local launcher = Launcher.new(runtime, {})
		launcher:configure(config)
		runtime.launcher = launcher
		local dispatcher = Dispatcher.new(LrTasks.pcall, function(_, _, err) error(err) end)
		local events = {}
		dispatcher:addEventListener('reconnecting', function() events[#events + 1] = 'reconnecting' end)
		dispatcher:addEventListener('connected', function() events[#events + 1] = 'connected' end)
		local connection = Connection.new(config, runtime, dispatcher, {})
		connection:start()
		assert.is_true((LrTasks._runUntil(function() return #LrTasks._executions == 1 end, 5)))
		connection:stop('spec')
		assert.is_true((LrTasks._runAll(10)))
		assert.are.same({}, events)
		assert.are.equal('disconnected', connection.status.state)
		assert.are.equal(0, connection.tasks)
		assert.are.equal(0, bridge.handshakes)
	end)

	it("lets a stopped caller go while the attempt goes on", function()
		local bridge = scriptedBridge(function() return exists(marker) end)
		local runtime = newRuntime(bridge.http, lines)
		local launcher = Launcher.new(runtime, {})
		launcher:configure(settings({ START_COMMAND = "sleep 0.5; touch '" .. marker .. "'" }))
		local alive, outcome = true, nil
		LrTasks.startAsyncTask(function() outcome = launcher:ensure(function() return alive end) end)
		assert.is_true((LrTasks._runUntil(function() return #LrTasks._executions == 1 end, 5)))
		alive = false
		assert.is_true((LrTasks._runUntil(function() return outcome ~= nil end, 2)))
		assert.are.equal('stopped', outcome)
		assert.is_true(launcher.attempting)
		assert.is_true((LrTasks._runAll(5)))
		assert.are.equal('started', launcher.outcome)
	end)
end)
