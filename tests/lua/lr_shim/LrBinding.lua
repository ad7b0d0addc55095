--[[
LrBinding shim: makePropertyTable(context) gives an observable table: assigning
a key calls the observers added with addObserver(key, fn(properties, key, value)).
A stand-in for tests; not Adobe code.
]]
local LrBinding = {}

function LrBinding.makePropertyTable(_context)
	local data, observers = {}, {}
	local methods = {}
	function methods.addObserver(_, key, fn)
		observers[key] = observers[key] or {}
		table.insert(observers[key], fn)
	end
	function methods.removeObserver(_, key, fn)
		for i, existing in ipairs(observers[key] or {}) do
			if existing == fn then table.remove(observers[key], i) return end
		end
	end
	local properties
	properties = setmetatable({}, {
		__index = function(_, key)
			if methods[key] then return methods[key] end
			return data[key]
		end,
		__newindex = function(_, key, value)
			local old = data[key]
			data[key] = value
			if old ~= value then
				for _, fn in ipairs(observers[key] or {}) do fn(properties, key, value) end
			end
		end,
	})
	return properties
end

return LrBinding
