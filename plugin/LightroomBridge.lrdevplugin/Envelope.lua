--[[
Envelope: every request body and URL the plug-in sends (pure logic, no SDK).

The wire contract is the gateway's /ws/* API (docs/PROTOCOL.md):

    POST /ws/handshake   {client_type, protocol_version[, client_id, client_secret]}
    POST /ws/send        {client_id, message = {type, ...}}
    GET  /ws/poll?client_id=&wait=&ack=
    POST /ws/disconnect  {client_id}
]]
local Json = require 'Json'

local M = {}

M.PROTOCOL_VERSION = '1.0'
M.CLIENT_TYPE = 'lightroom'

local function urlEncode(s)
	return (tostring(s):gsub('[^%w%-%._~]', function(c)
		return string.format('%%%02X', string.byte(c))
	end))
end
M.urlEncode = urlEncode

-- A table that must be a JSON object: copied (the caller's table is not
-- touched) and marked, so that an empty one is sent as {} rather than [].
local function asObject(value)
	if value == nil then return Json.object() end
	if type(value) ~= 'table' then return value end
	local copy = {}
	for k, v in pairs(value) do copy[k] = v end
	return Json.object(copy)
end
M.asObject = asObject

--- The handshake; with the id and secret of an earlier session, the bridge resumes it when it still can.
function M.handshake(clientId, clientSecret)
	local body = { client_type = M.CLIENT_TYPE, protocol_version = M.PROTOCOL_VERSION }
	if type(clientId) == 'string' and type(clientSecret) == 'string' then
		body.client_id, body.client_secret = clientId, clientSecret
	end
	return body
end

function M.register(clientName, pluginVersion)
	return {
		type = 'register',
		client_type = M.CLIENT_TYPE,
		client_name = clientName,
		plugin_version = pluginVersion,
	}
end

local function list(channels)
	local out = {}
	for i, channel in ipairs(channels) do out[i] = channel end
	return out
end

--- subscribe; `recover` {channel = {offset, epoch}} asks for what was missed since then,
--- `snapshot` for the latest state of jobs/system first (docs/DURABILITY.md).
function M.subscribe(channels, recover, snapshot)
	local message = { type = 'subscribe', channels = list(channels) }
	if recover ~= nil and next(recover) ~= nil then message.recover = asObject(recover) end
	if snapshot then message.snapshot = true end
	return message
end

function M.unsubscribe(channels)
	return { type = 'unsubscribe', channels = list(channels) }
end

function M.ping()
	return { type = 'ping' }
end

--- The seed's job_progress: sendJobProgress(job_id, stage, progress, message).
function M.jobProgress(jobId, stage, progress, message)
	return { type = 'job_progress', job_id = jobId, stage = stage, progress = progress, message = message }
end

--- The seed's job_complete: sendJobComplete(job_id, success, result).
function M.jobComplete(jobId, success, result)
	return { type = 'job_complete', job_id = jobId, success = success and true or false, result = asObject(result) }
end

--- The seed's error report: sendError(error_type, message, details).
function M.error(errorType, message, details)
	return { type = 'error', error_type = errorType, message = message, details = asObject(details) }
end

--- The body of POST /ws/send.
function M.send(clientId, message)
	return { client_id = clientId, message = message }
end

function M.disconnect(clientId)
	return { client_id = clientId }
end

--- The path and query of one long poll; `ack` is the last seq processed (0: none yet).
function M.pollPath(clientId, wait, ack)
	return string.format('/ws/poll?client_id=%s&wait=%s&ack=%d', urlEncode(clientId), tostring(wait), ack or 0)
end

--- Why `message` cannot be sent, or nil when it can (a table with a string `type`).
function M.invalid(message)
	if type(message) ~= 'table' then return 'message must be a table' end
	if type(message.type) ~= 'string' or not message.type:match('^[%a][%w_%.:%-]*$') or #message.type > 64 then
		return 'message needs a type (a short identifier)'
	end
	return nil
end

return M
