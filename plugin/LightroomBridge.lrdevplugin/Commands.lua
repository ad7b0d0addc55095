--[[
Commands: run what a backend asks for and send back the outcome (pure logic, no SDK).

    WebSocketClient.registerCommand('list_selected', function(params, command)
        command:progress(10, 'reading the catalog')
        return { photos = ... }            -- the caller gets this
    end)                                   -- error('...') reaches the caller as CommandFailed

A backend's call arrives as a message {type = 'command', command_id, action,
params, timeout}. Each runs in its own task under `protect` (LrTasks.pcall);
its return value, or its error, goes back as a `command_result` message
({command_id, ok = true, result} or {command_id, ok = false, error = {code,
message}}), and command:progress(pct, text) sends a `command_progress`.
An unknown action is answered `not_supported` at once.

Never twice: the bridge redelivers a message whose poll answer was lost, and
a resumed session may hand back one already run. The last MAX_REMEMBERED
command ids are kept with their outcome: a command seen before is not run
again; its outcome is sent again (or, while it still runs, sent when it ends).

An answer that cannot be sent (the bridge restarting) is tried again, with
a growing pause, until the command's deadline has passed by RETRY_GRACE.

runtime = { spawn(fn, name), protect(fn, ...), now(), sleep(seconds), log = {info, warn, error} }
send(message) -> ok, response|reason   (inside a task)
]]
local M = {}
M.__index = M

M.MAX_REMEMBERED = 500
M.RETRY_GRACE = 30 -- seconds past the deadline an answer is still tried
M.MAX_RETRY_PAUSE = 2

local Command = {}
Command.__index = Command

--- Report progress to the caller: pct 0..100 (or nil), text a short line (or nil). True when the bridge took it.
function Command:progress(pct, text)
	if pct ~= nil and type(pct) ~= 'number' then error('pct must be a number', 2) end
	if pct ~= nil then pct = math.max(0, math.min(100, pct)) end
	if text ~= nil then text = tostring(text) end
	local ok = self._owner.send({ type = 'command_progress', command_id = self.id, pct = pct, text = text })
	return ok == true
end

--- Seconds left before the caller stops waiting (may be negative).
function Command:remaining()
	return self.deadline - self._owner.runtime.now()
end

--- A command runner; `send(message)` posts one message to the bridge (inside a task).
function M.new(runtime, send)
	return setmetatable({
		runtime = runtime,
		send = send,
		actions = {},
		seen = {}, -- command id -> { reply = message or nil while running }
		order = {}, -- command ids, oldest first (at most MAX_REMEMBERED)
		first = 1,
		ran = 0,
	}, M)
end

--- `fn(params, command)` runs for each command of `action`; nil removes it.
function M:register(action, fn)
	if type(action) ~= 'string' or action == '' then error('action must be a non-empty string', 2) end
	if fn ~= nil and type(fn) ~= 'function' then error('fn must be a function', 2) end
	self.actions[action] = fn
end

function M:_remember(id)
	local entry = {}
	self.seen[id] = entry
	self.order[#self.order + 1] = id
	if #self.order - self.first + 1 > M.MAX_REMEMBERED then
		self.seen[self.order[self.first]] = nil
		self.order[self.first] = nil
		self.first = self.first + 1
	end
	return entry
end

-- The error a command raised as {code, message}: a table with them, or the text without Lua's "file:line: ".
local function describe(err)
	if type(err) == 'table' then
		return { code = type(err.code) == 'string' and err.code or 'command_failed',
			message = tostring(err.message or err.code or 'failed') }
	end
	local text = tostring(err)
	text = text:gsub('^[^\n]-:%d+: ', '', 1)
	return { code = 'command_failed', message = text }
end

-- Send `reply` until the bridge takes it or the deadline (+ grace) has passed.
function M:_answer(reply, deadline)
	local pause = 0.2
	while true do
		local ok, why = self.send(reply)
		if ok then return true end
		if self.runtime.now() > deadline + M.RETRY_GRACE then
			self.runtime.log.warn('the answer to command ' .. reply.command_id .. ' could not be sent: ' .. tostring(why))
			return false
		end
		self.runtime.sleep(pause)
		pause = math.min(pause * 2, M.MAX_RETRY_PAUSE)
	end
end

--- A `command` message from the bridge (the dispatcher's handler: it returns at once).
function M:handle(message)
	local id = message.command_id
	if type(id) ~= 'string' or id == '' then
		self.runtime.log.warn('ignored a command without a command_id')
		return
	end
	local deadline = self.runtime.now() + (tonumber(message.timeout) or 0)
	local entry = self.seen[id]
	if entry then
		-- delivered again: never run twice; answer again with what it gave (or when it ends)
		if entry.reply then
			self.runtime.spawn(function() self:_answer(entry.reply, deadline) end, 'LightroomBridge command answer')
		end
		return
	end
	entry = self:_remember(id)
	local action = message.action
	local fn = type(action) == 'string' and self.actions[action] or nil
	if not fn then
		entry.reply = { type = 'command_result', command_id = id, ok = false,
			error = { code = 'not_supported', message = 'no command ' .. tostring(action) .. ' in this plug-in' } }
		self.runtime.spawn(function() self:_answer(entry.reply, deadline) end, 'LightroomBridge command answer')
		return
	end
	local command = setmetatable({ id = id, action = action, deadline = deadline, _owner = self }, Command)
	self.runtime.spawn(function()
		self.ran = self.ran + 1
		local params = type(message.params) == 'table' and message.params or {}
		local ok, result = self.runtime.protect(fn, params, command)
		if ok then
			entry.reply = { type = 'command_result', command_id = id, ok = true, result = result }
		else
			entry.reply = { type = 'command_result', command_id = id, ok = false, error = describe(result) }
			self.runtime.log.warn('command ' .. tostring(action) .. ' (' .. id .. ') failed: ' .. entry.reply.error.message)
		end
		self:_answer(entry.reply, deadline)
	end, 'LightroomBridge command ' .. action)
end

return M
