--[[
Transport: the one request() every HTTP call goes through (pure logic; the
LrHttp-shaped `http` is passed in).

It tells apart, in one place, what the connection logic must react to:

    { ok = true, data = <decoded JSON> }
    { ok = false, kind = 'network', reason = }         no answer (refused, timed out...):
                                                        headers.status is nil
    { ok = false, kind = 'unknown_client', status = 404 }  handshake again at once
    { ok = false, kind = 'retry', status = , reason = }    503 hub unavailable, 429, 5xx,
                                                        or an answer that is not ours
    { ok = false, kind = 'refused', status = , code = , reason = }  a 4xx: this request
                                                        is wrong; repeating it will not help

The error body is the gateway's {"success": false, "error": "...", "code": "..."}.
]]
local Json = require 'Json'

local M = {}
M.__index = M

-- The client proves it owns its id with the secret its handshake returned (when the bridge gives one).
local function requestHeaders(secret, json)
	local list = {}
	if json then list[#list + 1] = { field = 'Content-Type', value = 'application/json' } end
	if secret then list[#list + 1] = { field = 'X-Client-Secret', value = secret } end
	return list
end

--- A transport to `baseUrl` (e.g. http://127.0.0.1:5100) through `http` (LrHttp or a fake).
function M.new(http, baseUrl)
	return setmetatable({ http = http, baseUrl = (tostring(baseUrl):gsub('/+$', '')) }, M)
end

--- Turn LrHttp's (body, headers) into one of the results above.
function M.classify(body, headers)
	local status = type(headers) == 'table' and tonumber(headers.status) or nil
	if status == nil then
		local err = type(headers) == 'table' and type(headers.error) == 'table' and headers.error or {}
		return { ok = false, kind = 'network', reason = tostring(err.errorCode or err.name or 'no response') }
	end
	local data = Json.decode(body)
	local fields = type(data) == 'table' and data or {}
	if status >= 200 and status < 300 then
		if type(data) ~= 'table' then
			return { ok = false, kind = 'retry', status = status, reason = 'the answer is not JSON' }
		end
		if data.success == false then
			return { ok = false, kind = 'refused', status = status, code = fields.code, reason = tostring(fields.error) }
		end
		return { ok = true, status = status, data = data }
	end
	local reason = fields.error and tostring(fields.error) or ('HTTP ' .. status)
	if status == 404 and fields.code == 'unknown_client' then
		return { ok = false, kind = 'unknown_client', status = status, code = fields.code, reason = reason }
	end
	if status >= 500 or status == 429 or status == 408 or fields.code == nil then
		-- a fault of the bridge, or another program on our port: try again later
		return { ok = false, kind = 'retry', status = status, code = fields.code, reason = reason }
	end
	return { ok = false, kind = 'refused', status = status, code = fields.code, reason = reason }
end

--- POST `body` (a table, encoded as JSON) to `path`; waits at most `timeout` seconds per phase.
function M:post(path, body, timeout, secret)
	local text, err = Json.encode(body)
	if not text then
		return { ok = false, kind = 'refused', reason = 'cannot encode the message as JSON: ' .. tostring(err) }
	end
	return M.classify(self.http.post(self.baseUrl .. path, text, requestHeaders(secret, true), 'POST', timeout))
end

--- GET `path`; waits at most `timeout` seconds per phase.
function M:get(path, timeout, secret)
	return M.classify(self.http.get(self.baseUrl .. path, requestHeaders(secret, false), timeout))
end

return M
