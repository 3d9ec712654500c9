-- The delivery ledger's two atomic steps. The rules are written out in domain/bidding/ledger.py;
-- this script keeps exactly those, so several bidder processes share one set of counters.
--
-- reserve: ARGV = prefix, "reserve", window, requests as one JSON array, each
--          [minute, hour, day, user_key ("" = unknown), slates]: per slate (imp) an array of
--          candidates, each [campaign, price_micros, cap_per_hour, cap_per_day, budget, daily]
--          (null = none)
--          returns per request, per slate, the 1-based index taken, 0 for none
--          (the concurrent bids of a bidder share one call: redis-py's cost per call was a
--          fifth of a bidder's CPU; and one argument, not six per candidate, because redis-py
--          encodes every argument in Python)
-- release: ARGV = prefix, "release", reservations as one JSON array, each
--          [minute, hour, day, user_key, campaign, price_micros]: what reserve took for bids
--          whose callers had given up (no bid went out); gives back the budget and the caps
-- settle:  ARGV = prefix, "settle", kind, bid_id, campaign, user_key, minute, hour, day,
--          bid_price_micros, clearing_micros ("" = none), memory_seconds
--          returns {first_of_its_kind (0/1), spend_recorded_micros, over_budget (0/1)}

local prefix = ARGV[1]
local op = ARGV[2]
-- How long day spend and campaign budgets stay: NOTICE_MEMORY, the latest a notice may come.
local NOTICE_MEMORY_S = 172800

local function num(key)
  return tonumber(redis.call('GET', key) or '0') or 0
end

if op == 'reserve' then
  local window = tonumber(ARGV[3])
  local requests = cjson.decode(ARGV[4])
  local function optional(value)
    if value == cjson.null then return nil end
    return value
  end
  local answers = {}
  for r, request in ipairs(requests) do
    local minute, hour, day, user, slates = request[1], request[2], request[3], request[4], request[5]
    local chosen = {}
    for s, slate in ipairs(slates) do
      local taken = 0
      for c, candidate in ipairs(slate) do
        local campaign, price = candidate[1], candidate[2]
        local cap_h, cap_d = optional(candidate[3]), optional(candidate[4])
        local budget, daily = candidate[5], optional(candidate[6])
        local fits = true
        local hour_key = prefix .. 'fc:' .. campaign .. ':' .. user .. ':h' .. hour
        local day_key = prefix .. 'fc:' .. campaign .. ':' .. user .. ':d' .. day
        if cap_h or cap_d then
          if user == '' then
            fits = false
          elseif cap_h and num(hour_key) >= cap_h then
            fits = false
          elseif cap_d and num(day_key) >= cap_d then
            fits = false
          end
        end
        local spend_key = prefix .. 'spent:' .. campaign
        if fits then
          local reserved = 0
          for m = minute - window + 1, minute do
            reserved = reserved + num(prefix .. 'rsv:' .. campaign .. ':' .. m)
          end
          local committed = reserved + price
          -- What settle judges a late notice's spend against, taken or not: a budget lowered
          -- below what is spent refuses every bid, and must still be the one notices see.
          -- -1: no daily budget. %.0f, not %d: %d goes through a C long and wraps past 2^63.
          local budget_key = prefix .. 'budget:' .. campaign
          local limits = string.format('%.0f:%.0f', budget, daily or -1)
          if num(spend_key) + committed > budget then
            fits = false
          elseif daily and num(spend_key .. ':d' .. day) + committed > daily then
            fits = false
          end
          -- A refusal writes only a change: an exhausted campaign is refused on every bid.
          if fits or redis.call('GET', budget_key) ~= limits then
            redis.call('SET', budget_key, limits, 'EX', NOTICE_MEMORY_S)
          end
        end
        if fits then
          if user ~= '' then
            redis.call('INCR', hour_key)
            redis.call('EXPIRE', hour_key, 3900)
            redis.call('INCR', day_key)
            redis.call('EXPIRE', day_key, 90000)
          end
          local reserve_key = prefix .. 'rsv:' .. campaign .. ':' .. minute
          redis.call('INCRBY', reserve_key, price)
          redis.call('EXPIRE', reserve_key, window * 60 + 60)
          taken = c
          break  -- the slate's best that fits; the rest are not looked at
        end
      end
      chosen[s] = taken
    end
    answers[r] = chosen
  end
  return answers
end

if op == 'release' then
  for _, taken in ipairs(cjson.decode(ARGV[3])) do
    local minute, hour, day, user = taken[1], taken[2], taken[3], taken[4]
    local campaign, price = taken[5], taken[6]
    local reserve_key = prefix .. 'rsv:' .. campaign .. ':' .. minute
    if redis.call('EXISTS', reserve_key) == 1 and redis.call('DECRBY', reserve_key, price) < 0 then
      redis.call('SET', reserve_key, 0, 'KEEPTTL')
    end
    if user ~= '' then
      for _, key in ipairs({prefix .. 'fc:' .. campaign .. ':' .. user .. ':h' .. hour,
                            prefix .. 'fc:' .. campaign .. ':' .. user .. ':d' .. day}) do
        if num(key) > 0 then
          redis.call('DECR', key)
        end
      end
    end
  end
  return 0
end

if op == 'settle' then
  local kind, bid, campaign, user = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local minute, hour, day = ARGV[7], ARGV[8], ARGV[9]
  local bid_price, clearing = tonumber(ARGV[10]), tonumber(ARGV[11])
  local memory = tonumber(ARGV[12])
  if not redis.call('SET', prefix .. 'notice:' .. bid .. ':' .. kind, '1', 'NX', 'EX', memory) then
    return {0, 0, 0}
  end
  if not redis.call('SET', prefix .. 'settled:' .. bid, kind, 'NX', 'EX', memory) then
    return {1, 0, 0}
  end
  local reserve_key = prefix .. 'rsv:' .. campaign .. ':' .. minute
  if redis.call('EXISTS', reserve_key) == 1 then
    local left = redis.call('DECRBY', reserve_key, bid_price)
    if left < 0 then
      redis.call('SET', reserve_key, 0, 'KEEPTTL')
    end
  end
  if kind == 'loss' then
    if user ~= '' then
      for _, key in ipairs({prefix .. 'fc:' .. campaign .. ':' .. user .. ':h' .. hour,
                            prefix .. 'fc:' .. campaign .. ':' .. user .. ':d' .. day}) do
        if num(key) > 0 then
          redis.call('DECR', key)
        end
      end
    end
    return {1, 0, 0}
  end
  local amount = clearing or 0
  local spend_key = prefix .. 'spent:' .. campaign
  local total = redis.call('INCRBY', spend_key, amount)
  local today = redis.call('INCRBY', spend_key .. ':d' .. day, amount)
  redis.call('EXPIRE', spend_key .. ':d' .. day, NOTICE_MEMORY_S)
  local over = 0
  local limits = redis.call('GET', prefix .. 'budget:' .. campaign)
  if limits and amount > 0 then
    local budget, daily = string.match(limits, '^(%-?%d+):(%-?%d+)$')
    budget, daily = tonumber(budget), tonumber(daily)
    -- Unreadable limits (never written so by reserve) judge nothing rather than fail the
    -- script after its writes.
    if budget and daily and (total > budget or (daily >= 0 and today > daily)) then
      over = 1
    end
  end
  return {1, amount, over}
end

return redis.error_reply('unknown ledger operation ' .. tostring(op))
