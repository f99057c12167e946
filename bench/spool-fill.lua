-- wrk (one thread): POST /enqueue of BENCH_LIMIT jobs named BENCH_PREFIX1, BENCH_PREFIX2, …,
-- then GET /health only: a spool filled with exactly that many jobs, however long wrk runs.
-- wrk calls request() once before the run, to see whether it varies: that one is not sent, so
-- the numbers sent are 2 to BENCH_LIMIT + 1.
local counter = 0
local prefix = os.getenv("BENCH_PREFIX") or "fill-"
local limit = tonumber(os.getenv("BENCH_LIMIT") or "1000")
function request()
    counter = counter + 1
    if counter > limit + 1 then
        return wrk.format("GET", "/health")
    end
    return wrk.format("POST", "/enqueue", {["Content-Type"] = "application/json"},
        '{"placeId":"' .. prefix .. counter .. '"}')
end
