//! The baseline of `bench/run`: the least an HTTP server can do for `POST /dovecot/auth` and `GET /nginx/auth`.
//!
//! It accepts HTTP/1.1 (keep-alive) on the address given as the only argument, reads each request body
//! completely, and answers `POST /dovecot/auth` with the JSON Gatehouse sends for a successful login,
//! `{"success":true,"user":"alice@example.org"}`, without parsing the body, looking anything up or hashing;
//! `GET /nginx/auth` (nginx's `auth_request`) with 200 and the `X-User`, `X-Auth` and `X-Auth-Type` headers
//! Gatehouse answers a login that may proceed with. Every other request gets 404. Like `gatehouse serve` (axum over hyper 1) it runs on tokio's multi-threaded
//! runtime with default settings and leaves TCP_NODELAY off, so the difference between the two is what
//! Gatehouse does per request.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The body Gatehouse answers for a successful login of `alice@example.org`.
const SUCCESS: &[u8] = br#"{"success":true,"user":"alice@example.org"}"#;
/// The `X-Auth` header of an answer to nginx (`alice@example.org:bench-correct-password`, in Basic form).
const NGINX_AUTH: &str = "Basic YWxpY2VAZXhhbXBsZS5vcmc6YmVuY2gtY29ycmVjdC1wYXNzd29yZA==";

/// Answers one request.
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_auth = request.method() == Method::POST && request.uri().path() == "/dovecot/auth";
    let is_nginx = request.method() == Method::GET && request.uri().path() == "/nginx/auth";
    // Read the whole body, as a real endpoint must before it can answer.
    let _body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    if is_nginx {
        // What Gatehouse answers nginx's auth_request for a login that may proceed.
        let mut response = status(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert("x-user", HeaderValue::from_static("alice@example.org"));
        headers.insert("x-auth", HeaderValue::from_static(NGINX_AUTH));
        headers.insert("x-auth-type", HeaderValue::from_static("Basic"));
        return Ok(response);
    }
    if !is_auth {
        return Ok(status(StatusCode::NOT_FOUND));
    }
    let mut response = Response::new(Full::new(Bytes::from_static(SUCCESS)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

fn main() {
    let Some(address) = std::env::args().nth(1).and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: gatehouse-bench-baseline HOST:PORT");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(serve(address));
}

async fn serve(address: SocketAddr) {
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {address}: {err}");
            std::process::exit(1);
        }
    };
    eprintln!("listening on {address}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("accept: {err}");
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(handle)).await;
        });
    }
}
