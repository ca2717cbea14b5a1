//! What operators and monitoring ask the internal listener: the brute-force guard's state (`GET /guard`, for
//! `gatehouse guard list`), ending a ban (`DELETE /guard/{address}`) and counters (`GET /stats`). The same callers
//! as Dovecot's endpoints: the shared secret, or an allowed network.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::AppState;
use crate::dovecot::{failure, refuse_unauthorised};

/// `GET /guard`: what the brute-force guard tracks (for `gatehouse guard list`).
pub async fn guard_list(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "internal") {
        return refused;
    }
    Json(state.auth.guard_snapshot()).into_response()
}

/// `DELETE /guard/{address}`: ends a ban (for `gatehouse guard unban`).
pub async fn guard_unban(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Path(address): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "internal") {
        return refused;
    }
    let Ok(address) = address.parse::<IpAddr>() else {
        return failure(StatusCode::BAD_REQUEST, "not an IP address");
    };
    let unbanned = state.auth.unban(address);
    let was_banned = unbanned.is_some_and(|u| u.was_banned);
    let failures = unbanned.map(|u| u.failures).unwrap_or(0);
    if was_banned {
        tracing::info!(%address, "ban lifted by an operator");
    }
    Json(json!({ "success": true, "was_tracked": unbanned.is_some(), "was_banned": was_banned, "failures": failures }))
        .into_response()
}

/// `GET /stats`: the hash pool's counters (queue wait, busy rejections, memory budget), the guard's size, the
/// auth log's counters (records queued, written, dropped) and the change feed's state, for monitoring.
pub async fn stats(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "internal") {
        return refused;
    }
    let pool = state.hash_pool.stats();
    let guard = state.auth.guard_snapshot();
    let log = state.auth.log_stats();
    let feed = state.auth.feed_stats();
    let last_read = feed.last_read_at.load(Ordering::Relaxed);
    Json(json!({
        "hash_pool": {
            "submitted": pool.submitted,
            "completed": pool.completed,
            "in_flight": pool.in_flight,
            "rejected_busy": pool.rejected_busy,
            "queue_wait_mean_ms": pool.queue_wait_mean().as_secs_f64() * 1000.0,
            "queue_wait_max_ms": pool.queue_wait_max.as_secs_f64() * 1000.0,
            "queue_wait_last_ms": pool.queue_wait_last.as_secs_f64() * 1000.0,
            "memory_in_use_kib": pool.memory_in_use_kib,
            "memory_peak_kib": pool.memory_peak_kib,
            "memory_budget_kib": state.hash_pool.memory_budget_kib(),
        },
        "guard": {
            "banned_addresses": guard.iter().filter(|e| e.banned_until.is_some()).count(),
            "tracked": guard.len(),
        },
        "auth_log": {
            "queued": log.queued.load(Ordering::Relaxed),
            "written": log.written.load(Ordering::Relaxed),
            "dropped": log.dropped.load(Ordering::Relaxed),
        },
        "change_feed": {
            "position": feed.position.load(Ordering::Relaxed),
            "applied": feed.applied.load(Ordering::Relaxed),
            "failed_reads": feed.failed_reads.load(Ordering::Relaxed),
            "failing": feed.failing.load(Ordering::Relaxed),
            "last_read_ms_ago": (last_read > 0).then(|| gatehouse_engine::memory::now_millis() - last_read),
        },
    }))
    .into_response()
}
