--[[
Info.lua: the Lightroom Bridge plug-in's manifest.

It connects when Lightroom starts (LrForceInitPlugin), stops cleanly on
reload, disable and quit (keeping the session, which the next start resumes),
and adds its menu items under File > Plug-in Extras and Library > Plug-in Extras.
]]
local function menu()
	return {
		{ title = 'Bridge: Connect', file = 'MenuConnect.lua' },
		{ title = 'Bridge: Disconnect', file = 'MenuDisconnect.lua' },
		{ title = 'Bridge: Show Status', file = 'MenuStatus.lua' },
	}
end

return {
	LrSdkVersion = 10.0,
	LrSdkMinimumVersion = 6.0,
	LrToolkitIdentifier = 'org.lightroombridge.bridge',
	LrPluginName = 'Lightroom Bridge',

	LrInitPlugin = 'Init.lua',
	LrForceInitPlugin = true,
	LrEnablePlugin = 'Init.lua',
	LrDisablePlugin = 'Shutdown.lua',
	LrShutdownPlugin = 'Shutdown.lua',
	LrShutdownApp = 'ShutdownApp.lua',

	LrPluginInfoProvider = 'PluginInfoProvider.lua',
	LrPluginInfoUrl = 'http://127.0.0.1:5100/ws/dashboard', -- the bridge's dashboard, at its default address

	LrExportMenuItems = menu(),
	LrLibraryMenuItems = menu(),

	VERSION = { major = 0, minor = 1, revision = 0, build = 0 }, -- the package's version (pyproject.toml)
}
