--[[
LrColor shim: LrColor(r, g, b[, a]) or LrColor('red') returns a plain table describing the colour.
A stand-in for tests; not Adobe code.
]]
return setmetatable({}, { __call = function(_, r, g, b, a)
	if type(r) == "string" then return { name = r } end
	return { red = r, green = g, blue = b, alpha = a or 1 }
end })
