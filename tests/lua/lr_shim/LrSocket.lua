--[[
LrSocket shim: the Lightroom SDK's localhost line sockets, on LuaSocket, with the known quirks as switches.

    local s = LrSocket.bind {
        functionContext = context, plugin = _PLUGIN, port = 0, mode = 'receive',  -- or 'send'
        onConnecting = function(socket, port) end,  -- listening on `port` (0 asked the OS to choose)
        onConnected = function(socket, port) end,   -- a peer connected
        onMessage = function(socket, message) end,  -- one line from the peer (receive mode), newline removed
        onClosed = function(socket) end,            -- the peer went away
        onError = function(socket, err) end,        -- 'timeout' every 10 s while nobody is connected
    }
    s:send(message)   -- send mode: one line to the peer
    s:reconnect()     -- drop the peer, listen again
    s:close()

The plug-in's socket listens on 127.0.0.1 and the other process connects to
it. Each socket runs as LrTasks tasks of this shim: one accepts, one reads the
peer. Callbacks run outside any task that may yield: one that yields (an
LrTasks.sleep, an LrHttp call) is abandoned there and recorded in _errors,
as Lightroom's "attempt to yield across a C-call boundary" would stop it. So
handlers must be started with LrTasks.startAsyncTask, as in Lightroom. The
socket is closed when its functionContext ends.

Switches (LrSocket._quirks; _reset() restores these defaults):
  timeout = 10               seconds between onError(socket, 'timeout') while unconnected; false: never
  noClosedOnPeerExit = false true: (Windows) onClosed does not fire when the peer exits; the socket stays
                             "connected" to it and new peers are accepted by the OS and never read
  sendNeverConnects = false  true: (macOS) a send-mode socket's onConnected never fires; its sends are lost
  secondClientUnread = false true: a second peer is accepted by the OS and never read (false: closed at once)
  portsHeldOnReload = false  true: _reload() (Reload Plug-in) leaves every socket listening and its
                             callbacks firing; false: it closes them
  stormOnReconnectInCallback = false  true: reconnect() called inside a callback fires onError again at once

Test-only helpers (prefixed with "_"): _reset(), _quirks, _stats { binds, closes, reconnects,
reconnectsInCallback, timeouts }, _errors (callbacks that failed or yielded), _open() (sockets not
closed), _all (every socket bound), _reload(), _fire(socket, name, ...) (a callback, as Lightroom
would call it: a test plays a late one from before a reload).

A stand-in for tests; not Adobe code.
]]
local socket = require("lr_shim.system")("socket")
local LrTasks = require "lr_shim.LrTasks"

local LrSocket = {}

local DEFAULT_QUIRKS = {
	timeout = 10, noClosedOnPeerExit = false, sendNeverConnects = false, secondClientUnread = false,
	portsHeldOnReload = false, stormOnReconnectInCallback = false,
}
local SLICE = 0.2 -- longest wait before a task looks at its socket's state again

local function now() return socket.gettime() end

function LrSocket._reset()
	LrSocket._quirks = {}
	for k, v in pairs(DEFAULT_QUIRKS) do LrSocket._quirks[k] = v end
	LrSocket._stats = { binds = 0, closes = 0, reconnects = 0, reconnectsInCallback = 0, timeouts = 0 }
	LrSocket._errors = {}
	for _, s in ipairs(LrSocket._all or {}) do
		if not s.closed then s:close() end
	end
	LrSocket._all = {}
end
LrSocket._reset()

local Socket = {}
Socket.__index = Socket

-- A callback as Lightroom calls it: not in a task that may yield.
local function fire(s, name, ...)
	local fn = s.params[name]
	if type(fn) ~= "function" then return end
	s.inCallback = (s.inCallback or 0) + 1
	local co = coroutine.create(fn)
	local ok, err = coroutine.resume(co, s, ...)
	s.inCallback = s.inCallback - 1
	if not ok then
		LrSocket._errors[#LrSocket._errors + 1] = { callback = name, message = tostring(err) }
	elseif coroutine.status(co) ~= "dead" then
		LrSocket._errors[#LrSocket._errors + 1] = { callback = name,
			message = "attempt to yield across a C-call boundary (" .. name .. " cannot yield: start a task)" }
	end
end
LrSocket._fire = fire

local function dropPeer(s)
	if s.conn then s.conn:close() end
	s.conn, s.buffer, s.deadPeer = nil, "", false
	s.since = now()
end

function Socket:send(message)
	if self.closed or self.mode ~= "send" or not self.conn or not self.announced then return end
	self.conn:send(tostring(message) .. "\n")
end

function Socket:reconnect()
	LrSocket._stats.reconnects = LrSocket._stats.reconnects + 1
	if (self.inCallback or 0) > 0 then
		LrSocket._stats.reconnectsInCallback = LrSocket._stats.reconnectsInCallback + 1
		if LrSocket._quirks.stormOnReconnectInCallback then
			LrTasks.startAsyncTask(function() fire(self, "onError", "timeout") end, "LrSocket storm")
		end
	end
	if self.closed then return end
	dropPeer(self)
end

function Socket:close()
	if self.closed then return end
	self.closed = true
	LrSocket._stats.closes = LrSocket._stats.closes + 1
	dropPeer(self)
	for _, c in ipairs(self.unread) do c:close() end
	self.unread = {}
	self.server:close()
end

-- Reads the peer's lines (receive mode) and notices when it goes.
local function readLoop(s, conn)
	while not s.closed and s.conn == conn do
		LrTasks._waitReadable(conn, now() + SLICE)
		if s.closed or s.conn ~= conn then return end
		local data, err, partial = conn:receive(65536)
		local chunk = data or partial
		if chunk and chunk ~= "" then
			s.buffer = s.buffer .. chunk
			while true do
				local line, rest = s.buffer:match("^([^\n]*)\n(.*)$")
				if not line then break end
				s.buffer = rest
				if s.mode == "receive" then fire(s, "onMessage", (line:gsub("\r$", ""))) end
				if s.closed or s.conn ~= conn then return end
			end
		end
		if err == "closed" then
			if LrSocket._quirks.noClosedOnPeerExit then
				s.deadPeer = true -- Windows: no onClosed; the socket believes it is still connected
				return
			end
			dropPeer(s)
			fire(s, "onClosed")
			return
		end
	end
end

-- Accepts peers; while nobody is connected, onError('timeout') every _quirks.timeout seconds.
local function acceptLoop(s)
	fire(s, "onConnecting", s.port)
	s.since = now()
	while not s.closed do
		local timeout = LrSocket._quirks.timeout
		local deadline = now() + SLICE
		if not s.conn and timeout then deadline = math.min(deadline, s.since + timeout) end
		LrTasks._waitReadable(s.server, deadline)
		if s.closed then return end
		local conn = s.server:accept()
		if conn then
			conn:settimeout(0)
			if s.conn or s.deadPeer then
				-- LrSocket serves one peer: another is left unread (or, switch off, turned away)
				if LrSocket._quirks.secondClientUnread or s.deadPeer then
					s.unread[#s.unread + 1] = conn
				else
					conn:close()
				end
			else
				s.conn, s.buffer = conn, ""
				s.announced = not (s.mode == "send" and LrSocket._quirks.sendNeverConnects)
				if s.announced then fire(s, "onConnected", s.port) end
				LrTasks.startAsyncTask(function() readLoop(s, conn) end, "LrSocket read " .. s.port)
			end
		elseif not s.conn and timeout and now() >= s.since + timeout then
			s.since = now()
			LrSocket._stats.timeouts = LrSocket._stats.timeouts + 1
			fire(s, "onError", "timeout")
		end
	end
end

--- Listen on 127.0.0.1:params.port (0: a port the OS chooses); see the header.
function LrSocket.bind(params)
	assert(type(params) == "table", "LrSocket.bind takes a table")
	assert(params.functionContext, "LrSocket.bind needs a functionContext")
	assert(params.mode == "send" or params.mode == "receive", "LrSocket.bind: mode must be 'send' or 'receive'")
	local s = setmetatable({ params = params, mode = params.mode, unread = {}, buffer = "", closed = false }, Socket)
	local server = socket.tcp()
	local ok, err = server:bind("127.0.0.1", tonumber(params.port) or 0)
	if not ok then
		server:close()
		error("LrSocket.bind: cannot listen on port " .. tostring(params.port) .. ": " .. tostring(err), 2)
	end
	server:listen(8)
	server:settimeout(0)
	s.server = server
	s.port = select(2, server:getsockname())
	s.port = tonumber(s.port)
	LrSocket._stats.binds = LrSocket._stats.binds + 1
	LrSocket._all[#LrSocket._all + 1] = s
	if params.functionContext.addCleanupHandler then
		params.functionContext:addCleanupHandler(function() s:close() end)
	end
	LrTasks.startAsyncTask(function() acceptLoop(s) end, "LrSocket accept")
	return s
end

--- The sockets not closed yet.
function LrSocket._open()
	local open = {}
	for _, s in ipairs(LrSocket._all) do
		if not s.closed then open[#open + 1] = s end
	end
	return open
end

--- Reload Plug-in: sockets are closed, unless _quirks.portsHeldOnReload (then they listen on, callbacks live).
function LrSocket._reload()
	if LrSocket._quirks.portsHeldOnReload then return end
	for _, s in ipairs(LrSocket._open()) do s:close() end
end

return LrSocket
