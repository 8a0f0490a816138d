//! The server-side call layer: every call gets a request id, a span named by its gRPC method
//! whose parent is the caller's W3C trace context, and a place in the count of calls in
//! flight that the host drains at shutdown.
//!
//! A message over the size limit makes tonic answer `OUT_OF_RANGE`; the layer turns that
//! answer into `RESOURCE_EXHAUSTED` (reason `MESSAGE_TOO_LARGE`), the code gRPC gives to a
//! size limit, whether it comes in the response's headers or in its trailers.
//!
//! The request id is the caller's `x-request-id` when it sent a usable one (1 to 128 visible
//! ASCII characters), else a new UUID v4. It is written into the request's headers, so a
//! handler reads it with [`crate::auth::request_id`], and into the response's headers.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use http_body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tonic::body::Body;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::auth::REQUEST_ID_HEADER;

/// The longest caller-supplied request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Reads `x-request-id` if usable, else writes a new UUID v4 there; returns the id.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(value) = headers
        .get(REQUEST_ID_HEADER)
        .filter(|v| usable_request_id(v))
    {
        return value.clone();
    }
    let generated = uuid::Uuid::new_v4().to_string();
    let value = HeaderValue::from_str(&generated).expect("a UUID is a valid header value");
    headers.insert(REQUEST_ID_HEADER, value.clone());
    value
}

fn usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID_LEN && bytes.iter().all(u8::is_ascii_graphic)
}

/// The trace context a caller sent in `traceparent`/`tracestate`, through the global
/// propagator; empty when it sent none.
pub fn extract_trace_context(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderReader(headers))
    })
}

/// Writes the current span's trace context into `headers` and returns true, or leaves them
/// alone and returns false when the span carries no valid context (traces are not recorded).
pub fn inject_current_trace_context(headers: &mut HeaderMap) -> bool {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return false;
    }
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderWriter(headers));
    });
    true
}

struct HeaderReader<'a>(&'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct HeaderWriter<'a>(&'a mut HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        let name = http::HeaderName::from_bytes(key.as_bytes());
        let value = HeaderValue::from_str(&value);
        if let (Ok(name), Ok(value)) = (name, value) {
            self.0.insert(name, value);
        }
    }
}

/// The number of calls whose response has not finished yet.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Calls currently in flight.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.0.clone())
    }
}

#[derive(Debug)]
struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The start of the messages tonic gives a message over the size limit.
const OVERSIZE_MESSAGES: [&[u8]; 2] = [
    b"Error, decoded message length too large",
    b"Error, encoded message length too large",
];

/// True when `headers` (response headers or trailers) carry tonic's answer to a message over
/// the size limit.
fn is_oversize_answer(headers: &HeaderMap) -> bool {
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == b"11");
    let message = headers
        .get("grpc-message")
        .map(|message| percent_decoded(message.as_bytes()));
    out_of_range
        && message.is_some_and(|message| {
            OVERSIZE_MESSAGES
                .iter()
                .any(|prefix| message.starts_with(prefix))
        })
}

/// `grpc-message` as sent: percent-encoded UTF-8.
fn percent_decoded(encoded: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = match tail {
            [high, low, ..] if byte == b'%' => std::str::from_utf8(&[*high, *low])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match escaped {
            Some(value) => {
                decoded.push(value);
                rest = &tail[2..];
            }
            None => {
                decoded.push(byte);
                rest = tail;
            }
        }
    }
    decoded
}

/// Replaces tonic's `OUT_OF_RANGE` answer to an oversize message with `RESOURCE_EXHAUSTED`.
fn rewrite_oversize_answer(headers: &mut HeaderMap, domain: &str, request_id: &HeaderValue) {
    let request_id = request_id.to_str().unwrap_or("");
    let message = format!(
        "a message is larger than the limit of {} MiB; send large data as a stream",
        crate::host::MAX_MESSAGE_SIZE / (1024 * 1024)
    );
    let status = crate::error::Failure::resource_exhausted("MESSAGE_TOO_LARGE", message)
        .into_status(domain, request_id);
    let answer = status.into_http::<()>();
    headers.remove("grpc-status-details-bin");
    for (name, value) in answer.headers() {
        if name.as_str().starts_with("grpc-") {
            headers.insert(name, value.clone());
        }
    }
}

/// Adds the request id, the call's span and in-flight counting to a service.
#[derive(Debug, Clone)]
pub struct CallLayer {
    in_flight: InFlight,
    domain: Arc<str>,
}

impl CallLayer {
    /// A layer counting its calls in `in_flight`, for the service whose `ErrorInfo` domain is
    /// `domain` (`identity.lrs`).
    pub fn new(in_flight: InFlight, domain: impl Into<Arc<str>>) -> Self {
        Self {
            in_flight,
            domain: domain.into(),
        }
    }
}

impl<S> tower::Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService {
            inner,
            in_flight: self.in_flight.clone(),
            domain: self.domain.clone(),
        }
    }
}

/// The service that [`CallLayer`] makes.
#[derive(Debug, Clone)]
pub struct CallService<S> {
    inner: S,
    in_flight: InFlight,
    domain: Arc<str>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for CallService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let request_id = ensure_request_id(request.headers_mut());
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "call",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            request_id = %String::from_utf8_lossy(request_id.as_bytes()),
        );
        let _ = span.set_parent(extract_trace_context(request.headers()));

        let guard = self.in_flight.enter();
        let domain = self.domain.clone();
        let started = Instant::now();
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut response = future.await?;
                let headers = response.headers_mut();
                if is_oversize_answer(headers) {
                    rewrite_oversize_answer(headers, &domain, &request_id);
                }
                headers.insert(REQUEST_ID_HEADER, request_id.clone());
                tracing::debug!(
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "answered call"
                );
                Ok(response.map(|inner| {
                    Body::new(TrackedBody {
                        inner,
                        domain,
                        request_id,
                        _guard: guard,
                    })
                }))
            }
            .instrument(span),
        )
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call counted in flight until it ends or is dropped,
    /// and rewrites an oversize answer in its trailers.
    struct TrackedBody<B> {
        #[pin]
        inner: B,
        domain: Arc<str>,
        request_id: HeaderValue,
        _guard: InFlightGuard,
    }
}

impl<B: HttpBody> HttpBody for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let mut polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &mut polled
            && let Some(trailers) = frame.trailers_mut()
            && is_oversize_answer(trailers)
        {
            rewrite_oversize_answer(trailers, this.domain, this.request_id);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_grpc_messages() {
        assert_eq!(percent_decoded(b"too%20large%2"), b"too large%2");
    }

    #[test]
    fn keeps_a_usable_request_id_and_replaces_others() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(ensure_request_id(&mut headers), "abc-123");

        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        let generated = ensure_request_id(&mut headers);
        assert!(uuid::Uuid::parse_str(generated.to_str().expect("ascii")).is_ok());
        assert_eq!(headers.get(REQUEST_ID_HEADER), Some(&generated));

        let mut headers = HeaderMap::new();
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        headers.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&long).expect("ascii"),
        );
        assert_ne!(ensure_request_id(&mut headers), long.as_str());
    }
}
