-- The LrSocket stand-in on its own, against a plain TCP client (LuaSocket), each quirk switched on in turn.
describe("LrSocket shim", function()
	local LrTasks, LrSocket, socket
	setup(function()
		LrTasks, LrSocket = import "LrTasks", import "LrSocket"
		socket = require("lr_shim.system")("socket")
	end)
	before_each(function()
		LrTasks._reset()
		LrSocket._reset()
	end)
	after_each(function() LrSocket._reset() end)

	local context = { addCleanupHandler = function() end }

	-- bind with callbacks that record what happened; returns the socket and the record
	local function bind(mode, extra)
		local seen = { connecting = {}, connected = 0, messages = {}, closed = 0, errors = {} }
		local params = {
			functionContext = context, plugin = _PLUGIN, port = 0, mode = mode,
			onConnecting = function(_, port) seen.connecting[#seen.connecting + 1] = port end,
			onConnected = function() seen.connected = seen.connected + 1 end,
			onMessage = function(_, message) seen.messages[#seen.messages + 1] = message end,
			onClosed = function() seen.closed = seen.closed + 1 end,
			onError = function(_, err) seen.errors[#seen.errors + 1] = err end,
		}
		for k, v in pairs(extra or {}) do params[k] = v end
		local s = LrSocket.bind(params)
		assert.is_true((LrTasks._runUntil(function() return #seen.connecting == 1 end, 5)))
		return s, seen
	end

	local function connect(port)
		local client = socket.tcp()
		client:settimeout(5)
		assert(client:connect("127.0.0.1", port))
		return client
	end

	it("listens on the port onConnecting names and hands each line of a peer to onMessage", function()
		local s, seen = bind("receive")
		assert.are.equal(s.port, seen.connecting[1])
		assert.is_true(seen.connecting[1] > 0)
		local client = connect(s.port)
		assert.is_true((LrTasks._runUntil(function() return seen.connected == 1 end, 5)))
		client:send('{"a":1}\nsecond li')
		client:send('ne\n')
		assert.is_true((LrTasks._runUntil(function() return #seen.messages == 2 end, 5)))
		assert.are.same({ '{"a":1}', "second line" }, seen.messages)
		client:close()
		assert.is_true((LrTasks._runUntil(function() return seen.closed == 1 end, 5)))
		s:close()
	end)

	it("a send-mode socket writes lines to its peer", function()
		local s, seen = bind("send")
		local client = connect(s.port)
		assert.is_true((LrTasks._runUntil(function() return seen.connected == 1 end, 5)))
		s:send("hello")
		assert.are.equal("hello", client:receive("*l"))
		client:close()
		s:close()
	end)

	it("raises onError('timeout') every _quirks.timeout seconds while unconnected, and not once connected", function()
		LrSocket._quirks.timeout = 0.2
		local s, seen = bind("receive")
		assert.is_true((LrTasks._runUntil(function() return #seen.errors == 2 end, 5)))
		assert.are.same({ "timeout", "timeout" }, seen.errors)
		local client = connect(s.port)
		assert.is_true((LrTasks._runUntil(function() return seen.connected == 1 end, 5)))
		local before = #seen.errors
		local t0 = socket.gettime()
		LrTasks._runUntil(function() return socket.gettime() - t0 > 0.6 end, 5)
		assert.are.equal(before, #seen.errors)
		client:close()
		s:close()
	end)

	it("a callback that yields is stopped there and recorded, as in Lightroom", function()
		local after = false
		local s = bind("receive", { onMessage = function()
			LrTasks.sleep(0.01)
			after = true
		end })
		local client = connect(s.port)
		client:send("x\n")
		assert.is_true((LrTasks._runUntil(function() return #LrSocket._errors == 1 end, 5)))
		assert.matches("cannot yield", LrSocket._errors[1].message)
		assert.is_false(after)
		client:close()
		s:close()
	end)

	it("noClosedOnPeerExit: onClosed does not fire and a new peer is never read", function()
		LrSocket._quirks.noClosedOnPeerExit = true
		local s, seen = bind("receive")
		local first = connect(s.port)
		assert.is_true((LrTasks._runUntil(function() return seen.connected == 1 end, 5)))
		first:close()
		assert.is_true((LrTasks._runUntil(function() return s.deadPeer end, 5)))
		local second = connect(s.port) -- the OS completes the handshake
		second:send("unread\n")
		assert.is_true((LrTasks._runUntil(function() return #s.unread == 1 end, 5)))
		local t0 = socket.gettime()
		LrTasks._runUntil(function() return socket.gettime() - t0 > 0.5 end, 5)
		assert.are.equal(0, seen.closed)
		assert.are.equal(1, seen.connected)
		assert.are.same({}, seen.messages)
		second:close()
		s:close()
	end)

	it("without it, onClosed fires when the peer exits and the next peer is served", function()
		local s, seen = bind("receive")
		connect(s.port):close()
		assert.is_true((LrTasks._runUntil(function() return seen.closed == 1 end, 5)))
		local again = connect(s.port)
		again:send("read\n")
		assert.is_true((LrTasks._runUntil(function() return #seen.messages == 1 end, 5)))
		assert.are.equal(2, seen.connected)
		again:close()
		s:close()
	end)

	it("sendNeverConnects: a send-mode socket's onConnected never fires and its sends are lost", function()
		LrSocket._quirks.sendNeverConnects = true
		local s, seen = bind("send")
		local client = connect(s.port)
		local t0 = socket.gettime()
		LrTasks._runUntil(function() return socket.gettime() - t0 > 0.4 end, 5)
		assert.are.equal(0, seen.connected)
		s:send("lost")
		client:settimeout(0.3)
		local line, err = client:receive("*l")
		assert.is_nil(line)
		assert.are.equal("timeout", err)
		client:close()
		s:close()
	end)

	it("secondClientUnread: a second peer is accepted and never read; switched off it is turned away", function()
		LrSocket._quirks.secondClientUnread = true
		local s, seen = bind("receive")
		local first = connect(s.port)
		assert.is_true((LrTasks._runUntil(function() return seen.connected == 1 end, 5)))
		local second = connect(s.port)
		second:send("never\n")
		first:send("first\n")
		assert.is_true((LrTasks._runUntil(function() return #seen.messages == 1 and #s.unread == 1 end, 5)))
		assert.are.same({ "first" }, seen.messages)
		LrSocket._quirks.secondClientUnread = false
		local third = connect(s.port)
		third:settimeout(0)
		local err
		assert.is_true((LrTasks._runUntil(function()
			err = select(2, third:receive("*l"))
			return err == "closed"
		end, 5)))
		for _, c in ipairs({ first, second, third }) do c:close() end
		s:close()
	end)

	it("portsHeldOnReload: _reload() leaves the socket listening, its callbacks live; off, it closes it", function()
		LrSocket._quirks.portsHeldOnReload = true
		local s, seen = bind("receive")
		LrSocket._reload()
		assert.are.equal(1, #LrSocket._open())
		local client = connect(s.port)
		client:send("after reload\n")
		assert.is_true((LrTasks._runUntil(function() return #seen.messages == 1 end, 5)))
		client:close()
		LrSocket._quirks.portsHeldOnReload = false
		LrSocket._reload()
		assert.are.equal(0, #LrSocket._open())
		local refused = socket.tcp()
		refused:settimeout(2)
		assert.is_nil((refused:connect("127.0.0.1", s.port)))
		refused:close()
	end)

	it("stormOnReconnectInCallback: reconnect() inside onError fires onError again at once", function()
		LrSocket._quirks.timeout = 0.2
		LrSocket._quirks.stormOnReconnectInCallback = true
		local seen = { errors = 0 }
		LrSocket.bind { functionContext = context, port = 0, mode = "receive",
			onError = function(sock)
				seen.errors = seen.errors + 1
				sock:reconnect()
			end }
		local t0 = socket.gettime()
		assert.is_true((LrTasks._runUntil(function() return seen.errors >= 20 end, 5)))
		assert.is_true(socket.gettime() - t0 < 1.0) -- far more than one per 0.2 s: a storm
		assert.is_true(LrSocket._stats.reconnectsInCallback >= 20)
	end)

	it("closes the socket when its function context ends", function()
		local LrFunctionContext = import "LrFunctionContext"
		local port
		LrFunctionContext.postAsyncTaskWithContext("bind", function(ctx)
			local s = LrSocket.bind { functionContext = ctx, port = 0, mode = "receive" }
			port = s.port
		end)
		assert.is_true((LrTasks._runUntil(function() return port ~= nil and #LrSocket._open() == 0 end, 5)))
	end)
end)
