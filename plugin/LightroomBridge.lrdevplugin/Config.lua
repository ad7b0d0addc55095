--[[
Config: the client's settings, their defaults, and how Plug-in Manager
preferences and init() options override them (pure logic, no SDK).

The seed's names are kept (WS_URL, HTTP_FALLBACK_URL, RECONNECT_DELAY,
PING_INTERVAL, MAX_RECONNECT_ATTEMPTS); the rest are this bridge's. Order of
precedence: DEFAULTS < preferences (LrPrefs keys in PREF_KEYS) < init(options).

The timeout ladder (docs/PLUGIN.md): the gateway holds a poll at most
BRIDGE_POLL_MAX_WAIT (25 s) and waits hold + 3 s for the hub; POLL_TIMEOUT,
LrHttp's timeout for a poll, defaults to POLL_WAIT + 15 s, above both.
]]
local M = {}

M.DEFAULTS = {
	WS_URL = 'ws://127.0.0.1:5100/ws', -- the seed's name; this client polls HTTP_FALLBACK_URL
	HTTP_FALLBACK_URL = 'http://127.0.0.1:5100',
	RECONNECT_DELAY = 5, -- seconds before the first retry; doubles per failure
	RECONNECT_MAX_DELAY = 60, -- the cap of that doubling
	MAX_RECONNECT_ATTEMPTS = 10, -- failures in a row before the error event and slower retries
	SLOW_RETRY_DELAY = 120, -- seconds between retries after that (never gives up)
	PING_INTERVAL = 30,
	POLL_WAIT = 25, -- how long the gateway may hold a poll (it caps this at BRIDGE_POLL_MAX_WAIT)
	POLL_TIMEOUT = nil, -- LrHttp timeout of a poll; nil: POLL_WAIT + POLL_TIMEOUT_MARGIN
	POLL_TIMEOUT_MARGIN = 15,
	REQUEST_TIMEOUT = 10, -- handshake, send
	DISCONNECT_TIMEOUT = 3,
	SAVE_INTERVAL = 2, -- at most one LrPrefs write of seq and channel positions per this many seconds
	CHANNELS = { 'jobs', 'system', 'photos' },
	CLIENT_NAME = 'Lightroom Classic Plugin',
	PLUGIN_VERSION = '0.0.0',
	START_COMMAND = '', -- run when no bridge answers (Launcher.lua); empty: never start one
	START_TIMEOUT = 30, -- seconds a started bridge has to answer /ws/status
	START_RETRY_DELAY = 60, -- after a start that did not come up; doubles per failure
	START_RETRY_MAX_DELAY = 900,
	TRANSPORT = 'longpoll', -- or 'lrsocket': the bridge pushes into an LrSocket, long-poll behind it (SocketPush.lua)
	PUSH_PROBE_TIMEOUT = 2, -- seconds for the bridge's probe to arrive on the socket
	PUSH_RETRY_DELAY = 30, -- seconds on long-poll after a fall-back before the socket is tried again
	PUSH_CHECK_INTERVAL = 10, -- seconds between light checks (an ack) while the bridge pushes
}

-- LrPrefs key -> setting
M.PREF_KEYS = {
	serverUrl = 'HTTP_FALLBACK_URL',
	reconnectDelay = 'RECONNECT_DELAY',
	maxReconnectDelay = 'RECONNECT_MAX_DELAY',
	maxReconnectAttempts = 'MAX_RECONNECT_ATTEMPTS',
	pingInterval = 'PING_INTERVAL',
	channels = 'CHANNELS',
	clientName = 'CLIENT_NAME',
	startCommand = 'START_COMMAND',
	transport = 'TRANSPORT',
}

M.TRANSPORTS = { longpoll = true, lrsocket = true }

local NUMBERS = {
	RECONNECT_DELAY = 0.01, RECONNECT_MAX_DELAY = 0.01, MAX_RECONNECT_ATTEMPTS = 1, SLOW_RETRY_DELAY = 0.01,
	PING_INTERVAL = 0.1, POLL_WAIT = 0, POLL_TIMEOUT = 0.1, POLL_TIMEOUT_MARGIN = 0, REQUEST_TIMEOUT = 0.1,
	DISCONNECT_TIMEOUT = 0.1, SAVE_INTERVAL = 0,
	START_TIMEOUT = 0.1, START_RETRY_DELAY = 0.01, START_RETRY_MAX_DELAY = 0.01,
	PUSH_PROBE_TIMEOUT = 0.1, PUSH_RETRY_DELAY = 0.1, PUSH_CHECK_INTERVAL = 0.1,
}

local INTEGERS = { MAX_RECONNECT_ATTEMPTS = true }

--- Switches kept in LrPrefs beside the settings, with their defaults: a bezel when the
--- connection is lost or back, logging to LightroomBridge.log, staying disconnected at start.
M.SWITCHES = { showBezel = false, logging = true, stayDisconnected = false }

local function trim(s)
	return (tostring(s):gsub('^%s+', ''):gsub('%s+$', ''))
end

--- A list of channel names from a table or a comma-separated string.
function M.channelList(value)
	local list = {}
	if type(value) == 'string' then
		for item in value:gmatch('[^,%s]+') do list[#list + 1] = item end
	elseif type(value) == 'table' then
		for _, item in ipairs(value) do
			item = trim(item)
			if item ~= '' then list[#list + 1] = item end
		end
	end
	return list
end

--- The ws:// URL matching an http:// base URL.
function M.wsUrl(httpUrl)
	return (httpUrl:gsub('^http', 'ws')) .. '/ws'
end

-- What is wrong with `value` for setting `name` (a phrase without the name), or nil and the value to use.
local function parse(name, value)
	if NUMBERS[name] then
		local number = tonumber(value)
		if number == nil or number < NUMBERS[name] then
			return 'must be a number of at least ' .. NUMBERS[name] .. ', not ' .. tostring(value)
		end
		if INTEGERS[name] and number ~= math.floor(number) then
			return 'must be a whole number, not ' .. tostring(value)
		end
		return nil, number
	elseif name == 'HTTP_FALLBACK_URL' then
		local url = trim(value):gsub('/+$', '')
		local host, rest = url:match('^https?://([%w%.%-]+)(.*)$')
		local port = rest and (rest:match('^:(%d+)$') or rest:match('^:(%d+)/[^%s]*$'))
		local fine = host and (rest == '' or rest:match('^/[^%s]*$') or (port and tonumber(port) <= 65535))
		if not fine then
			return 'must look like http://127.0.0.1:5100, not ' .. tostring(value)
		end
		return nil, url
	elseif name == 'CHANNELS' then
		return nil, M.channelList(value)
	elseif name == 'TRANSPORT' then
		local transport = trim(value):lower()
		if not M.TRANSPORTS[transport] then
			return 'must be longpoll or lrsocket, not ' .. tostring(value)
		end
		return nil, transport
	end
	return nil, type(value) == 'string' and trim(value) or value
end

local function apply(config, name, value, warnings)
	if value == nil or value == '' then return end
	local problem, parsed = parse(name, value)
	if problem then
		warnings[#warnings + 1] = name .. ' ' .. problem
		return
	end
	config[name] = parsed
end

--- What is wrong with `value` for the preference `key` (a phrase to show after the field's
--- label), or nil when it can be used; empty means the default.
function M.check(key, value)
	local name = M.PREF_KEYS[key]
	if not name or value == nil or value == '' then return nil end
	return (parse(name, value))
end

--- The channels to subscribe: `base` (the setting) with `changes` ({channel = true|false},
--- made at run time by subscribe()/unsubscribe()) applied; added channels come last, sorted.
function M.effectiveChannels(base, changes)
	local list, seen = {}, {}
	changes = changes or {}
	for _, channel in ipairs(base) do
		if changes[channel] ~= false and not seen[channel] then
			list[#list + 1] = channel
			seen[channel] = true
		end
	end
	local added = {}
	for channel, on in pairs(changes) do
		if on == true and not seen[channel] then added[#added + 1] = channel end
	end
	table.sort(added)
	for _, channel in ipairs(added) do list[#list + 1] = channel end
	return list
end

--- The settings: defaults, then `prefs` (an LrPrefs-like table), then `options`
--- (setting names). Returns the config and a list of warnings about ignored values.
function M.resolve(prefs, options)
	local config, warnings = {}, {}
	for name, value in pairs(M.DEFAULTS) do config[name] = value end
	config.CHANNELS = M.channelList(M.DEFAULTS.CHANNELS)
	if prefs then
		for key, name in pairs(M.PREF_KEYS) do apply(config, name, prefs[key], warnings) end
	end
	local explicitWs = false
	for name, value in pairs(options or {}) do
		if M.DEFAULTS[name] ~= nil or NUMBERS[name] then
			apply(config, name, value, warnings)
			if name == 'WS_URL' then explicitWs = true end
		else
			warnings[#warnings + 1] = 'unknown setting ' .. tostring(name)
		end
	end
	if not explicitWs then config.WS_URL = M.wsUrl(config.HTTP_FALLBACK_URL) end
	config.RECONNECT_MAX_DELAY = math.max(config.RECONNECT_MAX_DELAY, config.RECONNECT_DELAY)
	config.SLOW_RETRY_DELAY = math.max(config.SLOW_RETRY_DELAY, config.RECONNECT_MAX_DELAY)
	config.MAX_RECONNECT_ATTEMPTS = math.floor(config.MAX_RECONNECT_ATTEMPTS)
	config.START_RETRY_MAX_DELAY = math.max(config.START_RETRY_MAX_DELAY, config.START_RETRY_DELAY)
	if config.POLL_TIMEOUT == nil then
		config.POLL_TIMEOUT = config.POLL_WAIT + config.POLL_TIMEOUT_MARGIN
	elseif config.POLL_TIMEOUT <= config.POLL_WAIT then
		warnings[#warnings + 1] = 'POLL_TIMEOUT is not longer than POLL_WAIT: polls time out while the gateway holds them'
	end
	return config, warnings
end

return M
