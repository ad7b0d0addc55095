--[[
StatusText: the connection status as words, for the Plug-in Manager section
and the Show Status menu item.
]]
local LrDate = import 'LrDate'

local BridgeStatus = require 'BridgeStatus'

local M = {}

local STATES = {
	disconnected = 'Disconnected',
	connecting = 'Connecting...',
	connected = 'Connected',
	reconnecting = 'Not connected, retrying',
}

local function when(time)
	if type(time) ~= 'number' then return 'never' end
	return LrDate.timeToUserFormat(time, '%Y-%m-%d %H:%M:%S')
end

--- The status as display fields: state, clientId, lastMessage, serverUrl, detail, launch.
function M.fields()
	local s = BridgeStatus
	local state = STATES[s.state] or tostring(s.state)
	local detail = string.format('%d received, %d sent, %d dropped', s.received or 0, s.sent or 0, s.dropped or 0)
	if s.launchState == 'starting' and s.state ~= 'connected' then
		state = 'Starting the bridge...'
	elseif s.state == 'reconnecting' then
		state = string.format('%s (%d failed attempts: %s)', state, s.attempts or 0, tostring(s.lastError))
	end
	return {
		state = state,
		clientId = s.clientId or '-',
		lastMessage = when(s.lastMessageAt),
		serverUrl = s.serverUrl or '-',
		detail = detail,
		launch = s.launchMessage or '-',
		transport = (s.transport == 'lrsocket' and 'LrSocket push' or 'long-poll')
			.. (s.transportReason and (' (' .. s.transportReason .. ')') or ''),
	}
end

--- The status as a few lines of text.
function M.describe()
	local f = M.fields()
	return table.concat({
		'Status: ' .. f.state,
		'Server: ' .. f.serverUrl,
		'Client id: ' .. f.clientId,
		'Last message: ' .. f.lastMessage,
		'Messages: ' .. f.detail,
		'Bridge start: ' .. f.launch,
		'Transport: ' .. f.transport,
	}, '\n')
end

return M
