-- Json against dkjson (Debian's lua-dkjson) as an oracle: the plug-in's own codec writes and
-- reads what dkjson writes and reads, on chosen cases and on random documents. dkjson is loaded
-- from the system for this spec only; the plug-in cannot see it (spec/support/helper.lua).
local Json = require 'Json'
local dkjson = require('lr_shim.system')('dkjson')

local function isNegativeZero(x) return x == 0 and 1 / x < 0 end
-- computed: Lua 5.1 merges the constants 0 and -0.0 of one function into one
local NEG_ZERO = -tonumber('0')

-- Deep equality of decoded values (metatables ignored; -0 told apart from 0).
local function same(a, b, path)
	path = path or '$'
	if type(a) ~= type(b) then return false, path .. ': ' .. type(a) .. ' vs ' .. type(b) end
	if type(a) == 'number' then
		if a ~= b or isNegativeZero(a) ~= isNegativeZero(b) then
			return false, path .. ': ' .. string.format('%.17g', a) .. ' vs ' .. string.format('%.17g', b)
		end
		return true
	end
	if type(a) ~= 'table' then
		if a ~= b then return false, path .. ': ' .. tostring(a) .. ' vs ' .. tostring(b) end
		return true
	end
	for k, v in pairs(a) do
		local ok, why = same(v, b[k], path .. '.' .. tostring(k))
		if not ok then return false, why end
	end
	for k in pairs(b) do
		if a[k] == nil then return false, path .. '.' .. tostring(k) .. ': missing' end
	end
	return true
end

local function assertSame(expected, actual, context)
	local ok, why = same(expected, actual)
	assert(ok, (context or '') .. ' ' .. tostring(why))
end

local function oracleDecode(text)
	local value, _, err = dkjson.decode(text, 1, nil)
	assert(err == nil, 'dkjson could not read ' .. text .. ': ' .. tostring(err))
	return value
end

-- ------------------------------------------------------------ a random document generator

local PIECES = {
	'a', 'Z', '0', ' ', 'job', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\0', '\1', '\31', '\127',
	'caf\195\169', '\226\130\172', '\240\159\152\128', -- é, €, U+1F600 (4 bytes)
	'\226\128\168', '\226\128\169', '\239\187\191', '\194\173', -- U+2028, U+2029, BOM, soft hyphen
	'\228\184\173\230\150\135', '<script>', 'x=1&y=2',
}

local function randomString(random)
	local parts = {}
	for i = 1, random(0, 6) do parts[i] = PIECES[random(#PIECES)] end
	return table.concat(parts)
end

-- Numbers dkjson writes exactly: at most 14 significant digits, and no integer from 1e14 to
-- 2^53 (Json writes those as digits, dkjson as 1.2345e+14; both read back the same number).
local randomNumber

local function anyNumber(random)
	local kind = random(5)
	if kind == 1 then return random(-1000000, 1000000) end
	if kind == 2 then return random(-99999, 99999) / 2 ^ random(1, 12) end
	if kind == 3 then return tonumber(string.format('%.9g', (random() - 0.5) * 10 ^ random(-30, 30))) end
	if kind == 4 then return ({ 0, NEG_ZERO, 1e300, -1e-300, 2 ^ 40, 0.1, 1e21 })[random(7)] end
	return tonumber(random(0, 99999999) .. 'e' .. random(-8, 8))
end

randomNumber = function(random)
	local x = anyNumber(random)
	if x == math.floor(x) and math.abs(x) >= 1e14 and math.abs(x) < 2 ^ 53 then return random(-1000, 1000) end
	return x
end

local function randomValue(random, depth)
	local kind = random(depth >= 5 and 4 or 7)
	if kind == 1 then return randomString(random) end
	if kind == 2 then return randomNumber(random) end
	if kind == 3 then return random(2) == 1 end
	if kind == 4 then return randomNumber(random) end
	if kind == 5 or kind == 6 then
		local t = {}
		for i = 1, random(0, 5) do t[i] = randomValue(random, depth + 1) end
		return t
	end
	local t = Json.object()
	for _ = 1, random(0, 5) do t[randomString(random) .. 'k'] = randomValue(random, depth + 1) end
	return t
end

describe("Json against dkjson", function()
	it("encodes random documents to dkjson's text, and each reads the other's", function()
		for seed = 1, 400 do
			math.randomseed(seed)
			local doc = randomValue(math.random, 0)
			local ours, err = Json.encode(doc)
			assert(ours, 'seed ' .. seed .. ': ' .. tostring(err))
			local theirs = dkjson.encode(doc)
			assert.are.equal(theirs, ours, 'seed ' .. seed)
			assertSame(doc, Json.decode(theirs), 'seed ' .. seed .. ' (ours reading dkjson)')
			assertSame(doc, oracleDecode(ours), 'seed ' .. seed .. ' (dkjson reading ours)')
			assertSame(oracleDecode(theirs), Json.decode(theirs), 'seed ' .. seed)
		end
	end)

	it("reads \\u escapes and surrogate pairs as dkjson does", function()
		local cases = {
			'"\\u0041\\u00e9\\u00E9\\u20ac\\u4e2d"', '"\\ud83d\\ude00"', '"\\uD83D\\uDE00 and \\ud834\\udd1e"',
			'"\\u0000\\u001f\\u007f"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\u2028\\u2029\\ufeff"', '"\\udbff\\udfff"',
		}
		for _, text in ipairs(cases) do
			assert.are.equal(oracleDecode(text), Json.decode(text), text)
		end
		assert.are.equal('A\195\169\195\169\226\130\172\228\184\173', Json.decode('"\\u0041\\u00e9\\u00E9\\u20ac\\u4e2d"'))
		assert.are.equal('\240\159\152\128', Json.decode('"\\ud83d\\ude00"'))
		assert.are.equal('\244\143\191\191', Json.decode('"\\udbff\\udfff"')) -- U+10FFFF
	end)

	it("writes a lone surrogate as U+FFFD (dkjson writes invalid UTF-8)", function()
		assert.are.equal('a\239\191\189b', Json.decode('"a\\ud800b"'))
		assert.are.equal('\239\191\189', Json.decode('"\\udc00"'))
		assert.are.equal('\239\191\189\239\191\189', Json.decode('"\\ud800\\ud800"'))
		assert.are.equal('\239\191\189A', Json.decode('"\\ud800\\u0041"'))
	end)

	it("writes every ASCII control character escaped, as dkjson does, and reads it back", function()
		local bytes = {}
		for b = 0, 127 do bytes[#bytes + 1] = string.char(b) end
		local s = table.concat(bytes)
		local text = Json.encode(s)
		assert.are.equal(dkjson.encode(s), text)
		assert.is_nil(text:find('[%z\1-\31\127]'), 'a raw control character in ' .. text)
		assert.are.equal(s, Json.decode(text))
		assert.are.equal('"\\u0000\\u001f\\n\\t\\"\\\\/"', Json.encode('\0\31\n\t"\\/'))
	end)

	it("round-trips numbers exactly, where dkjson keeps only 14 digits", function()
		local values = { 0, NEG_ZERO, 1, -1, 0.1, 0.1 + 0.2, 1 / 3, 2 ^ 53, -2 ^ 53, 2 ^ 53 + 2, 2 ^ 63, 123456789012345,
			9007199254740991, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 1e21, 1e-7,
			123.456, -987654.321e-5, 6.02214076e23 }
		math.randomseed(7)
		for _ = 1, 500 do values[#values + 1] = (math.random() - 0.5) * 10 ^ math.random(-300, 300) end
		for _ = 1, 200 do values[#values + 1] = math.random(-2 ^ 31, 2 ^ 31) * 2 ^ math.random(0, 21) end
		for _, x in ipairs(values) do
			local text = Json.encode({ x })
			assertSame({ x }, Json.decode(text), text)
			assertSame({ x }, oracleDecode(text), text .. ' (read by dkjson)')
		end
		assert.are.equal('[9007199254740991,-0,0.30000000000000004,1e+300]',
			Json.encode({ 9007199254740991, NEG_ZERO, 0.1 + 0.2, 1e300 }))
		assert.are.equal('[null,null,null]', Json.encode({ 0 / 0, math.huge, -math.huge })) -- as dkjson and JSON.stringify
	end)

	it("reads integers, fractions and exponents as dkjson does", function()
		for _, text in ipairs({ '0', '-0', '7', '-12', '1.5', '-0.25', '1e3', '1E3', '1e+3', '1e-3', '-1.5E+10', '0e0',
			'123456789012345678901234567890', '1e400', '-1e400', '2.5e-320', '0.1' }) do
			assertSame(oracleDecode(text), Json.decode(text), text)
		end
		assert.is_true(isNegativeZero(Json.decode('-0')))
		assert.is_true(isNegativeZero(Json.decode('-0.0')))
	end)

	it("refuses nesting deeper than MAX_DECODE_DEPTH with an error, however deep", function()
		local max = Json.MAX_DECODE_DEPTH
		local ok = string.rep('[', max) .. string.rep(']', max)
		assert.is_table(Json.decode(ok))
		for _, depth in ipairs({ max + 1, 1000, 200000 }) do
			for _, open in ipairs({ '[', '{"a":' }) do
				local text = string.rep(open, depth) .. '1' .. string.rep(open == '[' and ']' or '}', depth)
				local value, err = Json.decode(text)
				assert.is_nil(value)
				assert.matches('nested deeper than ' .. max, err, 1, true)
			end
		end
		-- the encoder: a clear error too
		local deep = {}
		local cur = deep
		for _ = 1, 100000 do cur[1] = {}; cur = cur[1] end
		local text, err = Json.encode(deep)
		assert.is_nil(text)
		assert.matches('nested deeper than', err, 1, true)
	end)

	it("refuses invalid JSON with a reason (dkjson accepts several of these)", function()
		local bad = { '', ' ', '{', '}', '[1,]', '[,1]', '{"a":1,}', '[1 2]', '{"a" 1}', '{"a":}', '{a:1}', "['a']",
			'01', '-01', '1.', '.5', '1e', '1e+', '-', '+1', 'tru', 'nul', 'nulll', 'NaN', 'Infinity', '"\\x"',
			'"\\u12"', '"\\u12g4"', '"abc', '"a\nb"', '"tab\there"', '[1]x', '// c\n1', '/* c */1', '1 2', '{"a":1}}',
			'\239\187\1911', '[1,2', '{"a":1', '"\\' }
		for _, text in ipairs(bad) do
			local value, err = Json.decode(text)
			assert.is_nil(value, text)
			assert.is_string(err, text)
		end
		assert.matches('character 4', select(2, Json.decode('[1,]')), 1, true)
		assert.are.equal('empty body', select(2, Json.decode(nil)))
	end)

	it("refuses values JSON cannot hold, with a reason", function()
		local cyclic = {}
		cyclic[1] = cyclic
		for _, value in ipairs({ { f = print }, { [true] = 1 }, cyclic, { co = coroutine.create(function() end) } }) do
			local text, err = Json.encode(value)
			assert.is_nil(text)
			assert.is_string(err)
		end
	end)

	it("handles Lua tables as the plug-in needs them", function()
		assert.are.equal('[]', Json.encode({}))
		assert.are.equal('{}', Json.encode(Json.object()))
		assert.are.equal('{"n":3}', Json.encode({ n = 3 }))
		assert.are.equal('[1,null,3]', Json.encode({ 1, Json.null, 3 }))
		assert.are.equal('[1,null,3]', Json.encode({ [1] = 1, [3] = 3 })) -- a hole, as dkjson writes it
		assert.are.equal('{"20":1}', Json.encode({ [20] = 1 })) -- too sparse for an array: an object, as dkjson
		assert.are.equal(dkjson.encode({ [20] = 1 }), Json.encode({ [20] = 1 }))
		assert.are.equal('{"1.5":true}', Json.encode({ [1.5] = true }))
		assert.are.equal('{"a":{}}', Json.encode(Json.decode('{"a":{}}')))
		assert.are.equal('{"b":[]}', Json.encode(Json.decode('{"b":[]}')))
		local decoded = Json.decode('{"list":[1,null,3],"gone":null}')
		assert.are.equal(3, decoded.list[3])
		assert.is_nil(decoded.list[2])
		assert.is_nil(decoded.gone)
		assert.are.equal('null', Json.encode(nil))
	end)
end)
