-- wrk script: IP queries for random addresses among the loaded identities.
-- env: TOKEN (bearer token), COUNT (identities loaded as 10.x.y.z from index 0), DELAY_MS
-- (pause per request per connection, to run below peak for latency).
local token = os.getenv("TOKEN")
local count = tonumber(os.getenv("COUNT") or "100000")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
math.randomseed(os.time())

request = function()
  local i = math.random(0, count - 1)
  local ip = string.format("10.%d.%d.%d", 100 + math.floor(i / 65536), math.floor(i / 256) % 256, i % 256)
  return wrk.format("GET", "/api/v1/identities/" .. ip, { ["Authorization"] = "Bearer " .. token })
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f requests=%d errors=%d rps=%.0f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6)))
end
