--[[
Positions: where the client stands in each channel's history (pure logic, no SDK).

Every message the bridge publishes to a channel carries the channel's
`offset` (1, 2, 3... within an epoch) and `epoch` (a new one when the bridge
lost that history). The client remembers, per channel, those of the last
message it processed. When it has to start a new session (the bridge forgot
the old one), it subscribes with them as `recover`, and the bridge replays
what was missed before any live message (docs/DURABILITY.md).

The subscribe reply says per channel what came back (`recovery`: recovered,
replayed, lost, epoch_changed) and where each channel stands now
(`positions`); confirmed() turns that into the `recovery` event's fields.
]]
local M = {}
M.__index = M

--- Channels for which the bridge keeps a latest state (a snapshot is asked for on a new session).
M.SNAPSHOT_CHANNELS = { jobs = true, system = true }

local MAX_EPOCH_CHARS = 64 -- the bridge refuses longer epochs in `recover`

local function valid(offset, epoch)
	return type(offset) == 'number' and offset >= 0 and offset == math.floor(offset) and offset < 2 ^ 53
		and type(epoch) == 'string' and epoch ~= '' and #epoch <= MAX_EPOCH_CHARS
end

--- Positions, from a saved table {channel = {offset =, epoch =}} (anything unusable in it is skipped).
function M.new(saved)
	local self = setmetatable({ byChannel = {} }, M)
	if type(saved) == 'table' then
		for channel, position in pairs(saved) do
			if type(channel) == 'string' and type(position) == 'table' then
				self:set(channel, tonumber(position.offset), position.epoch)
			end
		end
	end
	return self
end

--- The position of `channel` ({offset =, epoch =}, a copy) or nil.
function M:get(channel)
	local p = self.byChannel[channel]
	return p and { offset = p.offset, epoch = p.epoch } or nil
end

--- Remember `offset`/`epoch` for `channel`; true when that changed what is stored.
function M:set(channel, offset, epoch)
	if type(channel) ~= 'string' or not valid(offset, epoch) then return false end
	local p = self.byChannel[channel]
	if p and p.offset == offset and p.epoch == epoch then return false end
	self.byChannel[channel] = { offset = offset, epoch = epoch }
	return true
end

--- Record a processed message; true when it was a channel message that moved a position.
function M:observe(message)
	if type(message) ~= 'table' then return false end
	return self:set(message.channel, tonumber(message.offset), message.epoch)
end

--- Everything, as a plain table {channel = {offset =, epoch =}} (for saving).
function M:all()
	local out = {}
	for channel, p in pairs(self.byChannel) do out[channel] = { offset = p.offset, epoch = p.epoch } end
	return out
end

--- The subscribe's `recover` field for `channels`: those with a position; nil when none has one.
function M:recover(channels)
	local out, any = {}, false
	for _, channel in ipairs(channels) do
		local p = self.byChannel[channel]
		if p then
			out[channel] = { offset = p.offset, epoch = p.epoch }
			any = true
		end
	end
	return any and out or nil
end

--- True when `channels` names one the bridge keeps a snapshot of.
function M.wantsSnapshot(channels)
	for _, channel in ipairs(channels) do
		if M.SNAPSHOT_CHANNELS[channel] then return true end
	end
	return false
end

local function sortedKeys(t)
	local keys = {}
	for k in pairs(t) do
		if type(k) == 'string' then keys[#keys + 1] = k end
	end
	table.sort(keys)
	return keys
end

-- Take the reply's position for a channel unless messages still to be processed
-- come before it: then the position moves as they are processed, and a stop in
-- between must not skip them.
local function adopt(self, channel, position, report, resumed)
	if type(position) ~= 'table' then return end
	if self.byChannel[channel] == nil then
		-- never saw this channel: nothing before its current end is ours to recover
		self:set(channel, tonumber(position.offset), position.epoch)
	elseif not resumed and type(report) == 'table' and tonumber(report.replayed) == 0 then
		-- nothing replayed (e.g. a new epoch with no message yet): the current end is where we are
		self:set(channel, tonumber(position.offset), position.epoch)
	end
end

--- Apply a subscription_confirmed `reply`; `resumed` when the session was resumed (its queue
--- may still hold older messages). Returns nil when the subscribe recovered nothing, else the
--- `recovery` event's fields:
---   { complete = bool, replayed = N, lost = N (known losses), epoch_changed = {channel, ...},
---     channels = { <channel> = { recovered =, replayed =, lost = (nil: unknown), epoch_changed = } } }
function M:confirmed(reply, resumed)
	if type(reply) ~= 'table' then return nil end
	local reports = type(reply.recovery) == 'table' and reply.recovery or {}
	if type(reply.positions) == 'table' then
		for _, channel in ipairs(sortedKeys(reply.positions)) do
			adopt(self, channel, reply.positions[channel], reports[channel], resumed)
		end
	end
	local summary = { complete = true, replayed = 0, lost = 0, epoch_changed = {}, channels = {} }
	local any = false
	for _, channel in ipairs(sortedKeys(reports)) do
		local report = reports[channel]
		if type(report) == 'table' then
			any = true
			local figures = {
				recovered = report.recovered == true,
				replayed = tonumber(report.replayed) or 0,
				lost = tonumber(report.lost),
				epoch_changed = report.epoch_changed == true,
			}
			summary.channels[channel] = figures
			summary.replayed = summary.replayed + figures.replayed
			if figures.lost then summary.lost = summary.lost + figures.lost end
			if figures.epoch_changed then summary.epoch_changed[#summary.epoch_changed + 1] = channel end
			if not figures.recovered then summary.complete = false end
		end
	end
	return any and summary or nil
end

--- One log line for a `confirmed()` summary.
function M.describe(summary)
	local parts = {}
	for _, channel in ipairs(sortedKeys(summary.channels)) do
		local f = summary.channels[channel]
		local text = string.format('%s %d replayed', channel, f.replayed)
		if f.epoch_changed then
			text = text .. ', history restarted (how many are gone is unknown)'
		elseif f.lost and f.lost > 0 then
			text = text .. string.format(', %d gone', f.lost)
		end
		parts[#parts + 1] = text
	end
	local head = summary.complete and 'recovered every missed channel message: '
		or 'some missed channel messages are gone: '
	return head .. table.concat(parts, '; ')
end

return M
