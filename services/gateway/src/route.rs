//! Where the gateway sends a call: a backend over HTTP/2, or a service in the same process.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use lrs_server::host::InProcess;
use tonic::body::Body;
use tonic::transport::Channel;

/// One area's backend.
#[derive(Debug, Clone)]
pub enum Route {
    /// A backend at a URL, over a lazily connecting channel (`lrs serve gateway`).
    Remote(Channel),
    /// A service hosted in the gateway's own process (`lrs up`): the call skips HTTP/2 framing
    /// and the socket, and passes the service's own call layer as a call over TCP does.
    InProcess(InProcess),
}

impl tower::Service<http::Request<Body>> for Route {
    type Response = http::Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Route::Remote(channel) => channel.poll_ready(cx).map_err(Into::into),
            Route::InProcess(service) => service.poll_ready(cx).map_err(|never| match never {}),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Route::Remote(channel) => {
                let answer = channel.call(request);
                Box::pin(async move { Ok(answer.await?) })
            }
            Route::InProcess(service) => {
                let answer = service.call(request);
                Box::pin(async move { answer.await.map_err(|never| match never {}) })
            }
        }
    }
}
