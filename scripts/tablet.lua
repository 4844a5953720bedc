-- wrk script for scripts/bench-tablets: each request records a dose for the next resident's
-- paper (OCR line, date of birth), every thread with its own share of the papers.
-- Arguments: TOKEN PAPERS_FILE
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  token = args[1]
  papers = {}
  for line in io.lines(args[2]) do
    papers[#papers + 1] = line
  end
  step = 2 -- wrk -t2
  index = id + 1
  non201 = 0
end

function request()
  local paper = papers[index]
  index = index + step
  if index > #papers then index = id + 1 end
  local ocr, birth = paper:match("([^,]+),(.+)")
  local body = string.format(
    '{"ocr_line":"%s","birth_date":"%s","product":"comirnaty","lot":"FA1234",' ..
    '"date":"2021-06-01","idempotency_key":"%s"}', ocr, birth, ocr)
  return wrk.format("POST", nil,
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status ~= 201 then non201 = non201 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non201") end
  io.write(string.format("records acknowledged (201): %d, other answers: %d\n",
    summary.requests - bad, bad))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
