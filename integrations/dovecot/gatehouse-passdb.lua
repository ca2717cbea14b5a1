-- Gatehouse passdb for Dovecot 2.3: every password login is decided by Gatehouse.
--
-- Dovecot calls auth_password_verify() for PLAIN and LOGIN; this script POSTs the request as JSON to
-- Gatehouse's internal listener (POST /dovecot/auth) with Dovecot's built-in HTTP client and maps the answer:
--   200 -> OK (with user= set to Gatehouse's canonical mailbox name)
--   401 -> PASSWORD_MISMATCH      404 -> USER_UNKNOWN      403 -> USER_DISABLED
--   anything else (5xx, or 9000+ = Dovecot's own transport errors such as "connection refused")
--       -> INTERNAL_FAILURE, so Dovecot keeps its cached logins while Gatehouse is unreachable
--          and never tells a user with the right password that it is wrong.
-- Needs: dovecot-auth-lua and lua-cjson (Debian). Use `gatehouse config dovecot` to get this file with
-- GATEHOUSE_URL and GATEHOUSE_SECRET filled in.

local json = require "cjson"

local GATEHOUSE_URL = "@GATEHOUSE_URL@"
local GATEHOUSE_SECRET = "@GATEHOUSE_SECRET@"

local client = nil

function script_init()
  client = dovecot.http.client({ request_timeout_msecs = 10000, max_attempts = 1 })
  return 0
end

function script_deinit()
end

local function ask_gatehouse(req, password)
  local body = json.encode({
    user = req.user,
    login_user = req.login_user,          -- set in the master passdb: user is then the master
    password = password,
    service = req.service,
    remote_ip = req.remote_ip,
    real_rip = req.real_rip,
    local_ip = req.local_ip,
    secured = req.secured,
    mech = req.mech,
    session = req.session,
    skip_password_check = req.skip_password_check,  -- second pass after a verified master login
  })
  local request = client:request({ url = GATEHOUSE_URL, method = "POST" })
  request:add_header("Content-Type", "application/json")
  if GATEHOUSE_SECRET ~= "" then
    request:add_header("X-Gatehouse-Secret", GATEHOUSE_SECRET)
  end
  request:set_payload(body)
  local response = request:submit()
  return response:status(), response:payload()
end

function auth_password_verify(req, password)
  local called, status, payload = pcall(ask_gatehouse, req, password)
  if not called then
    req:log_error("gatehouse: request failed: " .. tostring(status))
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "temporary authentication failure"
  end
  if status == 200 then
    local decoded, reply = pcall(json.decode, payload)
    if not decoded or type(reply) ~= "table" or reply.success ~= true then
      req:log_error("gatehouse: unexpected reply: " .. tostring(payload))
      return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "temporary authentication failure"
    end
    local fields = {}
    if type(reply.user) == "string" and reply.user ~= "" then
      fields.user = reply.user
    end
    return dovecot.auth.PASSDB_RESULT_OK, fields
  elseif status == 401 then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "authentication failed"
  elseif status == 404 then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "authentication failed"
  elseif status == 403 then
    return dovecot.auth.PASSDB_RESULT_USER_DISABLED, "account disabled or not allowed for this service"
  end
  req:log_warning("gatehouse: answered " .. tostring(status) .. "; reporting a temporary failure")
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "temporary authentication failure"
end

function auth_passdb_lookup(req)
  -- Gatehouse never hands out password hashes: only plaintext mechanisms (PLAIN, LOGIN) are possible.
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "credential lookups are not supported"
end
