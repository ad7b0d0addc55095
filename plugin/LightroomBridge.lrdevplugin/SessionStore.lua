--[[
SessionStore: what the client keeps across Lightroom restarts, in LrPrefs
(pure logic: the preferences table is passed in; any table works).

    bridgeServer        the server URL the keys below belong to
    bridgeClientId      the session to resume at the next handshake
    bridgeClientSecret  its secret (the bridge resumes only with both)
    bridgeLastSeq       the last seq processed in that session
    bridgePositions     JSON {channel: {offset, epoch}}: the last channel message processed
    bridgeChannelChanges  JSON {channel: true|false}: subscribe()/unsubscribe() made at run time,
                        applied over the Channels setting at every (re)connection

Session changes are written at once. The seq and positions change with every
message: they are written at most every `interval` seconds, and at once by
save(true), which the connection calls when it stops, so a clean shutdown
never loses the position of a processed message. Lightroom may not notice
edits deep inside a table kept in prefs, so positions are kept as one string.
Saved keys of another server URL are ignored (and replaced at the first write),
except the run-time channel changes: they are the plug-in's, whatever the server.
]]
local Json = require 'Json'
local Positions = require 'Positions'

local M = {}
M.__index = M

M.KEYS = {
	server = 'bridgeServer',
	clientId = 'bridgeClientId',
	secret = 'bridgeClientSecret',
	lastSeq = 'bridgeLastSeq',
	positions = 'bridgePositions',
	channelChanges = 'bridgeChannelChanges',
}
local K = M.KEYS

local function text(value)
	return type(value) == 'string' and value ~= '' and value or nil
end

--- The store over `prefs` for `serverUrl`; `now()` gives seconds, `interval` throttles position writes.
function M.new(prefs, serverUrl, now, interval)
	local self = setmetatable({
		prefs = prefs or {},
		server = serverUrl,
		now = now or os.time,
		interval = interval or 0,
		lastWrite = nil,
		dirty = false,
		writes = 0,
		closed = false,
	}, M)
	local p = self.prefs
	local mine = p[K.server] == nil or p[K.server] == serverUrl
	self.clientId = mine and text(p[K.clientId]) or nil
	self.secret = mine and text(p[K.secret]) or nil
	if not (self.clientId and self.secret) then self.clientId, self.secret = nil, nil end
	self.lastSeq = mine and self.clientId and tonumber(p[K.lastSeq]) or 0
	local saved = mine and text(p[K.positions]) and Json.decode(p[K.positions]) or nil
	self.positions = Positions.new(saved)
	-- the plug-in's own choice, whatever the server
	local changes = text(p[K.channelChanges]) and Json.decode(p[K.channelChanges]) or nil
	self.channelChanges = {}
	if type(changes) == 'table' then
		for channel, on in pairs(changes) do
			if type(channel) == 'string' and type(on) == 'boolean' then self.channelChanges[channel] = on end
		end
	end
	return self
end

--- The saved session: client id and secret, or nil.
function M:credentials()
	return self.clientId, self.secret
end

local function encodeChanges(changes)
	return next(changes) and Json.encode(Json.object(changes)) or nil
end

-- Write every key (the session's and the positions).
function M:_write()
	if self.closed then return end
	local p = self.prefs
	p[K.server] = self.server
	p[K.clientId] = self.clientId
	p[K.secret] = self.secret
	p[K.lastSeq] = self.clientId and self.lastSeq or nil
	p[K.positions] = Json.encode(Json.object(self.positions:all()))
	p[K.channelChanges] = encodeChanges(self.channelChanges)
	self.lastWrite = self.now()
	self.dirty = false
	self.writes = self.writes + 1
end

--- A handshake gave session `clientId`/`secret`; `resumed` keeps the seq processed so far.
function M:sessionStarted(clientId, secret, resumed)
	if not (resumed and clientId == self.clientId) then self.lastSeq = 0 end
	self.clientId, self.secret = text(clientId), text(secret)
	self:_write()
end

--- Record a run-time subscribe (`on` true) or unsubscribe of `channels`, written at once. Only
--- that key is written (a store of a stopped connection must not overwrite a newer session's).
function M:setChannels(channels, on)
	for _, channel in ipairs(channels) do self.channelChanges[channel] = on end
	self.prefs[K.channelChanges] = encodeChanges(self.channelChanges)
end

--- The bridge no longer has the session: nothing to resume (positions stay, for recovery).
function M:forgetSession()
	self.clientId, self.secret, self.lastSeq = nil, nil, 0
	self:_write()
end

--- A message of the current session was processed (its seq and, for a channel message, its position).
function M:processed(message)
	local seq = tonumber(message.seq)
	if seq and seq > self.lastSeq then
		self.lastSeq = seq
		self.dirty = true
	end
	if self.positions:observe(message) then self.dirty = true end
end

--- A subscription_confirmed reply arrived; returns Positions.confirmed's summary (or nil).
function M:confirmed(reply, resumed)
	local before = Json.encode(Json.object(self.positions:all()))
	local summary = self.positions:confirmed(reply, resumed)
	if Json.encode(Json.object(self.positions:all())) ~= before then self:_write() end
	return summary
end

--- Write what changed: when `force`, or when `interval` has passed since the last write.
--- True when it wrote.
function M:save(force)
	if not self.dirty or self.closed then return false end
	if not force and self.lastWrite and self.now() - self.lastWrite < self.interval then return false end
	self:_write()
	return true
end

--- Save what changed, then write nothing more (the connection stopped; the next start opens a new store).
function M:close()
	self:save(true)
	self.closed = true
end

return M
