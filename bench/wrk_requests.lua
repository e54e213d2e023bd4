-- wrk script for bench/wrk.py: replay raw HTTP requests from a file, in order, one per call.
-- The file (first argument after `--`) holds complete requests, each followed by "\n\n".
-- At the end it prints one JSON line with the counts and latency percentiles (microseconds).

local requests = {}
local next_index = 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*all")
  file:close()
  local position = 1
  while true do
    local first, last = string.find(data, "\n\n", position, true)
    if not first then break end
    requests[#requests + 1] = string.sub(data, position, first - 1)
    position = last + 1
  end
  assert(#requests > 0, "no requests in " .. args[1])
end

function request()
  next_index = next_index + 1
  if next_index > #requests then next_index = 1 end
  return requests[next_index]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
