-- wrk script for Ops/bench-gateway.sh: every request carries new no-op jobs (a unique key per thread, request and
-- job), so the broker stores and runs each one; none is a duplicate answered from the journal.
-- Arguments (after --): the batch name, and jobs per request (1: a single job; N: a "jobs" list of N).
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  batch = args[1] or "wrk"
  per = tonumber(args[2] or "1")
end

function request()
  counter = counter + 1
  local body
  if per == 1 then
    local key = batch .. "-" .. tid .. "-" .. counter
    body = '{"route":["noop"],"batch":"' .. batch .. '","key":"' .. key .. '","data":"' .. key .. '"}'
  else
    local jobs = {}
    for i = 1, per do
      local key = batch .. "-" .. tid .. "-" .. counter .. "-" .. i
      jobs[i] = '{"key":"' .. key .. '","data":"' .. key .. '"}'
    end
    body = '{"route":["noop"],"batch":"' .. batch .. '","jobs":[' .. table.concat(jobs, ",") .. ']}'
  end
  return wrk.format("POST", "/v1/jobs", {["Content-Type"] = "application/json"}, body)
end
