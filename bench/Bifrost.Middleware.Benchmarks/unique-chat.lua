-- unique-chat.lua — shared/bench/chat.lua with each request's user message made unique, for the cache-miss candidates of
-- whole-path.sh (the shared harness runs wrk with its own chat.lua and takes no script; whole-path.sh runs it from a
-- writable copy of the bench folder where this file is chat.lua and the original is chat-shared.lua).
-- Everything of chat.lua (paced load, the BENCH summary line, non-2xx counting) is kept: it is loaded first; this file
-- only adds wrk's request() hook, which builds the same body as chat.lua with another user message per request:
--   BENCH_UNIQUE=counter     "Say hello in one short sentence. #<thread>-<n>": every request an exact-cache miss
--   BENCH_UNIQUE=random      eight random letter-words + "#<thread>-<n>": an exact miss whose text is far from every
--                            other (hashed 3-gram embeddings near 0): every request a semantic-cache miss that is stored
--   BENCH_UNIQUE=paraphrase  "Say hello to the reader in one short, friendly and polite sentence, please, friend <thread>-<n>.":
--                            an exact miss, but near the first stored text (cosine 0.94-0.98 for counters up to 6 digits):
--                            every request after the first few a semantic-cache hit at whole-path.sh's threshold 0.8
--   (unset)                  chat.lua unchanged (identical requests)
-- The direct run of the same harness run sends the same bodies to the mock, so both sides pay the same Lua cost.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "chat-shared.lua")

local mode = os.getenv("BENCH_UNIQUE") or ""
if mode ~= "" then
  local model = os.getenv("BENCH_MODEL") or "gpt-4o-mini"
  local stream = os.getenv("BENCH_STREAM") == "1"
  local head = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are a helpful assistant."},'
      .. '{"role":"user","content":"'
  local tail = '"}],"max_tokens":64,"temperature":0' .. (stream and ',"stream":true' or '') .. '}'
  local n = 0
  -- A nonce per wrk process and thread: the warm-up, c1 and c32 phases are separate wrk runs whose counters all start at
  -- 1, so without it a later phase would repeat (and hit) what an earlier one stored. init() has seeded math.random with
  -- the time and the thread id.
  local nonce

  local function word()
    local t = {}
    for i = 1, math.random(4, 9) do t[i] = string.char(97 + math.random(0, 25)) end
    return table.concat(t)
  end

  function request()
    n = n + 1
    nonce = nonce or string.format("%x%x", math.random(0, 0x7fffffff), math.floor(os.clock() * 1e6) % 0x7fffffff)
    local id = tostring(tid or 0) .. "-" .. nonce .. "-" .. n
    local text
    if mode == "random" then
      local words = {}
      for i = 1, 8 do words[i] = word() end
      text = table.concat(words, " ") .. " #" .. id
    elseif mode == "paraphrase" then
      -- (no nonce: the counter alone keeps the text near the first stored one; a repeat across phases is a hit anyway)
      text = "Say hello to the reader in one short, friendly and polite sentence, please, friend " .. tostring(tid or 0) .. "-" .. n .. "."
    else
      text = "Say hello in one short sentence. #" .. id
    end

    return wrk.format(nil, nil, nil, head .. text .. tail)
  end
end
