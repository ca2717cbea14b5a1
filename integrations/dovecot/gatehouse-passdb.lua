-- Gatehouse passdb and userdb for Dovecot 2.3: every password login is decided by Gatehouse, and the mailbox
-- settings (quota, home, uid/gid) come from it.
--
-- Dovecot calls auth_password_verify() for PLAIN and LOGIN; this script POSTs the request as JSON to
-- Gatehouse's internal listener (POST /dovecot/auth) with Dovecot's built-in HTTP client and maps the answer:
--   200 -> OK (with user= set to Gatehouse's canonical mailbox name)
--   401 -> PASSWORD_MISMATCH      404 -> USER_UNKNOWN      403 -> USER_DISABLED
--   429 -> refused with Gatehouse's message (the client address is banned after repeated failures)
--   anything else (5xx, or 9000+ = Dovecot's own transport errors such as "connection refused")
--       -> INTERNAL_FAILURE, so Dovecot keeps its cached logins while Gatehouse is unreachable
--          and never tells a user with the right password that it is wrong.
-- The password travels hex-encoded, so any byte sequence (a Latin-1 password, say) arrives intact.
-- auth_userdb_lookup() and auth_userdb_iterate() ask POST /dovecot/userdb and GET /dovecot/users: LMTP
-- delivery, doveadm and every login get the mailbox's quota_rule, home, uid and gid; inactive mailboxes are
-- unknown there, so nothing is delivered to them.
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

local function hex(bytes)
  return (bytes:gsub(".", function(c) return string.format("%02x", string.byte(c)) end))
end

-- The URL of another endpoint on the same listener ("/dovecot/auth" -> "/dovecot/userdb").
local function endpoint(path)
  return (GATEHOUSE_URL:gsub("/dovecot/auth$", path))
end

local function call(method, url, body)
  local request = client:request({ url = url, method = method })
  request:add_header("Content-Type", "application/json")
  if GATEHOUSE_SECRET ~= "" then
    request:add_header("X-Gatehouse-Secret", GATEHOUSE_SECRET)
  end
  if body ~= nil then
    request:set_payload(body)
  end
  local response = request:submit()
  return response:status(), response:payload()
end

local function ask_gatehouse(req, password)
  return call("POST", GATEHOUSE_URL, json.encode({
    user = req.user,
    login_user = req.login_user,          -- set in the master passdb: user is then the master
    password_hex = hex(password),
    service = req.service,
    remote_ip = req.remote_ip,
    real_rip = req.real_rip,
    local_ip = req.local_ip,
    secured = req.secured,
    mech = req.mech,
    session = req.session,
    skip_password_check = req.skip_password_check,  -- second pass after a master login ...
    master_user = req.master_user,                  -- ... which Gatehouse decides again
  }))
end

local function decoded(payload)
  local ok, reply = pcall(json.decode, payload)
  if ok and type(reply) == "table" then
    return reply
  end
  return nil
end

function auth_password_verify(req, password)
  local called, status, payload = pcall(ask_gatehouse, req, password)
  if not called then
    req:log_error("gatehouse: request failed: " .. tostring(status))
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "temporary authentication failure"
  end
  if status == 200 then
    local reply = decoded(payload)
    if reply == nil or reply.success ~= true then
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
  elseif status == 429 then
    local reply = decoded(payload) or {}
    local message = reply.message or "Too many failed logins; try again later"
    -- A refusal with a reason for the client, as Dovecot's policy server gives; nodelay, since Gatehouse has
    -- delayed the answer already.
    return dovecot.auth.PASSDB_RESULT_OK, { nologin = "y", reason = message, nodelay = "y" }
  end
  req:log_warning("gatehouse: answered " .. tostring(status) .. "; reporting a temporary failure")
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "temporary authentication failure"
end

function auth_passdb_lookup(req)
  -- Gatehouse never hands out password hashes: only plaintext mechanisms (PLAIN, LOGIN) are possible.
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "credential lookups are not supported"
end

function auth_userdb_lookup(req)
  local called, status, payload = pcall(call, "POST", endpoint("/dovecot/userdb"), json.encode({ user = req.user }))
  if not called then
    req:log_error("gatehouse: userdb request failed: " .. tostring(status))
    return dovecot.auth.USERDB_RESULT_INTERNAL_FAILURE, "temporary failure"
  end
  if status == 200 then
    local reply = decoded(payload)
    if reply == nil or type(reply.fields) ~= "table" then
      req:log_error("gatehouse: unexpected userdb reply: " .. tostring(payload))
      return dovecot.auth.USERDB_RESULT_INTERNAL_FAILURE, "temporary failure"
    end
    return dovecot.auth.USERDB_RESULT_OK, reply.fields
  elseif status == 404 then
    return dovecot.auth.USERDB_RESULT_USER_UNKNOWN, "no such mailbox"
  end
  req:log_warning("gatehouse: userdb answered " .. tostring(status) .. "; reporting a temporary failure")
  return dovecot.auth.USERDB_RESULT_INTERNAL_FAILURE, "temporary failure"
end

function auth_userdb_iterate()
  local called, status, payload = pcall(call, "GET", endpoint("/dovecot/users"), nil)
  if not called or status ~= 200 then
    error("gatehouse: listing users failed: " .. tostring(status))
  end
  local reply = decoded(payload)
  if reply == nil or type(reply.users) ~= "table" then
    error("gatehouse: unexpected user list: " .. tostring(payload))
  end
  return reply.users
end
