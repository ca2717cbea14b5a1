//! `gatehouse config …`: configuration for the mail server's own programs, filled in with this instance's
//! addresses and secrets. The templates live in `integrations/` and are compiled into the binary.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::CommandContext;
use crate::cli::ConfigCommand;

const DOVECOT_CONF: &str = include_str!("../../../../integrations/dovecot/gatehouse-auth.conf");
const DOVECOT_LUA: &str = include_str!("../../../../integrations/dovecot/gatehouse-passdb.lua");

/// A Lua string literal's contents.
fn lua_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The address other programs use to reach a listener bound to `addr` (wildcards become loopback).
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

/// The Dovecot passdb configuration for a Lua script installed at `lua_path`.
pub fn dovecot_conf(lua_path: &str) -> String {
    DOVECOT_CONF.replace("@LUA_PATH@", lua_path)
}

/// The Lua script, asking `url` with `secret` (empty: none).
pub fn dovecot_lua(url: &str, secret: &str) -> String {
    DOVECOT_LUA.replace("@GATEHOUSE_URL@", &lua_escape(url)).replace("@GATEHOUSE_SECRET@", &lua_escape(secret))
}

/// Runs a `config` command.
pub fn run(ctx: &CommandContext, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Dovecot { part, lua_path, url } => {
            let url = url.unwrap_or_else(|| format!("http://{}/dovecot/auth", reachable(ctx.config.listen.internal)));
            let secret = ctx.config.dovecot.shared_secret.as_ref().map(|s| s.expose().to_string()).unwrap_or_default();
            if part != "lua" {
                if part == "all" {
                    println!("# ---- dovecot.conf (or conf.d/auth-gatehouse.conf.ext) ----");
                }
                print!("{}", dovecot_conf(&lua_path));
            }
            if part != "conf" {
                if part == "all" {
                    println!("\n-- ---- {lua_path} ----");
                }
                print!("{}", dovecot_lua(&url, &secret));
            }
        }
    }
    Ok(())
}
