-- Backoff: delays grow exponentially, are capped, jittered downwards, then slow
local Backoff = require 'Backoff'

describe("Backoff", function()
	it("doubles from the base and stops at the cap (no jitter drawn)", function()
		local b = Backoff.new { base = 1, cap = 8, maxAttempts = 10, slowDelay = 30, random = function() return 0 end }
		local delays = {}
		for i = 1, 7 do delays[i] = (b:next()) end
		assert.are.same({ 1, 2, 4, 8, 8, 8, 8 }, delays)
	end)

	it("jitter only shortens a delay, by at most the jitter fraction", function()
		local draws = { 0.999, 0.5, 0, 0.25 }
		local i = 0
		local b = Backoff.new { base = 2, cap = 16, jitter = 0.25, random = function() i = i + 1; return draws[i] end }
		for attempt = 1, 4 do
			local delay = b:next()
			local ceiling = math.min(16, 2 * 2 ^ (attempt - 1))
			assert.is_true(delay <= ceiling and delay >= ceiling * 0.75, attempt .. ': ' .. delay)
		end
	end)

	it("reports exhaustion at maxAttempts and then waits slowDelay, forever", function()
		local b = Backoff.new { base = 1, cap = 4, maxAttempts = 3, slowDelay = 20, random = function() return 0 end }
		local _, attempt, exhausted = b:next()
		assert.are.equal(1, attempt); assert.is_false(exhausted)
		b:next()
		local delay
		delay, attempt, exhausted = b:next()
		assert.are.equal(4, delay); assert.are.equal(3, attempt); assert.is_true(exhausted)
		for _ = 1, 50 do delay = b:next() end
		assert.are.equal(20, delay)
	end)

	it("starts over after reset()", function()
		local b = Backoff.new { base = 3, cap = 100, random = function() return 0 end }
		b:next(); b:next(); b:next()
		b:reset()
		assert.are.equal(3, (b:next()))
	end)

	it("never uses a slow delay below the cap", function()
		local b = Backoff.new { base = 1, cap = 50, slowDelay = 10, maxAttempts = 1, random = function() return 0 end }
		b:next()
		assert.are.equal(50, (b:next()))
	end)

	it("with immediateFirst, retries the first time at once, then doubles from the base", function()
		local b = Backoff.new { base = 1, cap = 8, maxAttempts = 10, immediateFirst = true, random = function() return 0 end }
		local delays = {}
		for i = 1, 6 do delays[i] = (b:next()) end
		assert.are.same({ 0, 1, 2, 4, 8, 8 }, delays)
		b:reset()
		assert.are.equal(0, (b:next()))
	end)
end)
