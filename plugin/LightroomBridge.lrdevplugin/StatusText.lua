--[[
StatusText: the connection status in plain words, for the Plug-in Manager
section and the Show Status menu item. The SDK's error codes
(`cannotConnectToHost`, `timedOut`...) and the bridge's codes never reach the
photographer: each is said in words, and one not known here is called a
network error (the log has the code).
]]
local LrDate = import 'LrDate'

local BridgeStatus = require 'BridgeStatus'

local M = {}

-- What each failure means to a photographer; `%s` is the server URL.
local REASONS = {
	cannotConnectToHost = 'nothing answers at %s: is the bridge running?',
	timedOut = 'the bridge did not answer in time',
	cannotFindHost = 'the server name in the Server URL is not known',
	networkConnectionLost = 'the connection was cut',
	badURL = 'the Server URL is not valid',
	badServerResponse = 'the answer was not understood',
	['no response'] = 'no answer from the bridge',
	unknown_client = 'the bridge no longer knew this client',
	closed = 'the bridge closed this client',
	['internal error'] = 'an error in the plug-in (see the log)',
}

--- A failure reason (an SDK error code, a bridge code, or the bridge's own sentence) in plain words.
function M.reason(reason, serverUrl)
	if reason == nil then return 'no answer from the bridge' end
	reason = tostring(reason)
	local text = REASONS[reason]
	if text then return (text:gsub('%%s', serverUrl or 'the Server URL')) end
	-- a code we do not know (camelCase or snake_case, one word): never shown raw
	if reason:match('^%l+%u[%w]*$') or reason:match('^[%l%d]+_[%l%d_]+$') then return 'a network error' end
	return reason
end

local function when(time)
	if type(time) ~= 'number' then return 'never' end
	return LrDate.timeToUserFormat(time, '%Y-%m-%d %H:%M:%S')
end

local function seconds(value)
	return string.format('%d s', math.max(0, math.floor(value + 0.5)))
end

--- The status as display fields: state, detail, clientId, lastMessage, queue, counts, serverUrl, launch.
function M.fields()
	local s = BridgeStatus
	local url = s.serverUrl or '-'
	local state, detail = 'Disconnected', 'Bridge: Connect (or the Connect button) connects.'
	if s.stayingDisconnected then
		detail = 'Stay disconnected is on: the plug-in does not connect when Lightroom starts.'
	end
	if s.launchState == 'starting' and s.state ~= 'connected' then
		state, detail = 'Starting the bridge...', 'waiting for it to answer at ' .. url
	elseif s.state == 'connected' then
		state = 'Connected'
		detail = 'since ' .. when(s.connectedAt)
	elseif s.state == 'connecting' then
		state, detail = 'Connecting...', 'to ' .. url
	elseif s.state == 'reconnecting' or s.state == 'unreachable' then
		state = s.state == 'unreachable' and 'Bridge unreachable' or 'Reconnecting'
		detail = M.reason(s.lastError, url)
		local parts = { string.format('%d failed attempt%s', s.attempts or 0, (s.attempts or 0) == 1 and '' or 's') }
		if type(s.retryAt) == 'number' then
			parts[#parts + 1] = 'next try in ' .. seconds(s.retryAt - LrDate.currentTime())
		end
		detail = detail .. ' (' .. table.concat(parts, ', ') .. ')'
	end
	local queue = 'no answer yet'
	if type(s.lastBatch) == 'number' then
		queue = string.format('%d message%s in the last answer%s', s.lastBatch, s.lastBatch == 1 and '' or 's',
			s.more and ', more waiting at the bridge' or '')
	end
	local counts = string.format('%d received, %d sent, %d dropped by the bridge (its queue was full)',
		s.received or 0, s.sent or 0, s.dropped or 0)
	return {
		state = state,
		detail = detail,
		clientId = s.clientId or '-',
		lastMessage = when(s.lastMessageAt),
		queue = queue,
		counts = counts,
		serverUrl = url,
		launch = s.launchMessage or '-',
		transport = (s.transport == 'lrsocket' and 'LrSocket push' or 'long-poll')
			.. (s.transportReason and (' (' .. s.transportReason .. ')') or ''),
	}
end

--- The status as a few lines of text.
function M.describe()
	local f = M.fields()
	return table.concat({
		'Status: ' .. f.state .. ' - ' .. f.detail,
		'Server: ' .. f.serverUrl,
		'Client id: ' .. f.clientId,
		'Last message: ' .. f.lastMessage,
		'Queue: ' .. f.queue,
		'Messages: ' .. f.counts,
		'Bridge start: ' .. f.launch,
		'Transport: ' .. f.transport,
	}, '\n')
end

return M
