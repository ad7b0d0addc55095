-- The plug-in folder as Lightroom loads it: manifest, encodings, SDK-free core, SDK glue
local LrDialogs = import 'LrDialogs'
local LrTasks = import 'LrTasks'
local shim = require 'lr_shim'

local DIR = shim.pluginDir .. '/' -- the folder `require` searches (spec/support/helper.lua)
local PURE = { 'Json', 'Backoff', 'Envelope', 'SeqTracker', 'Dispatcher', 'Transport', 'Config', 'Connection', 'BridgeStatus',
	'Positions', 'SessionStore', 'Commands' }

local function read(path)
	local f = assert(io.open(path, 'rb'))
	local text = f:read('*a')
	f:close()
	return text
end

local function listLua()
	local files = {}
	local p = assert(io.popen('ls ' .. DIR))
	for name in p:lines() do
		if name:match('%.lua$') then files[#files + 1] = name end
	end
	p:close()
	return files
end

describe("plug-in folder", function()
	it("has an Info.lua with the manifest keys, and every file it names exists", function()
		local info = dofile(DIR .. 'Info.lua')
		for _, key in ipairs({ 'LrSdkVersion', 'LrToolkitIdentifier', 'LrPluginName', 'LrInitPlugin', 'LrShutdownPlugin',
			'LrShutdownApp', 'LrPluginInfoProvider' }) do
			assert.is_not_nil(info[key], key)
		end
		assert.is_true(info.LrForceInitPlugin)
		local files = { info.LrInitPlugin, info.LrShutdownPlugin, info.LrShutdownApp, info.LrPluginInfoProvider,
			info.LrEnablePlugin, info.LrDisablePlugin }
		for _, item in ipairs(info.LrExportMenuItems) do files[#files + 1] = item.file end
		assert.are.equal(3, #info.LrExportMenuItems)
		for _, file in ipairs(files) do assert.is_truthy(io.open(DIR .. file), file) end
		local version = info.VERSION
		local WebSocketClient = require 'WebSocketClient'
		assert.are.equal(string.format('%d.%d.%d', version.major, version.minor, version.revision), WebSocketClient.PLUGIN_VERSION)
	end)

	it("is UTF-8 without a byte order mark", function()
		for _, name in ipairs(listLua()) do
			local text = read(DIR .. name)
			assert.is_false(text:sub(1, 3) == '\239\187\191', name .. ' starts with a BOM')
			-- every byte sequence decodes as UTF-8
			local i = 1
			while i <= #text do
				local c = text:byte(i)
				local n = c < 0x80 and 0 or (c >= 0xC2 and c < 0xE0) and 1 or (c >= 0xE0 and c < 0xF0) and 2
					or (c >= 0xF0 and c < 0xF5) and 3 or nil
				assert.is_not_nil(n, name .. ': invalid UTF-8 at byte ' .. i)
				for k = 1, n do
					local cc = text:byte(i + k)
					assert.is_true(cc ~= nil and cc >= 0x80 and cc < 0xC0, name .. ': invalid UTF-8 at byte ' .. i)
				end
				i = i + n + 1
			end
		end
	end)

	it("keeps the pure modules free of the SDK (they load where import does not exist)", function()
		for _, name in ipairs(PURE) do
			local script = string.format(
				"package.path = %q; package.cpath = ''; import = function(n) error('SDK import of ' .. n) end; require %q",
				DIR .. '?.lua;', name)
			local p = assert(io.popen('lua5.1 -e ' .. string.format('%q', script) .. ' 2>&1; echo "rc=$?"'))
			local out = p:read('*a')
			p:close()
			assert.matches('rc=0', out, 1, true)
		end
	end)
end)

describe("SDK glue", function()
	before_each(function()
		LrTasks._reset()
		LrDialogs._calls = {}
	end)

	it("shows the status from the menu item", function()
		dofile(DIR .. 'MenuStatus.lua')
		local call = LrDialogs._calls[1]
		assert.are.equal('message', call.kind)
		assert.matches('Status: Disconnected', call[2], 1, true)
		assert.matches('Server: ', call[2], 1, true)
	end)

	it("lets Lightroom quit: LrShutdownApp calls doneFunction", function()
		local app = dofile(DIR .. 'ShutdownApp.lua')
		local done, progress = false, nil
		app.LrShutdownFunction(function() done = true end, function(p) progress = p end)
		assert.is_true((LrTasks._runUntil(function() return done end, 5)))
		assert.are.equal(1, progress)
	end)

	it("builds the Plug-in Manager section and saves changed settings", function()
		local views = {}
		local factory = setmetatable({}, { __index = function(_, kind)
			return function(_, args) views[#views + 1] = kind; args._kind = kind; return args end
		end })
		shim.override('LrView', {
			bind = function(key) return { bind = key } end,
			share = function(key) return { share = key } end,
		})
		local prefs = (import 'LrPrefs').prefsForPlugin()
		local provider = dofile(DIR .. 'PluginInfoProvider.lua')
		shim.clearOverrides()
		local props = {}
		provider.startDialog(props)
		assert.are.equal('http://127.0.0.1:5100', props.serverUrl)
		assert.are.equal('Disconnected', props.stateText)
		local sections = provider.sectionsForTopOfDialog(factory, props)
		assert.are.equal('Bridge connection', sections[1].title)
		assert.is_true(#views > 10)
		-- every setting has its edit field, the start command included
		local bound = {}
		local function walk(view)
			if type(view) ~= 'table' then return end
			if view._kind == 'edit_field' and type(view.value) == 'table' then bound[view.value.bind] = true end
			for _, child in pairs(view) do walk(child) end
		end
		walk(sections)
		-- every preference the settings read has its edit field; the transport has its menu
		local expected = {}
		for key in pairs(require('Config').PREF_KEYS) do expected[key] = true end
		expected.transport = nil
		assert.are.same(expected, bound)
		local popups = {}
		local function menus(view)
			if type(view) ~= 'table' then return end
			if view._kind == 'popup_menu' then popups[view.value.bind] = #view.items end
			for _, child in pairs(view) do menus(child) end
		end
		menus(sections)
		assert.are.same({ transport = 2 }, popups)
		assert.are.equal('longpoll', props.transport)
		assert.matches('^long%-poll', props.transportText)
		assert.are.equal('', props.startCommand)
		props.serverUrl = 'http://127.0.0.1:1'
		props.startCommand = '/opt/bridge/bin/lrbridge run'
		LrTasks._executeHandler = function() return 127 end -- the reconnect below may try it: run nothing
		provider.endDialog(props)
		assert.are.equal('http://127.0.0.1:1', prefs.serverUrl)
		assert.are.equal('/opt/bridge/bin/lrbridge run', prefs.startCommand)
		assert.are.equal('/opt/bridge/bin/lrbridge run', (require 'WebSocketClient').config.START_COMMAND)
		-- the refresh task ends with the dialog; the reconnect it caused is stopped here
		local WebSocketClient = require 'WebSocketClient'
		WebSocketClient.disconnect()
		assert.is_true((LrTasks._runAll(5)))
		prefs.serverUrl = nil
		prefs.startCommand = nil
	end)
end)
