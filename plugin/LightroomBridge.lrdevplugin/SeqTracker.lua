--[[
SeqTracker: which delivered messages are new (pure logic, no SDK).

The hub numbers each client's messages 1, 2, 3... and keeps them until a poll
acknowledges them (`ack=` the last seq processed). A poll response that is
lost is therefore delivered again; the tracker drops what was already
processed, so every message is handled exactly once. A new client id starts
a new sequence: call reset(); a resumed session continues from the last seq
it processed before: reset(thatSeq).
]]
local M = {}
M.__index = M

function M.new()
	return setmetatable({ last = 0, duplicates = 0, gaps = 0 }, M)
end

--- Start over: a new client id (`last` nil), or a resumed one that had processed up to `last`.
function M:reset(last)
	self.last, self.duplicates, self.gaps = tonumber(last) or 0, 0, 0
end

--- True when `message` has not been processed yet; messages without a seq are always new.
function M:isNew(message)
	local seq = type(message) == 'table' and tonumber(message.seq) or nil
	if seq == nil then return true end
	if seq <= self.last then
		self.duplicates = self.duplicates + 1
		return false
	end
	return true
end

--- Record that `message` was processed; the next poll acknowledges up to here.
function M:done(message)
	local seq = type(message) == 'table' and tonumber(message.seq) or nil
	if seq == nil or seq <= self.last then return end
	if seq > self.last + 1 then self.gaps = self.gaps + 1 end
	self.last = seq
end

--- The value for the next poll's `ack`.
function M:ack()
	return self.last
end

return M
