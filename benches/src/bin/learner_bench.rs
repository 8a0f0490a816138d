//! `learner-bench`: the learner service on PostgreSQL with millions of synthetic learners.
//!
//! Loads the learners with `COPY` in chunks (unless `--skip-load` reuses a loaded database),
//! starts the learner service in-process on 127.0.0.1:0, and measures, with several
//! concurrent clients for a fixed time each:
//!
//! - the baseline round trip: gRPC health `Check` on the same server;
//! - `GetLearner` by ULN and names;
//! - `FindLearnersByDemographics` (one search in five with a misspelt family name);
//! - the baselines in SQL: the store's ULN lookup and its candidate query, called directly
//!   with the same keys and the same pool.
//!
//! It prints a Markdown table of throughput and latency percentiles and the ratios of each
//! RPC to its baselines. Timings are never asserted: this is a report, not a test.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p lrs-bench --bin learner-bench -- --learners 2000000
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lrs_fields::codes::AbilityToShare;
use lrs_fields::date::SystemClock;
use lrs_fields::uln::Uln;
use lrs_learner::domain::{BlockingKeys, LearnerDetails};
use lrs_learner::store::{LearnerStore, NewLearner, PostgresLearnerStore};
use lrs_learner::{Learner, LearnerConfig};
use lrs_proto::learner::v1 as pb;
use lrs_proto::learner::v1::learner_service_client::LearnerServiceClient;
use lrs_server::auth::{
    AuthError, Authenticator, Claims, ISSUER, KeySource, OrganisationKind, PrincipalKind, Role,
    VerifyingKey,
};
use lrs_store::{Database, DatabaseConfig};
use lrs_synthetic::{Learners, SyntheticLearner};
use sqlx::{Connection, Executor, PgConnection};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

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

/// Signs requests with the benchmark user's token.
#[derive(Clone)]
struct Bearer(Arc<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    fn sign<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", (*self.0).clone());
        request
    }
}

struct BenchKeys {
    public_pem: String,
}

#[async_trait::async_trait]
impl KeySource for BenchKeys {
    async fn verifying_keys(&self) -> Result<Vec<VerifyingKey>, AuthError> {
        Ok(vec![VerifyingKey::from_pem("bench", &self.public_pem)?])
    }
}

fn token(signing: &EncodingKey) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: "bench-user".into(),
        exp: now + 3600,
        iat: now,
        jti: "bench".into(),
        kind: PrincipalKind::User,
        org: Some("0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c001".into()),
        org_kind: Some(OrganisationKind::LearnerRegistrationBody),
        ukprn: Some("10000001".into()),
        roles: vec![Role::OnlineUser],
        uln: None,
        pwd_change: false,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("bench".into());
    Ok(jsonwebtoken::encode(&header, &claims, signing)?)
}

/// The latencies and rate of one workload.
struct Measured {
    name: &'static str,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (database, samples) = prepare(&args).await?;
    let samples = Arc::new(samples);
    anyhow::ensure!(!samples.is_empty(), "no learners to look up");

    let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let private = signing.to_pkcs8_pem(LineEnding::LF)?;
    let public_pem = signing.verifying_key().to_public_key_pem(LineEnding::LF)?;
    let signing = EncodingKey::from_ed_pem(private.as_bytes())?;
    let authenticator = Authenticator::new(BenchKeys { public_pem });
    let config = LearnerConfig::default();
    let learner = Learner::open(&database, &config, Arc::new(SystemClock), authenticator).await?;
    let store: Arc<dyn LearnerStore> = Arc::clone(learner.register().store());

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<pb::learner_service_server::LearnerServiceServer<lrs_learner::LearnerGrpc>>()
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(learner.grpc_service());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));

    let endpoint = format!("http://{address}");
    let mut channels = Vec::new();
    for _ in 0..args.clients.clamp(1, 4) {
        channels.push(Channel::from_shared(endpoint.clone())?.connect().await?);
    }
    let channels = Arc::new(channels);
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", token(&signing)?).parse()?;
    let signed = Bearer(Arc::new(bearer));

    let mut results = Vec::new();
    let (clients, duration) = (args.clients, args.duration);

    let pick = |samples: &Arc<Vec<Sample>>, round: usize| {
        let index = (round.wrapping_mul(2_654_435_761)) % samples.len();
        samples[index].clone()
    };

    {
        let channels = Arc::clone(&channels);
        results.push(
            measure(
                "tonic round trip (health Check)",
                clients,
                duration,
                move |round| {
                    let channel = channels[round % channels.len()].clone();
                    async move {
                        let request = HealthCheckRequest {
                            service: String::new(),
                        };
                        HealthClient::new(channel).check(request).await?;
                        Ok(())
                    }
                },
            )
            .await?,
        );
    }
    {
        let (channels, samples, signed) =
            (Arc::clone(&channels), Arc::clone(&samples), signed.clone());
        results.push(
            measure("GetLearner (FULL)", clients, duration, move |round| {
                let channel = channels[round % channels.len()].clone();
                let sample = pick(&samples, round);
                let signed = signed.clone();
                async move {
                    let request = pb::GetLearnerRequest {
                        uln: sample.uln.to_string(),
                        given_name: sample.learner.given_name.clone(),
                        family_name: sample.learner.family_name.clone(),
                        find_type: pb::FindType::Full as i32,
                    };
                    let answer = LearnerServiceClient::new(channel)
                        .get_learner(signed.sign(request))
                        .await?;
                    anyhow::ensure!(
                        answer.into_inner().outcome == pb::MatchOutcome::ExactMatch as i32
                    );
                    Ok(())
                }
            })
            .await?,
        );
    }
    {
        let (store, samples) = (Arc::clone(&store), Arc::clone(&samples));
        results.push(
            measure(
                "SQL: ULN lookup (store, same pool)",
                clients,
                duration,
                move |round| {
                    let (store, sample) = (Arc::clone(&store), pick(&samples, round));
                    async move {
                        store
                            .learner_by_uln(sample.uln)
                            .await?
                            .context("a loaded learner")?;
                        Ok(())
                    }
                },
            )
            .await?,
        );
    }
    {
        let (channels, samples, signed) =
            (Arc::clone(&channels), Arc::clone(&samples), signed.clone());
        results.push(
            measure(
                "FindLearnersByDemographics",
                clients,
                duration,
                move |round| {
                    let channel = channels[round % channels.len()].clone();
                    let sample = pick(&samples, round);
                    let signed = signed.clone();
                    async move {
                        let request = pb::FindLearnersByDemographicsRequest {
                            search: Some(search(&sample, round % 5 == 4)),
                        };
                        LearnerServiceClient::new(channel)
                            .find_learners_by_demographics(signed.sign(request))
                            .await?;
                        Ok(())
                    }
                },
            )
            .await?,
        );
    }
    {
        let (store, samples) = (Arc::clone(&store), Arc::clone(&samples));
        let cap = config.blocking_cap;
        results.push(
            measure(
                "SQL: candidate query (store, same pool)",
                clients,
                duration,
                move |round| {
                    let (store, sample) = (Arc::clone(&store), pick(&samples, round));
                    async move {
                        let profile = details(&sample.learner).match_profile();
                        store.candidates(&[BlockingKeys::of(&profile)], cap).await?;
                        Ok(())
                    }
                },
            )
            .await?,
        );
    }

    let blocking: Vec<usize> = {
        let mut sizes = Vec::new();
        for round in 0..200 {
            let sample = pick(&samples, round * 7919);
            let profile = details(&sample.learner).match_profile();
            sizes.push(
                store
                    .candidates(&[BlockingKeys::of(&profile)], config.blocking_cap)
                    .await?
                    .len(),
            );
        }
        sizes.sort_unstable();
        sizes
    };

    println!("| workload | calls/s | p50 | p95 | p99 |");
    println!("|---|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "| {} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs |",
            m.name,
            m.rate(),
            m.percentile(0.50).as_secs_f64() * 1e6,
            m.percentile(0.95).as_secs_f64() * 1e6,
            m.percentile(0.99).as_secs_f64() * 1e6,
        );
    }
    let [health, get, uln_sql, find, candidates_sql] = &results[..] else {
        anyhow::bail!("five workloads expected");
    };
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!();
    println!(
        "- GetLearner p50 / health p50: {:.2}",
        ratio(get.percentile(0.5), health.percentile(0.5))
    );
    println!(
        "- GetLearner p50 / ULN lookup SQL p50: {:.2}",
        ratio(get.percentile(0.5), uln_sql.percentile(0.5))
    );
    println!(
        "- Find p95 / candidate SQL p95: {:.2}",
        ratio(find.percentile(0.95), candidates_sql.percentile(0.95))
    );
    println!(
        "- Find p95 / health p95: {:.2}",
        ratio(find.percentile(0.95), health.percentile(0.95))
    );
    println!(
        "- Find calls/s / health calls/s: {:.3}",
        find.rate() / health.rate()
    );
    println!(
        "- candidates per search (200 samples): median {}, p95 {}, max {}",
        blocking[blocking.len() / 2],
        blocking[blocking.len() * 95 / 100],
        blocking[blocking.len() - 1]
    );
    println!(
        "- {} learners, {} clients, {:?} per workload, {} cores",
        args.learners,
        clients,
        duration,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    Ok(())
}
