//! The internal endpoints over TLS, for Dovecot scripts that only speak https — mailcow's `passwd-verify.lua`,
//! which an operator moving from mailcow keeps with two edits (Gatehouse's URL, the shared secret), as the
//! README says. Real Dovecot runs a script using the same libraries and the same wire contract (lua-sec's
//! `ssl.https`, ltn12, cjson; `{username, password, real_rip, service}`; HTTP 200 with `success: true` logs
//! in). With `GATEHOUSE_TEST_MAILCOW_SCRIPT=/path/to/passwd-verify.lua` the test runs mailcow's own script
//! instead, edited exactly as the README says.

mod support;

use gatehouse_testkit::dovecot::Dovecot;
use support::mail::imap_login;
use support::{Server, cli_ok};

/// A passdb script written for this test to the wire contract of mailcow's, with the README's two edits
/// already made (`@URL@`, `@SECRET@`).
const MAILCOW_STYLE_SCRIPT: &str = r#"
function auth_password_verify(request, password)
  if request.domain == nil then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no domain"
  end
  local json = require "cjson"
  local ltn12 = require "ltn12"
  local https = require "ssl.https"
  https.TIMEOUT = 30
  local rip = request.real_rip
  if rip == nil or rip == "" then rip = "127.0.0.1" end
  local body = json.encode({ username = request.user, password = password, real_rip = rip, service = request.service })
  local answer = {}
  local _, code = https.request({
    method = "POST",
    url = "@URL@",
    source = ltn12.source.string(body),
    headers = {
      ["content-type"] = "application/json",
      ["x-gatehouse-secret"] = "@SECRET@",
      ["content-length"] = tostring(#body),
    },
    sink = ltn12.sink.table(answer),
    insecure = true,
  })
  if code ~= 200 then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "refused"
  end
  local ok, reply = pcall(json.decode, table.concat(answer))
  if ok and reply.success == true then
    return dovecot.auth.PASSDB_RESULT_OK, ""
  end
  return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "refused"
end

function auth_passdb_lookup(req)
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, ""
end
"#;

/// mailcow's own script at `path`, with the README's two edits: the URL, and the secret header next to the
/// content type.
fn edited_mailcow_script(path: &str, url: &str, secret: &str) -> String {
    let original = std::fs::read_to_string(path).expect("read GATEHOUSE_TEST_MAILCOW_SCRIPT");
    let url_line = "url = \"https://nginx:9082\"";
    let header_line = "[\"content-type\"] = \"application/json\",";
    assert!(original.contains(url_line) && original.contains(header_line), "not mailcow's passwd-verify.lua");
    original
        .replace(url_line, &format!("url = \"{url}\""))
        .replace(header_line, &format!("{header_line} [\"x-gatehouse-secret\"] = \"{secret}\","))
}

#[test]
fn mailcows_dovecot_script_works_over_tls_with_the_url_and_the_secret_changed() {
    if !std::path::Path::new("/usr/share/lua/5.4/ssl/https.lua").exists() {
        gatehouse_testkit::require_peer("lua-sec", "package lua-sec (Lua 5.4 build of ssl.https) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    cli_ok(dir.path(), db, &["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    let tls = gatehouse_testkit::free_port();
    let server = Server::start_with_env(
        dir.path(),
        db,
        Some("admin-pw"),
        &[("GATEHOUSE_LISTEN__INTERNAL_TLS", &format!("127.0.0.1:{tls}"))],
    );
    // The self-signed certificate is made once and kept beside the secret key, its key private.
    use std::os::unix::fs::PermissionsExt;
    let key = dir.path().join("data/internal-tls.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(dir.path().join("data/internal-tls.crt").exists());
    // Plain HTTP is not spoken there.
    assert!(support::post_json(tls, "/dovecot/auth", "{}").is_none_or(|(status, _)| status != 200));

    let url = format!("https://127.0.0.1:{tls}/dovecot/auth");
    let script = match std::env::var("GATEHOUSE_TEST_MAILCOW_SCRIPT") {
        Ok(path) => edited_mailcow_script(&path, &url, &server.secret),
        Err(_) => MAILCOW_STYLE_SCRIPT.replace("@URL@", &url).replace("@SECRET@", &server.secret),
    };
    let Some(dovecot) = Dovecot::start_with(|root| {
        let path = root.join("passwd-verify.lua");
        std::fs::write(&path, &script).unwrap();
        // mailcow's passdb, with a static userdb.
        format!(
            "auth_mechanisms = plain login\n\
             passdb {{\n  driver = lua\n  args = file={} blocking=yes cache_key=%s:%u:%w\n}}\n\
             userdb {{\n  driver = static\n  args = uid=vmail gid=vmail\n}}\n",
            path.display()
        )
    }) else {
        return;
    };
    assert!(imap_login(dovecot.imap, "alice@example.org", "alicepw").ok(), "{}", dovecot.log());
    assert!(!imap_login(dovecot.imap, "alice@example.org", "wrong").ok());
    assert!(!imap_login(dovecot.imap, "nobody@example.org", "alicepw").ok());
    support::eventually("the logins are in the auth log", || {
        let logged = cli_ok(dir.path(), db, &["log", "auth", "--json", "--subject", "alice@example.org"], "");
        logged.contains("\"success\"") && logged.contains("wrong password")
    });
}
