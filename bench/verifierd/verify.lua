-- wrk script for scripts/bench-verifierd.sh: every request POSTs one body
-- (a real quote, or a JSON request made from it) to cvm-verifierd and every
-- answer is checked. Usage:
--
--   wrk -t1 -c8 -d60s -s bench/verifierd/verify.lua http://127.0.0.1:PORT \
--       -- PATH BODY_FILE CONTENT_TYPE KEY
--
--   PATH          the route, e.g. /cvmkit/v1/verify or /verify
--   BODY_FILE     the request body, sent as is (binary is fine)
--   CONTENT_TYPE  e.g. application/octet-stream or application/json
--   KEY           the verdict field that must be true, e.g. ok or is_valid
--
-- An answer counts as good only when its status is 200, its body has
-- "KEY": true and nowhere "KEY": false (a false anywhere, nested or not,
-- counts against it: the check errs towards reporting an error). Anything
-- else is an error: bad_status (not 200) or bad_verdict (200 without the
-- verdict). done() prints one JSON line (prefixed "wrk-result: ") with the
-- rate of good answers, wrk's latency percentiles and every error count,
-- and the first bad answer seen (status and up to 300 bytes of body).

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

-- Globals, not locals: done() reads them from each thread with thread:get().
good, bad_status, bad_verdict = 0, 0, 0
first_bad = ""
local quoted_key

-- verdict is true when body has "KEY": true and no "KEY": false. Plain
-- find and an anchored match: a Lua pattern searched over the whole body
-- cost wrk ~15 us of CPU per answer, this ~1-2 us (measured; wrk shares
-- the CPUs with the service). A "KEY" inside a JSON string cannot match:
-- there its quotes are escaped.
local function verdict(body)
	local pos, seen = 1, false
	while true do
		local s, e = body:find(quoted_key, pos, true)
		if not s then
			return seen
		end
		local v = body:match("^%s*:%s*(%a+)", e + 1)
		if v == "false" then
			return false
		end
		seen = seen or v == "true"
		pos = e + 1
	end
end

local function read_file(path)
	local f, err = io.open(path, "rb")
	if not f then
		error("verify.lua: cannot read the body file: " .. tostring(err))
	end
	local data = f:read("*a")
	f:close()
	return data
end

function init(args)
	if #args ~= 4 then
		error("verify.lua: usage: -- PATH BODY_FILE CONTENT_TYPE KEY (got " .. #args .. " arguments)")
	end
	local path, body, ctype, key = args[1], read_file(args[2]), args[3], args[4]
	if #body == 0 then
		error("verify.lua: the body file " .. args[2] .. " is empty")
	end
	if not key:match("^[%w_]+$") then
		error("verify.lua: KEY must be a plain JSON field name (got " .. key .. ")")
	end
	quoted_key = '"' .. key .. '"'
	local req = wrk.format("POST", path, { ["Content-Type"] = ctype }, body)
	request = function()
		return req
	end
end

-- body may be nil when an answer has none (wrk passes what it parsed).
function response(status, headers, body)
	body = body or ""
	if status ~= 200 then
		bad_status = bad_status + 1
	elseif verdict(body) then
		good = good + 1
		return
	else
		bad_verdict = bad_verdict + 1
	end
	if first_bad == "" then
		first_bad = status .. " " .. body:sub(1, 300)
	end
end

-- A JSON string literal for s (quotes, backslashes and control bytes escaped).
local function jstr(s)
	return '"'
		.. s:gsub('[%c"\\\128-\255]', function(c)
			return string.format("\\u%04x", c:byte())
		end)
		.. '"'
end

function done(summary, latency, requests)
	local g, bs, bv, fb = 0, 0, 0, ""
	for _, t in ipairs(threads) do
		g = g + t:get("good")
		bs = bs + t:get("bad_status")
		bv = bv + t:get("bad_verdict")
		if fb == "" then
			fb = t:get("first_bad")
		end
	end
	local e = summary.errors
	local socket = e.connect + e.read + e.write + e.timeout
	local seconds = summary.duration / 1e6
	io.write(
		string.format(
			'wrk-result: {"requests": %d, "good": %d, "seconds": %.3f, "per_second": %.1f, '
				.. '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, '
				.. '"bad_status": %d, "bad_verdict": %d, "socket_errors": %d, "timeouts": %d, '
				.. '"errors": %d, "threads": %d, "first_bad": %s}\n',
			summary.requests,
			g,
			seconds,
			seconds > 0 and g / seconds or 0,
			latency:percentile(50) / 1000,
			latency:percentile(90) / 1000,
			latency:percentile(99) / 1000,
			latency.max / 1000,
			latency.mean / 1000,
			bs,
			bv,
			socket,
			e.timeout,
			bs + bv + socket,
			#threads,
			jstr(fb)
		)
	)
end
