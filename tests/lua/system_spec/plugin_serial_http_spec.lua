-- Issue point 5, against the real bridge: an LrHttp that serves one request at a time
-- (LrHttp._serial) still delivers a send within the hold of the poll parked when it was made.
-- The send waits for the parked poll to end; then the poll loop lets it go first (it yields
-- before polling and polls without a hold while a send waits) instead of taking LrHttp again.
local LrHttp = import 'LrHttp'
local LrTasks = import 'LrTasks'
local live = require 'support.live'
local socket = require('lr_shim.system')('socket')

local function isLongPoll(entry)
	return entry.url:find('/ws/poll', 1, true) and not entry.url:find('wait=0&', 1, true)
end

describe("an LrHttp that serves one request at a time", function()
	before_each(live.reset)

	it("delivers every send within the hold of the poll parked when it was made", function()
		LrHttp._serial = true
		local ws, events = live.client()
		ws.init(live.options({ POLL_WAIT = 2, PING_INTERVAL = 60 }))
		live.wait(events, 'connected')
		local results = {}
		for i = 1, 4 do
			-- let a poll park, then send from another task
			LrTasks._runUntil(function() return false end, 0.5 + 0.3 * i)
			LrHttp._log = {}
			LrTasks.startAsyncTask(function()
				local t0 = socket.gettime()
				local ok, reply = ws.sendJobProgress('serial-' .. i, 's', i, 'm')
				results[i] = { ok = ok, reply = reply, log = LrHttp._log, seconds = socket.gettime() - t0 }
			end, 'spec send')
			live.runUntil(function() return results[i] ~= nil end, 10, 'send ' .. i)
			assert.is_true(results[i].ok, tostring(results[i].reply))
			-- between the send and its answer, no long poll started: at most the one parked ended
			local longStarts, sendStart = 0, nil
			for _, entry in ipairs(results[i].log) do
				if entry.event == 'start' and entry.url:find('/ws/send', 1, true) and not sendStart then sendStart = true end
				if entry.event == 'start' and isLongPoll(entry) and not sendStart then longStarts = longStarts + 1 end
			end
			assert.is_true(sendStart)
			assert.are.equal(0, longStarts)
		end
		local took = {}
		for i, r in ipairs(results) do took[i] = string.format('%.2f', r.seconds) end
		io.stderr:write('serial LrHttp, 2 s hold: send latencies ' .. table.concat(took, ', ') .. ' s\n')
		live.finish(ws)
	end)

	it("the stand-in does serialise: a send made while a poll is parked waits for it", function()
		LrHttp._serial = true
		local ws, events = live.client()
		ws.init(live.options({ POLL_WAIT = 2, PING_INTERVAL = 60 }))
		live.wait(events, 'connected')
		LrTasks._runUntil(function() return false end, 0.3)
		LrHttp._log = {}
		local done
		LrTasks.startAsyncTask(function() done = { ws.sendJobProgress('wait', 's', 1, 'm') } end, 'spec send')
		live.runUntil(function() return done ~= nil end, 10, 'the send')
		-- the parked poll ended before the send started
		local pollEnd, sendStart
		for i, entry in ipairs(LrHttp._log) do
			if entry.event == 'end' and isLongPoll(entry) and not pollEnd then pollEnd = i end
			if entry.event == 'start' and entry.url:find('/ws/send', 1, true) and not sendStart then sendStart = i end
		end
		assert.is_truthy(pollEnd and sendStart and pollEnd < sendStart)
		live.finish(ws)
	end)
end)
