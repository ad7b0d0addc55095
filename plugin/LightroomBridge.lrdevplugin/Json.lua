--[[
Json: the plug-in's JSON codec (pure Lua 5.1, no SDK, no library: the plug-in
folder loads in Lightroom as it is).

    local text, err = Json.encode(value)   -- text, or nil and a reason
    local value, err = Json.decode(text)   -- value, or nil and a reason

Lua has one table type; the rules that map it to JSON:

  * a table whose keys are exactly the integers 1..n is an array, and so is
    one with a few holes (keys positive integers, the largest at most 10 or
    at most twice the count): holes are written as null;
  * any other table is an object; number keys are written as strings. There
    is no `n` convention (table.pack's): `{ n = 3 }` is the object {"n":3};
  * an empty table is ambiguous and written as `[]`. Json.object(t) marks a
    table that must be `{}` when empty (the gateway also accepts `[]` where it
    expects an object). Tables that decode() builds from JSON objects carry
    that mark, so `{}` read and written again stays `{}`;
  * JSON null decodes to nil (so a key whose value is null is absent);
    Json.null encodes as null where a nil cannot stand.

Numbers are written so that they read back as the same number: integers as
digits (up to 2^53), others with the fewest significant digits (at most 17)
that round-trip, -0 as -0; NaN and infinities as null (as JavaScript does).
The decimal separator is a dot whatever the locale. Strings are written as
UTF-8 with control characters, DEL, and a few invisible or line-breaking
characters (U+2028, U+2029, U+FEFF, ...) escaped as \u and four hex digits.

decode() reads strict JSON (RFC 8259): no comments, no trailing commas, no
unescaped control characters in strings, nothing after the value. \u-hex
escapes become UTF-8, surrogate pairs one 4-byte character; a lone surrogate
becomes U+FFFD. Values nested deeper than MAX_DECODE_DEPTH are refused (an
error, never a stack overflow); encode() refuses values nested deeper than
MAX_ENCODE_DEPTH (the gateway refuses messages nested deeper than 32 levels)
and reference cycles.
]]
local M = {}

M.MAX_ENCODE_DEPTH = 32
M.MAX_DECODE_DEPTH = 64

local OBJECT = { __jsontype = 'object' }
local ARRAY = { __jsontype = 'array' }

--- Encodes as JSON null (where a nil cannot stand, e.g. inside an array).
M.null = setmetatable({}, { __tostring = function() return 'Json.null' end })

--- Mark `t` (or a new table) as a JSON object, so that it encodes as `{}` when empty.
function M.object(t)
	return setmetatable(t or {}, OBJECT)
end

local byte, char, concat, find, floor, format, gsub, sub =
	string.byte, string.char, table.concat, string.find, math.floor, string.format, string.gsub, string.sub
local huge = math.huge

-- ------------------------------------------------------------------ encode

local ESCAPES = {
	['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

-- The code point of one UTF-8 sequence (the escaped characters are all valid sequences).
local function codepoint(s)
	local a, b, c = byte(s, 1, 3)
	if a < 0x80 then return a end
	if a < 0xE0 then return (a - 0xC0) * 0x40 + (b - 0x80) end
	return ((a - 0xE0) * 0x40 + (b - 0x80)) * 0x40 + (c - 0x80)
end

local function escape(s)
	return ESCAPES[s] or format('\\u%04x', codepoint(s))
end

-- Characters that are valid in JSON but that some readers mangle (JavaScript line
-- terminators, invisible format characters, the BOM, C1 controls, specials): the same set
-- dkjson escapes, so either library can read the other's output unchanged.
local INVISIBLE = {
	'\194[\128-\159\173]', '\216[\128-\132]', '\220\143', '\225\158[\180\181]', '\226\128[\140-\143\168-\175]',
	'\226\129[\160-\175]', '\239\187\191', '\239\191[\176-\191]',
}

local function quote(s)
	s = gsub(s, '[%z\1-\31"\\\127]', escape)
	if find(s, '[\194\216\220\225\226\239]') then
		for _, pattern in ipairs(INVISIBLE) do s = gsub(s, pattern, escape) end
	end
	return '"' .. s .. '"'
end

local decimalPoint = '.'

local function formatNumber(x)
	if x ~= x or x == huge or x == -huge then return 'null' end
	local text
	if x == floor(x) and x > -2 ^ 53 and x < 2 ^ 53 then
		text = format('%.0f', x) -- -0 stays "-0"
	else
		for digits = 14, 17 do
			text = format('%.' .. digits .. 'g', x)
			if tonumber(text) == x then break end
		end
	end
	if decimalPoint ~= '.' then text = gsub(text, '%' .. decimalPoint, '.') end
	return text
end

-- true and the length when `t` is written as an array
local function arrayLength(t)
	local max, count = 0, 0
	for k in pairs(t) do
		if type(k) ~= 'number' or k < 1 or k ~= floor(k) then return false end
		if k > max then max = k end
		count = count + 1
	end
	if max > 10 and max > count * 2 then return false end
	return true, max
end

local encodeValue

local function encodeKey(k)
	if type(k) == 'string' then return quote(k) end
	if type(k) == 'number' then return quote(formatNumber(k)) end
	error('a table key of type ' .. type(k) .. ' cannot be written as JSON', 0)
end

local function encodeTable(t, depth, seen, out)
	if depth > M.MAX_ENCODE_DEPTH then error('value is nested deeper than ' .. M.MAX_ENCODE_DEPTH .. ' levels', 0) end
	if seen[t] then error('value contains a reference cycle', 0) end
	seen[t] = true
	local isArray, n = arrayLength(t)
	if isArray and n == 0 and getmetatable(t) == OBJECT then isArray = false end
	if isArray then
		out[#out + 1] = '['
		for i = 1, n do
			if i > 1 then out[#out + 1] = ',' end
			encodeValue(t[i], depth, seen, out)
		end
		out[#out + 1] = ']'
	else
		out[#out + 1] = '{'
		local first = true
		for k, v in pairs(t) do
			if not first then out[#out + 1] = ',' end
			first = false
			out[#out + 1] = encodeKey(k)
			out[#out + 1] = ':'
			encodeValue(v, depth, seen, out)
		end
		out[#out + 1] = '}'
	end
	seen[t] = nil
end

encodeValue = function(value, depth, seen, out)
	local kind = type(value)
	if value == nil or value == M.null then
		out[#out + 1] = 'null'
	elseif kind == 'string' then
		out[#out + 1] = quote(value)
	elseif kind == 'number' then
		out[#out + 1] = formatNumber(value)
	elseif kind == 'boolean' then
		out[#out + 1] = value and 'true' or 'false'
	elseif kind == 'table' then
		encodeTable(value, depth + 1, seen, out)
	else
		error('a value of type ' .. kind .. ' cannot be written as JSON', 0)
	end
end

--- Encode a Lua value; returns the JSON text, or nil and a reason.
function M.encode(value)
	decimalPoint = string.match(tostring(0.5), '0(.)5') or '.'
	local out = {}
	local ok, err = pcall(encodeValue, value, 0, {}, out)
	if not ok then return nil, tostring(err) end
	return concat(out)
end

-- ------------------------------------------------------------------ decode

-- A decode error: position in the text and what was wrong (caught in decode()).
local function fail(pos, what)
	error({ message = what .. ' at character ' .. pos }, 0)
end

local function utf8(cp)
	if cp < 0x80 then return char(cp) end
	if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
	if cp < 0x10000 then
		return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
	end
	return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40, 0x80 + floor(cp / 0x40) % 0x40,
		0x80 + cp % 0x40)
end

local UNESCAPE = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }
local REPLACEMENT = 0xFFFD

local function skip(text, pos)
	local _, last = find(text, '^[ \t\r\n]*', pos)
	return last + 1
end

local function hex4(text, pos)
	local digits = sub(text, pos, pos + 3)
	if not find(digits, '^%x%x%x%x$') then fail(pos, 'a \\u escape needs four hex digits') end
	return tonumber(digits, 16)
end

-- The string that starts with the quote at `pos`; returns it and the position after it.
local function readString(text, pos)
	local parts, i = {}, pos + 1
	while true do
		local at = find(text, '["\\%z\1-\31]', i)
		if not at then fail(pos, 'unterminated string') end
		if at > i then parts[#parts + 1] = sub(text, i, at - 1) end
		local c = sub(text, at, at)
		if c == '"' then return concat(parts), at + 1 end
		if c ~= '\\' then fail(at, 'unescaped control character in a string') end
		local e = sub(text, at + 1, at + 1)
		if e == 'u' then
			local cp = hex4(text, at + 2)
			i = at + 6
			if cp >= 0xD800 and cp <= 0xDBFF then
				local low = sub(text, i, i + 1) == '\\u' and hex4(text, i + 2) or nil
				if low and low >= 0xDC00 and low <= 0xDFFF then
					cp = 0x10000 + (cp - 0xD800) * 0x400 + (low - 0xDC00)
					i = i + 6
				else
					cp = REPLACEMENT
				end
			elseif cp >= 0xDC00 and cp <= 0xDFFF then
				cp = REPLACEMENT
			end
			parts[#parts + 1] = utf8(cp)
		elseif UNESCAPE[e] then
			parts[#parts + 1] = UNESCAPE[e]
			i = at + 2
		else
			fail(at, 'invalid escape in a string')
		end
	end
end

local function readNumber(text, pos)
	local _, last = find(text, '^-?%d+', pos)
	if not last then fail(pos, 'unexpected character') end
	local digits = sub(text, pos, last)
	if find(digits, '^-?0%d') then fail(pos, 'a number with a leading zero') end
	local _, fraction = find(text, '^%.%d+', last + 1)
	if fraction then
		last = fraction
	elseif sub(text, last + 1, last + 1) == '.' then
		fail(last + 1, 'a number without digits after its point')
	end
	local _, exponent = find(text, '^[eE][-+]?%d+', last + 1)
	if exponent then
		last = exponent
	elseif find(text, '^[eE]', last + 1) then
		fail(last + 1, 'a number without digits in its exponent')
	end
	local source = sub(text, pos, last)
	local value = tonumber(source)
	if value == nil and decimalPoint ~= '.' then value = tonumber((gsub(source, '%.', decimalPoint))) end
	if value == nil then fail(pos, 'unreadable number') end
	return value, last + 1
end

local readValue

local function readArray(text, pos, depth)
	local result, n = setmetatable({}, ARRAY), 0
	pos = skip(text, pos + 1)
	if sub(text, pos, pos) == ']' then return result, pos + 1 end
	while true do
		local value
		value, pos = readValue(text, pos, depth)
		n = n + 1
		result[n] = value
		pos = skip(text, pos)
		local c = sub(text, pos, pos)
		if c == ']' then return result, pos + 1 end
		if c ~= ',' then fail(pos, "expected ',' or ']' in an array") end
		pos = skip(text, pos + 1)
	end
end

local function readObject(text, pos, depth)
	local result = setmetatable({}, OBJECT)
	pos = skip(text, pos + 1)
	if sub(text, pos, pos) == '}' then return result, pos + 1 end
	while true do
		if sub(text, pos, pos) ~= '"' then fail(pos, 'expected a string key in an object') end
		local key, value
		key, pos = readString(text, pos)
		pos = skip(text, pos)
		if sub(text, pos, pos) ~= ':' then fail(pos, "expected ':' after an object key") end
		value, pos = readValue(text, skip(text, pos + 1), depth)
		result[key] = value
		pos = skip(text, pos)
		local c = sub(text, pos, pos)
		if c == '}' then return result, pos + 1 end
		if c ~= ',' then fail(pos, "expected ',' or '}' in an object") end
		pos = skip(text, pos + 1)
	end
end

local LITERALS = { t = { 'true', true }, f = { 'false', false }, n = { 'null', nil } }

readValue = function(text, pos, depth)
	local c = sub(text, pos, pos)
	if c == '{' or c == '[' then
		if depth >= M.MAX_DECODE_DEPTH then fail(pos, 'nested deeper than ' .. M.MAX_DECODE_DEPTH .. ' levels') end
		if c == '{' then return readObject(text, pos, depth + 1) end
		return readArray(text, pos, depth + 1)
	elseif c == '"' then
		return readString(text, pos)
	elseif c == '' then
		fail(pos, 'unexpected end of text')
	end
	local literal = LITERALS[c]
	if literal then
		local word = literal[1]
		if sub(text, pos, pos + #word - 1) ~= word then fail(pos, 'unexpected character') end
		return literal[2], pos + #word
	end
	return readNumber(text, pos)
end

--- Decode JSON text; returns the value, or nil and a reason. JSON null becomes nil.
function M.decode(text)
	if type(text) ~= 'string' or text == '' then return nil, 'empty body' end
	decimalPoint = string.match(tostring(0.5), '0(.)5') or '.'
	local ok, value, pos = pcall(function()
		local v, after = readValue(text, skip(text, 1), 0)
		return v, skip(text, after)
	end)
	if not ok then
		if type(value) == 'table' then return nil, 'invalid JSON: ' .. value.message end
		return nil, 'invalid JSON: ' .. tostring(value)
	end
	if pos <= #text then return nil, 'invalid JSON: unexpected text after the value at character ' .. pos end
	return value
end

return M
