-- Support for the specs that run the plug-in against the real bridge (system_spec/, run by
-- tests/system/test_plugin_sdk.py, which starts the hub, notifier and gateway and passes
-- BRIDGE_URL). Loads the plug-in as Lightroom does, records its events, publishes through
-- the gateway, and reads what the stand-in's LrHttp did.
local LrHttp = import 'LrHttp'
local LrPrefs = import 'LrPrefs'
local LrTasks = import 'LrTasks'
local Json = require 'Json'
local shim = require 'lr_shim'

local M = {}

M.url = os.getenv('BRIDGE_URL') or error('BRIDGE_URL is not set: run through tests/system/test_plugin_sdk.py')

--- Forget every plug-in module, as a fresh module environment of Lightroom would: the next
--- `require` loads new copies. `_G` (and with it RunRegistry's record) stays.
function M.unload()
	for name in pairs(package.loaded) do
		local file = io.open(shim.pluginDir .. '/' .. name .. '.lua', 'rb')
		if file then
			file:close()
			package.loaded[name] = nil
		end
	end
end

--- Run one of the plug-in's own files (Init.lua, Shutdown.lua, MenuConnect.lua...) as Lightroom does.
function M.runFile(name)
	return dofile(shim.pluginDir .. '/' .. name)
end

--- Start from nothing: the previous spec's client told to leave the bridge, then no task, no
--- prefs, no stand-in mode, fresh modules, no run record.
function M.reset()
	if M.current then
		LrHttp._resetModes()
		LrTasks.startAsyncTask(function() M.current.disconnect() end, 'spec reset')
		LrTasks._runUntil(function() return LrTasks._count() == 0 end, 5)
		M.current = nil
	end
	LrTasks._reset()
	LrHttp._resetModes()
	LrPrefs._reset()
	M.unload()
	for key in pairs(_G) do
		if type(key) == 'string' and key:find('^LightroomBridge%.run:') then _G[key] = nil end
	end
end

--- A fresh WebSocketClient whose events (and messages) are recorded in `client.events`.
function M.client()
	local ws = require 'WebSocketClient'
	M.current = ws
	local events = {}
	for _, name in ipairs({ 'connected', 'disconnected', 'reconnecting', 'error', 'recovery' }) do
		ws.addEventListener(name, function(data) events[#events + 1] = { ev = name, data = data } end)
	end
	ws.addEventListener('*', function(data) events[#events + 1] = { ev = 'message', data = data } end)
	return ws, events
end

--- The events named `ev` (matching `pred` when given).
function M.of(events, ev, pred)
	local out = {}
	for _, e in ipairs(events) do
		if e.ev == ev and (pred == nil or pred(e.data)) then out[#out + 1] = e end
	end
	return out
end

--- Run the stand-in's tasks until `pred()` holds; fails the spec after `timeout` seconds.
function M.runUntil(pred, timeout, what)
	local ok = LrTasks._runUntil(pred, timeout or 15)
	assert(ok, 'timed out waiting for ' .. tostring(what or 'a condition'))
end

--- Run until `count` events `ev` (matching `pred`) were recorded; returns them.
function M.wait(events, ev, pred, count, timeout)
	count = count or 1
	M.runUntil(function() return #M.of(events, ev, pred) >= count end, timeout, count .. ' x ' .. ev)
	return M.of(events, ev, pred)
end

--- A request to the gateway from the test itself (outside any task: never serialised or cut).
function M.request(method, path, body)
	local text, headers
	if method == 'GET' then
		text, headers = LrHttp.get(M.url .. path, nil, 10)
	else
		text, headers = LrHttp.post(M.url .. path, Json.encode(body or {}),
			{ { field = 'Content-Type', value = 'application/json' } }, method, 10)
	end
	assert(headers and headers.status, 'no answer from the gateway for ' .. path)
	return headers.status, Json.decode(text)
end

--- Publish a job_progress on `jobs`; returns how many clients took it.
function M.notify(jobId)
	local status, body = M.request('POST', '/ws/notify/job_progress', { job_id = jobId, progress = 1, stage = 's' })
	assert(status == 200, 'notify answered ' .. tostring(status))
	return body.delivered
end

--- Publish `message` to `channel`; returns how many clients took it.
function M.broadcast(channel, message)
	local status, body = M.request('POST', '/ws/broadcast', { channel = channel, message = message })
	assert(status == 200, 'broadcast answered ' .. tostring(status))
	return body.delivered
end

--- The bridge's view of client `id` (from /ws/clients), or nil.
function M.clientInfo(id)
	local _, body = M.request('GET', '/ws/clients')
	for _, c in ipairs(body.clients or {}) do
		if c.id == id then return c end
	end
	return nil
end

--- The most long polls (a hold above 0: a release poll with wait=0 does not count) the
--- stand-in's LrHttp had in flight at once, from LrHttp._log.
function M.maxConcurrentPolls()
	local now, most = 0, 0
	for _, entry in ipairs(LrHttp._log or {}) do
		if entry.url:find('/ws/poll', 1, true) and not entry.url:find('wait=0&', 1, true) then
			now = now + (entry.event == 'start' and 1 or -1)
			if now > most then most = now end
		end
	end
	return most
end

--- Stop the client (disconnect) and run until every task ended.
function M.finish(ws)
	ws.disconnect()
	M.runUntil(function() return LrTasks._count() == 0 end, 10, 'every task to end')
end

--- Fast settings: the gateway holds polls 2 s, retries start at 0.2 s.
M.FAST = { POLL_WAIT = 2, RECONNECT_DELAY = 0.2, RECONNECT_MAX_DELAY = 1, PING_INTERVAL = 1 }

function M.options(extra)
	local out = { HTTP_FALLBACK_URL = M.url }
	for k, v in pairs(M.FAST) do out[k] = v end
	for k, v in pairs(extra or {}) do out[k] = v end
	return out
end

return M
