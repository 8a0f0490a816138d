//! The gateway's configuration: where each service lives, the rate limit, deadlines and the
//! origins that browsers may call from.

use std::time::Duration;

/// Calls per second allowed to each organisation unless `--rate-limit-per-second` says
/// otherwise.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 200;

/// Calls allowed at once above the average unless `--rate-limit-burst` says otherwise.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 400;

/// Deadline of a unary call that sets none, unless `--default-deadline` says otherwise.
pub const DEFAULT_UNARY_DEADLINE: Duration = Duration::from_secs(30);

/// Longest deadline of a unary call, unless `--max-deadline` says otherwise.
pub const DEFAULT_MAX_DEADLINE: Duration = Duration::from_secs(120);

/// Default and longest deadline of a streaming call, unless `--stream-deadline` says
/// otherwise.
pub const DEFAULT_STREAM_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// A gateway configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    /// There is no identity route, so no token could be verified.
    #[error("--route-identity is required: tokens are verified with identity's keys")]
    MissingIdentityRoute,
    /// A route is not an `http://` or `https://` URL.
    #[error("--route-{area} must be a URL such as http://127.0.0.1:50052, not `{url}`")]
    BadRoute {
        /// The route's area (`learner`).
        area: &'static str,
        /// The value given.
        url: String,
    },
    /// The rate or burst is zero.
    #[error("--rate-limit-per-second and --rate-limit-burst must be at least 1")]
    ZeroRateLimit,
    /// A deadline is zero, or the default exceeds the maximum.
    #[error("deadlines must be positive and --default-deadline at most --max-deadline")]
    Deadlines,
    /// A CORS origin is neither `*` nor an `http(s)://host[:port]` origin.
    #[error("--cors-allow-origin takes `*` or origins such as https://lrs.example, not `{0}`")]
    BadOrigin(String),
}

/// Routes, limits and deadlines of the gateway.
///
/// [`GatewayConfig::default`] is what the flags give when none is set: no routes, and the
/// `DEFAULT_*` constants above, which the flags take their defaults from.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct GatewayConfig {
    /// URL of the identity service (`http://127.0.0.1:50052`). Required: the gateway verifies
    /// tokens with identity's signing keys.
    #[arg(long = "route-identity", env = "LRS_ROUTE_IDENTITY")]
    pub route_identity: Option<String>,

    /// URL of the learner service; its calls are UNIMPLEMENTED when unset.
    #[arg(long = "route-learner", env = "LRS_ROUTE_LEARNER")]
    pub route_learner: Option<String>,

    /// URL of the PLR service; its calls are UNIMPLEMENTED when unset.
    #[arg(long = "route-plr", env = "LRS_ROUTE_PLR")]
    pub route_plr: Option<String>,

    /// URL of the batch service; its calls are UNIMPLEMENTED when unset.
    #[arg(long = "route-batch", env = "LRS_ROUTE_BATCH")]
    pub route_batch: Option<String>,

    /// URL of the challenge service; its calls are UNIMPLEMENTED when unset.
    #[arg(long = "route-challenge", env = "LRS_ROUTE_CHALLENGE")]
    pub route_challenge: Option<String>,

    /// Calls per second allowed to each organisation (or, before sign-in, each client
    /// address), on average.
    #[arg(
        long = "rate-limit-per-second",
        env = "LRS_RATE_LIMIT_PER_SECOND",
        default_value_t = DEFAULT_RATE_LIMIT_PER_SECOND
    )]
    pub rate_limit_per_second: u32,

    /// Calls an organisation may make at once above the average rate.
    #[arg(
        long = "rate-limit-burst",
        env = "LRS_RATE_LIMIT_BURST",
        default_value_t = DEFAULT_RATE_LIMIT_BURST
    )]
    pub rate_limit_burst: u32,

    /// Deadline given to a unary call whose caller set none.
    #[arg(
        long = "default-deadline",
        env = "LRS_DEFAULT_DEADLINE",
        default_value_t = DEFAULT_UNARY_DEADLINE.into()
    )]
    pub default_deadline: humantime::Duration,

    /// Longest deadline a unary call may have; longer ones are shortened to it.
    #[arg(
        long = "max-deadline",
        env = "LRS_MAX_DEADLINE",
        default_value_t = DEFAULT_MAX_DEADLINE.into()
    )]
    pub max_deadline: humantime::Duration,

    /// Deadline of a streaming call (uploads, progress, output) whose caller set none, and
    /// the longest it may have.
    #[arg(
        long = "stream-deadline",
        env = "LRS_STREAM_DEADLINE",
        default_value_t = DEFAULT_STREAM_DEADLINE.into()
    )]
    pub stream_deadline: humantime::Duration,

    /// Origins from which browsers may call over gRPC-Web, comma-separated
    /// (`https://lrs.example,http://localhost:5173`), or `*` for any. None by default: only
    /// pages served from the gateway's own origin, and clients that are not browsers.
    #[arg(
        long = "cors-allow-origin",
        env = "LRS_CORS_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            route_identity: None,
            route_learner: None,
            route_plr: None,
            route_batch: None,
            route_challenge: None,
            rate_limit_per_second: DEFAULT_RATE_LIMIT_PER_SECOND,
            rate_limit_burst: DEFAULT_RATE_LIMIT_BURST,
            default_deadline: DEFAULT_UNARY_DEADLINE.into(),
            max_deadline: DEFAULT_MAX_DEADLINE.into(),
            stream_deadline: DEFAULT_STREAM_DEADLINE.into(),
            cors_allow_origins: Vec::new(),
        }
    }
}

impl GatewayConfig {
    /// The configured routes as `(area, url)`, identity first.
    pub fn routes(&self) -> Vec<(&'static str, &str)> {
        let routes = [
            ("identity", &self.route_identity),
            ("learner", &self.route_learner),
            ("plr", &self.route_plr),
            ("batch", &self.route_batch),
            ("challenge", &self.route_challenge),
        ];
        routes
            .into_iter()
            .filter_map(|(area, url)| url.as_deref().map(|url| (area, url)))
            .collect()
    }

    /// Checks everything that clap's parsing cannot, before anything is bound.
    pub fn validate(&self) -> Result<(), GatewayConfigError> {
        if self.route_identity.is_none() {
            return Err(GatewayConfigError::MissingIdentityRoute);
        }
        for (area, url) in self.routes() {
            let usable = url.starts_with("http://") || url.starts_with("https://");
            if !usable || http::Uri::try_from(url).is_err() {
                return Err(GatewayConfigError::BadRoute {
                    area,
                    url: url.to_owned(),
                });
            }
        }
        if self.rate_limit_per_second == 0 || self.rate_limit_burst == 0 {
            return Err(GatewayConfigError::ZeroRateLimit);
        }
        let (default, max, stream) = (
            self.default_deadline(),
            self.max_deadline(),
            self.stream_deadline(),
        );
        if default.is_zero() || stream.is_zero() || default > max {
            return Err(GatewayConfigError::Deadlines);
        }
        for origin in &self.cors_allow_origins {
            let usable = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && http::HeaderValue::from_str(origin).is_ok());
            if !usable {
                return Err(GatewayConfigError::BadOrigin(origin.clone()));
            }
        }
        Ok(())
    }

    /// See `--default-deadline`.
    pub fn default_deadline(&self) -> Duration {
        self.default_deadline.into()
    }

    /// See `--max-deadline`.
    pub fn max_deadline(&self) -> Duration {
        self.max_deadline.into()
    }

    /// See `--stream-deadline`.
    pub fn stream_deadline(&self) -> Duration {
        self.stream_deadline.into()
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        gateway: GatewayConfig,
    }

    fn parse(args: &[&str]) -> GatewayConfig {
        let args = std::iter::once("lrs").chain(args.iter().copied());
        Command::try_parse_from(args).expect("parses").gateway
    }

    #[test]
    fn default_is_what_the_flags_give_when_none_is_set() {
        // Without the environment variables, so a variable set where the test runs does not
        // count as a default.
        let command = Command::command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(["lrs"]).expect("parses");
        let parsed = Command::from_arg_matches(&matches).expect("parses").gateway;
        assert_eq!(parsed, GatewayConfig::default());
    }

    #[test]
    fn defaults_with_an_identity_route_are_valid() {
        let config = parse(&["--route-identity", "http://127.0.0.1:50052"]);
        assert!(config.validate().is_ok());
        assert_eq!(config.routes(), [("identity", "http://127.0.0.1:50052")]);
        assert_eq!(config.max_deadline(), Duration::from_secs(120));
        assert_eq!(config.stream_deadline(), Duration::from_secs(1800));
    }

    #[test]
    fn bad_values_are_refused() {
        let missing = parse(&[]);
        assert!(matches!(
            missing.validate(),
            Err(GatewayConfigError::MissingIdentityRoute)
        ));

        let bad_route = parse(&["--route-identity", "http://x", "--route-plr", "plr:50053"]);
        let refused = bad_route.validate();
        assert!(matches!(
            refused,
            Err(GatewayConfigError::BadRoute { area: "plr", .. })
        ));

        let deadlines = parse(&["--route-identity", "http://x", "--default-deadline", "5m"]);
        assert!(matches!(
            deadlines.validate(),
            Err(GatewayConfigError::Deadlines)
        ));

        let origin = parse(&[
            "--route-identity",
            "http://x",
            "--cors-allow-origin",
            "evil",
        ]);
        assert!(matches!(
            origin.validate(),
            Err(GatewayConfigError::BadOrigin(_))
        ));
    }
}
