-- Dispatcher and SeqTracker: isolated handlers/listeners; exactly-once by seq
local Dispatcher = require 'Dispatcher'
local SeqTracker = require 'SeqTracker'

describe("Dispatcher", function()
	it("calls the handler, then every listener, then '*' listeners, with the message", function()
		local d = Dispatcher.new()
		local calls = {}
		d:registerHandler('job_created', function(m) calls[#calls + 1] = 'handler ' .. m.job_id end)
		d:addEventListener('job_created', function(m) calls[#calls + 1] = 'first ' .. m.job_id end)
		d:addEventListener('job_created', function(m) calls[#calls + 1] = 'second ' .. m.job_id end)
		d:addEventListener('*', function(m) calls[#calls + 1] = 'any ' .. m.type end)
		d:addEventListener('photo_imported', function() calls[#calls + 1] = 'wrong' end)
		assert.are.equal(4, d:dispatch({ type = 'job_created', job_id = 'j1' }))
		assert.are.same({ 'handler j1', 'first j1', 'second j1', 'any job_created' }, calls)
	end)

	it("keeps going when a listener fails, and reports the failure", function()
		local failures = {}
		local d = Dispatcher.new(pcall, function(what, eventType, err) failures[#failures + 1] = { what, eventType, err } end)
		local seen = 0
		d:addEventListener('x', function() error('boom', 0) end)
		d:addEventListener('x', function() seen = seen + 1 end)
		d:registerHandler('x', function() error('bad handler', 0) end)
		d:dispatch({ type = 'x' })
		d:dispatch({ type = 'x' })
		assert.are.equal(2, seen)
		assert.are.equal(4, #failures)
		assert.are.same({ 'handler', 'x', 'bad handler' }, failures[1])
		assert.are.same({ 'listener', 'x', 'boom' }, failures[2])
	end)

	it("removes a listener by function value, and ignores a duplicate add", function()
		local d = Dispatcher.new()
		local n = 0
		local function listener() n = n + 1 end
		d:addEventListener('e', listener)
		d:addEventListener('e', listener)
		d:emit('e', {})
		assert.are.equal(1, n)
		assert.is_true(d:removeEventListener('e', listener))
		assert.is_false(d:removeEventListener('e', listener))
		d:emit('e', {})
		assert.are.equal(1, n)
	end)

	it("lets a listener remove itself during dispatch without skipping the next one", function()
		local d = Dispatcher.new()
		local order = {}
		local first
		first = function() order[#order + 1] = 1; d:removeEventListener('e', first) end
		d:addEventListener('e', first)
		d:addEventListener('e', function() order[#order + 1] = 2 end)
		d:emit('e', {})
		d:emit('e', {})
		assert.are.same({ 1, 2, 2 }, order)
	end)

	it("does not send connection events to '*' listeners", function()
		local d = Dispatcher.new()
		local n = 0
		d:addEventListener('*', function() n = n + 1 end)
		d:emit('connected', { type = 'connected' }, false)
		assert.are.equal(0, n)
	end)
end)

describe("SeqTracker", function()
	it("accepts each seq once and acknowledges the last processed", function()
		local t = SeqTracker.new()
		local processed = {}
		local function deliver(batch)
			for _, seq in ipairs(batch) do
				local m = { seq = seq }
				if t:isNew(m) then processed[#processed + 1] = seq; t:done(m) end
			end
		end
		deliver({ 1, 2, 3 })
		assert.are.equal(3, t:ack())
		deliver({ 2, 3, 4, 5 }) -- a lost response redelivered, plus new ones
		assert.are.same({ 1, 2, 3, 4, 5 }, processed)
		assert.are.equal(2, t.duplicates)
		assert.are.equal(5, t:ack())
	end)

	it("counts gaps and starts over after reset()", function()
		local t = SeqTracker.new()
		t:done({ seq = 1 }); t:done({ seq = 4 })
		assert.are.equal(1, t.gaps)
		t:reset()
		assert.are.equal(0, t:ack())
		assert.is_true(t:isNew({ seq = 1 }))
		assert.is_true(t:isNew({ type = 'no seq' }))
	end)
end)
