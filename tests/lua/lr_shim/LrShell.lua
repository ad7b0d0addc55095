--[[
LrShell shim: revealInShell and openFilesInApp record their calls in LrShell._calls.
A stand-in for tests; not Adobe code.
]]
local LrShell = { _calls = {} }
function LrShell.revealInShell(path) table.insert(LrShell._calls, { kind = "reveal", path = path }) end
function LrShell.openFilesInApp(files, app) table.insert(LrShell._calls, { kind = "open", files = files, app = app }) end
return LrShell
