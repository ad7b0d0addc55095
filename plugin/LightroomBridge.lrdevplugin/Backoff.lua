--[[
Backoff: how long to wait before the next connection attempt (pure logic, no SDK).

With `immediateFirst`, the first retry has no delay (a blip costs nothing),
the second waits `base`. Delays grow exponentially from `base` and are capped at `cap`; each is
shortened by a random fraction (up to `jitter`) so that many plug-ins do not
retry in lock step. After `maxAttempts` failures in a row the delay becomes
`slowDelay` (still jittered): the client keeps trying, more slowly, forever.

    local b = Backoff.new{ base = 5, cap = 60, maxAttempts = 10, slowDelay = 120 }
    local delay, attempt, exhausted = b:next()   -- after a failure
    b:reset()                                    -- after a success
]]
local M = {}
M.__index = M

--- A new backoff; `random` (default math.random) returns a number in [0, 1).
function M.new(options)
	options = options or {}
	local self = setmetatable({}, M)
	self.base = math.max(tonumber(options.base) or 5, 0.01)
	self.cap = math.max(tonumber(options.cap) or 60, self.base)
	self.factor = math.max(tonumber(options.factor) or 2, 1)
	self.jitter = math.min(math.max(tonumber(options.jitter) or 0.25, 0), 1)
	self.maxAttempts = math.max(math.floor(tonumber(options.maxAttempts) or 10), 1)
	self.slowDelay = math.max(tonumber(options.slowDelay) or self.cap * 2, self.cap)
	self.random = options.random or math.random
	self.immediateFirst = options.immediateFirst == true
	self.attempts = 0
	return self
end

--- The delay before attempt `attempt` (1-based) without jitter.
function M:ceiling(attempt)
	if attempt > self.maxAttempts then return self.slowDelay end
	if self.immediateFirst then
		if attempt == 1 then return 0 end
		attempt = attempt - 1
	end
	return math.min(self.cap, self.base * self.factor ^ (attempt - 1))
end

--- Record one more failure; returns delay, attempt number, and whether maxAttempts is reached.
function M:next()
	self.attempts = self.attempts + 1
	local ceiling = self:ceiling(self.attempts)
	local delay = ceiling * (1 - self.jitter * self.random())
	return delay, self.attempts, self.attempts >= self.maxAttempts
end

--- Forget the failures (call after a success).
function M:reset()
	self.attempts = 0
end

return M
