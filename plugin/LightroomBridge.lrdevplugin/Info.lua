--[[
Info.lua: the Lightroom Bridge plug-in's manifest.

It connects when Lightroom starts (LrForceInitPlugin), stops cleanly on
reload, disable and quit (keeping the session, which the next start resumes),
and adds File > Plug-in Extras menu items.
]]
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

	LrExportMenuItems = {
		{ title = 'Bridge: Connect', file = 'MenuConnect.lua' },
		{ title = 'Bridge: Disconnect', file = 'MenuDisconnect.lua' },
		{ title = 'Bridge: Show Status', file = 'MenuStatus.lua' },
	},

	VERSION = { major = 0, minor = 1, revision = 0, build = 0 }, -- the package's version (pyproject.toml)
}
