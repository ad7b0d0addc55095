-- Issue point 4, against the real bridge: subscribe()/unsubscribe() in the public API, and the
-- plug-in's subscription set (the Channels setting plus run-time changes) restored on resume.
local LrTasks = import 'LrTasks'
local live = require 'support.live'

local function inTask(fn)
	local result
	LrTasks.startAsyncTask(function() result = { fn() } end, 'spec')
	live.runUntil(function() return result ~= nil end, 10, 'the task')
	return unpack(result)
end

local function subscriptions(id)
	local info = assert(live.clientInfo(id), 'the bridge does not know ' .. tostring(id))
	table.sort(info.subscriptions)
	return info.subscriptions
end

describe("subscriptions", function()
	before_each(live.reset)

	it("subscribe() and unsubscribe() change the set now and after a resumed session", function()
		local ws, events = live.client()
		ws.init(live.options({ CHANNELS = { 'jobs' } }))
		live.wait(events, 'connected')
		local id = ws.getClientId()
		local ok, reply = inTask(function() return ws.subscribe({ 'photos', 'sdk.extra' }) end)
		assert.is_true(ok)
		assert.are.equal('subscription_confirmed', reply.type)
		ok = inTask(function() return ws.unsubscribe('jobs') end)
		assert.is_true(ok)
		assert.are.same({ 'photos', 'sdk.extra' }, subscriptions(id))
		assert.are.same({ 'photos', 'sdk.extra' }, ws.getSubscriptions())
		live.broadcast('sdk.extra', { type = 'custom_message', data = 'x1' })
		live.wait(events, 'message', function(m) return m.data == 'x1' end)

		-- Lightroom quits and starts again: the session is resumed, the set is the same
		ws.shutdown()
		live.runUntil(function() return LrTasks._count() == 0 end, 5, 'the stop')
		live.unload()
		local again, againEvents = live.client()
		again.init(live.options({ CHANNELS = { 'jobs' } }))
		local connected = live.wait(againEvents, 'connected')
		assert.is_true(connected[1].data.resumed)
		assert.are.equal(id, connected[1].data.client_id)
		LrTasks._runUntil(function() return false end, 0.5)
		assert.are.same({ 'photos', 'sdk.extra' }, subscriptions(id))
		live.broadcast('sdk.extra', { type = 'custom_message', data = 'x2' })
		live.wait(againEvents, 'message', function(m) return m.data == 'x2' end)
		assert.are.equal(0, live.broadcast('jobs', { type = 'custom_message', data = 'none' }) > 0 and
			#live.of(againEvents, 'message', function(m) return m.data == 'none' end) or 0)
	end)

	it("a subscribe sent as a message is kept like subscribe()", function()
		local ws, events = live.client()
		ws.init(live.options({ CHANNELS = { 'jobs' } }))
		live.wait(events, 'connected')
		local id = ws.getClientId()
		local ok = inTask(function() return ws.send({ type = 'subscribe', channels = { 'sdk.sent' } }) end)
		assert.is_true(ok)
		assert.are.same({ 'jobs', 'sdk.sent' }, subscriptions(id))
		-- a new session (the bridge forgot the old one) subscribes the whole set too
		live.request('POST', '/ws/disconnect', { client_id = id })
		local connected = live.wait(events, 'connected', function(d) return d.client_id ~= id end)
		LrTasks._runUntil(function() return false end, 0.5)
		assert.are.same({ 'jobs', 'sdk.sent' }, subscriptions(connected[1].data.client_id))
	end)

	it("a change made while disconnected applies at the next connection", function()
		local ws, events = live.client()
		assert.is_true(ws.subscribe('sdk.later'))
		ws.init(live.options({ CHANNELS = { 'jobs' } }))
		live.wait(events, 'connected')
		LrTasks._runUntil(function() return false end, 0.3)
		assert.are.same({ 'jobs', 'sdk.later' }, subscriptions(ws.getClientId()))
	end)
end)
