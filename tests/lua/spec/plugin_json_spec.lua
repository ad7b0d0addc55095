-- Json: the plug-in's own codec, the traps of Lua tables (empty table, `n`); plugin_json_oracle_spec.lua checks it against dkjson
local Json = require 'Json'

describe("Json", function()
	it("round-trips nested objects and arrays", function()
		local text = assert(Json.encode({ a = 1, list = { 1, 2, 3 }, nested = { b = 'x' } }))
		local back = Json.decode(text)
		assert.are.same({ a = 1, list = { 1, 2, 3 }, nested = { b = 'x' } }, back)
	end)

	it("writes an empty plain table as [] and a Json.object() as {}", function()
		assert.are.equal('[]', Json.encode({}))
		assert.are.equal('{}', Json.encode(Json.object()))
		assert.are.equal('{"r":{}}', Json.encode({ r = Json.object() }))
	end)

	it("writes a table whose only key is n as an object, not an array", function()
		assert.are.equal('{"n":1}', Json.encode({ n = 1 }))
		assert.are.same({ n = 3 }, Json.decode(Json.encode({ n = 3 })))
		assert.are.same({ n = 2, m = 'x' }, Json.decode(Json.encode({ n = 2, m = 'x' })))
		assert.are.same({ inner = { n = 5 } }, Json.decode(Json.encode({ inner = { n = 5 } })))
	end)

	it("does not modify the caller's tables", function()
		local t = { n = 1 }
		Json.encode(t)
		assert.is_nil(getmetatable(t))
	end)

	it("keeps an empty object decoded from JSON an object when encoded again", function()
		assert.are.equal('{"a":{}}', Json.encode(Json.decode('{"a":{}}')))
	end)

	it("refuses cycles and too deep nesting with a reason", function()
		local t = {}
		t.self = t
		local text, err = Json.encode(t)
		assert.is_nil(text)
		assert.matches('cycle', err)
		local deep = {}
		local cur = deep
		for _ = 1, 40 do cur.x = {}; cur = cur.x end
		text, err = Json.encode(deep)
		assert.is_nil(text)
		assert.matches('nested', err)
	end)

	it("decodes null to nil and reports bad JSON", function()
		assert.are.same({ a = 1 }, Json.decode('{"a":1,"b":null}'))
		local value, err = Json.decode('{"a":')
		assert.is_nil(value)
		assert.is_string(err)
		assert.is_nil((Json.decode('')))
		assert.is_nil((Json.decode(nil)))
	end)

	it("keeps UTF-8 text intact", function()
		local s = 'caf\195\169 \226\130\172'
		assert.are.equal(s, Json.decode(Json.encode({ s = s })).s)
	end)
end)
