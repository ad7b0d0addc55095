--[[
LrView shim: a factory whose every view is a plain table, so a test can build
a Plug-in Manager section or a dialog and look at what it holds.

    local f = LrView.osFactory()
    local v = f:edit_field { value = LrView.bind 'serverUrl' }   -- { _kind = 'edit_field', value = {key = ...} }
    LrView.bind 'key'  /  LrView.bind { key =, transform =, bind_to_object = }   -> a binding table
    LrView.share 'name'                                                          -> { share = 'name' }

Test helpers (not SDK): _walk(view, fn) visits every view of a tree; _resolve(value,
properties) gives what a bound property shows (the transform applied).
A stand-in for tests; not Adobe code.
]]
local LrView = {}

local BINDING = {}

function LrView.bind(spec)
	local binding = type(spec) == "table" and spec or { key = spec }
	assert(type(binding.key) == "string", "LrView.bind needs a key")
	return setmetatable(binding, BINDING)
end

function LrView.share(name)
	return { share = name }
end

local Factory = {}
Factory.__index = function(_, kind)
	return function(_, args)
		local view = {}
		for k, v in pairs(args or {}) do view[k] = v end
		view._kind = kind
		return view
	end
end

function LrView.osFactory()
	return setmetatable({}, Factory)
end

--- True when `value` is a binding made by LrView.bind.
function LrView._isBinding(value)
	return getmetatable(value) == BINDING
end

--- Call fn(view) for `view` and every view below it (array items and named tables).
function LrView._walk(view, fn, seen)
	seen = seen or {}
	if type(view) ~= "table" or seen[view] or LrView._isBinding(view) then return end
	seen[view] = true
	if view._kind then fn(view) end
	for _, child in pairs(view) do LrView._walk(child, fn, seen) end
end

--- What a view property shows: a binding's value read from `properties` (transformed), else the value.
function LrView._resolve(value, properties)
	if not LrView._isBinding(value) then return value end
	local source = value.bind_to_object or properties
	local v = source[value.key]
	if value.transform then v = value.transform(v, true) end
	return v
end

return LrView
