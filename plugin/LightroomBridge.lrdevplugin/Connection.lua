--[[
Connection: the client's life cycle against the gateway (pure logic; every
side effect goes through the `runtime` passed in, so it also runs outside
Lightroom with fakes).

    handshake -> register -> subscribe -> connected
    connected: long poll (ack = last seq processed) -> dispatch -> poll again ...
               + a ping task every PING_INTERVAL

Sessions outlive the process (SessionStore, kept in LrPrefs): the handshake
presents the saved client id and secret, and the bridge resumes that session,
queue included (`resumed`). When it cannot (it forgot the session), the new
session subscribes with `recover` (the saved channel positions, Positions.lua)
and asks for the jobs/system snapshot; the bridge replays what was missed and
the `recovery` event says what came back and what is gone.

Faults:
  * a poll that timed out or was cut (LrHttp's `timedOut`, `networkConnectionLost`: a proxy,
    security software or Lightroom ending an idle request before the hold ends) is issued
    again at once and is not a disconnection; the bridge redelivers anything the lost answer
    held. Only when such cuts come quickly (under QUICK_CUT seconds) MAX_QUICK_CUTS times in
    a row do they count as a failure to reach the bridge;
  * no answer, 503 hub unavailable, 5xx: the first retry at once, then wait (exponential backoff with
    jitter, capped) and try again; a known client id is kept, so messages
    the hub queued meanwhile are still delivered;
  * 404 unknown_client, or a poll answered `closed` (the hub restarted or
    dropped this client): handshake again at once (resuming when the bridge
    still has the session), register, subscribe;
  * MAX_RECONNECT_ATTEMPTS failures in a row: an `error` event, then a slower
    retry that never stops.

stop() bumps the generation: every task compares its own generation after
each request and sleep slice and ends when they differ. The generation is also
kept in `runtime.shared` (RunRegistry: `_G`, keyed by the plug-in's id), so a
copy of this module loaded in a fresh environment stops this run's tasks, and
a start stops a run another environment left behind. stop() ends the
session at the bridge (/ws/disconnect); stop(reason, true) keeps it for the
next start and releases the parked poll with a poll that does not wait
(acknowledging what was processed). Either way the gateway answers the parked
poll at once.

runtime = {
  http      LrHttp-shaped: get(url, headers, timeout), post(url, body, headers, method, timeout)
  sleep     sleep(seconds) (LrTasks.sleep)
  now       now() -> seconds
  spawn     spawn(fn, name) (LrTasks.startAsyncTask)
  protect   protect(fn, ...) -> ok, ... (LrTasks.pcall: plain pcall cannot yield)
  canYield  canYield() -> true inside a task
  random    random() -> [0, 1)
  log       { info = fn(text), warn = fn(text), error = fn(text) }
  prefs     LrPrefs-like table for SessionStore (nil: kept in memory only)
  launcher  Launcher.lua's, asked to start the bridge when none answers (nil: never)
  shared    RunRegistry.shared(pluginId): the run record every module environment sees (nil: none)
}

Sends have priority over the poll: while a send waits (`pendingSends`), the poll loop
yields before polling and polls without a hold, so an LrHttp that serves one request
at a time still delivers the send within the hold of the poll parked when it was made.
]]
local Backoff = require 'Backoff'
local Config = require 'Config'
local Envelope = require 'Envelope'
local Positions = require 'Positions'
local SeqTracker = require 'SeqTracker'
local SessionStore = require 'SessionStore'
local SocketPush = require 'SocketPush'
local Transport = require 'Transport'

local M = {}
M.__index = M

local SLICE = 0.25 -- longest sleep between two checks of the generation
local MAX_REHANDSHAKES = 3 -- in a row without a successful poll, before backing off
local QUICK_CUT = 1 -- a poll cut sooner than this (seconds) after it was issued is a quick cut
local MAX_QUICK_CUTS = 3 -- quick cuts in a row re-issued at once; the next counts as a failure
local CUT_REASONS = { timedOut = true, networkConnectionLost = true }
local ANSWER_GRACE = 5 -- the gateway answers a poll by its hold + 3 s (503 when the hub is away)

--- A stopped connection; `config` holds the resolved settings (see Config.lua).
function M.new(config, runtime, dispatcher, status)
	local self = setmetatable({}, M)
	self.config = config
	self.runtime = runtime
	self.dispatcher = dispatcher
	self.transport = Transport.new(runtime.http, config.HTTP_FALLBACK_URL)
	self.tracker = SeqTracker.new()
	self.store = self:_openStore()
	self.generation = 0
	self.running = false
	self.clientId = nil
	self.connected = false
	self.tasks = 0
	self.status = status or {}
	self.status.state = 'disconnected'
	self.status.serverUrl = config.HTTP_FALLBACK_URL
	self.status.received = self.status.received or 0
	self.status.sent = self.status.sent or 0
	self.status.dropped = self.status.dropped or 0
	self.status.redelivered = self.status.redelivered or 0
	self.status.attempts = 0
	self.status.cuts = self.status.cuts or 0
	self.pendingSends = 0
	self.push = SocketPush.new(self) -- LrSocket push, when TRANSPORT = 'lrsocket' (SocketPush.lua)
	return self
end

-- ---------------------------------------------------------------- helpers

function M:_alive(gen)
	if self.generation ~= gen then return false end
	local shared = self.runtime.shared
	return shared == nil or shared.generation == self.sharedGeneration
end

function M:_setState(state, detail)
	local previous = self.status.state
	self.status.state = state
	if previous ~= state then
		local line = 'connection: ' .. tostring(previous) .. ' -> ' .. state
		if detail then line = line .. ' (' .. detail .. ')' end
		self.runtime.log.info(line)
	end
end

function M:_emit(eventType, data)
	data.type = eventType
	self.dispatcher:emit(eventType, data, false)
end

-- Run `fn` as a task; counts live tasks so tests can see that all have ended.
function M:_spawn(name, fn)
	self.tasks = self.tasks + 1
	self.runtime.spawn(function()
		local ok, err = self.runtime.protect(fn)
		self.tasks = self.tasks - 1
		if not ok then self.runtime.log.error(name .. ' failed: ' .. tostring(err)) end
	end, name)
end

-- Sleep `seconds` in slices; false as soon as the generation (or the client id `id`, when given) changed.
function M:_sleep(gen, seconds, id)
	local deadline = self.runtime.now() + seconds
	while self:_alive(gen) and (id == nil or self.clientId == id) do
		local left = deadline - self.runtime.now()
		if left <= 0 then return true end
		self.runtime.sleep(math.min(left, SLICE))
	end
	return false
end

-- What a previous run saved (read again at each start: another connection may have saved since).
function M:_openStore()
	local config = self.config
	return SessionStore.new(self.runtime.prefs, config.HTTP_FALLBACK_URL, self.runtime.now, config.SAVE_INTERVAL)
end

-- ------------------------------------------------------------- public side

--- Start connecting (in a task); false when already running.
function M:start()
	if self.running then return false end
	local shared = self.runtime.shared
	if shared and shared.stop and shared.owner ~= self then
		-- a run of another module environment (a reload that did not stop it): stop it first
		self.runtime.log.info('stopping the connection of a previous load of the plug-in')
		self.runtime.protect(shared.stop, 'replaced', true)
	end
	self.running = true
	self.generation = self.generation + 1
	local gen = self.generation
	if shared then
		shared.generation = (shared.generation or 0) + 1
		self.sharedGeneration = shared.generation
		shared.owner = self
		shared.stop = function(reason, keepSession) return self:stop(reason, keepSession) end
	end
	self.store = self:_openStore()
	self:_setState('connecting', self.config.HTTP_FALLBACK_URL)
	self:_spawn('LightroomBridge connection', function() self:_main(gen) end)
	return true
end

--- Stop every task; false when not running. The bridge forgets the client, unless
--- `keepSession`: then the next start resumes it (Lightroom quitting, the plug-in reloading).
function M:stop(reason, keepSession)
	local wasRunning = self.running
	self.running = false
	self.generation = self.generation + 1
	self.push:stop() -- the socket is closed first: Reload Plug-in does not free its port
	local shared = self.runtime.shared
	if shared and shared.owner == self then
		shared.generation = (shared.generation or 0) + 1
		shared.owner, shared.stop = nil, nil
	end
	local id, secret, ack = self.clientId, self.clientSecret, self.tracker:ack()
	self.clientId, self.clientSecret = nil, nil
	self.status.clientId = nil
	self.tracker:reset()
	if not keepSession then self.store:forgetSession() end
	self.store:close() -- saves; a task of this run that ends late writes nothing more
	self:_setState('disconnected', reason)
	if self.connected then
		self.connected = false
		self:_emit('disconnected', { reason = reason or 'disconnect', client_id = id })
	end
	if id then
		-- the gateway answers our parked poll at once, so the poll task ends now
		local transport, timeout = self.transport, self.config.DISCONNECT_TIMEOUT
		local function release()
			if keepSession then
				-- a poll that does not wait supersedes the parked one; the session stays
				transport:get(Envelope.pollPath(id, 0, ack), timeout, secret)
			else
				transport:post('/ws/disconnect', Envelope.disconnect(id), timeout, secret)
			end
		end
		if self.runtime.canYield() then
			self.runtime.protect(release)
		else
			self:_spawn('LightroomBridge disconnect', release)
		end
	end
	return wasRunning
end

function M:isConnected()
	return self.connected and self.clientId ~= nil
end

--- POST one message with the current client id; returns the transport result
--- ({ok = true, response = ...} on success). Must run inside a task.
function M:sendNow(message)
	local id = self.clientId
	if not id then return { ok = false, kind = 'not_connected', reason = 'not connected' } end
	local config = self.config
	self.pendingSends = self.pendingSends + 1
	local ok, result = self.runtime.protect(self.transport.post, self.transport, '/ws/send', Envelope.send(id, message),
		config.REQUEST_TIMEOUT, self.clientSecret)
	self.pendingSends = self.pendingSends - 1
	if not ok then error(result, 0) end
	if result.ok then
		self.status.sent = self.status.sent + 1
		return { ok = true, response = result.data.response }
	end
	return result
end

-- ------------------------------------------------------------------ main loop

function M:_main(gen)
	local config = self.config
	local backoff = Backoff.new {
		base = config.RECONNECT_DELAY,
		cap = config.RECONNECT_MAX_DELAY,
		maxAttempts = config.MAX_RECONNECT_ATTEMPTS,
		slowDelay = config.SLOW_RETRY_DELAY,
		random = self.runtime.random,
		immediateFirst = true,
	}
	local rehandshakes, quickCuts = 0, 0
	while self:_alive(gen) do
		local ok, result = self.runtime.protect(self._step, self, gen)
		if not ok then
			self.runtime.log.error('connection step failed: ' .. tostring(result))
			result = { ok = false, kind = 'retry', reason = 'internal error' }
		end
		if not self:_alive(gen) then break end
		if result.ok then
			backoff:reset()
			self.status.attempts = 0
			if result.polled then rehandshakes, quickCuts = 0, 0 end
		elseif result.kind == 'cut' and (not result.quick or quickCuts < MAX_QUICK_CUTS) then
			-- not a disconnection: poll again at once (the ack makes the bridge redeliver)
			self.status.cuts = self.status.cuts + 1
			quickCuts = result.quick and quickCuts + 1 or 0
		elseif (result.kind == 'unknown_client' or result.kind == 'closed') and rehandshakes < MAX_REHANDSHAKES then
			rehandshakes = rehandshakes + 1
			self:_lost(result)
		else
			if result.kind == 'unknown_client' or result.kind == 'closed' then self:_lost(result) end
			self:_retryLater(gen, backoff, result)
		end
	end
end

function M:_step(gen)
	if self.clientId and self.push:active() then return self.push:hold(gen) end
	if self.clientId then return self:_poll(gen) end
	return self:_establish(gen)
end

-- The session is gone at the hub (or the hub is going): the loop handshakes again at once,
-- presenting the saved session, which a restarted hub with its store still resumes.
function M:_lost(result)
	local id = self.clientId
	self.clientId, self.clientSecret = nil, nil
	self.status.clientId = nil
	self.push:stop()
	self.tracker:reset()
	self.store:save(true)
	self:_setState('connecting', 'the bridge no longer knows client ' .. tostring(id) .. ': handshaking again')
	if self.connected then
		self.connected = false
		self:_emit('disconnected', { reason = result.kind, client_id = id })
	end
end

function M:_retryLater(gen, backoff, result)
	local reason = result.reason or result.kind
	self.status.lastError = reason
	if self.connected then
		self.connected = false
		self:_emit('disconnected', { reason = reason, client_id = self.clientId })
	end
	if result.kind == 'network' and self:_startBridge(gen) then return end
	local delay, attempt, exhausted = backoff:next()
	self.status.attempts = attempt
	self.status.retryAt = self.runtime.now() + delay
	self:_setState(exhausted and 'unreachable' or 'reconnecting', reason)
	self:_emit('reconnecting', { attempt = attempt, delay = delay, reason = reason })
	if exhausted and attempt == backoff.maxAttempts then
		local text = string.format('cannot reach the bridge at %s after %d attempts (%s); retrying every %d s',
			self.config.HTTP_FALLBACK_URL, attempt, tostring(reason), math.floor(backoff.slowDelay))
		self.runtime.log.error(text)
		self:_emit('error', { code = 'unreachable', message = text, attempts = attempt })
	end
	self:_sleep(gen, delay)
end

-- No bridge answered: the plug-in's launcher (runtime.launcher, Launcher.lua) starts one when
-- a start command is set. True when the loop should go on at once: the bridge was started and
-- answers, or this connection was stopped meanwhile (then the loop ends).
function M:_startBridge(gen)
	local launcher = self.runtime.launcher
	if not launcher then return false end
	local outcome = launcher:ensure(function() return self:_alive(gen) end)
	return outcome == 'started' or not self:_alive(gen)
end

-- handshake -> register -> subscribe; the client id is kept (and saved) only when all three worked.
function M:_establish(gen)
	local config = self.config
	local savedId, savedSecret = self.store:credentials()
	local result = self.transport:post('/ws/handshake', Envelope.handshake(savedId, savedSecret), config.REQUEST_TIMEOUT)
	if not self:_alive(gen) then return result end
	if not result.ok then
		-- a 400 may be the saved session the bridge refuses: the next handshake goes without it
		if result.kind == 'refused' and result.status == 400 and savedId then self.store:forgetSession() end
		return result
	end
	local id = result.data.client_id
	if type(id) ~= 'string' or id == '' then
		return { ok = false, kind = 'retry', reason = 'the handshake answer has no client_id' }
	end
	local resumed = result.data.resumed == true and id == savedId
	self.clientId = id
	self.clientSecret = type(result.data.client_secret) == 'string' and result.data.client_secret or nil
	self.tracker:reset(resumed and self.store.lastSeq or 0)
	result = self:sendNow(Envelope.register(config.CLIENT_NAME, config.PLUGIN_VERSION))
	local summary = nil
	local channels = self:channels()
	if result.ok and #channels > 0 and self:_alive(gen) then
		result, summary = self:_subscribe(gen, resumed, channels)
	end
	if not self:_alive(gen) then return { ok = true } end
	if not result.ok then
		self.clientId, self.clientSecret = nil, nil
		return result
	end
	if #channels == 0 then self.store:sessionStarted(id, self.clientSecret, resumed) end
	self:_connected(gen, resumed)
	if summary then self:_recovered(summary) end
	self:_spawn('LightroomBridge ping', function() self:_pingLoop(gen, id) end)
	self.push:start(gen, id)
	return { ok = true }
end

-- subscribe to the plug-in's channels (the setting with the run-time changes). A new session
-- recovers what it missed since the saved positions (and takes the jobs/system snapshot); a
-- resumed one has it in its queue, and drops channels no longer wanted. Returns the send
-- result and the recovery summary.
function M:_subscribe(gen, resumed, channels)
	local message
	if resumed then
		message = Envelope.subscribe(channels)
	else
		message = Envelope.subscribe(channels, self.store.positions:recover(channels), Positions.wantsSnapshot(channels))
	end
	local result = self:sendNow(message)
	if not result.ok or not self:_alive(gen) then return result, nil end
	local reply = type(result.response) == 'table' and result.response or {}
	-- saved only now: a session whose subscribe failed is not resumed, it is started afresh
	self.store:sessionStarted(self.clientId, self.clientSecret, resumed)
	local summary = self.store:confirmed(reply, resumed)
	if resumed and type(reply.subscriptions) == 'table' then
		local wanted, extra = {}, {}
		for _, channel in ipairs(channels) do wanted[channel] = true end
		for _, channel in ipairs(reply.subscriptions) do
			if type(channel) == 'string' and not wanted[channel] then extra[#extra + 1] = channel end
		end
		if #extra > 0 then
			local dropped = self:sendNow(Envelope.unsubscribe(extra))
			if not dropped.ok then return dropped, nil end
		end
	end
	return result, summary
end

-- The bridge said what came back of the missed channel messages: one log line, one event.
function M:_recovered(summary)
	local line = Positions.describe(summary)
	if summary.complete then self.runtime.log.info(line) else self.runtime.log.warn(line) end
	self:_emit('recovery', summary)
end

function M:_connected(gen, resumed)
	self.connected = true
	self.status.clientId = self.clientId
	self.status.connectedAt = self.runtime.now()
	self.status.lastError = nil
	self:_setState('connected', 'client ' .. tostring(self.clientId))
	if self:_alive(gen) then
		self:_emit('connected', { client_id = self.clientId, resumed = resumed })
	end
end

function M:_poll(gen)
	local id = self.clientId
	local wait = self.config.POLL_WAIT
	if self.pendingSends > 0 then
		-- a send waits: let it have LrHttp first, and do not hold the bridge's answer meanwhile
		self.runtime.sleep(0)
		if not self:_alive(gen) or self.clientId ~= id then return { ok = true } end
		if self.pendingSends > 0 then wait = 0 end
	end
	local path = Envelope.pollPath(id, wait, self.tracker:ack())
	local started = self.runtime.now()
	local result = self.transport:get(path, self.config.POLL_TIMEOUT, self.clientSecret)
	if not self:_alive(gen) or self.clientId ~= id then return { ok = true } end
	if not result.ok then
		local elapsed = self.runtime.now() - started
		-- ended before the bridge's own longest answer time: cut on the way, not the bridge's doing; past
		-- it, the bridge (a stopped gateway still accepts connections) is not answering: a failure
		if result.kind == 'network' and CUT_REASONS[result.reason] and elapsed < wait + ANSWER_GRACE then
			return { ok = false, kind = 'cut', reason = result.reason, quick = elapsed < QUICK_CUT }
		end
		return result
	end
	if not self.connected then self:_connected(gen, true) end
	local data = result.data
	self:_reportDropped(tonumber(data.dropped) or 0)
	local messages = type(data.messages) == 'table' and data.messages or {}
	self.status.lastBatch = #messages
	self.status.more = data.more == true
	self.status.lastPollAt = self.runtime.now()
	for _, message in ipairs(messages) do
		if not self:_deliver(gen, id, message) then break end
	end
	self.store:save(false)
	if data.closed and self:_alive(gen) then
		return { ok = false, kind = 'closed', reason = 'the bridge closed this client' }
	end
	return { ok = true, polled = true }
end

-- The bridge lost `dropped` messages of this client (a poll's dropped, a pushed messages_dropped).
function M:_reportDropped(dropped)
	if dropped <= 0 then return end
	self.status.dropped = self.status.dropped + dropped
	self.runtime.log.warn(string.format('the bridge dropped %d message(s) for this client (queue full)', dropped))
	self:_emit('messages_dropped', { count = dropped })
end

-- One message from a poll or a push: dispatched once (by seq), whatever path brought it.
-- False when the connection moved on (stopped, another client id): deliver no more.
function M:_deliver(gen, id, message)
	if not self:_alive(gen) or self.clientId ~= id then return false end
	if type(message) ~= 'table' then
		self.runtime.log.warn('ignored a message that is not an object')
	elseif self.tracker:isNew(message) then
		self.status.received = self.status.received + 1
		self.status.lastMessageAt = self.runtime.now()
		self.dispatcher:dispatch(message)
		self.tracker:done(message)
		self.store:processed(message)
		if self.push:active() then self.store:save(false) end
	else
		self.status.redelivered = self.status.redelivered + 1
	end
	return true
end

function M:_pingLoop(gen, id)
	local interval = self.config.PING_INTERVAL
	while self:_alive(gen) and self.clientId == id do
		if not self:_sleep(gen, interval, id) then return end
		local result = self:sendNow(Envelope.ping())
		if result.ok then self.status.lastPongAt = self.runtime.now() end
	end
end

-- ------------------------------------------------------------ subscriptions

--- The channels this plug-in subscribes: the Channels setting with the run-time changes.
function M:channels()
	return Config.effectiveChannels(self.config.CHANNELS, self.store.channelChanges)
end

--- Subscribe (`on` true) or unsubscribe `channels` now and at every later connection (the
--- change is kept in LrPrefs). When connected, tells the bridge at once (must run inside a
--- task); returns the transport result, or {ok = true, deferred = true} when not connected.
function M:setSubscribed(channels, on)
	self.store:setChannels(channels, on)
	if not self:isConnected() or #channels == 0 then return { ok = true, deferred = true } end
	local result = self:sendNow(on and Envelope.subscribe(channels) or Envelope.unsubscribe(channels))
	if result.ok and on and type(result.response) == 'table' then
		self.store:confirmed(result.response, true) -- a channel new to us starts at its current end
	end
	return result
end

return M
