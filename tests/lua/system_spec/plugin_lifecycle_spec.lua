-- Issue points 2 and 3, against the real bridge: every event reaches listeners inside a task,
-- whoever causes it (Bridge: Disconnect, a reload, the Plug-in Manager's buttons); and a
-- Shutdown.lua run in a fresh module environment still stops the old run: never two pollers.
local LrHttp = import 'LrHttp'
local LrTasks = import 'LrTasks'
local LrView = import 'LrView'
local LrBinding = import 'LrBinding'
local live = require 'support.live'

-- A 'disconnected' listener that records whether it runs in a task and calls LrHttp there.
local function inTaskListener(ws)
	local heard = {}
	ws.addEventListener('disconnected', function(data)
		local entry = { reason = data.reason, inTask = LrTasks.canYield() }
		local _, headers = LrHttp.get(live.url .. '/ws/status', nil, 5)
		entry.status = headers and headers.status
		heard[#heard + 1] = entry
	end)
	return heard
end

local function connectedClient()
	local ws, events = live.client()
	local heard = inTaskListener(ws)
	ws.init(live.options())
	live.wait(events, 'connected')
	return ws, events, heard
end

local function button(provider, title)
	local props = LrBinding.makePropertyTable()
	provider.startDialog(props)
	local found
	LrView._walk(provider.sectionsForTopOfDialog(LrView.osFactory(), props), function(view)
		if view._kind == 'push_button' and view.title == title then found = view end
	end)
	return assert(found, 'no button ' .. title), props
end

describe("events reach listeners inside a task", function()
	before_each(live.reset)

	it("when Bridge: Disconnect is chosen (outside any task)", function()
		local _, _, heard = connectedClient()
		assert.is_false(LrTasks.canYield())
		live.runFile('MenuDisconnect.lua')
		live.runUntil(function() return #heard == 1 end, 10, 'the disconnected listener')
		assert.are.same({ reason = 'disconnect', inTask = true, status = 200 }, heard[1])
	end)

	it("when the plug-in is reloaded (Shutdown.lua outside any task)", function()
		local _, _, heard = connectedClient()
		live.runFile('Shutdown.lua')
		live.runUntil(function() return #heard == 1 end, 10, 'the disconnected listener')
		assert.are.same({ reason = 'shutdown', inTask = true, status = 200 }, heard[1])
	end)

	it("when the Plug-in Manager's Disconnect and Connect buttons are pressed", function()
		local ws, events, heard = connectedClient()
		local provider = live.runFile('PluginInfoProvider.lua')
		local disconnect, props = button(provider, 'Disconnect')
		disconnect.action()
		live.runUntil(function() return #heard == 1 end, 10, 'the disconnected listener')
		assert.are.same({ reason = 'disconnect', inTask = true, status = 200 }, heard[1])
		local connect = button(provider, 'Connect')
		connect.action()
		live.wait(events, 'connected', nil, 2)
		assert.is_true(ws.isConnected())
		provider.endDialog(props)
	end)
end)

describe("a fresh module environment", function()
	before_each(live.reset)

	local function pollers()
		local n = 0
		for _, name in ipairs(LrTasks._names()) do
			if name == 'LightroomBridge connection' then n = n + 1 end
		end
		return n
	end

	it("running Shutdown.lua stops the old run's tasks, and the reloaded plug-in resumes alone", function()
		LrHttp._log = {}
		local ws, events = live.client()
		ws.init(live.options())
		live.wait(events, 'connected')
		local id = ws.getClientId()
		-- Lightroom reloads: new copies of every module; the old ones are out of reach
		live.unload()
		assert.is_nil(package.loaded.WebSocketClient)
		live.runFile('Shutdown.lua')
		-- the old poll task ends, and the release of its parked poll too: nothing is left
		live.runUntil(function() return LrTasks._count() == 0 end, 5, 'every old task to end')
		assert.is_false(ws.isConnected())
		-- the session was kept (a reload is not Bridge: Disconnect)
		assert.is_table(live.clientInfo(id))
		local fresh, freshEvents = live.client()
		fresh.init(live.options())
		local connected = live.wait(freshEvents, 'connected')
		assert.are.equal(1, pollers())
		assert.are.equal(1, live.maxConcurrentPolls())
		assert.are.equal(id, connected[1].data.client_id)
		assert.is_true(connected[1].data.resumed)
		assert.is_true(live.notify('after-reload') >= 1)
		live.wait(freshEvents, 'message', function(m) return m.job_id == 'after-reload' end)
		assert.are.same({}, live.of(events, 'message', function(m) return m.job_id == 'after-reload' end))
	end)

	it("starting without Shutdown.lua stops the run another environment left", function()
		LrHttp._log = {}
		local ws, events = live.client()
		ws.init(live.options())
		live.wait(events, 'connected')
		live.unload()
		local fresh, freshEvents = live.client()
		fresh.init(live.options())
		live.wait(freshEvents, 'connected')
		live.runUntil(function() return pollers() == 1 end, 5, 'one poller')
		-- for a while (the 2 s hold and more): never a second poll task
		local most = 0
		LrTasks._runUntil(function() most = math.max(most, pollers()); return false end, 2.5)
		assert.are.equal(1, most)
		assert.is_false(ws.isConnected())
		assert.is_true(fresh.isConnected())
	end)
end)
