-- Envelope, Transport, Config: what goes on the wire and how answers are classified
local Config = require 'Config'
local Envelope = require 'Envelope'
local Json = require 'Json'
local Transport = require 'Transport'

describe("Envelope", function()
	it("builds the seed's handshake, register and subscribe", function()
		assert.are.same({ client_type = 'lightroom', protocol_version = '1.0' }, Envelope.handshake())
		assert.are.same({ type = 'register', client_type = 'lightroom', client_name = 'LR', plugin_version = '1.2.3' },
			Envelope.register('LR', '1.2.3'))
		local subscribe = Json.decode(Json.encode(Envelope.subscribe({ 'jobs', 'system' })))
		assert.are.same({ type = 'subscribe', channels = { 'jobs', 'system' } }, subscribe)
	end)

	it("sends job_complete's empty result and error's empty details as {}", function()
		local text = Json.encode(Envelope.jobComplete('j1', true, {}))
		assert.matches('"result":{}', text, 1, true)
		text = Json.encode(Envelope.error('processing_error', 'Failed', nil))
		assert.matches('"details":{}', text, 1, true)
		local details = { photo_id = 'p1' }
		assert.are.same({ photo_id = 'p1' }, Json.decode(Json.encode(Envelope.error('e', 'm', details))).details)
		assert.is_nil(getmetatable(details))
	end)

	it("builds the seed's job_progress from (job_id, stage, progress, message)", function()
		assert.are.same({ type = 'job_progress', job_id = 'job123', stage = 'processing', progress = 50, message = 'Applying' },
			Envelope.jobProgress('job123', 'processing', 50, 'Applying'))
	end)

	it("encodes the poll query, ack included", function()
		assert.are.equal('/ws/poll?client_id=a%20b%2Fc&wait=25&ack=7', Envelope.pollPath('a b/c', 25, 7))
		assert.are.equal('/ws/poll?client_id=x&wait=0.5&ack=0', Envelope.pollPath('x', 0.5, nil))
	end)

	it("says why a message cannot be sent", function()
		assert.is_nil(Envelope.invalid({ type = 'custom_event' }))
		assert.is_string(Envelope.invalid('text'))
		assert.is_string(Envelope.invalid({}))
		assert.is_string(Envelope.invalid({ type = '1bad' }))
	end)
end)

describe("Transport.classify", function()
	local function json(status, body) return Json.encode(body), { status = status } end

	it("no status means no answer: network, with the SDK's error code", function()
		local r = Transport.classify(nil, { error = { errorCode = 'cannotConnectToHost' } })
		assert.are.same({ ok = false, kind = 'network', reason = 'cannotConnectToHost' }, r)
		assert.are.equal('network', Transport.classify(nil, nil).kind)
	end)

	it("2xx with success is ok; success=false is refused", function()
		local r = Transport.classify(json(200, { success = true, client_id = 'c' }))
		assert.is_true(r.ok)
		assert.are.equal('c', r.data.client_id)
		assert.are.equal('refused', Transport.classify(json(200, { success = false, error = 'no' })).kind)
	end)

	it("404 unknown_client means handshake again", function()
		local r = Transport.classify(json(404, { success = false, error = 'unknown client', code = 'unknown_client' }))
		assert.are.equal('unknown_client', r.kind)
		assert.are.equal('refused', Transport.classify(json(404, { success = false, error = 'x', code = 'not_found' })).kind)
	end)

	it("503, 429, 5xx and foreign answers are retried", function()
		assert.are.equal('retry', Transport.classify(json(503, { success = false, code = 'hub_unavailable', error = 'x' })).kind)
		assert.are.equal('retry', Transport.classify(json(429, { success = false, code = 'too_many_clients', error = 'x' })).kind)
		assert.are.equal('retry', Transport.classify('<html>', { status = 200 }).kind)
		assert.are.equal('retry', Transport.classify('<html>', { status = 404 }).kind)
		assert.are.equal('refused', Transport.classify(json(400, { success = false, code = 'bad_request', error = 'x' })).kind)
	end)

	-- The bridge's one catalogue of endings (services/endings.py), as `python -m services.endings` writes it.
	it("does for every HTTP ending of the bridge's catalogue what its action says", function()
		local file = assert(io.open('spec/support/endings.json', 'r'))
		local rows = Json.decode(file:read('*a'))
		file:close()
		local kinds = { retry = 'retry', rehandshake = 'unknown_client', stop = 'refused' }
		local checked = 0
		for _, row in ipairs(rows) do
			if row.http_status then
				local r = Transport.classify(json(row.http_status, { success = false, code = row.code, error = row.reason }))
				assert.are.equal(kinds[row.action], r.kind, row.code)
				checked = checked + 1
			end
		end
		assert.is_true(checked >= 10)
	end)
end)

describe("Config", function()
	it("has the seed's names and defaults", function()
		local c = Config.resolve(nil, nil)
		assert.are.equal('ws://127.0.0.1:5100/ws', c.WS_URL)
		assert.are.equal('http://127.0.0.1:5100', c.HTTP_FALLBACK_URL)
		assert.are.equal(5, c.RECONNECT_DELAY)
		assert.are.equal(30, c.PING_INTERVAL)
		assert.are.equal(10, c.MAX_RECONNECT_ATTEMPTS)
		assert.are.same({ 'jobs', 'system', 'photos' }, c.CHANNELS)
	end)

	it("polls longer than the gateway's hold plus its hub margin", function()
		local c = Config.resolve(nil, nil)
		assert.are.equal(25, c.POLL_WAIT)
		assert.is_true(c.POLL_TIMEOUT > 25 + 3)
	end)

	it("takes preferences, then init options; refuses bad values with a warning", function()
		local prefs = { serverUrl = ' http://localhost:6000/ ', channels = 'jobs, photos', reconnectDelay = '2', pingInterval = 'x' }
		local c, warnings = Config.resolve(prefs, { PING_INTERVAL = 7, HTTP_FALLBACK_URL = 'ftp://nope' })
		assert.are.equal('http://localhost:6000', c.HTTP_FALLBACK_URL)
		assert.are.equal('ws://localhost:6000/ws', c.WS_URL)
		assert.are.same({ 'jobs', 'photos' }, c.CHANNELS)
		assert.are.equal(2, c.RECONNECT_DELAY)
		assert.are.equal(7, c.PING_INTERVAL)
		assert.are.equal(2, #warnings)
	end)
end)
