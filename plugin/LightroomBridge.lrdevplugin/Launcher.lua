--[[
Launcher: start the bridge from Lightroom when none answers (pure logic; every
side effect goes through the `runtime` passed in, as in Connection.lua).

The Plug-in Manager's "Start command" (START_COMMAND, preference startCommand)
holds the command, e.g. `/Users/me/.local/bin/lrbridge run`; empty (the
default) turns this off. When a connection finds no bridge answering it calls
ensure(): the launcher checks GET /ws/status, runs the command
(runtime.execute: LrTasks.execute, which waits while the program runs, so it
gets a task of its own), then waits for /ws/status to answer 2xx until
START_TIMEOUT.

There is one launcher per plug-in, shared by every connection, and it never
starts a second bridge:

  * one attempt at a time: a caller that finds an attempt under way waits for
    its outcome instead of starting another;
  * no start when /ws/status answers at all (a bridge runs, maybe starting);
  * no start while the process it started is still running (its command has
    not returned), even if it does not answer;
  * after a start that did not come up (no 2xx within START_TIMEOUT, or the
    command failed at once), the failure is reported (log, `error` event
    `start_failed`, the status text) and the next start waits
    START_RETRY_DELAY, doubling per failure up to START_RETRY_MAX_DELAY.

ensure(alive) returns one of:
    'off'       no command set
    'up'        a bridge answers (nothing started)
    'started'   this attempt started it and it answers: connect at once
    'running'   the process started earlier still runs but does not answer
    'waiting'   a start failed recently; the next one is not due yet
    'failed'    this attempt started it and it did not come up
    'stopped'   `alive()` turned false while waiting (the caller was stopped)

runtime = { http, sleep, now, spawn, protect, execute(command) -> exit status, log }
]]
local Backoff = require 'Backoff'
local Transport = require 'Transport'

local M = {}
M.__index = M

local SLICE = 0.25 -- longest sleep between two checks while waiting
M.PROBE_TIMEOUT = 2 -- LrHttp timeout of one /ws/status check
M.PROBE_INTERVAL = 0.5 -- between two checks while the bridge starts

--- A launcher with nothing configured (ensure() answers 'off' until configure()).
function M.new(runtime, status)
	local self = setmetatable({}, M)
	self.runtime = runtime
	self.status = status or {}
	self.command = ''
	self.attempting = false -- an attempt (check, start, wait) is under way
	self.processRunning = false -- the command started last has not returned
	self.exitStatus = nil
	self.outcome = nil
	self.starts = 0 -- commands run since Lightroom started
	self.nextStart = 0 -- runtime.now() before which no start is made (after a failure)
	self:configure({})
	return self
end

--- Take the settings (Config.resolve's): START_COMMAND, START_TIMEOUT, START_RETRY_DELAY,
--- START_RETRY_MAX_DELAY, HTTP_FALLBACK_URL. The failure count survives a new configuration.
function M:configure(config)
	self.command = type(config.START_COMMAND) == 'string' and config.START_COMMAND or ''
	self.timeout = tonumber(config.START_TIMEOUT) or 30
	self.transport = Transport.new(self.runtime.http, config.HTTP_FALLBACK_URL or 'http://127.0.0.1:5100')
	local attempts = self.backoff and self.backoff.attempts or 0
	self.backoff = Backoff.new {
		base = tonumber(config.START_RETRY_DELAY) or 60,
		cap = tonumber(config.START_RETRY_MAX_DELAY) or 900,
		jitter = 0,
		maxAttempts = 1000000,
	}
	self.backoff.attempts = attempts
end

function M:isConfigured()
	return self.command:match('%S') ~= nil
end

-- 'up' (2xx), 'answering' (any other HTTP answer: a bridge, not ready), or 'down' (no answer).
function M:_probe()
	local result = self.transport:get('/ws/status', M.PROBE_TIMEOUT)
	if result.ok then return 'up' end
	if result.kind == 'network' then return 'down' end
	return 'answering'
end

function M:_report(level, text, code)
	self.status.launchMessage = text
	self.runtime.log[level](text)
	if code and self.onError then self.onError({ code = code, message = text }) end
end

-- Run the command in a task of its own: LrTasks.execute returns only when the program ends.
function M:_run(command)
	self.processRunning = true
	self.exitStatus = nil
	self.runtime.spawn(function()
		local ok, result = self.runtime.protect(self.runtime.execute, command)
		self.processRunning = false
		self.exitStatus = ok and result or ('error: ' .. tostring(result))
		self.runtime.log.info('the start command ended with exit status ' .. tostring(self.exitStatus))
	end, 'LightroomBridge start command')
end

-- One attempt: check, maybe start, wait for the bridge; sets self.outcome.
function M:_attempt()
	local runtime = self.runtime
	local probe = self:_probe()
	if probe ~= 'down' then return 'up' end
	if self.processRunning then return 'running' end
	if runtime.now() < self.nextStart then return 'waiting' end
	local command = self.command
	self.starts = self.starts + 1
	self.status.launchState = 'starting'
	self:_report('info', 'no bridge answers at ' .. self.transport.baseUrl .. ': starting it with: ' .. command)
	self:_run(command)
	local deadline = runtime.now() + self.timeout
	local why = 'it did not answer within ' .. self.timeout .. ' s'
	while runtime.now() < deadline do
		runtime.sleep(math.min(M.PROBE_INTERVAL, math.max(deadline - runtime.now(), 0)))
		probe = self:_probe()
		if probe == 'up' then
			self.backoff:reset()
			self.nextStart = 0
			self.status.launchState = 'started'
			self:_report('info', 'the bridge started and answers at ' .. self.transport.baseUrl)
			return 'started'
		end
		if not self.processRunning and self.exitStatus ~= 0 and probe == 'down' then
			why = 'the command ended with exit status ' .. tostring(self.exitStatus)
			break
		end
	end
	local delay = self.backoff:next()
	self.lastDelay = delay
	self.nextStart = runtime.now() + delay
	self.status.launchState = 'failed'
	self:_report('error', string.format('could not start the bridge with "%s": %s; next try in %d s at the earliest',
		command, why, math.floor(delay)), 'start_failed')
	return 'failed'
end

--- Make sure a bridge answers, starting one if needed and allowed (see above). Must run
--- inside a task; waits at most START_TIMEOUT (+ checks), less when `alive()` turns false.
function M:ensure(alive)
	if not self:isConfigured() then return 'off' end
	if not self.attempting then
		self.attempting = true -- set before anything yields: a second caller waits for this attempt
		self.outcome = nil
		self.runtime.spawn(function()
			local ok, outcome = self.runtime.protect(self._attempt, self)
			if not ok then
				self.runtime.log.error('starting the bridge failed: ' .. tostring(outcome))
				outcome = 'failed'
			end
			self.outcome = outcome
			self.attempting = false
		end, 'LightroomBridge start')
	end
	while self.attempting do
		if alive and not alive() then return 'stopped' end
		self.runtime.sleep(SLICE)
	end
	return self.outcome
end

return M
