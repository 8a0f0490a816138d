//! Shared commits for records written on a read path (recent searches, the PLR access audit).
//!
//! Such a record must be durable before the reply, but one commit per request would cost
//! one flush each (0.6 to 1.8 ms) and cap a service near a few hundred reads a second. A
//! [`GroupCommitter`] has one writer task: requests queue their records on a channel, and
//! the writer takes everything that has queued (up to a limit) and writes it through the
//! caller's function in one transaction. While one commit is flushing, the next batch
//! gathers, so batches grow with the load and an idle service waits for nobody.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Limits of a [`GroupCommitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// Records that may wait for the writer; a submitter beyond this waits for room.
    pub queue_capacity: usize,
    /// Most records written in one transaction.
    pub max_batch: usize,
}

/// 1,024 queued records at most, 256 per transaction.
impl Default for GroupCommitOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_batch: 256,
        }
    }
}

/// Why a submitted record was not committed.
#[derive(Debug, thiserror::Error)]
pub enum GroupCommitError<E> {
    /// The write function failed for the batch that held the record; every record of that
    /// batch gets the same error, and none of them is committed.
    #[error("writing the batch of records failed: {0}")]
    Write(#[source] Arc<E>),
    /// The writer task has stopped (it panicked, or the committer was closed), so the record
    /// may not have been written.
    #[error("the group committer has stopped")]
    Stopped,
}

/// A record waiting for the writer, with the channel its submitter waits on.
struct Submission<T, E> {
    record: T,
    answer: oneshot::Sender<Result<(), Arc<E>>>,
}

/// Collects records from many concurrent requests and commits them together.
///
/// Share it behind an `Arc`. Dropping every handle stops the writer once the queued records
/// are written; a submitter whose request is cancelled after submitting still has its record
/// written.
pub struct GroupCommitter<T, E> {
    name: &'static str,
    sender: mpsc::Sender<Submission<T, E>>,
    writer: JoinHandle<()>,
}

impl<T, E> fmt::Debug for GroupCommitter<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommitter")
            .field("name", &self.name)
            .field(
                "queued",
                &(self.sender.max_capacity() - self.sender.capacity()),
            )
            .finish()
    }
}

impl<T, E> GroupCommitter<T, E>
where
    T: Send + 'static,
    E: Send + Sync + 'static,
{
    /// Starts the writer task on the current Tokio runtime. `name` identifies it in logs;
    /// `write` must write all the records it is given in one transaction and return once
    /// that has committed.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime, or with a zero capacity or batch size.
    pub fn spawn<W, F>(name: &'static str, options: GroupCommitOptions, write: W) -> Self
    where
        W: FnMut(Vec<T>) -> F + Send + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        assert!(
            options.queue_capacity > 0 && options.max_batch > 0,
            "group commit limits must be positive"
        );
        let (sender, receiver) = mpsc::channel(options.queue_capacity);
        let writer = tokio::spawn(write_batches(name, receiver, options.max_batch, write));
        Self {
            name,
            sender,
            writer,
        }
    }

    /// Queues `record` and returns once the transaction holding it has committed, or with
    /// the error that transaction failed with.
    pub async fn submit(&self, record: T) -> Result<(), GroupCommitError<E>> {
        let (answer, answered) = oneshot::channel();
        self.sender
            .send(Submission { record, answer })
            .await
            .map_err(|_| GroupCommitError::Stopped)?;

        match answered.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(GroupCommitError::Write(error)),
            Err(_) => Err(GroupCommitError::Stopped),
        }
    }

    /// Stops taking records and waits until the queued ones are written.
    pub async fn close(self) {
        let Self {
            name,
            sender,
            writer,
        } = self;
        drop(sender);
        if let Err(error) = writer.await {
            tracing::error!(committer = name, %error, "group commit writer failed");
        }
    }
}

/// The writer task: takes what has queued, writes it, answers every submitter, until every
/// handle is gone and the queue is empty.
async fn write_batches<T, E, W, F>(
    name: &'static str,
    mut receiver: mpsc::Receiver<Submission<T, E>>,
    max_batch: usize,
    mut write: W,
) where
    W: FnMut(Vec<T>) -> F,
    F: Future<Output = Result<(), E>>,
{
    let mut queued = Vec::with_capacity(max_batch);
    while receiver.recv_many(&mut queued, max_batch).await > 0 {
        let (records, answers): (Vec<T>, Vec<_>) = queued
            .drain(..)
            .map(|submission| (submission.record, submission.answer))
            .unzip();
        let count = records.len();

        let outcome = write(records).await.map_err(Arc::new);

        match &outcome {
            Ok(()) => tracing::debug!(committer = name, records = count, "committed batch"),
            Err(_) => tracing::warn!(committer = name, records = count, "batch write failed"),
        }
        for answer in answers {
            // A submitter that went away still had its record written; nobody to tell.
            let _ = answer.send(outcome.clone());
        }
    }
    tracing::debug!(committer = name, "group commit writer stopped");
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::future::join_all;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    /// The batches a test committer wrote, in commit order.
    type BatchLog = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A committer whose writes take a while (as a flush does) and are logged by batch.
    fn slow_committer(
        options: GroupCommitOptions,
    ) -> (Arc<GroupCommitter<u32, DiskFull>>, BatchLog) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&batches);
        let committer = GroupCommitter::spawn("test", options, move |records: Vec<u32>| {
            let log = Arc::clone(&log);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                log.lock().unwrap().push(records);
                Ok(())
            }
        });
        (Arc::new(committer), batches)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submitters_share_commits() {
        let (committer, batches) = slow_committer(GroupCommitOptions::default());

        let submitters: Vec<_> = (0..200)
            .map(|record| {
                let committer = Arc::clone(&committer);
                tokio::spawn(async move { committer.submit(record).await })
            })
            .collect();
        for submitter in submitters {
            submitter.await.unwrap().unwrap();
        }

        let batches = batches.lock().unwrap();
        let mut written: Vec<u32> = batches.iter().flatten().copied().collect();
        written.sort_unstable();
        assert_eq!(written, (0..200).collect::<Vec<_>>());
        assert!(
            batches.len() < 200,
            "{} commits for 200 records",
            batches.len()
        );
    }

    #[tokio::test]
    async fn batches_stay_within_the_limit() {
        let options = GroupCommitOptions {
            queue_capacity: 64,
            max_batch: 8,
        };
        let (committer, batches) = slow_committer(options);

        let submissions = (0..50).map(|record| committer.submit(record));
        let outcomes = join_all(submissions).await;

        assert!(outcomes.iter().all(Result::is_ok));
        let batches = batches.lock().unwrap();
        assert!(batches.iter().all(|batch| batch.len() <= 8));
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 50);
    }

    #[tokio::test]
    async fn a_failed_write_reaches_every_submitter_of_the_batch() {
        let committer = Arc::new(GroupCommitter::spawn(
            "failing",
            GroupCommitOptions::default(),
            |_: Vec<u32>| async { Err(DiskFull) },
        ));

        let outcomes = join_all((0..20).map(|record| committer.submit(record))).await;

        assert_eq!(outcomes.len(), 20);
        for outcome in outcomes {
            assert!(
                matches!(outcome, Err(GroupCommitError::Write(_))),
                "{outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_panicking_writer_answers_stopped_instead_of_hanging() {
        let committer: GroupCommitter<u32, DiskFull> =
            GroupCommitter::spawn("panicking", GroupCommitOptions::default(), |_| async {
                panic!("writer bug")
            });

        let first = committer.submit(1).await;
        let second = committer.submit(2).await;

        assert!(matches!(first, Err(GroupCommitError::Stopped)));
        assert!(matches!(second, Err(GroupCommitError::Stopped)));
    }

    #[tokio::test]
    async fn close_writes_what_was_queued() {
        let (committer, batches) = slow_committer(GroupCommitOptions::default());
        let committer = Arc::into_inner(committer).unwrap();

        committer.submit(7).await.unwrap();
        committer.close().await;

        assert_eq!(*batches.lock().unwrap(), vec![vec![7]]);
    }
}

#[cfg(test)]
mod database_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sqlx::Executor;

    use super::*;
    use crate::Database;
    use crate::testing::for_each_backend;

    /// Writes a batch of audit rows in one transaction, counting the commits.
    async fn write_audit(
        database: Database,
        commits: Arc<AtomicUsize>,
        records: Vec<i64>,
    ) -> Result<(), sqlx::Error> {
        match database {
            Database::Postgres(postgres) => {
                let mut transaction = postgres.pool().begin().await?;
                sqlx::query("INSERT INTO access_audit (reader) SELECT * FROM UNNEST($1::BIGINT[])")
                    .bind(&records)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await?;
            }
            Database::Sqlite(sqlite) => {
                let mut transaction = sqlite.writer().begin().await?;
                for reader in records {
                    sqlx::query("INSERT INTO access_audit (reader) VALUES (?)")
                        .bind(reader)
                        .execute(&mut *transaction)
                        .await?;
                }
                transaction.commit().await?;
            }
        }
        commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_from_concurrent_requests_are_committed_together() {
        for_each_backend("plr", async |database| {
            let create = "CREATE TABLE access_audit (reader BIGINT NOT NULL)";
            match &database {
                Database::Postgres(postgres) => postgres.pool().execute(create).await.map(drop),
                Database::Sqlite(sqlite) => sqlite.writer().execute(create).await.map(drop),
            }
            .unwrap();
            let commits = Arc::new(AtomicUsize::new(0));
            let writer_database = database.clone();
            let writer_commits = Arc::clone(&commits);
            let committer = Arc::new(GroupCommitter::spawn(
                "access-audit",
                GroupCommitOptions::default(),
                move |records| {
                    write_audit(
                        writer_database.clone(),
                        Arc::clone(&writer_commits),
                        records,
                    )
                },
            ));

            let requests: Vec<_> = (0..100)
                .map(|reader| {
                    let committer = Arc::clone(&committer);
                    tokio::spawn(async move { committer.submit(reader).await })
                })
                .collect();
            for request in requests {
                request.await.unwrap().unwrap();
            }

            let count: i64 = match &database {
                Database::Postgres(postgres) => {
                    sqlx::query_scalar("SELECT COUNT(*) FROM access_audit")
                        .fetch_one(postgres.pool())
                        .await
                        .unwrap()
                }
                Database::Sqlite(sqlite) => sqlx::query_scalar("SELECT COUNT(*) FROM access_audit")
                    .fetch_one(sqlite.reader())
                    .await
                    .unwrap(),
            };
            assert_eq!(count, 100);
            let commits = commits.load(Ordering::SeqCst);
            assert!(
                commits < 100,
                "{commits} commits for 100 records on {}",
                database.backend()
            );
        })
        .await;
    }
}
