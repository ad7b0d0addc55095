-- Connection driven by a fake runtime: an injected clock, scripted HTTP, no sleeping
local Connection = require 'Connection'
local Config = require 'Config'
local Dispatcher = require 'Dispatcher'
local Fake = require 'support.fake_runtime'

local function setup(respond, options)
	local rt = Fake.new(respond)
	local config = Config.resolve(nil, options or { HTTP_FALLBACK_URL = 'http://bridge.test:5100' })
	local dispatcher = Dispatcher.new(pcall)
	local events = {}
	for _, name in ipairs({ 'connected', 'disconnected', 'reconnecting', 'error' }) do
		dispatcher:addEventListener(name, function(data) events[#events + 1] = data end)
	end
	local messages = {}
	dispatcher:addEventListener('*', function(m) messages[#messages + 1] = m end)
	local conn = Connection.new(config, rt, dispatcher, {})
	return conn, rt, events, messages
end

local function kinds(events)
	local out = {}
	for i, e in ipairs(events) do out[i] = e.type end
	return out
end

-- Answers the connection flow; `polls` is a list of functions answering successive polls.
local function bridge(polls)
	local ids, pollCount = { 'c1', 'c2', 'c3' }, 0
	local handshakes = 0
	return function(request, rt)
		if request.path == '/ws/handshake' then
			handshakes = handshakes + 1
			return Fake.ok({ client_id = ids[handshakes], client_secret = 's-' .. ids[handshakes], protocol_version = '1.0',
				server_time = 'now' })
		elseif request.path == '/ws/send' then
			return Fake.ok({ response = { type = request.body.message.type .. '_ok' } })
		elseif request.path:find('^/ws/poll') then
			pollCount = pollCount + 1
			local answer = polls[pollCount]
			if not answer then
				rt.conn:stop('test over')
				return Fake.ok({ messages = {}, closed = true })
			end
			return answer(request, rt)
		elseif request.path == '/ws/disconnect' then
			return Fake.ok({ message = 'disconnected' })
		end
		error('unexpected request ' .. request.path)
	end
end

local function batch(...)
	local messages = {}
	for i, seq in ipairs({ ... }) do messages[i] = { type = 'job_progress', seq = seq, job_id = 'j' .. seq } end
	return function() return Fake.ok({ messages = messages, dropped = 0 }) end
end

local function seqs(messages)
	local out = {}
	for i, m in ipairs(messages) do out[i] = m.seq end
	return out
end

describe("Connection", function()
	it("retries at once, then backs off with growing, capped delays on the injected clock, errors once and retries slowly", function()
		local conn, rt, events
		local refusals = 0
		conn, rt, events = setup(function()
			refusals = refusals + 1
			if refusals > 9 then rt.conn:stop('enough') end
			return Fake.refused()
		end, { RECONNECT_DELAY = 1, RECONNECT_MAX_DELAY = 8, MAX_RECONNECT_ATTEMPTS = 6, SLOW_RETRY_DELAY = 30 })
		rt.conn = conn
		conn:start()
		local t0 = rt.t
		assert.is_true(rt.run('connection'))
		local delays, errors = {}, 0
		for _, e in ipairs(events) do
			if e.type == 'reconnecting' then delays[#delays + 1] = e.delay end
			if e.type == 'error' then errors = errors + 1 end
		end
		assert.are.same({ 0, 1, 2, 4, 8, 8, 30, 30, 30 }, delays)
		assert.are.equal(1, errors)
		-- the clock moved by exactly the delays: the loop really waited them
		assert.are.equal(0 + 1 + 2 + 4 + 8 + 8 + 30 + 30 + 30, rt.t - t0)
		assert.are.equal(10, #rt.requests)
		assert.are.equal('disconnected', conn.status.state)
		assert.is_false(conn:isConnected())
	end)

	it("connects: handshake, register, subscribe, then polls acknowledging what it processed", function()
		local conn, rt, events, messages = setup(bridge({ batch(1, 2), batch(3) }))
		rt.conn = conn
		conn:start()
		rt.run('connection')
		local r = rt.requests
		assert.are.equal('/ws/handshake', r[1].path)
		assert.are.same({ client_type = 'lightroom', protocol_version = '1.0' }, r[1].body)
		assert.are.same({ client_id = 'c1', message = { type = 'register', client_type = 'lightroom',
			client_name = 'Lightroom Classic Plugin', plugin_version = '0.0.0' } }, r[2].body)
		-- a new session with no saved position: no recover, but the jobs/system snapshot
		assert.are.same({ client_id = 'c1', message = { type = 'subscribe', channels = { 'jobs', 'system', 'photos' },
			snapshot = true } }, r[3].body)
		assert.are.equal('/ws/poll?client_id=c1&wait=25&ack=0', r[4].path)
		assert.are.equal('/ws/poll?client_id=c1&wait=25&ack=2', r[5].path)
		assert.are.equal('/ws/poll?client_id=c1&wait=25&ack=3', r[6].path)
		assert.are.same({ 1, 2, 3 }, seqs(messages))
		assert.are.same({ 'connected', 'disconnected' }, kinds(events))
		assert.are.equal('c1', events[1].client_id)
		assert.are.same({}, rt.sleeps)
		-- every request after the handshake proves the id with its secret
		assert.is_nil(r[1].headers['X-Client-Secret'])
		for i = 2, 6 do assert.are.equal('s-c1', r[i].headers['X-Client-Secret'], r[i].path) end
		assert.are.equal('application/json', r[2].headers['Content-Type'])
		-- one ping task per session was started
		assert.is_true(rt.run('ping'))
	end)

	it("handshakes again at once on 404 unknown_client, re-registering and re-subscribing", function()
		local conn, rt, events, messages = setup(bridge({ batch(1), function() return Fake.unknownClient() end, batch(1, 2) }))
		rt.conn = conn
		conn:start()
		rt.run('connection')
		local paths = {}
		for i, request in ipairs(rt.requests) do paths[i] = request.path end
		assert.are.same({
			'/ws/handshake', '/ws/send', '/ws/send', '/ws/poll?client_id=c1&wait=25&ack=0',
			'/ws/poll?client_id=c1&wait=25&ack=1',
			'/ws/handshake', '/ws/send', '/ws/send', '/ws/poll?client_id=c2&wait=25&ack=0',
			'/ws/poll?client_id=c2&wait=25&ack=2', '/ws/disconnect',
		}, paths)
		assert.are.equal('register', rt.requests[7].body.message.type)
		assert.are.equal('subscribe', rt.requests[8].body.message.type)
		assert.are.same({}, rt.sleeps) -- no backoff before the new handshake
		assert.are.same({ 'connected', 'disconnected', 'connected', 'disconnected' }, kinds(events))
		assert.are.equal('unknown_client', events[2].reason)
		assert.are.equal('c2', events[3].client_id)
		assert.are.same({ 1, 1, 2 }, seqs(messages)) -- a new client id starts a new sequence
	end)

	it("re-issues a timed-out poll at once, keeping its client id, and processes a redelivered batch once", function()
		local conn, rt, events, messages = setup(bridge({ batch(1, 2), function() return Fake.timedOut() end, batch(1, 2, 3) }),
			{ RECONNECT_DELAY = 0.5 })
		rt.conn = conn
		conn:start()
		rt.run('connection')
		local polls = {}
		for _, request in ipairs(rt.requests) do
			if request.path:find('^/ws/poll') then polls[#polls + 1] = request.path end
		end
		assert.are.same({
			'/ws/poll?client_id=c1&wait=25&ack=0', '/ws/poll?client_id=c1&wait=25&ack=2',
			'/ws/poll?client_id=c1&wait=25&ack=2', '/ws/poll?client_id=c1&wait=25&ack=3',
		}, polls)
		assert.are.same({ 1, 2, 3 }, seqs(messages))
		-- not a disconnection: no event, no wait, one handshake
		assert.are.same({ 'connected', 'disconnected' }, kinds(events))
		assert.are.same({}, rt.sleeps)
		assert.are.equal(1, conn.status.cuts)
	end)

	it("re-issues cut polls at once, and counts quick cuts in a row as a failure to reach the bridge", function()
		local cut = function() return Fake.cut() end
		local slowCut = function(_, runtime) runtime.t = runtime.t + 10; return Fake.cut() end
		local conn, rt, events = setup(bridge({ slowCut, slowCut, slowCut, slowCut, cut, cut, cut, cut, batch(1) }),
			{ RECONNECT_DELAY = 0.5 })
		rt.conn = conn
		conn:start()
		rt.run('connection')
		-- four slow cuts and three quick ones are polled again at once; the fourth quick one is a failure,
		-- whose first retry is immediate (a poll with the same id)
		assert.are.same({ 'connected', 'disconnected', 'reconnecting', 'connected', 'disconnected' }, kinds(events))
		assert.are.equal('networkConnectionLost', events[3].reason)
		assert.are.equal(0, events[3].delay)
		assert.are.equal(1, events[3].attempt)
		assert.is_true(events[4].resumed)
		assert.are.equal(7, conn.status.cuts)
		local handshakes = 0
		for _, request in ipairs(rt.requests) do
			if request.path == '/ws/handshake' then handshakes = handshakes + 1 end
		end
		assert.are.equal(1, handshakes)
	end)

	it("counts a poll the bridge left unanswered past its longest hold as a failure, not a cut", function()
		-- a stopped gateway still accepts connections: the poll runs into LrHttp's own timeout
		local silent = function(_, runtime) runtime.t = runtime.t + 40; return Fake.timedOut() end
		local conn, rt, events = setup(bridge({ batch(1), silent, batch(2) }), { RECONNECT_DELAY = 0.5 })
		rt.conn = conn
		conn:start()
		rt.run('connection')
		assert.are.same({ 'connected', 'disconnected', 'reconnecting', 'connected', 'disconnected' }, kinds(events))
		assert.are.equal('timedOut', events[3].reason)
		assert.are.equal(0, conn.status.cuts)
	end)

	it("counts only failures to reach the bridge toward the backoff, the first retry at once", function()
		local refused = function() return Fake.refused() end
		local conn, rt, events = setup(bridge({ batch(1), refused, refused, refused, batch(2) }),
			{ RECONNECT_DELAY = 0.5, RECONNECT_MAX_DELAY = 4 })
		rt.conn = conn
		conn:start()
		rt.run('connection')
		local delays = {}
		for _, e in ipairs(events) do
			if e.type == 'reconnecting' then delays[#delays + 1] = e.delay end
		end
		assert.are.same({ 0, 0.5, 1 }, delays)
		assert.are.equal('cannotConnectToHost', events[3].reason)
	end)

	it("a listener that fails does not stop the loop", function()
		local conn, rt, _, messages = setup(bridge({ batch(1), batch(2) }))
		conn.dispatcher:addEventListener('job_progress', function() error('listener bug') end)
		rt.conn = conn
		conn:start()
		rt.run('connection')
		assert.are.same({ 1, 2 }, seqs(messages))
		assert.are.equal(2, conn.dispatcher.failures)
	end)

	it("stop() releases the client id at the gateway and ends every loop", function()
		local conn, rt = setup(bridge({ function(_, runtime)
			runtime.conn:stop('user')
			return Fake.ok({ messages = {}, closed = true })
		end }))
		rt.conn = conn
		conn:start()
		rt.run('connection')
		local last = rt.requests[#rt.requests]
		assert.are.equal('/ws/disconnect', last.path)
		assert.are.same({ client_id = 'c1' }, last.body)
		assert.is_nil(conn.clientId)
		-- the ping task of the stopped session returns at once
		local sleepsBefore = #rt.sleeps
		assert.is_true(rt.run('ping'))
		assert.are.equal(sleepsBefore, #rt.sleeps)
		assert.is_false(conn:start() == false) -- can start again
	end)

	it("logs one line per state change, not one per poll", function()
		local polls = {}
		for i = 1, 20 do polls[i] = batch(i) end
		local conn, rt = setup(bridge(polls))
		rt.conn = conn
		conn:start()
		rt.run('connection')
		assert.are.equal(3, #rt.lines, table.concat(rt.lines, '\n')) -- connecting, connected, disconnected
	end)
end)
