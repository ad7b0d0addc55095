-- The transport setting and SocketPush's pure logic (the push end to end: tests/system/test_lrsocket_plugin.py).
local Config = require 'Config'
local SocketPush = require 'SocketPush'

describe("the transport setting", function()
	it("defaults to longpoll; a preference or an option chooses lrsocket; anything else is ignored", function()
		assert.are.equal('longpoll', Config.resolve(nil, nil).TRANSPORT)
		assert.are.equal('lrsocket', Config.resolve({ transport = ' LrSocket ' }, nil).TRANSPORT)
		assert.are.equal('lrsocket', Config.resolve(nil, { TRANSPORT = 'lrsocket' }).TRANSPORT)
		local config, warnings = Config.resolve({ transport = 'websocket' }, nil)
		assert.are.equal('longpoll', config.TRANSPORT)
		assert.matches('longpoll or lrsocket', warnings[1])
	end)
end)

describe("SocketPush", function()
	local function connection(transport, withSocket)
		local lines = {}
		local config = Config.resolve(nil, { TRANSPORT = transport })
		local runtime = {
			now = function() return 100 end,
			log = { info = function() end, warn = function(text) lines[#lines + 1] = text end },
		}
		if withSocket then runtime.bindSocket = function() end end
		return { config = config, runtime = runtime, status = {}, lines = lines }
	end

	it("says why it is not in use", function()
		local c = connection('longpoll', true)
		local push = SocketPush.new(c)
		assert.is_false(push.enabled)
		assert.are.same({ 'longpoll', 'the transport setting is longpoll' }, { c.status.transport, c.status.transportReason })
		c = connection('lrsocket', false)
		push = SocketPush.new(c)
		assert.is_false(push.enabled)
		assert.are.equal('LrSocket is not available', c.status.transportReason)
	end)

	it("falls back at once, closing the socket, and ignores that socket's callbacks from then on", function()
		local c = connection('lrsocket', true)
		local push = SocketPush.new(c)
		local closed, reconnects = 0, 0
		push.socket = { close = function() closed = closed + 1 end, reconnect = function() reconnects = reconnects + 1 end }
		push.mode = 'socket'
		local generation = push.generation
		assert.is_true(push:active())
		push:fallBack('the socket was closed')
		assert.is_false(push:active())
		assert.are.equal(1, closed)
		assert.are.equal(0, reconnects)
		assert.are.equal('lrsocket fell back: the socket was closed', c.status.transportReason)
		assert.are.equal(100 + c.config.PUSH_RETRY_DELAY, push.retryAt)
		assert.is_false(push:_current(generation))
		assert.are.equal(1, c.status.pushStale)
		assert.is_true(push:_current(push.generation))
	end)

	it("Bridge: Show Status says which transport is in use and why it fell back", function()
		local BridgeStatus = require 'BridgeStatus'
		local StatusText = require 'StatusText'
		local c = connection('lrsocket', true)
		c.status = BridgeStatus
		local push = SocketPush.new(c)
		push.mode, push.port = 'socket', 50123
		BridgeStatus.transport = 'lrsocket'
		BridgeStatus.transportReason = 'lrsocket: the bridge pushes to port 50123'
		assert.matches('Transport: LrSocket push %(lrsocket: the bridge pushes to port 50123%)', StatusText.describe())
		push:fallBack('the bridge stopped pushing')
		assert.matches('Transport: long%-poll %(lrsocket fell back: the bridge stopped pushing%)', StatusText.describe())
		BridgeStatus.transport, BridgeStatus.transportReason = nil, nil
	end)
end)
