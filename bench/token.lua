-- wrk script: POST one token request, the same form every time.
-- WRK_BODY: the urlencoded form; WRK_AUTH (optional): an Authorization header.
-- WRK_METHOD=GET: a GET without a body instead.
-- A response other than 200 counts as an error (non-2xx in wrk's terms).
if os.getenv("WRK_METHOD") == "GET" then
  wrk.method = "GET"
else
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = os.getenv("WRK_BODY")
end
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- The first few refusals of each thread go to stderr, so errors have a reason.
local shown = 0
response = function(status, headers, body)
  if status ~= 200 and shown < 3 then
    shown = shown + 1
    io.stderr:write(string.format("HTTP %d %s\n", status, body))
  end
end

done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  requests %d  errors %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
