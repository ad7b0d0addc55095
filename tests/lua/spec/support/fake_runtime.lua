-- A runtime for Connection without Lightroom or a network: a fake clock that
-- sleep() advances, scripted HTTP answers, spawned tasks kept for the test to run.
local Json = require 'Json'

local M = {}

local function answer(status, body)
	return Json.encode(body), { status = status }
end
M.answer = answer

function M.refused()
	return nil, { error = { errorCode = 'cannotConnectToHost', name = 'connection refused' } }
end

function M.timedOut()
	return nil, { error = { errorCode = 'timedOut', name = 'timeout' } }
end

function M.cut()
	return nil, { error = { errorCode = 'networkConnectionLost', name = 'The network connection was lost.' } }
end

function M.ok(fields)
	fields.success = true
	return answer(200, fields)
end

function M.unknownClient()
	return answer(404, { success = false, error = 'unknown client', code = 'unknown_client' })
end

--- A runtime; `respond(request)` answers each HTTP request ({method, url, path, body}).
function M.new(respond)
	local rt = { t = 1000, sleeps = {}, spawned = {}, requests = {}, lines = {} }
	local function record(method, url, body, headers)
		local request = { method = method, url = url, path = url:gsub('^https?://[^/]+', ''), body = body and Json.decode(body),
			headers = {} }
		for _, h in ipairs(headers or {}) do request.headers[h.field] = h.value end
		rt.requests[#rt.requests + 1] = request
		return respond(request, rt)
	end
	rt.http = {
		get = function(url, headers) return record('GET', url, nil, headers) end,
		post = function(url, body, headers) return record('POST', url, body, headers) end,
	}
	rt.sleep = function(seconds)
		rt.sleeps[#rt.sleeps + 1] = seconds
		rt.t = rt.t + seconds
	end
	rt.now = function() return rt.t end
	rt.spawn = function(fn, name) rt.spawned[#rt.spawned + 1] = { fn = fn, name = name } end
	rt.protect = pcall
	rt.canYield = function() return true end
	rt.random = function() return 0 end
	rt.log = {
		info = function(text) rt.lines[#rt.lines + 1] = 'INFO ' .. text end,
		warn = function(text) rt.lines[#rt.lines + 1] = 'WARN ' .. text end,
		error = function(text) rt.lines[#rt.lines + 1] = 'ERROR ' .. text end,
	}
	--- Run the first spawned task whose name contains `pattern`.
	function rt.run(pattern)
		for i, task in ipairs(rt.spawned) do
			if task.name:find(pattern, 1, true) then
				table.remove(rt.spawned, i)
				task.fn()
				return true
			end
		end
		return false
	end
	return rt
end

return M
