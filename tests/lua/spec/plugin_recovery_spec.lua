-- Resume and recovery: Positions, SessionStore, and Connection across "restarts" sharing one prefs table
local Config = require 'Config'
local Connection = require 'Connection'
local Dispatcher = require 'Dispatcher'
local Envelope = require 'Envelope'
local Fake = require 'support.fake_runtime'
local Json = require 'Json'
local Positions = require 'Positions'
local SessionStore = require 'SessionStore'

local URL = 'http://bridge.test:5100'

local function msg(seq, channel, offset, epoch)
	return { type = 'job_progress', seq = seq, channel = channel, offset = offset, epoch = epoch, job_id = 'j' .. seq }
end

describe("Positions", function()
	it("remembers the offset and epoch of processed channel messages, and ignores others", function()
		local p = Positions.new()
		assert.is_true(p:observe(msg(1, 'jobs', 7, 'e1')))
		assert.is_false(p:observe(msg(2, 'jobs', 7, 'e1'))) -- the same position again
		assert.is_false(p:observe({ type = 'custom_message', seq = 3 })) -- sent to this client only
		assert.is_false(p:observe({ type = 'x', channel = 'jobs', offset = -1, epoch = 'e1' }))
		assert.is_false(p:observe({ type = 'x', channel = 'jobs', offset = 1.5, epoch = 'e1' }))
		assert.is_false(p:observe({ type = 'x', channel = 'jobs', offset = 9, epoch = string.rep('e', 65) }))
		assert.is_true(p:observe(msg(4, 'photos', 0, 'e2')))
		assert.are.same({ jobs = { offset = 7, epoch = 'e1' }, photos = { offset = 0, epoch = 'e2' } }, p:all())
	end)

	it("skips unusable saved entries", function()
		local p = Positions.new({ jobs = { offset = '3', epoch = 'e' }, bad = { offset = 'x', epoch = 'e' }, worse = 'text',
			[1] = { offset = 1, epoch = 'e' } })
		assert.are.same({ jobs = { offset = 3, epoch = 'e' } }, p:all())
	end)

	it("asks to recover only the channels it has a position for", function()
		local p = Positions.new({ jobs = { offset = 3, epoch = 'e' }, sessions = { offset = 1, epoch = 'f' } })
		assert.are.same({ jobs = { offset = 3, epoch = 'e' } }, p:recover({ 'jobs', 'system' }))
		assert.is_nil(p:recover({ 'photos' }))
		assert.is_true(Positions.wantsSnapshot({ 'photos', 'system' }))
		assert.is_false(Positions.wantsSnapshot({ 'photos' }))
	end)

	it("takes the reply's positions only where no replayed message is still to be processed", function()
		local p = Positions.new({ jobs = { offset = 3, epoch = 'e' }, system = { offset = 5, epoch = 'old' } })
		local summary = p:confirmed({
			recovery = {
				jobs = { recovered = true, replayed = 4, lost = 0, epoch_changed = false, offset = 7, epoch = 'e' },
				system = { recovered = false, replayed = 0, epoch_changed = true, offset = 0, epoch = 'new' },
			},
			positions = { jobs = { offset = 7, epoch = 'e' }, system = { offset = 0, epoch = 'new' },
				photos = { offset = 12, epoch = 'p' } },
		}, false)
		-- jobs moves as the 4 replayed messages are processed; system has nothing to replay; photos is new
		assert.are.same({ jobs = { offset = 3, epoch = 'e' }, system = { offset = 0, epoch = 'new' },
			photos = { offset = 12, epoch = 'p' } }, p:all())
		assert.is_false(summary.complete)
		assert.are.equal(4, summary.replayed)
		assert.are.equal(0, summary.lost)
		assert.are.same({ 'system' }, summary.epoch_changed)
		assert.are.same({ recovered = false, replayed = 0, epoch_changed = true }, summary.channels.system)
		assert.matches('system 0 replayed, history restarted', Positions.describe(summary), 1, true)
	end)

	it("counts what is gone, and says nothing when nothing was to recover", function()
		local p = Positions.new({ jobs = { offset = 2, epoch = 'e' } })
		local summary = p:confirmed({ recovery = { jobs = { recovered = false, replayed = 5, lost = 7,
			epoch_changed = false, offset = 14, epoch = 'e' } }, positions = { jobs = { offset = 14, epoch = 'e' } } }, false)
		assert.are.same({ complete = false, replayed = 5, lost = 7, epoch_changed = {},
			channels = { jobs = { recovered = false, replayed = 5, lost = 7, epoch_changed = false } } }, summary)
		assert.are.equal('some missed channel messages are gone: jobs 5 replayed, 7 gone', Positions.describe(summary))
		assert.is_nil(p:confirmed({ positions = { jobs = { offset = 14, epoch = 'e' } } }, true))
		assert.are.same({ offset = 2, epoch = 'e' }, p:get('jobs')) -- a resumed queue still holds 3..14
	end)
end)

describe("SessionStore", function()
	it("keeps the session, the last seq and the positions for the next run", function()
		local prefs, t = {}, 0
		local store = SessionStore.new(prefs, URL, function() return t end, 2)
		assert.is_nil(store:credentials())
		store:sessionStarted('c1', 's1', false)
		store:processed(msg(1, 'jobs', 4, 'e'))
		store:processed(msg(2, 'jobs', 5, 'e'))
		store:close()
		assert.are.equal('c1', prefs.bridgeClientId)
		assert.are.equal('s1', prefs.bridgeClientSecret)
		assert.are.equal(URL, prefs.bridgeServer)
		assert.are.equal(2, prefs.bridgeLastSeq)
		assert.are.same({ jobs = { offset = 5, epoch = 'e' } }, Json.decode(prefs.bridgePositions))
		-- a closed store writes nothing more (a task of a stopped run that ends late)
		store:processed(msg(3, 'jobs', 6, 'e'))
		store:save(true)
		assert.are.equal(2, prefs.bridgeLastSeq)

		local again = SessionStore.new(prefs, URL, function() return t end, 2)
		assert.are.same({ 'c1', 's1' }, { again:credentials() })
		assert.are.equal(2, again.lastSeq)
		assert.are.same({ offset = 5, epoch = 'e' }, again.positions:get('jobs'))
	end)

	it("writes positions at most every interval, and at once when forced", function()
		local prefs, t = {}, 0
		local store = SessionStore.new(prefs, URL, function() return t end, 2)
		store:sessionStarted('c1', 's1', false)
		local writes = store.writes
		for i = 1, 10 do
			store:processed(msg(i, 'jobs', i, 'e'))
			store:save(false)
			t = t + 0.5
		end
		-- t = 0 (session) ... 5: writes at 2 and 4
		assert.are.equal(writes + 2, store.writes)
		assert.is_true(store:save(true))
		assert.are.equal(10, prefs.bridgeLastSeq)
		assert.is_false(store:save(true)) -- nothing changed
	end)

	it("a new session starts the seq afresh; a forgotten one keeps the positions", function()
		local prefs = {}
		local store = SessionStore.new(prefs, URL, nil, 0)
		store:sessionStarted('c1', 's1', false)
		store:processed(msg(9, 'jobs', 3, 'e'))
		store:sessionStarted('c1', 's1', true)
		assert.are.equal(9, store.lastSeq)
		store:sessionStarted('c2', 's2', false)
		assert.are.equal(0, store.lastSeq)
		store:forgetSession()
		assert.is_nil(prefs.bridgeClientId)
		assert.is_nil(prefs.bridgeClientSecret)
		assert.are.same({ jobs = { offset = 3, epoch = 'e' } }, Json.decode(prefs.bridgePositions))
	end)

	it("ignores what was saved for another server, and unreadable values", function()
		local prefs = { bridgeServer = 'http://other:1', bridgeClientId = 'c1', bridgeClientSecret = 's1',
			bridgePositions = '{"jobs":{"offset":3,"epoch":"e"}}' }
		local store = SessionStore.new(prefs, URL, nil, 0)
		assert.is_nil(store:credentials())
		assert.is_nil(store.positions:get('jobs'))
		store = SessionStore.new({ bridgeClientId = 'c1', bridgePositions = 'not json' }, URL, nil, 0)
		assert.is_nil(store:credentials()) -- an id without its secret cannot resume
		assert.are.same({}, store.positions:all())
	end)
end)

describe("Envelope for resume and recovery", function()
	it("presents the saved session at the handshake, only with both id and secret", function()
		assert.are.same({ client_type = 'lightroom', protocol_version = '1.0', client_id = 'c', client_secret = 's' },
			Envelope.handshake('c', 's'))
		assert.are.same({ client_type = 'lightroom', protocol_version = '1.0' }, Envelope.handshake('c', nil))
	end)

	it("subscribes with recover as an object and the snapshot flag", function()
		local text = Json.encode(Envelope.subscribe({ 'jobs' }, { jobs = { offset = 3, epoch = 'e' } }, true))
		assert.are.same({ type = 'subscribe', channels = { 'jobs' }, recover = { jobs = { offset = 3, epoch = 'e' } },
			snapshot = true }, Json.decode(text))
		assert.are.same({ type = 'subscribe', channels = { 'jobs' } }, Envelope.subscribe({ 'jobs' }, {}, false))
	end)
end)

-- A scripted bridge that knows sessions: `hub.sessions[id] = secret`; polls answer from `hub.polls[id]`.
local function scriptedBridge(hub)
	hub.sessions = hub.sessions or {}
	hub.polls = hub.polls or {}
	hub.subscribes = {}
	hub.next = hub.next or 1
	return function(request, rt)
		local path = request.path
		if path == '/ws/handshake' then
			local body = request.body
			if body.client_id and hub.sessions[body.client_id] == body.client_secret then
				return Fake.ok({ client_id = body.client_id, client_secret = body.client_secret, resumed = true })
			end
			local id = 'c' .. hub.next
			hub.next = hub.next + 1
			hub.sessions[id] = 's-' .. id
			return Fake.ok({ client_id = id, client_secret = 's-' .. id, resumed = false })
		elseif path == '/ws/send' then
			local message = request.body.message
			if message.type == 'subscribe' then
				hub.subscribes[#hub.subscribes + 1] = message
				return Fake.ok({ response = hub.subscribeReply and hub.subscribeReply(message) or {
					type = 'subscription_confirmed', channels = message.channels, subscriptions = message.channels } })
			end
			return Fake.ok({ response = { type = message.type .. '_ok' } })
		elseif path:find('^/ws/poll') then
			local id = path:match('client_id=([^&]+)')
			if not hub.sessions[id] then return Fake.unknownClient() end
			if path:find('wait=0&', 1, true) then return Fake.ok({ messages = {}, superseded = true }) end
			local queue = hub.polls[id] or {}
			local answer = table.remove(queue, 1)
			if not answer then
				rt.conn:stop('test over', true)
				return Fake.ok({ messages = {}, superseded = true })
			end
			if type(answer) == 'function' then return answer(request, rt) end
			return Fake.ok({ messages = answer, dropped = 0 })
		elseif path == '/ws/disconnect' then
			hub.sessions[request.body.client_id] = nil
			return Fake.ok({})
		end
		error('unexpected request ' .. path)
	end
end

-- One "run" of the plug-in: a Connection over `prefs`, run until the scripted polls are used up.
local function run(hub, prefs, options)
	local rt = Fake.new(scriptedBridge(hub))
	rt.prefs = prefs
	local opts = { HTTP_FALLBACK_URL = URL }
	for k, v in pairs(options or {}) do opts[k] = v end
	local config = Config.resolve(nil, opts)
	local dispatcher = Dispatcher.new(pcall)
	local seen = { events = {}, messages = {} }
	for _, name in ipairs({ 'connected', 'disconnected', 'recovery' }) do
		dispatcher:addEventListener(name, function(data) seen.events[#seen.events + 1] = data end)
	end
	dispatcher:addEventListener('*', function(m) seen.messages[#seen.messages + 1] = m end)
	local conn = Connection.new(config, rt, dispatcher, {})
	rt.conn = conn
	conn:start()
	rt.run('connection')
	return rt, seen, conn
end

local function paths(rt)
	local out = {}
	for i, request in ipairs(rt.requests) do out[i] = request.path end
	return out
end

local function ofType(events, kind)
	local out = {}
	for _, e in ipairs(events) do
		if e.type == kind then out[#out + 1] = e end
	end
	return out
end

describe("Connection across restarts", function()
	it("saves its session on the first run and resumes it on the next, acknowledging from the saved seq", function()
		local prefs, hub = {}, { polls = {} }
		hub.polls.c1 = { { msg(1, 'jobs', 1, 'e'), msg(2, 'jobs', 2, 'e') } }
		local rt, seen = run(hub, prefs)
		assert.are.same({ client_type = 'lightroom', protocol_version = '1.0' }, rt.requests[1].body)
		-- the clean stop keeps the session: a poll that does not wait, acknowledging seq 2; no /ws/disconnect
		local p = paths(rt)
		assert.are.equal('/ws/poll?client_id=c1&wait=0&ack=2', p[#p])
		assert.are.equal('c1', prefs.bridgeClientId)
		assert.are.equal(2, prefs.bridgeLastSeq)
		assert.are.same({ jobs = { offset = 2, epoch = 'e' } }, Json.decode(prefs.bridgePositions))
		assert.is_false(ofType(seen.events, 'connected')[1].resumed)

		-- "Lightroom restarted": the same prefs, the session still at the bridge
		hub.polls.c1 = { { msg(2, 'jobs', 2, 'e'), msg(3, 'jobs', 3, 'e') } }
		rt, seen = run(hub, prefs)
		local handshake = rt.requests[1].body
		assert.are.same({ 'c1', 's-c1' }, { handshake.client_id, handshake.client_secret })
		local subscribe = hub.subscribes[#hub.subscribes]
		assert.is_nil(subscribe.recover) -- the resumed queue holds what was missed
		assert.is_nil(subscribe.snapshot)
		assert.are.equal('/ws/poll?client_id=c1&wait=25&ack=2', rt.requests[4].path)
		assert.are.same({ 3 }, { seen.messages[1].seq, seen.messages[2] }) -- seq 2 was processed in the first run
		assert.is_true(ofType(seen.events, 'connected')[1].resumed)
		assert.are.same({}, ofType(seen.events, 'recovery'))
		assert.are.equal(3, prefs.bridgeLastSeq)
	end)

	it("recovers from the saved positions when the bridge forgot the session, and reports what is gone", function()
		local prefs, hub = {}, { polls = {} }
		hub.polls.c1 = { { msg(1, 'jobs', 1, 'e'), msg(2, 'system', 4, 'f') } }
		run(hub, prefs)
		hub.sessions.c1 = nil -- removed as stale while Lightroom was closed
		hub.subscribeReply = function(message)
			return { type = 'subscription_confirmed', channels = message.channels, subscriptions = message.channels,
				recovery = {
					jobs = { recovered = false, replayed = 3, lost = 7, epoch_changed = false, offset = 11, epoch = 'e' },
					system = { recovered = true, replayed = 0, lost = 0, epoch_changed = false, offset = 4, epoch = 'f' },
				},
				positions = { jobs = { offset = 11, epoch = 'e' }, system = { offset = 4, epoch = 'f' },
					photos = { offset = 0, epoch = 'g' } } }
		end
		hub.polls.c2 = { { msg(2, 'jobs', 9, 'e'), msg(3, 'jobs', 10, 'e'), msg(4, 'jobs', 11, 'e') } }
		local rt, seen = run(hub, prefs)
		assert.are.equal('c1', rt.requests[1].body.client_id) -- tried to resume first
		local subscribe = hub.subscribes[#hub.subscribes]
		assert.are.same({ jobs = { offset = 1, epoch = 'e' }, system = { offset = 4, epoch = 'f' } }, subscribe.recover)
		assert.is_true(subscribe.snapshot)
		assert.are.equal('c2', prefs.bridgeClientId)
		local kinds = {}
		for i, e in ipairs(seen.events) do kinds[i] = e.type end
		assert.are.same({ 'connected', 'recovery', 'disconnected' }, kinds)
		local recovery = seen.events[2]
		assert.is_false(recovery.complete)
		assert.are.equal(7, recovery.lost)
		assert.are.equal(7, recovery.channels.jobs.lost)
		local warned = 0
		for _, line in ipairs(rt.lines) do
			if line:find('WARN some missed channel messages are gone: jobs 3 replayed, 7 gone', 1, true) then warned = warned + 1 end
		end
		assert.are.equal(1, warned, table.concat(rt.lines, '\n'))
		assert.are.same({ jobs = { offset = 11, epoch = 'e' }, system = { offset = 4, epoch = 'f' },
			photos = { offset = 0, epoch = 'g' } }, Json.decode(prefs.bridgePositions))
	end)

	it("on 404 unknown_client while running, handshakes presenting the saved session, then recovers", function()
		local prefs, hub = {}, { polls = {} }
		hub.polls.c1 = { { msg(1, 'photos', 5, 'e') }, function()
			hub.sessions.c1 = nil
			return Fake.unknownClient()
		end }
		local rt = run(hub, prefs)
		local handshakes = {}
		for _, r in ipairs(rt.requests) do
			if r.path == '/ws/handshake' then handshakes[#handshakes + 1] = r.body.client_id or 'none' end
		end
		assert.are.same({ 'none', 'c1' }, handshakes)
		assert.are.same({ photos = { offset = 5, epoch = 'e' } }, hub.subscribes[2].recover)
		assert.are.same({}, rt.sleeps)
	end)

	it("disconnect() forgets the session but keeps the positions", function()
		local prefs, hub = {}, { polls = {} }
		hub.polls.c1 = { { msg(1, 'jobs', 3, 'e') }, function(_, rt)
			rt.conn:stop('disconnect')
			return Fake.ok({ messages = {}, closed = true })
		end }
		local rt = run(hub, prefs)
		assert.are.equal('/ws/disconnect', rt.requests[#rt.requests].path)
		assert.is_nil(prefs.bridgeClientId)
		assert.are.same({ jobs = { offset = 3, epoch = 'e' } }, Json.decode(prefs.bridgePositions))
	end)

	it("a resumed session drops channels no longer configured", function()
		local prefs, hub = {}, { polls = {} }
		run(hub, prefs)
		hub.subscribeReply = function(message)
			return { type = 'subscription_confirmed', channels = message.channels,
				subscriptions = { 'jobs', 'photos', 'system' } }
		end
		local rt = run(hub, prefs, { CHANNELS = { 'jobs' } })
		assert.are.same({ type = 'unsubscribe', channels = { 'photos', 'system' } }, rt.requests[4].body.message)
	end)

	it("writes the prefs at most every SAVE_INTERVAL while messages flow, and everything at the stop", function()
		local prefs, hub = {}, { polls = {} }
		local batches = {}
		for i = 1, 20 do
			batches[i] = function(_, rt)
				rt.t = rt.t + 0.5
				return Fake.ok({ messages = { msg(i, 'jobs', i, 'e') } })
			end
		end
		hub.polls.c1 = batches
		local _, _, conn = run(hub, prefs, { SAVE_INTERVAL = 3 })
		-- the session at subscribe, one write per 3 s of 10 s, the final one
		assert.is_true(conn.store.writes <= 1 + 4 + 1, tostring(conn.store.writes))
		assert.are.equal(20, prefs.bridgeLastSeq)
		assert.are.same({ jobs = { offset = 20, epoch = 'e' } }, Json.decode(prefs.bridgePositions))
	end)
end)
