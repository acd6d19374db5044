-- Licensed under the Apache License, Version 2.0.
-- wrk script of bench/bench.py: POST the same JSON body to every request.
-- CR_BENCH_BODY   file holding the body
-- CR_BENCH_KEYS   file with one client key a line: the requests use them in
--                 turn (one key: the same headers every time)

local function read_file(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

local keys = {}
for line in io.lines(os.getenv("CR_BENCH_KEYS")) do
   if #line > 0 then
      keys[#keys + 1] = line
   end
end

wrk.method = "POST"
wrk.body = read_file(os.getenv("CR_BENCH_BODY"))
wrk.headers["Content-Type"] = "application/json"
-- needed by the Anthropic body, ignored by the others
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["Authorization"] = "Bearer " .. keys[1]

local next_key = 0

function setup(thread)
   thread:set("thread_offset", next_key)
   next_key = next_key + 7
end

local n = 0

if #keys > 1 then
   function request()
      n = n + 1
      local i = ((thread_offset or 0) + n) % #keys + 1
      wrk.headers["Authorization"] = "Bearer " .. keys[i]
      return wrk.format()
   end
end
