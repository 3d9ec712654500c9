-- wrk script for bench/bid.py: a 300x250 OpenRTB 2.6 request (the IAB simple-banner example with
-- a device and a user), cycling through pre-built bodies whose user ids are drawn from the demo
-- profiles. Arguments: users=N (ids user-000001..N), delay=MS (pause between requests on a
-- connection, to hold a rate below the peak).
local bodies = {}
local count = 2000
local counter = 0
local pause = 0

init = function(args)
  local users = 20000
  for _, arg in ipairs(args) do
    local name, value = arg:match("^(%w+)=(.+)$")
    if name == "users" then users = tonumber(value) end
    if name == "delay" then pause = tonumber(value) end
  end
  if pause > 0 then
    -- defined only when asked for: with a delay function wrk arms a timer per request
    delay = function() return pause end
  end
  math.randomseed(7)
  for i = 1, count do
    local user = string.format("user-%06d", math.random(1, users))
    bodies[i] = '{"id":"bench-' .. i .. '","at":1,"cur":["USD"],"tmax":100,'
      .. '"imp":[{"id":"1","bidfloor":0.03,"banner":{"w":300,"h":250,"pos":0}}],'
      .. '"site":{"id":"102855","cat":["IAB3-1"],"domain":"www.foobar.com",'
      .. '"page":"http://www.foobar.com/1234.html","publisher":{"id":"8953","name":"foobar.com",'
      .. '"cat":["IAB3-1"],"domain":"foobar.com"}},'
      .. '"device":{"ua":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_6_8) AppleWebKit/537.13 '
      .. '(KHTML, like Gecko) Version/5.1.7 Safari/534.57.2","ip":"123.145.167.10",'
      .. '"devicetype":2,"geo":{"country":"USA"}},'
      .. '"user":{"id":"' .. user .. '"}}'
  end
end

request = function()
  counter = counter % count + 1
  return wrk.format("POST", "/v1/bid", {["Content-Type"] = "application/json"}, bodies[counter])
end
