-- wrk: POST /enqueue with a new placeId each time, unique across runs too (BENCH_RUN in the
-- environment names the run): the spool keeps one record per job id, and a job id it already
-- holds would be answered without a write.
local counter = 0
local thread_id = 0
local run = os.getenv("BENCH_RUN") or tostring(os.time())
function setup(thread)
    thread_id = thread_id + 1
    thread:set("prefix", "bench-" .. run .. "-" .. thread_id .. "-")
end
function request()
    counter = counter + 1
    return wrk.format("POST", "/enqueue", {["Content-Type"] = "application/json"},
        '{"placeId":"' .. prefix .. counter .. '"}')
end
function done(summary, latency, requests)
    local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
        summary.errors.status + summary.errors.timeout
    io.write(string.format("RESULT %.1f %.3f %.3f %d\n",
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
