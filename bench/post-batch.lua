-- wrk: POST /enqueue/batch with BENCH_BATCH (default 100) new placeIds each time, unique across
-- runs too (BENCH_RUN in the environment names the run), as post-run.lua for single requests.
local counter = 0
local thread_id = 0
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local size = tonumber(os.getenv("BENCH_BATCH") or "100")
function setup(thread)
    thread_id = thread_id + 1
    thread:set("prefix", "bench-" .. run .. "-" .. thread_id .. "-")
end
function request()
    local ids = {}
    for i = 1, size do
        counter = counter + 1
        ids[i] = '"' .. prefix .. counter .. '"'
    end
    return wrk.format("POST", "/enqueue/batch", {["Content-Type"] = "application/json"},
        '{"placeIds":[' .. table.concat(ids, ",") .. ']}')
end
function done(summary, latency, requests)
    local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
        summary.errors.status + summary.errors.timeout
    io.write(string.format("RESULT %.1f %.3f %.3f %d\n",
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
