--[[
SocketPush: the opt-in LrSocket push path of a Connection (setting TRANSPORT = 'lrsocket').

Long-poll stays the primary path and is always behind this one. Once the
connection is up, a monitor task (in a function context) binds one LrSocket
in receive mode on port 0, learns the port in onConnecting and announces it
(POST /ws/lrsocket, with the session's secret). The bridge connects to
127.0.0.1 on that port and writes a probe line; the plug-in acknowledges it
over HTTP (POST /ws/lrsocket/probe), and only then does the bridge push: one
JSON message per line, with its seq, and {"type": "messages_dropped"} after
a loss. While it pushes, the connection's poll loop waits; acks and a light
check go over HTTP (POST /ws/lrsocket/ack), never on the socket, so no
send-mode socket is needed (its onConnected may never fire on macOS).

Any doubt hands the session back to long-poll at once (fallBack): no probe
in PUSH_PROBE_TIMEOUT, the bridge refusing a step, the socket's onError
(timeout) or onClosed, an ack the bridge answers with pushing = false (what
shows a lost peer where onClosed never fires, on Windows), no answer. The
next poll resumes after the last processed seq (SeqTracker skips anything
seen twice), so nothing is lost or repeated. The monitor tries the socket
again PUSH_RETRY_DELAY later: at most one bind per retry period, never a
storm.

The SDK's quirks, handled here:
  * callbacks never call reconnect(): they only note what happened; the
    monitor acts on it in its own task, closing the socket and binding a new
    one under a new generation, and every callback of an older generation is
    ignored (and counted in status.pushStale: a reloaded plug-in's old socket
    keeps calling);
  * onMessage cannot yield: lines go to an inbox drained by one task, in order;
  * stop() closes the socket before anything else (Reload Plug-in does not
    free ports), and the socket's function context ends with the monitor.
See docs/PLUGIN.md ("LrSocket push") for what is not verified in Lightroom.

runtime.bindSocket(params) (LrSocket.bind) and runtime.withContext(name, fn)
(LrFunctionContext.callWithContext) come from WebSocketClient.lua.
]]
local Json = require 'Json'

local M = {}
M.__index = M

local SLICE = 0.1 -- the monitor's step: how soon a noted trouble is acted on
-- While messages arrive, an ack goes out once this many seconds passed or this many messages came
-- since the last one (the bridge only needs one within its poll hold, 25 s).
local ACK_INTERVAL = 1
local ACK_COUNT = 50

--- The push path of `connection` (enabled when its config says TRANSPORT = 'lrsocket').
function M.new(connection)
	local self = setmetatable({}, M)
	self.connection = connection
	self.config = connection.config
	self.runtime = connection.runtime
	self.status = connection.status
	self.enabled = self.config.TRANSPORT == 'lrsocket'
	self.mode = 'longpoll' -- 'longpoll' | 'probing' (announced) | 'proving' (probe acked) | 'socket'
	self.generation = 0 -- of the socket: callbacks of another generation are stale
	self.retryAt = 0
	self.inbox = {}
	self.status.transport = 'longpoll'
	self.status.pushStale = self.status.pushStale or 0
	self.status.pushBinds = self.status.pushBinds or 0
	self.status.pushFallbacks = self.status.pushFallbacks or 0
	if not self.enabled then
		self.status.transportReason = 'the transport setting is longpoll'
	elseif not self.runtime.bindSocket then
		self.enabled = false
		self.status.transportReason = 'LrSocket is not available'
	else
		self.status.transportReason = 'lrsocket: not tried yet'
	end
	return self
end

--- True while the bridge pushes (or is about to): the poll loop waits meanwhile.
function M:active()
	return self.mode == 'proving' or self.mode == 'socket'
end

--- The poll loop's step while pushing: wait until the push falls back or the connection stops.
function M:hold(gen)
	local connection = self.connection
	local id = connection.clientId
	while self:active() and connection:_alive(gen) and connection.clientId == id do
		self.runtime.sleep(SLICE)
	end
	return { ok = true, polled = true }
end

--- The connection is up as client `id`: start the monitor (when enabled).
function M:start(gen, id)
	if not self.enabled then return end
	self.retryAt = 0
	self.connection:_spawn('LightroomBridge push', function()
		self.runtime.withContext('LightroomBridge push', function(context)
			self:_monitor(gen, id, context)
		end)
	end)
end

--- Close the socket now (stop, reload, a new session): its callbacks are stale from here on.
function M:stop()
	self:_closeSocket()
	if self.mode ~= 'longpoll' then
		self.mode = 'longpoll'
		self.status.transport = 'longpoll'
	end
end

-- ----------------------------------------------------------------- the monitor

function M:_alive(gen, id)
	return self.connection:_alive(gen) and self.connection.clientId == id
end

function M:_monitor(gen, id, context)
	local runtime = self.runtime
	local nextCheck = 0
	while self:_alive(gen, id) do
		local now = runtime.now()
		if self.trouble then
			local reason = self.trouble
			self.trouble = nil
			if self.socket then self:fallBack(reason) end
		elseif self.mode == 'longpoll' and now >= self.retryAt then
			self:_attempt(gen, id, context)
			nextCheck = runtime.now() + self.config.PUSH_CHECK_INTERVAL
		elseif self.mode == 'probing' and now > self.probeDeadline then
			self:fallBack(string.format('no probe from the bridge within %g s', self.config.PUSH_PROBE_TIMEOUT))
		elseif self.mode == 'socket' and (now >= nextCheck or (self.unacked or 0) >= ACK_COUNT
			or ((self.unacked or 0) > 0 and now >= (self.lastAck or 0) + ACK_INTERVAL)) then
			self:_ack(gen, id)
			self.lastAck = runtime.now()
			nextCheck = self.lastAck + self.config.PUSH_CHECK_INTERVAL
		end
		runtime.sleep(SLICE)
	end
	self:_closeSocket()
end

--- Back to long-poll at once, and why (shown by Bridge: Show Status); the monitor tries again later.
function M:fallBack(reason)
	self:_closeSocket()
	self.mode = 'longpoll'
	self.retryAt = self.runtime.now() + self.config.PUSH_RETRY_DELAY
	self.status.transport = 'longpoll'
	self.status.transportReason = 'lrsocket fell back: ' .. tostring(reason)
	self.status.pushFallbacks = self.status.pushFallbacks + 1
	self.runtime.log.warn('LrSocket push: back to long-poll (' .. tostring(reason) .. ')')
end

function M:_closeSocket()
	self.generation = self.generation + 1
	local socket = self.socket
	self.socket, self.port, self.inbox, self.unacked = nil, nil, {}, 0
	if socket then
		local ok, err = pcall(socket.close, socket)
		if not ok then self.runtime.log.warn('LrSocket close failed: ' .. tostring(err)) end
	end
end

-- A callback of the current socket? Others (an older generation, a reloaded plug-in's) are ignored.
function M:_current(generation)
	if generation == self.generation then return true end
	self.status.pushStale = self.status.pushStale + 1
	return false
end

-- Bind a new socket (the old one closed first), wait for its port, announce it.
function M:_attempt(gen, id, context)
	self:_closeSocket()
	local generation = self.generation
	self.status.pushBinds = self.status.pushBinds + 1
	local ok, socket = self.runtime.protect(self.runtime.bindSocket, {
		functionContext = context, plugin = _PLUGIN, port = 0, mode = 'receive',
		onConnecting = function(_, port)
			if self:_current(generation) then self.port = tonumber(port) end
		end,
		onConnected = function() end,
		onMessage = function(_, message)
			if self:_current(generation) then self:_received(gen, id, generation, message) end
		end,
		onClosed = function()
			if self:_current(generation) then self.trouble = 'the socket was closed' end
		end,
		onError = function(_, err)
			-- never reconnect() here: the monitor rebinds, at most once per retry period
			if self:_current(generation) then self.trouble = 'LrSocket error: ' .. tostring(err) end
		end,
	})
	if not ok then
		self:fallBack('LrSocket.bind failed: ' .. tostring(socket))
		return
	end
	self.socket = socket
	local deadline = self.runtime.now() + self.config.PUSH_PROBE_TIMEOUT
	while self.port == nil and generation == self.generation and self.runtime.now() < deadline do
		if not self:_alive(gen, id) then return end
		self.runtime.sleep(0.02)
	end
	if generation ~= self.generation then return end
	if self.port == nil then
		self:fallBack('LrSocket did not report its port')
		return
	end
	self.mode = 'probing'
	self.probeDeadline = self.runtime.now() + self.config.PUSH_PROBE_TIMEOUT + self.config.REQUEST_TIMEOUT
	local connection = self.connection
	local result = connection.transport:post('/ws/lrsocket', { client_id = id, port = self.port },
		self.config.REQUEST_TIMEOUT, connection.clientSecret)
	if generation ~= self.generation or not self:_alive(gen, id) then return end
	if not result.ok then
		self:fallBack('the bridge refused the announcement: ' .. tostring(result.reason or result.kind))
		return
	end
	self.probeDeadline = self.runtime.now() + self.config.PUSH_PROBE_TIMEOUT
end

-- onMessage: into the inbox; one task drains it in order (a callback cannot yield).
function M:_received(gen, id, generation, line)
	local inbox = self.inbox
	inbox[#inbox + 1] = line
	if self.draining == inbox then return end
	self.draining = inbox
	self.connection:_spawn('LightroomBridge push inbox', function()
		while #inbox > 0 and generation == self.generation and self:_alive(gen, id) do
			local message = table.remove(inbox, 1)
			self:_handle(gen, id, generation, message)
		end
		if self.draining == inbox then self.draining = nil end
	end)
end

function M:_handle(gen, id, generation, line)
	local message = Json.decode(line)
	if type(message) ~= 'table' then
		self.runtime.log.warn('LrSocket push: ignored a line that is not a JSON object')
		return
	end
	if message.type == 'lrsocket_probe' then
		return self:_prove(gen, id, generation, message)
	end
	if not self:active() then return end
	if message.type == 'messages_dropped' then
		self.connection:_reportDropped(tonumber(message.count) or 0)
	else
		self.connection:_deliver(gen, id, message)
		self.unacked = (self.unacked or 0) + 1
	end
end

function M:_prove(gen, id, generation, message)
	if self.mode ~= 'probing' or tonumber(message.port) ~= self.port or type(message.probe) ~= 'string' then
		self.runtime.log.warn('LrSocket push: ignored a probe that was not expected')
		return
	end
	self.mode = 'proving' -- the poll loop stops polling: the bridge is about to take the session
	local connection = self.connection
	local result = connection.transport:post('/ws/lrsocket/probe',
		{ client_id = id, port = self.port, probe = message.probe }, self.config.REQUEST_TIMEOUT, connection.clientSecret)
	if generation ~= self.generation or not self:_alive(gen, id) then return end
	if not result.ok then
		self:fallBack('the bridge refused the probe ack: ' .. tostring(result.reason or result.kind))
		return
	end
	self.mode = 'socket'
	self.status.transport = 'lrsocket'
	self.status.pushPort = self.port
	self.status.transportReason = 'lrsocket: the bridge pushes to port ' .. tostring(self.port)
	self.runtime.log.info('LrSocket push: the bridge pushes to port ' .. tostring(self.port))
end

-- The ack of what was processed, and the light check: pushing = false means the bridge let go.
function M:_ack(gen, id)
	local generation = self.generation
	self.unacked = 0
	local connection = self.connection
	local result = connection.transport:post('/ws/lrsocket/ack', { client_id = id, seq = connection.tracker:ack() },
		self.config.REQUEST_TIMEOUT, connection.clientSecret)
	if generation ~= self.generation or not self:_alive(gen, id) or self.mode ~= 'socket' then return end
	if not result.ok then
		self:fallBack('the ack was not answered: ' .. tostring(result.reason or result.kind))
	elseif result.data.pushing ~= true then
		self:fallBack('the bridge stopped pushing')
	end
end

return M
