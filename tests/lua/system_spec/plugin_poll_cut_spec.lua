-- Issue point 1, against the real bridge: a poll that is cut early, or that LrHttp ends with its
-- timeout error, is polled again at once and is no disconnection; only failures to reach the
-- bridge count toward the backoff, whose first retry is immediate.
local LrHttp = import 'LrHttp'
local LrTasks = import 'LrTasks'
local live = require 'support.live'

describe("a cut or timed-out poll", function()
	before_each(live.reset)

	for _, shape in ipairs({ 'cut', 'timeout' }) do
		it("(" .. shape .. ") is polled again at once, no event, nothing lost or doubled", function()
			local ws, events = live.client()
			ws.init(live.options({ POLL_WAIT = 3 }))
			live.wait(events, 'connected')
			local id = ws.getClientId()
			LrHttp._log = {}
			-- the next four polls end 1.2 s after they started waiting, long before the 3 s hold
			LrHttp._faults = { { match = '/ws/poll', after = 1.2, shape = shape, times = 4 } }
			live.runUntil(function() return LrHttp._faults[1].times == 0 end, 15, 'four cut polls')
			live.notify('after-cuts')
			live.wait(events, 'message', function(m) return m.job_id == 'after-cuts' end)
			-- no disconnection: one connected event, no disconnected or reconnecting, the same client
			assert.are.equal(1, #live.of(events, 'connected'))
			assert.are.same({}, live.of(events, 'disconnected'))
			assert.are.same({}, live.of(events, 'reconnecting'))
			assert.are.equal(id, ws.getClientId())
			assert.are.equal(1, #live.of(events, 'message', function(m) return m.job_id == 'after-cuts' end))
			-- the failures had LrHttp's shape, and each was followed at once by the next poll
			local failed = 0
			for i, entry in ipairs(LrHttp._log) do
				if entry.event == 'end' and entry.error then
					failed = failed + 1
					assert.are.equal(shape == 'cut' and 'networkConnectionLost' or 'timedOut', entry.error)
					local nextStart = LrHttp._log[i + 1]
					assert.are.equal('start', nextStart.event)
					assert.truthy(nextStart.url:find('/ws/poll', 1, true))
					assert.is_true(nextStart.t - entry.t < 0.2, 'the next poll waited ' .. (nextStart.t - entry.t))
				end
			end
			-- the fourth may have been answered (the message) before its cut
			assert.is_true(failed >= 3, failed)
			assert.are.equal(failed, (require 'BridgeStatus').cuts)
			live.finish(ws)
		end)
	end

	it("messages published while polls are being cut arrive exactly once", function()
		local ws, events = live.client()
		ws.init(live.options({ POLL_WAIT = 2 }))
		live.wait(events, 'connected')
		-- answers lost on the way: the poll is cut after the bridge may have answered it
		LrHttp._faults = { { match = '/ws/poll', after = 1, shape = 'cut', times = 6 } }
		for i = 1, 5 do
			assert.is_true(live.notify('cut-' .. i) >= 1)
			LrTasks._runUntil(function() return false end, 0.4)
		end
		LrHttp._faults = {}
		for i = 1, 5 do live.wait(events, 'message', function(m) return m.job_id == 'cut-' .. i end) end
		for i = 1, 5 do
			assert.are.equal(1, #live.of(events, 'message', function(m) return m.job_id == 'cut-' .. i end))
		end
		assert.are.same({}, live.of(events, 'disconnected'))
		live.finish(ws)
	end)

	it("a bridge that cannot be reached is retried at once, then with the growing delay", function()
		local closed = require('support.server').closedPort()
		local ws, events = live.client()
		ws.init(live.options({ HTTP_FALLBACK_URL = 'http://127.0.0.1:' .. closed, RECONNECT_DELAY = 0.2 }))
		local retries = live.wait(events, 'reconnecting', nil, 3)
		assert.are.equal(0, retries[1].data.delay)
		assert.is_true(retries[2].data.delay > 0.14 and retries[2].data.delay <= 0.2, retries[2].data.delay)
		assert.is_true(retries[3].data.delay > 0.29 and retries[3].data.delay <= 0.4, retries[3].data.delay)
		assert.are.equal('cannotConnectToHost', retries[1].data.reason)
		live.finish(ws)
	end)
end)
