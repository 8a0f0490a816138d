//! `batch-bench`: the batch service on PostgreSQL with millions of synthetic learners present.
//!
//! Loads the learners with `COPY` (unless `--skip-load` reuses the database), starts a stand-in
//! identity and the learner service in-process on 127.0.0.1:0, and the batch service with its
//! workers in a process of its own (`lrs serve batch`, the binary beside this one), and
//! measures:
//!
//! - a 5,000-record LRB file (half learners on the register, half new) from the first byte of
//!   `SubmitBatchFile` to the last byte of its output CSV;
//! - beside it, in the same run, the baseline: a raw `COPY` of the same 5,000 rows' matching
//!   keys into a staging table plus one set-based query that finds each row's candidates by
//!   the learner service's blocking keys and counts its exact matches;
//! - a 100,000-record file from submit to output, with the batch process's peak resident
//!   memory (`VmHWM`, reset before the file is submitted).
//!
//! Timings are reported, never asserted.
//!
//! ```text
//! cargo build --release --bin lrs
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p lrs-bench --bin batch-bench -- --learners 2000000
//! ```

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use lrs_fields::codes::AbilityToShare;
use lrs_fields::date::{Clock, SystemClock};
use lrs_fields::name::{normalise_name, phonetic_key};
use lrs_fields::postcode::Postcode;
use lrs_learner::domain::LearnerDetails;
use lrs_learner::store::{NewLearner, PostgresLearnerStore};
use lrs_learner::{Learner, LearnerConfig};
use lrs_proto::batch::v1 as pb;
use lrs_proto::batch::v1::batch_service_client::BatchServiceClient;
use lrs_server::auth::{Authenticator, Claims, IdentityKeySource, Role};
use lrs_server::client::channel;
use lrs_server::host::ServiceHost;
use lrs_server::testing::{RunningHost, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestIdentity};
use lrs_store::{Database, DatabaseConfig};
use lrs_synthetic::{Learners, SyntheticLearner};
use sqlx::{Connection, Executor, PgConnection};
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Measures batch processing against a baseline measured in the same run.
#[derive(Debug, Parser)]
struct Args {
    /// PostgreSQL admin URL; the benchmark creates (or reuses) its own database beside it.
    #[arg(long = "database-url", env = "DATABASE_URL")]
    database_url: String,
    /// The benchmark's database.
    #[arg(long = "database", default_value = "lrs_bench_batch")]
    database: String,
    /// How many synthetic learners to load.
    #[arg(long = "learners", default_value_t = 2_000_000)]
    learners: usize,
    /// Reuse the database loaded by an earlier run with the same seed and count.
    #[arg(long = "skip-load")]
    skip_load: bool,
    /// The synthetic learners' seed.
    #[arg(long = "seed", default_value_t = 1)]
    seed: u64,
    /// Records of the small file.
    #[arg(long = "small", default_value_t = 5_000)]
    small: usize,
    /// How many small files to time, each of other learners, each after its own baseline.
    #[arg(long = "rounds", default_value_t = 3)]
    rounds: usize,
    /// Records of the large file (0 skips it).
    #[arg(long = "large", default_value_t = 100_000)]
    large: usize,
    /// Batch workers.
    #[arg(long = "workers", default_value_t = 4)]
    workers: usize,
    /// Records per MatchLearners call.
    #[arg(long = "match-size", default_value_t = 500)]
    match_size: usize,
    /// The `lrs` binary that runs the batch service (default: the one beside this benchmark).
    #[arg(long = "lrs-bin")]
    lrs_bin: Option<PathBuf>,
}

/// Learners per COPY.
const CHUNK: usize = 20_000;
/// One in this many loaded learners is kept to put in the files.
const SAMPLE_EVERY: usize = 20;
const ORGANISATION: &str = "0b0c6a0e-2f44-4bb6-9a55-7bd1c1c0c0b1";

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
        verification_type: 1,
        other_verification_description: None,
        ability_to_share: AbilityToShare::NoticeSeen,
        notes: None,
        upn: learner.upn.clone(),
        uci: learner.uci.clone(),
    }
}

fn url_with_database(admin: &str, database: &str) -> anyhow::Result<String> {
    let (base, _) = admin
        .rsplit_once('/')
        .context("the database URL has no database part")?;
    Ok(format!("{base}/{database}"))
}

/// Loads the learners (unless skipped) and answers a sample of them.
async fn prepare(args: &Args, url: &str) -> anyhow::Result<(Database, Vec<SyntheticLearner>)> {
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
    let mut seen = HashSet::new();
    let mut unique = Learners::new(args.seed)
        .filter(move |learner| {
            let mut hasher = DefaultHasher::new();
            details(learner).match_keys().hash(&mut hasher);
            seen.insert(hasher.finish())
        })
        .take(args.learners);
    let mut samples = Vec::new();
    let mut loaded = 0usize;
    let at = chrono::Utc::now();
    loop {
        let chunk: Vec<SyntheticLearner> = unique.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        for (index, learner) in chunk.iter().enumerate() {
            if (loaded + index).is_multiple_of(SAMPLE_EVERY) {
                samples.push(learner.clone());
            }
        }
        loaded += chunk.len();
        if args.skip_load {
            continue;
        }
        let rows: Vec<NewLearner> = chunk
            .iter()
            .map(|learner| NewLearner {
                uln: learner.uln,
                details: details(learner),
                registered_by: None,
                request_id: None,
                at,
            })
            .collect();
        store.copy_learners(&rows).await?;
        if loaded % 200_000 < CHUNK {
            eprintln!("loaded {loaded} learners in {:.1?}", started.elapsed());
        }
    }
    if !args.skip_load {
        postgres.pool().execute("ANALYZE learners").await?;
        eprintln!("loaded {loaded} learners in {:.1?}", started.elapsed());
    }
    Ok((database, samples))
}

/// One learner row of a 2A file.
fn row(number: usize, learner: &SyntheticLearner) -> [String; 26] {
    let mut values: [String; 26] = Default::default();
    values[1] = format!("B{number:06}");
    values[3] = learner.given_name.clone();
    values[6] = learner.family_name.clone();
    values[14] = learner.postcode.clone();
    values[16] = learner.date_of_birth.format("%Y-%m-%d").to_string();
    values[19] = learner.gender.code().to_string();
    values[22] = "1".into();
    values[23] = "1".into();
    values
}

/// The learners of a file: alternately one on the register and one new.
fn file_learners(
    samples: &[SyntheticLearner],
    count: usize,
    offset: usize,
    seed: u64,
) -> Vec<SyntheticLearner> {
    let mut fresh = Learners::new(seed);
    (0..count)
        .map(|index| match index % 2 {
            0 => samples[(offset + index / 2) % samples.len()].clone(),
            _ => fresh
                .next()
                .unwrap_or_else(|| samples[index % samples.len()].clone()),
        })
        .collect()
}

/// Writes a 2A file of `learners` to `path`.
fn write_file(path: &Path, learners: &[SyntheticLearner]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(
        lrs_batch::domain::layout::LRB_2A_HEADINGS
            .join(",")
            .as_bytes(),
    )?;
    out.write_all(b"\r\n")?;
    for (index, learner) in learners.iter().enumerate() {
        let header = if index == 0 {
            [
                "2A".to_owned(),
                "Benchmark".to_owned(),
                "10000001".to_owned(),
                learners.len().to_string(),
            ]
        } else {
            Default::default()
        };
        let cells: Vec<String> = header
            .iter()
            .chain(row(index, learner).iter())
            .map(|cell| format!("\"{}\"", cell.replace('"', "\"\"")))
            .collect();
        out.write_all(cells.join(",").as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    out.flush()?;
    Ok(())
}

fn file_name(minute: u32) -> String {
    format!("LRB_10000001_0312202612{minute:02}.CSV")
}

/// Submits the file at `path`, waits for its job, and reads its output CSV; answers the
/// output's size and the job.
async fn run_file(
    client: &BatchServiceClient<tonic::transport::Channel>,
    token: &str,
    path: &Path,
    name: &str,
) -> anyhow::Result<(usize, pb::BatchJob)> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let mut file = std::fs::File::open(path)?;
    let metadata = pb::SubmitBatchFileRequest {
        content: Some(pb::submit_batch_file_request::Content::Metadata(
            pb::SubmitBatchFileMetadata {
                file: Some(pb::BatchFileMetadata {
                    file_name: name.to_owned(),
                    job_type: pb::JobType::LearnerFindAndRegister as i32,
                }),
                request_id: String::new(),
            },
        )),
    };
    std::thread::spawn(move || {
        if sender.blocking_send(metadata).is_err() {
            return;
        }
        let mut buffer = vec![0u8; 256 * 1024];
        while let Ok(read) = file.read(&mut buffer) {
            if read == 0 {
                return;
            }
            let chunk = pb::SubmitBatchFileRequest {
                content: Some(pb::submit_batch_file_request::Content::Chunk(
                    buffer[..read].to_vec(),
                )),
            };
            if sender.blocking_send(chunk).is_err() {
                return;
            }
        }
    });
    let mut client = client.clone();
    let job = client
        .submit_batch_file(signed(token, ReceiverStream::new(receiver)))
        .await?
        .into_inner()
        .job
        .context("a job")?;

    let mut watch = client
        .watch_batch_job(signed(
            token,
            pb::WatchBatchJobRequest {
                job_id: job.job_id.clone(),
            },
        ))
        .await?
        .into_inner();
    let mut last = job.clone();
    while let Some(state) = watch.message().await? {
        if let Some(state) = state.job {
            last = state;
        }
    }
    anyhow::ensure!(
        last.status == pb::JobStatus::Completed as i32,
        "job ended {}",
        last.status
    );

    let request = pb::GetBatchOutputRequest {
        job_id: job.job_id.clone(),
        format: pb::OutputFormat::Csv as i32,
        after_row: 0,
    };
    let mut output = client
        .get_batch_output(signed(token, request))
        .await?
        .into_inner();
    let mut size = 0;
    while let Some(message) = output.message().await? {
        if let Some(pb::get_batch_output_response::Content::Csv(piece)) = message.content {
            size += piece.data.len();
        }
    }
    Ok((size, last))
}

fn signed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The baseline: COPY the rows' matching keys into a staging table, then one set-based query
/// that reads each row's candidates by the learner service's blocking keys (date of birth
/// with either name's phonetic key or the family initial; both phonetic keys with the year of
/// birth; compact postcode) and counts its exact matches.
async fn baseline(
    url: &str,
    learners: &[SyntheticLearner],
) -> anyhow::Result<(Duration, Duration, i64)> {
    let mut connection = PgConnection::connect(url).await?;
    connection
        .execute("SET search_path TO learner, public")
        .await?;
    connection
        .execute(
            "CREATE TEMP TABLE bench_rows (row_number INTEGER, norm_given TEXT, norm_family TEXT, \
             given_phonetic TEXT, family_phonetic TEXT, date_of_birth DATE, gender SMALLINT, \
             postcode_compact TEXT)",
        )
        .await?;
    let mut text = String::with_capacity(learners.len() * 64);
    for (index, learner) in learners.iter().enumerate() {
        let postcode = Postcode::parse(&learner.postcode)
            .map(|p| p.compact())
            .unwrap_or_default();
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            index + 2,
            normalise_name(&learner.given_name),
            normalise_name(&learner.family_name),
            phonetic_key(&learner.given_name),
            phonetic_key(&learner.family_name),
            learner.date_of_birth,
            learner.gender.code(),
            postcode
        ));
    }
    let started = Instant::now();
    let mut copy = connection
        .copy_in_raw("COPY bench_rows FROM STDIN (FORMAT csv)")
        .await?;
    copy.send(text.as_bytes()).await?;
    copy.finish().await?;
    let copied = started.elapsed();

    let started = Instant::now();
    let blocked = |condition: &str| {
        format!("SELECT b.row_number, l.id FROM bench_rows b JOIN learners l ON {condition}")
    };
    let candidates = [
        "l.date_of_birth = b.date_of_birth AND l.family_phonetic = b.family_phonetic",
        "l.date_of_birth = b.date_of_birth AND l.given_phonetic = b.given_phonetic",
        "l.date_of_birth = b.date_of_birth \
         AND substr(l.norm_family, 1, 1) = substr(b.norm_family, 1, 1)",
        "l.family_phonetic = b.family_phonetic AND l.given_phonetic = b.given_phonetic \
         AND l.birth_year = EXTRACT(YEAR FROM b.date_of_birth)::int",
        "l.postcode_compact = b.postcode_compact",
    ]
    .map(blocked)
    .join(" UNION ");
    let exact: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FILTER (WHERE l.status = 1 AND l.norm_given = b.norm_given \
         AND l.norm_family = b.norm_family AND l.date_of_birth = b.date_of_birth \
         AND l.gender = b.gender AND l.postcode_compact = b.postcode_compact) \
         FROM ({candidates}) c JOIN learners l ON l.id = c.id \
         JOIN bench_rows b ON b.row_number = c.row_number"
    ))
    .fetch_one(&mut connection)
    .await?;
    let matched = started.elapsed();
    connection.close().await?;
    Ok((copied, matched, exact))
}

/// The batch service in a process of its own, `lrs serve batch`, as each service runs in
/// production: its resident memory is the service's alone, not the benchmark's or the learner
/// service's.
struct BatchProcess {
    child: tokio::process::Child,
    pid: u32,
    url: String,
}

impl BatchProcess {
    /// Starts `lrs serve batch` on a free loopback port over the benchmark's database and
    /// waits until its health says SERVING.
    async fn start(
        args: &Args,
        database_url: &str,
        identity_url: &str,
        learner_url: &str,
    ) -> anyhow::Result<Self> {
        let lrs = match &args.lrs_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("lrs"),
        };
        anyhow::ensure!(
            lrs.is_file(),
            "{} does not exist: build it with `cargo build --release --bin lrs`, or name the \
             binary with --lrs-bin",
            lrs.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(&lrs)
            .args(["serve", "batch"])
            .env("LRS_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("LRS_IDENTITY_URL", identity_url)
            .env("LRS_LEARNER_URL", learner_url)
            .env("LRS_CLIENT_ID", TEST_CLIENT_ID)
            .env("LRS_CLIENT_SECRET", TEST_CLIENT_SECRET)
            .env("LRS_BATCH_WORKERS", args.workers.to_string())
            .env("LRS_BATCH_MATCH_SIZE", args.match_size.to_string())
            .env("LRS_BATCH_POLL_INTERVAL", "50ms")
            .env("LRS_BATCH_WATCH_INTERVAL", "20ms")
            .env("LRS_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", lrs.display()))?;
        let pid = child.id().context("the batch process's id")?;
        let mut process = BatchProcess {
            child,
            pid,
            url: format!("http://127.0.0.1:{port}"),
        };
        process.wait_until_serving().await?;
        Ok(process)
    }

    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("lrs serve batch ended at start: {status}");
            }
            let request = HealthCheckRequest {
                service: String::new(),
            };
            if let Ok(answer) = HealthClient::new(self.channel()?).check(request).await
                && answer.into_inner().status == ServingStatus::Serving as i32
            {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "lrs serve batch not serving after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        Ok(channel(&self.url)?)
    }

    /// A memory figure of the process from `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in KiB.
    fn memory_kib(&self, field: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path)?;
        let line = status
            .lines()
            .find(|line| line.starts_with(field))
            .with_context(|| format!("{field} in {path}"))?;
        let kib = line
            .split_whitespace()
            .nth(1)
            .context("a memory value")?
            .parse()?;
        Ok(kib)
    }

    /// Resets the process's peak resident memory to its current one; false when the kernel
    /// does not allow it (the peak then covers the whole run).
    fn reset_peak_memory(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// Asks the process to stop (SIGTERM: it drains) and waits for it.
    async fn stop(mut self) -> anyhow::Result<()> {
        let signalled = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if !signalled.is_ok_and(|status| status.success()) {
            self.child.start_kill()?;
        }
        self.child.wait().await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = url_with_database(&args.database_url, &args.database)?;
    let (learner_database, samples) = prepare(&args, &url).await?;
    anyhow::ensure!(!samples.is_empty(), "no learners to put in the files");

    let identity = TestIdentity::new(3600);
    let identity_host =
        RunningHost::start(ServiceHost::new("identity").add_service(identity.clone())).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let authenticator = Authenticator::new(IdentityKeySource::new(identity_host.channel()));
    let learner = Learner::open(
        &learner_database,
        &LearnerConfig::default(),
        clock.clone(),
        authenticator,
    )
    .await?;
    let learner_host = RunningHost::start(
        ServiceHost::new("learner").add_service(learner.internal_grpc_service()),
    )
    .await;

    let batch = BatchProcess::start(&args, &url, &identity_host.url(), &learner_host.url()).await?;
    let client =
        BatchServiceClient::new(batch.channel()?).max_decoding_message_size(4 * 1024 * 1024);
    let claims = Claims {
        ukprn: Some("10000001".to_owned()),
        roles: vec![Role::BatchUser],
        ..TestIdentity::user_claims(ORGANISATION)
    };
    let token = identity.token(&claims);

    let folder = std::env::temp_dir().join(format!("lrs-batch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let stamp = (chrono::Utc::now().timestamp() % 60) as u32;

    // Warm up: a small file, so connections and tokens are in place.
    let warm = file_learners(&samples, 200, samples.len() / 2, args.seed + 7_000);
    let warm_path = folder.join("warm.CSV");
    write_file(&warm_path, &warm)?;
    run_file(&client, &token, &warm_path, &file_name(stamp)).await?;

    println!(
        "## Batch: {} learners present, {} workers\n",
        args.learners, args.workers
    );
    println!(
        "| round | {}-record file, submit to output ready | baseline: raw COPY of the same rows' \
         keys | baseline: one set-based match query | ratio: file / (COPY + query) |",
        args.small
    );
    println!("|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    let mut files = Vec::new();
    for round in 0..args.rounds {
        let small = file_learners(
            &samples,
            args.small,
            round * args.small,
            args.seed + 1_000 + u64::from(stamp) + round as u64,
        );
        let small_path = folder.join(format!("small-{round}.CSV"));
        write_file(&small_path, &small)?;
        // The baseline first: after the file, the learners it registered would match exactly.
        let (copied, matched, exact) = baseline(&url, &small).await?;
        let started = Instant::now();
        let (output_bytes, job) = run_file(&client, &token, &small_path, &file_name(stamp)).await?;
        let elapsed = started.elapsed();
        let ratio = elapsed.as_secs_f64() / (copied + matched).as_secs_f64();
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {ratio:.2} |",
            round + 1,
            elapsed.as_secs_f64() * 1000.0,
            copied.as_secs_f64() * 1000.0,
            matched.as_secs_f64() * 1000.0,
        );
        ratios.push(ratio);
        files.push((elapsed, output_bytes, job, exact));
    }
    files.sort_by_key(|(elapsed, ..)| *elapsed);
    ratios.sort_by(f64::total_cmp);
    if let Some((elapsed, output_bytes, job, exact)) = files.get(files.len() / 2) {
        let counts = job.counts.unwrap_or_default();
        println!(
            "\nmedian file: {:.0} ms (median ratio {:.2}); {} new ULNs, {} found, {} possible, \
             {} too many, {} rejected, {} duplicates; output {output_bytes} bytes; exact matches \
             seen by its baseline query: {exact}",
            elapsed.as_secs_f64() * 1000.0,
            ratios[ratios.len() / 2],
            counts.new_ulns,
            counts.found,
            counts.possible_matches,
            counts.too_many_matches,
            counts.rejected,
            counts.duplicates
        );
    }

    if args.large > 0 {
        let large = file_learners(
            &samples,
            args.large,
            args.rounds * args.small,
            args.seed + 2_000 + u64::from(stamp),
        );
        let large_path = folder.join("large.CSV");
        write_file(&large_path, &large)?;
        drop(large);
        drop(samples);
        let before = batch.memory_kib("VmRSS:")?;
        let reset = batch.reset_peak_memory();
        let started = Instant::now();
        let (output_bytes, job) =
            run_file(&client, &token, &large_path, &file_name((stamp + 1) % 60)).await?;
        let elapsed = started.elapsed();
        let peak = batch.memory_kib("VmHWM:")?;
        let counts = job.counts.unwrap_or_default();
        println!(
            "\n| {}-record file, submit to output ready | {:.1} s |",
            args.large,
            elapsed.as_secs_f64()
        );
        println!(
            "| peak resident memory during it (VmHWM{}) | {:.1} MiB |",
            if reset {
                ", reset before"
            } else {
                ", whole run"
            },
            peak as f64 / 1024.0
        );
        println!(
            "| resident memory just before it | {:.1} MiB |",
            before as f64 / 1024.0
        );
        println!(
            "\nlarge file: {} new ULNs, {} found, {} possible, {} too many; output {output_bytes} bytes",
            counts.new_ulns, counts.found, counts.possible_matches, counts.too_many_matches
        );
    }

    let _ = std::fs::remove_dir_all(&folder);
    batch.stop().await?;
    learner_host.stop().await?;
    identity_host.stop().await?;
    Ok(())
}
