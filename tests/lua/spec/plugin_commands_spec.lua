-- Commands: each runs once, in its own task, and its outcome (or error) goes back with its id
local Commands = require 'Commands'

local function fake(sendResults)
	local rt = { t = 0, sent = {}, tasks = 0 }
	rt.now = function() return rt.t end
	rt.sleep = function(s) rt.t = rt.t + s end
	rt.spawn = function(fn) rt.tasks = rt.tasks + 1; fn() end
	rt.protect = pcall
	rt.log = { info = function() end, warn = function() end, error = function() end }
	local results = sendResults or {}
	local send = function(message)
		rt.sent[#rt.sent + 1] = message
		local r = table.remove(results, 1)
		if r == nil then return true end
		if type(r) == 'table' then return r[1], r[2] end
		return r
	end
	return rt, send
end

describe("Commands", function()
	it("runs a registered action with its params and sends back what it returned", function()
		local rt, send = fake()
		local c = Commands.new(rt, send)
		c:register('echo', function(params, command)
			assert.are.equal('c1', command.id)
			return { got = params.x }
		end)
		c:handle({ type = 'command', command_id = 'c1', action = 'echo', params = { x = 7 }, timeout = 5 })
		assert.are.same({ { type = 'command_result', command_id = 'c1', ok = true, result = { got = 7 } } }, rt.sent)
	end)

	it("sends an error with the plug-in's message, without Lua's position", function()
		local rt, send = fake()
		local c = Commands.new(rt, send)
		c:register('fail', function() error('the catalog is busy') end)
		c:register('coded', function() error({ code = 'no_photo', message = 'nothing selected' }) end)
		c:handle({ command_id = 'c1', action = 'fail', timeout = 5 })
		c:handle({ command_id = 'c2', action = 'coded', timeout = 5 })
		assert.are.same({ code = 'command_failed', message = 'the catalog is busy' }, rt.sent[1].error)
		assert.is_false(rt.sent[1].ok)
		assert.are.same({ code = 'no_photo', message = 'nothing selected' }, rt.sent[2].error)
	end)

	it("answers not_supported at once for an unknown action", function()
		local rt, send = fake()
		local c = Commands.new(rt, send)
		c:handle({ command_id = 'c1', action = 'nope', timeout = 5 })
		assert.are.equal('not_supported', rt.sent[1].error.code)
	end)

	it("never runs a command twice: a redelivered one is answered again from what it gave", function()
		local rt, send = fake()
		local c = Commands.new(rt, send)
		local runs = 0
		c:register('count', function() runs = runs + 1; return runs end)
		c:handle({ command_id = 'c1', action = 'count', timeout = 5 })
		c:handle({ command_id = 'c1', action = 'count', timeout = 5 })
		assert.are.equal(1, runs)
		assert.are.equal(2, #rt.sent)
		assert.are.same(rt.sent[1], rt.sent[2])
	end)

	it("forgets the oldest ids beyond its bound", function()
		local rt, send = fake()
		local c = Commands.new(rt, send)
		local runs = 0
		c:register('count', function() runs = runs + 1 end)
		for i = 1, Commands.MAX_REMEMBERED + 1 do c:handle({ command_id = 'c' .. i, action = 'count', timeout = 5 }) end
		local n = 0
		for _ in pairs(c.seen) do n = n + 1 end
		assert.are.equal(Commands.MAX_REMEMBERED, n)
		assert.is_nil(c.seen.c1)
		assert.are.equal(Commands.MAX_REMEMBERED + 1, runs)
	end)

	it("reports progress, and retries an answer the bridge did not take until past the deadline", function()
		local rt, send = fake({ true, { false, 'hub_unavailable' }, { false, 'hub_unavailable' } })
		local c = Commands.new(rt, send)
		c:register('slow', function(_, command)
			assert.is_true(command:progress(50, 'half'))
			return 'ok'
		end)
		c:handle({ command_id = 'c1', action = 'slow', timeout = 5 })
		assert.are.same({ type = 'command_progress', command_id = 'c1', pct = 50, text = 'half' }, rt.sent[1])
		assert.are.equal(4, #rt.sent) -- the result, refused twice, then taken
		assert.are.equal('command_result', rt.sent[4].type)
	end)
end)
