--[[
Dispatcher: hands each message or connection event to its handler and listeners
(pure logic, no SDK).

  * registerHandler(type, fn): one handler per type (the seed's custom handlers);
  * addEventListener(type, fn): any number of listeners per type; the type '*'
    hears every server message (not the connection events);
  * every call is isolated with `protect` (LrTasks.pcall inside Lightroom, where
    a plain pcall cannot yield): a failing handler or listener is reported
    through `onError` and never stops the others nor the poll loop;
  * with a `tasks` runner ({canYield = fn, spawn = fn(fn, name)}), every delivery
    happens inside a task: an emit from outside one (a menu item, a Plug-in
    Manager button, a reload) is handed to a new task, so a listener may always
    call LrHttp or LrTasks.sleep.
]]
local M = {}
M.__index = M

--- A dispatcher; `protect(fn, ...)` runs fn like pcall, `onError(what, type, err)` hears failures,
--- `tasks` (optional: {canYield, spawn}) moves deliveries made outside a task into one.
function M.new(protect, onError, tasks)
	return setmetatable({
		protect = protect or pcall,
		onError = onError or function() end,
		tasks = tasks,
		handlers = {},
		listeners = {},
		failures = 0,
	}, M)
end

function M:registerHandler(messageType, handler)
	if handler ~= nil and type(handler) ~= 'function' then error('handler must be a function', 2) end
	self.handlers[messageType] = handler
end

--- Add `listener` for `eventType`; adding the same function twice has no effect.
function M:addEventListener(eventType, listener)
	if type(listener) ~= 'function' then error('listener must be a function', 2) end
	local list = self.listeners[eventType] or {}
	for _, existing in ipairs(list) do
		if existing == listener then return end
	end
	list[#list + 1] = listener
	self.listeners[eventType] = list
end

--- Remove `listener` (the same function value) from `eventType`; true when it was there.
function M:removeEventListener(eventType, listener)
	local list = self.listeners[eventType]
	if not list then return false end
	for i, existing in ipairs(list) do
		if existing == listener then
			table.remove(list, i)
			if #list == 0 then self.listeners[eventType] = nil end
			return true
		end
	end
	return false
end

function M:_call(what, eventType, fn, data)
	local ok, err = self.protect(fn, data)
	if not ok then
		self.failures = self.failures + 1
		self.onError(what, eventType, err)
	end
	return ok
end

local function snapshot(list)
	local copy = {}
	for i, fn in ipairs(list or {}) do copy[i] = fn end
	return copy
end

--- Deliver `data` to the handler and listeners of `eventType` (and '*' when `wildcard`).
--- Returns how many functions ran (0 when the delivery was handed to a new task).
function M:emit(eventType, data, wildcard)
	local tasks = self.tasks
	if tasks and not tasks.canYield() then
		tasks.spawn(function() self:_deliver(eventType, data, wildcard) end, 'LightroomBridge event ' .. tostring(eventType))
		return 0
	end
	return self:_deliver(eventType, data, wildcard)
end

function M:_deliver(eventType, data, wildcard)
	local count = 0
	local handler = self.handlers[eventType]
	if handler then
		self:_call('handler', eventType, handler, data)
		count = count + 1
	end
	for _, listener in ipairs(snapshot(self.listeners[eventType])) do
		self:_call('listener', eventType, listener, data)
		count = count + 1
	end
	if wildcard then
		for _, listener in ipairs(snapshot(self.listeners['*'])) do
			self:_call('listener', eventType, listener, data)
			count = count + 1
		end
	end
	return count
end

--- Deliver one server message (dispatched on its `type`, wildcard listeners included).
function M:dispatch(message)
	return self:emit(tostring(message.type), message, true)
end

return M
