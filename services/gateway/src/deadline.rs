//! Deadlines at the edge: the `grpc-timeout` header read, bounded and rewritten, and a
//! response body that ends the call with `DEADLINE_EXCEEDED` when its deadline passes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;

/// The header in which gRPC carries a call's deadline.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The deadline rules for unary and streaming calls.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Given to a unary call that set none.
    pub unary_default: Duration,
    /// The longest a unary call may have.
    pub unary_max: Duration,
    /// Given to a streaming call that set none, and the longest it may have.
    pub stream: Duration,
}

impl Deadlines {
    /// The deadline of a call: the caller's, bounded by the maximum, or the default.
    pub fn for_call(&self, requested: Option<Duration>, streaming: bool) -> Duration {
        let (default, max) = if streaming {
            (self.stream, self.stream)
        } else {
            (self.unary_default, self.unary_max)
        };
        requested.map_or(default, |requested| requested.min(max))
    }
}

/// Reads `grpc-timeout` (`100m`, `30S`: at most 8 digits and a unit); `None` when absent or
/// malformed, which gRPC treats as no deadline.
pub fn requested(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    match unit {
        "H" => Some(Duration::from_secs(amount * 3600)),
        "M" => Some(Duration::from_secs(amount * 60)),
        "S" => Some(Duration::from_secs(amount)),
        "m" => Some(Duration::from_millis(amount)),
        "u" => Some(Duration::from_micros(amount)),
        "n" => Some(Duration::from_nanos(amount)),
        _ => None,
    }
}

/// Writes `deadline` as `grpc-timeout`, in milliseconds while they fit in 8 digits.
pub fn rewrite(headers: &mut HeaderMap, deadline: Duration) {
    let millis = deadline.as_millis().max(1);
    let text = if millis <= 99_999_999 {
        format!("{millis}m")
    } else {
        format!("{}S", deadline.as_secs().min(99_999_999))
    };
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.insert(GRPC_TIMEOUT, value);
    }
}

pin_project_lite::pin_project! {
    /// A response body that, if its deadline passes before it ends, stops with trailers
    /// carrying `trailers` (the `DEADLINE_EXCEEDED` status) and drops the backend's stream.
    pub struct DeadlineBody {
        #[pin]
        inner: Body,
        #[pin]
        deadline: tokio::time::Sleep,
        trailers: Option<HeaderMap>,
        ended: bool,
    }
}

impl DeadlineBody {
    /// `inner`, cut off at `deadline` with `trailers`.
    pub fn new(inner: Body, deadline: tokio::time::Instant, trailers: HeaderMap) -> Self {
        Self {
            inner,
            deadline: tokio::time::sleep_until(deadline),
            trailers: Some(trailers),
            ended: false,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if frame.is_none() {
                *this.ended = true;
            }
            return Poll::Ready(frame);
        }
        if this.deadline.poll(cx).is_ready() {
            *this.ended = true;
            if let Some(trailers) = this.trailers.take() {
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT, HeaderValue::from_str(value).expect("ascii"));
        headers
    }

    #[test]
    fn reads_every_unit_and_refuses_malformed_values() {
        assert_eq!(requested(&headers("2H")), Some(Duration::from_secs(7200)));
        assert_eq!(requested(&headers("3M")), Some(Duration::from_secs(180)));
        assert_eq!(requested(&headers("30S")), Some(Duration::from_secs(30)));
        assert_eq!(
            requested(&headers("250m")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(requested(&headers("7u")), Some(Duration::from_micros(7)));
        assert_eq!(requested(&headers("9n")), Some(Duration::from_nanos(9)));
        assert_eq!(requested(&headers("123456789S")), None);
        assert_eq!(requested(&headers("S")), None);
        assert_eq!(requested(&headers("10x")), None);
        assert_eq!(requested(&HeaderMap::new()), None);
    }

    #[test]
    fn bounds_and_defaults_deadlines() {
        let deadlines = Deadlines {
            unary_default: Duration::from_secs(30),
            unary_max: Duration::from_secs(120),
            stream: Duration::from_secs(1800),
        };
        assert_eq!(deadlines.for_call(None, false), Duration::from_secs(30));
        assert_eq!(
            deadlines.for_call(Some(Duration::from_secs(600)), false),
            Duration::from_secs(120)
        );
        assert_eq!(
            deadlines.for_call(Some(Duration::from_secs(5)), false),
            Duration::from_secs(5)
        );
        assert_eq!(deadlines.for_call(None, true), Duration::from_secs(1800));
        assert_eq!(
            deadlines.for_call(Some(Duration::from_secs(600)), true),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn writes_milliseconds_then_seconds() {
        let mut written = HeaderMap::new();
        rewrite(&mut written, Duration::from_secs(30));
        assert_eq!(written.get(GRPC_TIMEOUT).expect("set"), "30000m");
        rewrite(&mut written, Duration::from_secs(200_000));
        assert_eq!(written.get(GRPC_TIMEOUT).expect("set"), "200000S");
    }
}
