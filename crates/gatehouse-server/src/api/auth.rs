//! Authentication of API requests: the key from `Authorization: Bearer gk_…` or `X-API-Key: gk_…`, then its
//! source networks, before any handler runs. The middleware hands the handlers the store scoped to the key
//! ([`gatehouse_store::ScopedStore`]), which applies the key's domains and read-only access; a read-only key's writes are
//! refused here already, before the request body is read.
//!
//! Networks are checked against the client's address: the TCP peer (`ConnectInfo<SocketAddr>`), or, when the
//! peer is one of [`ApiState::trusted_proxies`], what it says in `X-Real-IP` (else the last `X-Forwarded-For`
//! entry). A request without connection info (a router served without it) cannot use a key that has network
//! limits.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gatehouse_store::Principal;
use ipnet::IpNet;

use super::ApiState;
use super::error::ApiError;

/// The header carrying a key, as an alternative to `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The token of `Authorization: Bearer …`, if the request has a non-empty one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// The token of a request: `Authorization: Bearer …` first, else `X-API-Key` (so a proxy's own `Basic`
/// authorization can travel beside the key).
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers).or_else(|| {
        headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|token| !token.is_empty())
    })
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// The middleware: authenticates, checks network and access limits, records the use, and hands the handler
/// the store scoped to the key as a [`gatehouse_store::ScopedStore`] extension.
pub async fn authenticate(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| *peer);
    let method = request.method().clone();
    match check(&state, peer, request.headers(), &method).await {
        Ok(principal) => {
            request.extensions_mut().insert(state.store.scoped(principal));
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// The client's address: the peer, or what a trusted proxy says the client was.
fn client_ip(trusted_proxies: &[IpNet], peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !trusted_proxies.iter().any(|net| net.contains(&peer_ip)) {
        return peer_ip;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    header("x-real-ip")
        .and_then(|v| v.parse::<IpAddr>().ok())
        .or_else(|| header("x-forwarded-for").and_then(|v| v.rsplit(',').next()).and_then(|v| v.trim().parse().ok()))
        .map(|ip| ip.to_canonical())
        .unwrap_or(peer_ip)
}

/// Finds the key of a request from `peer` (if known) and checks its limits.
async fn check(
    state: &ApiState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Principal, ApiError> {
    let client = peer.map(|peer| client_ip(&state.trusted_proxies, peer, headers));
    let Some(token) = presented_token(headers) else {
        return Err(ApiError::unauthorized("an API key is required: send 'Authorization: Bearer gk_…' or 'X-API-Key'"));
    };
    let Some(key) = state.store.api_key_for_token(token).await? else {
        tracing::info!(client = ?client, "API request with an unknown, wrong or revoked key");
        return Err(ApiError::unauthorized("the API key is unknown, wrong or revoked"));
    };
    if key.has_network_limit() {
        match client {
            Some(client) if key.allows_address(client) => {}
            Some(client) => {
                tracing::warn!(key = %key.name, %client, "API key used from outside its allowed networks");
                return Err(ApiError::forbidden("this API key may not be used from this address"));
            }
            None => {
                return Err(ApiError::forbidden(
                    "the source address is unknown, so this network-limited API key cannot be used",
                ));
            }
        }
    }
    let principal = key.principal();
    if !is_read(method) && !principal.writes() {
        return Err(ApiError::forbidden("this API key is read-only"));
    }
    if key.last_use_is_stale() {
        // Bookkeeping only: a failure to record the use does not fail the request.
        if let Err(err) = state.store.touch_api_key(key.id).await {
            tracing::warn!(key = %key.name, error = %err, "cannot record the use of an API key");
        }
    }
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let proxy: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let forwarded = headers(&[("x-forwarded-for", "198.51.100.1, 192.0.2.9")]);
        assert_eq!(client_ip(&trusted, proxy, &forwarded), "192.0.2.9".parse::<IpAddr>().unwrap());
        let real = headers(&[("x-real-ip", "192.0.2.7"), ("x-forwarded-for", "192.0.2.9")]);
        assert_eq!(client_ip(&trusted, proxy, &real), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&[], proxy, &real), proxy.ip());
        assert_eq!(client_ip(&trusted, proxy, &HeaderMap::new()), proxy.ip());
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        assert_eq!(client_ip(&trusted, mapped, &real), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn tokens_come_from_bearer_or_the_api_key_header() {
        assert_eq!(presented_token(&headers(&[("authorization", "Bearer gk_1_x")])), Some("gk_1_x"));
        assert_eq!(presented_token(&headers(&[("authorization", "bearer  gk_1_x ")])), Some("gk_1_x"));
        assert_eq!(presented_token(&headers(&[("x-api-key", " gk_2_y")])), Some("gk_2_y"));
        assert_eq!(
            presented_token(&headers(&[("authorization", "Basic abc"), ("x-api-key", "gk_2_y")])),
            Some("gk_2_y")
        );
        assert_eq!(presented_token(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }
}
