//! `learner-bench`: the learner service on PostgreSQL with millions of synthetic learners,
//! called through the gateway as integrators call it.
//!
//! Loads the learners with `COPY` in chunks (unless `--skip-load` reuses a loaded database),
//! starts a stand-in identity service, the learner service and the gateway on 127.0.0.1 in a
//! runtime of their own (as `lrs up` runs them), and measures from a second runtime, as a
//! separate client process would call, with several concurrent clients for a fixed time each:
//!
//! - the baseline round trip: a bare tonic server answering an echo call;
//! - `GetLearner` by ULN and names, through the gateway and straight to the learner service;
//! - `FindLearnersByDemographics` (one search in five with a misspelt family name), through
//!   the gateway and straight to the learner service;
//! - the baselines in SQL: the store's ULN lookup (with linked ULNs, as `GetLearner` reads it)
//!   and its candidate query, called directly from the clients' runtime on a pool of its own
//!   with the same keys and settings, and the very same statements run by `pgbench`
//!   (skipped with `--no-pgbench`, or when `pgbench` is not on the path);
//! - the echo call and `GetLearner` through the gateway once more with one client, whose
//!   latency has no queueing in it.
//!
//! It prints a Markdown table of throughput and latency percentiles and the ratios of each
//! RPC to its baselines. Timings are never asserted: this is a report, not a test.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p lrs-bench --bin learner-bench -- --learners 2000000
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use lrs_fields::codes::AbilityToShare;
use lrs_fields::date::SystemClock;
use lrs_fields::uln::Uln;
use lrs_gateway::{Gateway, GatewayConfig};
use lrs_learner::domain::{BlockingKeys, LearnerDetails};
use lrs_learner::store::{LearnerStore, NewLearner, PostgresLearnerStore};
use lrs_learner::{Learner, LearnerConfig};
use lrs_proto::learner::v1 as pb;
use lrs_proto::learner::v1::learner_service_client::LearnerServiceClient;
use lrs_server::auth::{Authenticator, IdentityKeySource};
use lrs_server::config::{LogOutput, TelemetryConfig};
use lrs_server::host::ServiceHost;
use lrs_server::testing::{EchoClient, EchoService, RunningHost, TestIdentity};
use lrs_store::{Database, DatabaseConfig};
use lrs_synthetic::{Learners, SyntheticLearner};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;

/// Measures the learner service against baselines measured in the same run.
#[derive(Debug, Parser)]
struct Args {
    /// PostgreSQL admin URL; the benchmark creates (or reuses) its own database beside it.
    #[arg(long = "database-url", env = "DATABASE_URL")]
    database_url: String,
    /// The benchmark's database.
    #[arg(long = "database", default_value = "lrs_bench_learner")]
    database: String,
    /// How many synthetic learners to load.
    #[arg(long = "learners", default_value_t = 2_000_000)]
    learners: usize,
    /// Reuse the database loaded by an earlier run with the same seed and count.
    #[arg(long = "skip-load")]
    skip_load: bool,
    /// Concurrent clients.
    #[arg(long = "clients", default_value_t = 8)]
    clients: usize,
    /// How long each workload runs (after a one-second warm-up).
    #[arg(long = "duration", default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The synthetic learners' seed.
    #[arg(long = "seed", default_value_t = 1)]
    seed: u64,
    /// Leave out the `pgbench` baselines.
    #[arg(long = "no-pgbench")]
    no_pgbench: bool,
    /// Worker threads of the suite's runtime (services, gateways, echo server). By default
    /// what `lrs up` starts: one per core, or `TOKIO_WORKER_THREADS`.
    #[arg(long = "suite-threads")]
    suite_threads: Option<usize>,
    /// Worker threads of the clients' runtime, apart from the suite's.
    #[arg(long = "client-threads", default_value_t = 1)]
    client_threads: usize,
    /// Run only the workloads whose name contains this text (to profile one), and print
    /// their rows without the baselines' ratios.
    #[arg(long = "only")]
    only: Option<String>,
    /// Logging and tracing, as `lrs up` sets them up (its spans cost each call the same),
    /// except that log lines always go to standard error, apart from the report.
    #[command(flatten)]
    telemetry: TelemetryConfig,
}

/// What a search or lookup needs of a loaded learner.
#[derive(Debug, Clone)]
struct Sample {
    uln: Uln,
    learner: SyntheticLearner,
}

/// One in this many loaded learners is kept as a sample to look up.
const SAMPLE_EVERY: usize = 100;
/// Learners per COPY.
const CHUNK: usize = 20_000;

fn details(learner: &SyntheticLearner) -> LearnerDetails {
    LearnerDetails {
        title: None,
        given_name: learner.given_name.clone(),
        preferred_given_name: None,
        middle_names: None,
        family_name: learner.family_name.clone(),
        previous_family_name: None,
        family_name_at_16: None,
        school_at_16: None,
        address_line_1: None,
        address_line_2: None,
        address_town: None,
        address_county_or_city: None,
        postcode: learner.postcode.clone(),
        date_of_address_capture: None,
        date_of_birth: learner.date_of_birth,
        place_of_birth: None,
        email_address: None,
        gender: learner.gender,
        nationality: None,
        scottish_candidate_number: None,
        verification_type: 0,
        other_verification_description: None,
        ability_to_share: AbilityToShare::NoticeSeen,
        notes: None,
        upn: learner.upn.clone(),
        uci: learner.uci.clone(),
    }
}

/// The synthetic stream without learners whose five keys repeat an earlier one (which the
/// register's unique index would refuse), in chunks.
fn chunks(args: &Args) -> impl Iterator<Item = Vec<(SyntheticLearner, LearnerDetails)>> {
    let mut seen = HashSet::new();
    let mut stream = Learners::new(args.seed)
        .map(|learner| {
            let details = details(&learner);
            (learner, details)
        })
        .filter(move |(_, details)| {
            let mut hasher = DefaultHasher::new();
            details.match_keys().hash(&mut hasher);
            seen.insert(hasher.finish())
        })
        .take(args.learners);
    std::iter::from_fn(move || {
        let chunk: Vec<_> = stream.by_ref().take(CHUNK).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

async fn prepare(args: &Args) -> anyhow::Result<(Database, Vec<Sample>)> {
    let url = url_with_database(&args.database_url, &args.database)?;
    if !args.skip_load {
        let mut admin = PgConnection::connect(&args.database_url).await?;
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", args.database);
        admin.execute(drop.as_str()).await?;
        let create = format!("CREATE DATABASE \"{}\"", args.database);
        admin.execute(create.as_str()).await?;
        admin.close().await?;
    }
    let database = lrs_store::connect(&DatabaseConfig::postgres(url), "learner").await?;
    database
        .migrate(
            &lrs_learner::POSTGRES_MIGRATIONS,
            &lrs_learner::SQLITE_MIGRATIONS,
        )
        .await?;
    let Database::Postgres(postgres) = &database else {
        anyhow::bail!("the benchmark needs PostgreSQL");
    };
    let store = PostgresLearnerStore::new(postgres.pool().clone());

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut loaded = 0usize;
    let at = chrono::Utc::now();
    for chunk in chunks(args) {
        for (index, (learner, _)) in chunk.iter().enumerate() {
            if (loaded + index).is_multiple_of(SAMPLE_EVERY) {
                samples.push(Sample {
                    uln: learner.uln,
                    learner: learner.clone(),
                });
            }
        }
        if !args.skip_load {
            let rows: Vec<NewLearner> = chunk
                .into_iter()
                .map(|(learner, details)| NewLearner {
                    uln: learner.uln,
                    details,
                    registered_by: None,
                    request_id: None,
                    at,
                })
                .collect();
            loaded += rows.len();
            store.copy_learners(&rows).await?;
            if loaded % 200_000 < CHUNK {
                eprintln!("loaded {loaded} learners in {:.1?}", started.elapsed());
            }
        } else {
            loaded += chunk.len();
        }
    }
    if !args.skip_load {
        postgres.pool().execute("ANALYZE learners").await?;
        eprintln!("loaded {loaded} learners in {:.1?}", started.elapsed());
    }
    Ok((database, samples))
}

fn url_with_database(admin: &str, database: &str) -> anyhow::Result<String> {
    let (base, _) = admin
        .rsplit_once('/')
        .context("the database URL has no database part")?;
    Ok(format!("{base}/{database}"))
}

/// The latencies and rate of one workload.
struct Measured {
    name: &'static str,
    clients: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Measured {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[index]
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `call` from `clients` tasks for `duration` (after a warm-up), recording latencies.
async fn measure<F, Fut>(
    name: &'static str,
    clients: usize,
    duration: Duration,
    call: F,
) -> anyhow::Result<Measured>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    for phase in [Duration::from_secs(1), duration] {
        let deadline = Instant::now() + phase;
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                let call = call.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut round = client;
                    while Instant::now() < deadline {
                        let start = Instant::now();
                        call(round).await?;
                        latencies.push(start.elapsed());
                        round += clients;
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        if phase == duration {
            latencies.sort_unstable();
            return Ok(Measured {
                name,
                clients,
                latencies,
                elapsed: started.elapsed(),
            });
        }
    }
    anyhow::bail!("no measurement phase ran")
}

fn search(sample: &Sample, typo: bool) -> pb::DemographicSearch {
    let learner = &sample.learner;
    let gender = match learner.gender {
        lrs_fields::codes::Gender::NotKnown => lrs_proto::types::v1::Gender::NotKnown,
        lrs_fields::codes::Gender::Male => lrs_proto::types::v1::Gender::Male,
        lrs_fields::codes::Gender::Female => lrs_proto::types::v1::Gender::Female,
        lrs_fields::codes::Gender::NotSpecified => lrs_proto::types::v1::Gender::NotSpecified,
    };
    use chrono::Datelike;
    pb::DemographicSearch {
        given_name: learner.given_name.clone(),
        family_name: if typo {
            format!("{}e", learner.family_name)
        } else {
            learner.family_name.clone()
        },
        date_of_birth: Some(lrs_proto::types::v1::Date {
            year: learner.date_of_birth.year(),
            month: learner.date_of_birth.month() as i32,
            day: learner.date_of_birth.day() as i32,
        }),
        gender: gender as i32,
        postcode: learner.postcode.clone(),
        ..pb::DemographicSearch::default()
    }
}

/// Signs requests with the benchmark user's token.
#[derive(Clone)]
struct Bearer(Arc<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self(Arc::new(format!("Bearer {token}").parse()?)))
    }

    fn sign<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", (*self.0).clone());
        request
    }
}

/// The clients' view of the running suite: channels to the gateway over the network (as
/// `lrs serve gateway` runs), to a second gateway calling the learner service in-process (as
/// `lrs up` runs), to the learner service itself and to a bare tonic echo server; the store on
/// a pool of the clients' own, for the SQL baselines; and the benchmark user's token.
struct Suite {
    gateway: Arc<Vec<Channel>>,
    gateway_in_process: Arc<Vec<Channel>>,
    learner: Arc<Vec<Channel>>,
    echo: Arc<Vec<Channel>>,
    store: Arc<dyn LearnerStore>,
    bearer: Bearer,
    hosts: [RunningHost; 2],
}

/// Where the suite listens, once started on its runtime.
struct Started {
    gateway: String,
    gateway_in_process: String,
    learner: String,
    echo: String,
    token: String,
    hosts: [RunningHost; 2],
}

/// Channels to `url`: a few HTTP/2 connections, so that clients do not all share one.
async fn channels(url: &str, clients: usize) -> anyhow::Result<Arc<Vec<Channel>>> {
    let mut channels = Vec::new();
    for _ in 0..clients.clamp(1, 4) {
        channels.push(Channel::from_shared(url.to_owned())?.connect().await?);
    }
    Ok(Arc::new(channels))
}

/// Starts the suite on `runtime` (everything it spawns runs there, with a database pool of
/// its own) and connects the clients to it from the current runtime.
async fn start_suite(
    runtime: &Handle,
    database_url: &str,
    store: Arc<dyn LearnerStore>,
    clients: usize,
) -> anyhow::Result<Suite> {
    let started = runtime
        .spawn(serve_suite(database_url.to_owned()))
        .await??;
    Ok(Suite {
        gateway: channels(&started.gateway, clients).await?,
        gateway_in_process: channels(&started.gateway_in_process, clients).await?,
        learner: channels(&started.learner, clients).await?,
        echo: channels(&started.echo, clients).await?,
        store,
        bearer: Bearer::new(&started.token)?,
        hosts: started.hosts,
    })
}

/// Starts the stand-in identity service, the learner service (on a pool of its own), both
/// gateways and the echo server on the current runtime, each on a free loopback port.
async fn serve_suite(database_url: String) -> anyhow::Result<Started> {
    let database = lrs_store::connect(&DatabaseConfig::postgres(database_url), "learner").await?;
    let identity = TestIdentity::new(3600);
    let identity_host =
        RunningHost::start(ServiceHost::new("identity").add_service(identity.clone())).await;
    let authenticator = Authenticator::new(IdentityKeySource::new(identity_host.channel()));
    let learner = Learner::open(
        &database,
        &LearnerConfig::default(),
        Arc::new(SystemClock),
        authenticator,
    )
    .await?;
    let learner_host =
        RunningHost::start(ServiceHost::new("learner").add_service(learner.grpc_service())).await;

    let config = GatewayConfig {
        route_identity: Some(identity_host.url()),
        route_learner: Some(learner_host.url()),
        // The benchmark is one organisation calling as fast as it can.
        rate_limit_per_second: 1_000_000,
        rate_limit_burst: 1_000_000,
        ..GatewayConfig::default()
    };
    let gateway = serve_gateway(Gateway::new(&config)?).await?;
    let in_process = ServiceHost::new("learner")
        .add_service(learner.grpc_service())
        .build()?;
    in_process.readiness().set_serving().await;
    let gateway_in_process = serve_gateway(
        Gateway::new(&config)?.with_in_process_route("learner", in_process.in_process()),
    )
    .await?;

    let echo_listener = TcpListener::bind("127.0.0.1:0").await?;
    let echo = format!("http://{}", echo_listener.local_addr()?);
    let echo_server = tonic::transport::Server::builder()
        .add_service(EchoService::new())
        .serve_with_incoming(TcpListenerStream::new(echo_listener));
    tokio::spawn(echo_server);

    Ok(Started {
        gateway,
        gateway_in_process,
        learner: learner_host.url(),
        echo,
        token: identity.token(&TestIdentity::user_claims(ORGANISATION)),
        hosts: [identity_host, learner_host],
    })
}

/// Serves `gateway` on a free loopback port; answers its URL.
async fn serve_gateway(gateway: Gateway) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(gateway.serve(listener, Duration::from_secs(1), std::future::pending()));
    Ok(url)
}

/// The organisation the benchmark user belongs to.
const ORGANISATION: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001";

/// Spreads rounds over the samples.
fn pick(samples: &[Sample], round: usize) -> &Sample {
    &samples[round.wrapping_mul(2_654_435_761) % samples.len()]
}

/// The workloads of one run: each measured from `clients` concurrent callers for `duration`.
struct Workloads<'a> {
    suite: &'a Suite,
    samples: &'a Arc<Vec<Sample>>,
    duration: Duration,
    only: Option<&'a str>,
}

/// Where a workload's calls go.
#[derive(Clone, Copy)]
enum Target {
    Gateway,
    GatewayInProcess,
    Learner,
}

impl Workloads<'_> {
    /// Measures `call` as [`measure`] does, or answers no calls when `--only` leaves it out.
    async fn measure<F, Fut>(
        &self,
        name: &'static str,
        clients: usize,
        call: F,
    ) -> anyhow::Result<Measured>
    where
        F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send,
    {
        if self.only.is_some_and(|only| !name.contains(only)) {
            return Ok(Measured {
                name,
                clients,
                latencies: Vec::new(),
                elapsed: Duration::ZERO,
            });
        }
        measure(name, clients, self.duration, call).await
    }

    fn channels(&self, target: Target) -> Arc<Vec<Channel>> {
        Arc::clone(match target {
            Target::Gateway => &self.suite.gateway,
            Target::GatewayInProcess => &self.suite.gateway_in_process,
            Target::Learner => &self.suite.learner,
        })
    }

    async fn echo(&self, name: &'static str, clients: usize) -> anyhow::Result<Measured> {
        let channels = Arc::clone(&self.suite.echo);
        self.measure(name, clients, move |round| {
            let channel = channels[round % channels.len()].clone();
            async move {
                EchoClient::new(channel).echo("lrs").await?;
                Ok(())
            }
        })
        .await
    }

    async fn get_learner(
        &self,
        name: &'static str,
        target: Target,
        clients: usize,
    ) -> anyhow::Result<Measured> {
        let (channels, samples) = (self.channels(target), Arc::clone(self.samples));
        let bearer = self.suite.bearer.clone();
        self.measure(name, clients, move |round| {
            let channel = channels[round % channels.len()].clone();
            let sample = pick(&samples, round);
            let request = bearer.sign(pb::GetLearnerRequest {
                uln: sample.uln.to_string(),
                given_name: sample.learner.given_name.clone(),
                family_name: sample.learner.family_name.clone(),
                find_type: pb::FindType::Full as i32,
            });
            async move {
                let answer = LearnerServiceClient::new(channel)
                    .get_learner(request)
                    .await?;
                anyhow::ensure!(answer.into_inner().outcome == pb::MatchOutcome::ExactMatch as i32);
                Ok(())
            }
        })
        .await
    }

    async fn find(
        &self,
        name: &'static str,
        target: Target,
        clients: usize,
    ) -> anyhow::Result<Measured> {
        let (channels, samples) = (self.channels(target), Arc::clone(self.samples));
        let bearer = self.suite.bearer.clone();
        self.measure(name, clients, move |round| {
            let channel = channels[round % channels.len()].clone();
            let request = bearer.sign(pb::FindLearnersByDemographicsRequest {
                search: Some(search(pick(&samples, round), round % 5 == 4)),
            });
            async move {
                LearnerServiceClient::new(channel)
                    .find_learners_by_demographics(request)
                    .await?;
                Ok(())
            }
        })
        .await
    }

    /// The store's statement for `GetLearner`, called directly.
    async fn uln_lookups(&self, name: &'static str, clients: usize) -> anyhow::Result<Measured> {
        let (store, samples) = (Arc::clone(&self.suite.store), Arc::clone(self.samples));
        self.measure(name, clients, move |round| {
            let (store, uln) = (Arc::clone(&store), pick(&samples, round).uln);
            async move {
                store
                    .learners_with_links(&[uln])
                    .await?
                    .pop()
                    .context("a loaded learner")?;
                Ok(())
            }
        })
        .await
    }

    /// The store's candidate query, called directly with a search's keys.
    async fn candidate_queries(
        &self,
        name: &'static str,
        clients: usize,
    ) -> anyhow::Result<Measured> {
        let (store, samples) = (Arc::clone(&self.suite.store), Arc::clone(self.samples));
        let cap = LearnerConfig::default().blocking_cap;
        self.measure(name, clients, move |round| {
            let store = Arc::clone(&store);
            let keys = blocking_keys(pick(&samples, round));
            async move {
                store.candidates(&[keys], cap).await?;
                Ok(())
            }
        })
        .await
    }
}

fn blocking_keys(sample: &Sample) -> BlockingKeys {
    BlockingKeys::of(&details(&sample.learner).match_profile())
}

/// The same statements as the store's, run by `pgbench` with each transaction picking a
/// sample's keys from a table first (`\gset`); the statement's own mean latency is read from
/// pgbench's per-statement report.
struct Pgbench {
    name: &'static str,
    mean: Duration,
    transactions_per_second: f64,
}

async fn pgbench_baselines(
    url: &str,
    schema: &str,
    pool: &PgPool,
    samples: &[Sample],
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Vec<Pgbench>> {
    let literal = |value: &dyn std::fmt::Display| format!("{{\"{value}\"}}");
    pool.execute(
        "DROP TABLE IF EXISTS bench_samples; CREATE TABLE bench_samples (i int PRIMARY KEY, \
         ulns text, p1 text, p2 text, p3 text, p4 text, p5 text, p6 text, p7 text, p8 text, \
         p9 text, p10 text)",
    )
    .await?;
    let mut columns: [Vec<String>; 10] = Default::default();
    let mut ulns = Vec::new();
    for sample in samples {
        let keys = blocking_keys(sample);
        let values: [&dyn std::fmt::Display; 10] = [
            &keys.date_of_birth,
            &keys.family_phonetic,
            &keys.date_of_birth,
            &keys.given_phonetic,
            &keys.date_of_birth,
            &keys.family_initial,
            &keys.family_phonetic,
            &keys.given_phonetic,
            &keys.birth_year,
            &keys.postcode,
        ];
        for (column, value) in columns.iter_mut().zip(values) {
            column.push(literal(value));
        }
        ulns.push(format!("{{{}}}", sample.uln));
    }
    let ordinals: Vec<i32> = (1..=i32::try_from(samples.len())?).collect();
    let mut insert = sqlx::query(
        "INSERT INTO bench_samples SELECT * FROM UNNEST($1::int[], $2::text[], $3::text[], \
         $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
         $11::text[], $12::text[])",
    )
    .bind(ordinals)
    .bind(ulns);
    for column in columns {
        insert = insert.bind(column);
    }
    insert.execute(pool).await?;

    let mut candidates = PostgresLearnerStore::candidates_statement();
    for n in (1..=11).rev() {
        candidates = candidates.replace(&format!("${n}"), &format!(":p{n}"));
    }
    let by_uln = PostgresLearnerStore::learners_with_links_statement().replace("$1", ":ulns");
    let pick = format!("\\set i random(1, {})\n", samples.len());
    let cap = LearnerConfig::default().blocking_cap;
    let scripts = [
        (
            "pgbench: the same ULN lookup with links",
            format!("{pick}SELECT ulns FROM bench_samples WHERE i = :i \\gset\n{by_uln};\n"),
        ),
        (
            "pgbench: the same candidate query",
            format!(
                "{pick}\\set p11 {cap}\nSELECT p1, p2, p3, p4, p5, p6, p7, p8, p9, p10 FROM \
                 bench_samples WHERE i = :i \\gset\n{candidates};\n"
            ),
        ),
    ];
    let folder = std::env::temp_dir().join(format!("lrs-learner-bench-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let mut results = Vec::new();
    for (index, (name, script)) in scripts.into_iter().enumerate() {
        let path = folder.join(format!("script-{index}.sql"));
        std::fs::write(&path, script)?;
        // The sessions are set up as the service's are: its schema, generic plans.
        let output = Command::new("pgbench")
            .env(
                "PGOPTIONS",
                format!("-c search_path={schema},public -c plan_cache_mode=force_generic_plan"),
            )
            .args(["--no-vacuum", "--protocol=prepared", "--report-per-command"])
            .arg(format!("--client={clients}"))
            .arg(format!("--jobs={}", clients.min(2)))
            .arg(format!("--time={}", duration.as_secs().max(1)))
            .arg(format!("--file={}", path.display()))
            .arg(url)
            .output()
            .context("running pgbench")?;
        let report = String::from_utf8_lossy(&output.stdout);
        anyhow::ensure!(
            output.status.success(),
            "pgbench failed: {}{}",
            report,
            String::from_utf8_lossy(&output.stderr)
        );
        results.push(parse_pgbench(name, &report)?);
    }
    std::fs::remove_dir_all(&folder)?;
    pool.execute("DROP TABLE bench_samples").await?;
    Ok(results)
}

/// Reads the transactions per second and the mean latency of the script's last statement
/// from a `pgbench --report-per-command` report.
fn parse_pgbench(name: &'static str, report: &str) -> anyhow::Result<Pgbench> {
    let transactions_per_second = report
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .context("pgbench reported no tps")?
        .parse()?;
    let milliseconds: f64 = report
        .lines()
        .skip_while(|line| !line.starts_with("statement latencies"))
        .filter(|line| !line.trim().is_empty())
        .last()
        .and_then(|line| line.split_whitespace().next())
        .with_context(|| format!("pgbench reported no statement latencies:\n{report}"))?
        .parse()?;
    Ok(Pgbench {
        name,
        mean: Duration::from_secs_f64(milliseconds / 1000.0),
        transactions_per_second,
    })
}

/// Candidates per search over 200 samples, sorted.
async fn candidate_counts(
    store: &dyn LearnerStore,
    samples: &[Sample],
) -> anyhow::Result<Vec<usize>> {
    let cap = LearnerConfig::default().blocking_cap;
    let mut sizes = Vec::new();
    for round in 0..200 {
        let keys = blocking_keys(pick(samples, round * 7919));
        sizes.push(store.candidates(&[keys], cap).await?.len());
    }
    sizes.sort_unstable();
    Ok(sizes)
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut suite = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.suite_threads {
        suite.worker_threads(threads);
    }
    let suite = suite.thread_name("lrs-suite").enable_all().build()?;
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    clients.block_on(run(args, suite.handle()))
}

async fn run(args: Args, suite_runtime: &Handle) -> anyhow::Result<()> {
    // The report owns standard output; the suite's log lines go to standard error.
    let telemetry = TelemetryConfig {
        log_output: LogOutput::Stderr,
        ..args.telemetry.clone()
    };
    let _telemetry = lrs_server::telemetry::init(&telemetry, "learner-bench")?;
    let (database, samples) = prepare(&args).await?;
    let samples = Arc::new(samples);
    anyhow::ensure!(!samples.is_empty(), "no learners to look up");
    let Database::Postgres(postgres) = &database else {
        anyhow::bail!("the benchmark needs PostgreSQL");
    };
    let store = Arc::new(PostgresLearnerStore::new(postgres.pool().clone()));
    let url = url_with_database(&args.database_url, &args.database)?;
    let suite = start_suite(suite_runtime, &url, store, args.clients).await?;
    let (clients, duration) = (args.clients, args.duration);
    let workloads = Workloads {
        suite: &suite,
        samples: &samples,
        duration,
        only: args.only.as_deref(),
    };
    let echo = workloads.echo("tonic echo (bare server)", clients).await?;
    let get_gateway = workloads
        .get_learner(
            "GetLearner (FULL), through the gateway",
            Target::Gateway,
            clients,
        )
        .await?;
    let get_in_process = workloads
        .get_learner(
            "GetLearner (FULL), through the gateway, in-process route",
            Target::GatewayInProcess,
            clients,
        )
        .await?;
    let get_direct = workloads
        .get_learner(
            "GetLearner (FULL), straight to the learner service",
            Target::Learner,
            clients,
        )
        .await?;
    let uln_sql = workloads
        .uln_lookups("SQL: ULN lookup with links (store)", clients)
        .await?;
    let find_gateway = workloads
        .find(
            "FindLearnersByDemographics, through the gateway",
            Target::Gateway,
            clients,
        )
        .await?;
    let find_in_process = workloads
        .find(
            "FindLearnersByDemographics, through the gateway, in-process route",
            Target::GatewayInProcess,
            clients,
        )
        .await?;
    let find_direct = workloads
        .find(
            "FindLearnersByDemographics, straight to the learner service",
            Target::Learner,
            clients,
        )
        .await?;
    let candidates_sql = workloads
        .candidate_queries("SQL: candidate query (store)", clients)
        .await?;
    let echo_one = workloads
        .echo("tonic echo (bare server), 1 client", 1)
        .await?;
    let get_one = workloads
        .get_learner(
            "GetLearner (FULL), through the gateway, 1 client",
            Target::Gateway,
            1,
        )
        .await?;
    let get_in_process_one = workloads
        .get_learner(
            "GetLearner (FULL), through the gateway, in-process route, 1 client",
            Target::GatewayInProcess,
            1,
        )
        .await?;
    let get_direct_one = workloads
        .get_learner(
            "GetLearner (FULL), straight to the learner service, 1 client",
            Target::Learner,
            1,
        )
        .await?;
    let uln_sql_one = workloads
        .uln_lookups("SQL: ULN lookup with links (store), 1 client", 1)
        .await?;

    let pgbench_found = Command::new("pgbench").arg("--version").output().is_ok();
    let pgbench = if args.no_pgbench || args.only.is_some() || !pgbench_found {
        Err(anyhow::anyhow!("not run"))
    } else {
        pgbench_baselines(
            &url,
            "learner",
            postgres.pool(),
            &samples,
            clients,
            duration,
        )
        .await
    };
    let counts = candidate_counts(&*suite.store, &samples).await?;

    let mut report = String::new();
    writeln!(report, "| workload | clients | calls/s | p50 | p95 | p99 |")?;
    writeln!(report, "|---|---:|---:|---:|---:|---:|")?;
    for m in [
        &echo,
        &get_gateway,
        &get_in_process,
        &get_direct,
        &uln_sql,
        &find_gateway,
        &find_in_process,
        &find_direct,
        &candidates_sql,
        &echo_one,
        &get_one,
        &get_in_process_one,
        &get_direct_one,
        &uln_sql_one,
    ]
    .into_iter()
    .filter(|m| !m.latencies.is_empty())
    {
        writeln!(
            report,
            "| {} | {} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs |",
            m.name,
            m.clients,
            m.rate(),
            micros(m.percentile(0.50)),
            micros(m.percentile(0.95)),
            micros(m.percentile(0.99)),
        )?;
    }
    if args.only.is_some() {
        return finish(suite, &report).await;
    }
    for p in pgbench.iter().flatten() {
        writeln!(
            report,
            "| {} (mean of the statement; tps counts the sample pick too) | {clients} | {:.0} | {:.0} µs mean | | |",
            p.name,
            p.transactions_per_second,
            micros(p.mean),
        )?;
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    writeln!(report)?;
    writeln!(
        report,
        "- GetLearner through the gateway, 1 client: p50 {:.0} µs (target at most 300 µs); \
         {:.2} × the bare echo p50",
        micros(get_one.percentile(0.5)),
        ratio(get_one.percentile(0.5), echo_one.percentile(0.5)),
    )?;
    writeln!(
        report,
        "- GetLearner through the gateway, {clients} clients: p50 {:.0} µs; {:.2} × the bare \
         echo p50; {:.2} × the store's ULN lookup p50",
        micros(get_gateway.percentile(0.5)),
        ratio(get_gateway.percentile(0.5), echo.percentile(0.5)),
        ratio(get_gateway.percentile(0.5), uln_sql.percentile(0.5)),
    )?;
    writeln!(
        report,
        "- FindLearnersByDemographics through the gateway: p95 {:.0} µs (target at most \
         5,000 µs) at {:.0} searches/s (target at least 2,000); p95 {:.2} × the candidate \
         query's p95; {:.3} × the bare echo's calls/s",
        micros(find_gateway.percentile(0.95)),
        find_gateway.rate(),
        ratio(
            find_gateway.percentile(0.95),
            candidates_sql.percentile(0.95)
        ),
        find_gateway.rate() / echo.rate(),
    )?;
    writeln!(
        report,
        "- the same through the gateway's in-process route (`lrs up`): GetLearner p50 {:.0} µs \
         with 1 client, {:.0} µs with {clients}; Find p95 {:.0} µs at {:.0} searches/s",
        micros(get_in_process_one.percentile(0.5)),
        micros(get_in_process.percentile(0.5)),
        micros(find_in_process.percentile(0.95)),
        find_in_process.rate(),
    )?;
    for p in pgbench.iter().flatten() {
        writeln!(
            report,
            "- {}: mean {:.0} µs, {:.0} transactions/s",
            p.name,
            micros(p.mean),
            p.transactions_per_second
        )?;
    }
    if let Err(error) = &pgbench {
        writeln!(report, "- pgbench baselines: {error:#}")?;
    }
    writeln!(
        report,
        "- candidates per search (200 samples): median {}, p95 {}, max {}",
        counts[counts.len() / 2],
        counts[counts.len() * 95 / 100],
        counts[counts.len() - 1]
    )?;
    writeln!(
        report,
        "- {} learners, {:?} per workload, {} cores; the suite on {} worker threads, the \
         clients on {}",
        args.learners,
        duration,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        suite_runtime.metrics().num_workers(),
        args.client_threads,
    )?;
    finish(suite, &report).await
}

/// Stops the suite's hosts, so that on a terminal their last log lines come before the
/// report, and prints the report.
async fn finish(suite: Suite, report: &str) -> anyhow::Result<()> {
    for host in suite.hosts {
        host.stop().await?;
    }
    print!("{report}");
    Ok(())
}
