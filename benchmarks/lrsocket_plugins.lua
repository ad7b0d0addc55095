--[[
lrsocket_plugins.lua: BENCH_CLIENTS instances of the plug-in's Connection (the real Lua code, under the
SDK stand-in, LrSocket included) in one lua5.1 process, for benchmarks/lrsocket.py.

    BRIDGE_URL=http://127.0.0.1:PORT BENCH_TRANSPORT=lrsocket|longpoll BENCH_CLIENTS=N BENCH_CHANNEL=name \
        lua5.1 benchmarks/lrsocket_plugins.lua

Prints "ready" once every instance is connected (and, for lrsocket, pushed to), then one line
"<client index> <n> <epoch seconds>" each time a handler gets a message {type = "bench", n = ...};
runs until it is ended (SIGTERM) or BENCH_DEADLINE seconds (default 600) have passed.
]]
local here = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local root = here .. '/..'
package.path = root .. '/tests/lua/?.lua;' .. root .. '/tests/lua/?/init.lua;' .. package.path
require('lr_shim').confine(root .. '/plugin/LightroomBridge.lrdevplugin')
local LrTasks = import 'LrTasks'
local LrHttp = import 'LrHttp'
local LrSocket = import 'LrSocket'
local LrFunctionContext = import 'LrFunctionContext'
local socket = require('lr_shim.system')('socket')
local Config = require 'Config'
local Connection = require 'Connection'
local Dispatcher = require 'Dispatcher'

local count = tonumber(os.getenv('BENCH_CLIENTS') or '1')
local transport = os.getenv('BENCH_TRANSPORT') or 'lrsocket'
local deadline = socket.gettime() + (tonumber(os.getenv('BENCH_DEADLINE') or '') or 600)

local quiet = function() end
local runtime = {
	http = LrHttp,
	sleep = function(seconds) LrTasks.sleep(seconds) end,
	now = socket.gettime,
	spawn = function(fn, name) LrTasks.startAsyncTask(fn, name) end,
	protect = LrTasks.pcall,
	canYield = function() return LrTasks.canYield() end,
	random = math.random,
	log = { info = quiet, warn = quiet, error = function(text) io.stderr:write(text, '\n') end },
	bindSocket = function(params) return LrSocket.bind(params) end,
	withContext = function(name, fn) return LrFunctionContext.callWithContext(name, fn) end,
}

local config = Config.resolve(nil, {
	HTTP_FALLBACK_URL = os.getenv('BRIDGE_URL'), TRANSPORT = transport, CHANNELS = os.getenv('BENCH_CHANNEL'),
	PING_INTERVAL = 300, REQUEST_TIMEOUT = 5,
})

local connections = {}
for i = 1, count do
	local dispatcher = Dispatcher.new(LrTasks.pcall, quiet)
	dispatcher:registerHandler('bench', function(message)
		io.stdout:write(string.format('%d %d %.6f\n', i, message.n, socket.gettime()))
		io.stdout:flush()
	end)
	local connection = Connection.new(config, runtime, dispatcher, {})
	connection:start()
	connections[i] = connection
end

local function ready()
	for _, connection in ipairs(connections) do
		if not connection:isConnected() then return false end
		if transport == 'lrsocket' and connection.status.transport ~= 'lrsocket' then return false end
	end
	return true
end

if not LrTasks._runUntil(ready, 60) then
	io.stderr:write('not ready in 60 s\n')
	os.exit(2)
end
io.stdout:write('ready\n')
io.stdout:flush()

-- run until the benchmark ends this process (by its PID) or the deadline passes
LrTasks._runUntil(function() return socket.gettime() > deadline end, deadline - socket.gettime())
