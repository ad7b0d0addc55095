--[[
Json: JSON for the bridge, on top of the bundled dkjson (pure Lua, no SDK).

Two traps of Lua tables in JSON are handled here, once:

  * an empty table is ambiguous; dkjson writes it as `[]`. Use Json.object()
    for a table that must be `{}` when empty (the gateway also accepts `[]`
    where it expects an object, see docs/PLUGIN.md);
  * dkjson treats a numeric key `n` as an array length (table.pack's
    convention), so `{ n = 3 }` would become `[null,null,null]`. encode()
    writes such a table as the object it is.
]]
local dkjson = require 'dkjson'

local M = {}

M.null = dkjson.null

local OBJECT = { __jsontype = 'object' }
local MAX_DEPTH = 32 -- the gateway refuses messages nested deeper

--- Mark `t` (or a new table) as a JSON object, so that `{}` encodes as `{}`.
function M.object(t)
	return setmetatable(t or {}, OBJECT)
end

local function onlyNumericN(t)
	local count = 0
	for k in pairs(t) do
		if k ~= 'n' then return false end
		count = count + 1
	end
	return count == 1 and type(t.n) == 'number'
end

local ONLY_N = {
	__tojson = function(self)
		return '{"n":' .. dkjson.encode(self.n) .. '}'
	end,
}

-- A copy of `value` that dkjson encodes as intended (objects stay objects).
local function normalize(value, depth, seen)
	if type(value) ~= 'table' or value == dkjson.null then return value end
	if depth > MAX_DEPTH then error('value is nested deeper than ' .. MAX_DEPTH .. ' levels', 0) end
	if seen[value] then error('value contains a reference cycle', 0) end
	seen[value] = true
	local copy = {}
	for k, v in pairs(value) do
		copy[k] = normalize(v, depth + 1, seen)
	end
	seen[value] = nil
	if onlyNumericN(copy) then return setmetatable(copy, ONLY_N) end
	local meta = getmetatable(value)
	if meta and meta.__jsontype then setmetatable(copy, { __jsontype = meta.__jsontype }) end
	return copy
end

--- Encode a Lua value; returns the JSON text, or nil and a reason.
function M.encode(value)
	local ok, normalized = pcall(normalize, value, 1, {})
	if not ok then return nil, normalized end
	local text, err = dkjson.encode(normalized)
	if not text then return nil, tostring(err) end
	return text
end

--- Decode JSON text; returns the value, or nil and a reason. JSON null becomes nil.
function M.decode(text)
	if type(text) ~= 'string' or text == '' then return nil, 'empty body' end
	local value, _, err = dkjson.decode(text, 1, nil)
	if err then return nil, err end
	return value
end

return M
