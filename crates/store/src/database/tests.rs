use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor, PgConnection, PgPool, Row, SqlitePool};

use super::*;
use crate::testing::{TestDatabase, admin_url_from_env, for_each_backend};

static POSTGRES_V1: Migrator = sqlx::migrate!("test-migrations/v1/postgres");
static SQLITE_V1: Migrator = sqlx::migrate!("test-migrations/v1/sqlite");
static POSTGRES_V2: Migrator = sqlx::migrate!("test-migrations/v2/postgres");
static SQLITE_V2: Migrator = sqlx::migrate!("test-migrations/v2/sqlite");

/// Runs one statement on whichever pool writes.
async fn execute(database: &Database, sql: &str) -> Result<(), sqlx::Error> {
    match database {
        Database::Postgres(postgres) => postgres.pool().execute(sql).await.map(drop),
        Database::Sqlite(sqlite) => sqlite.writer().execute(sql).await.map(drop),
    }
}

async fn sqlite_pragma(pool: &SqlitePool, name: &str) -> String {
    let row = sqlx::query(&format!("PRAGMA {name}"))
        .fetch_one(pool)
        .await
        .unwrap();
    match row.try_get::<String, _>(0) {
        Ok(text) => text,
        Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
    }
}

#[test]
fn latest_version_is_the_highest_up_migration() {
    assert_eq!(latest_version(&SQLITE_V1), Some(1));
    assert_eq!(latest_version(&POSTGRES_V2), Some(2));
}

#[test]
fn service_names_must_be_plain_identifiers() {
    for good in ["identity", "learner", "batch", "a1_b"] {
        check_service_name(good).unwrap();
    }
    let too_long = "a".repeat(64);
    for bad in [
        "",
        "Learner",
        "1batch",
        "pg_catalog",
        "x-y",
        "a;b",
        "ünï",
        &too_long,
    ] {
        assert!(
            matches!(
                check_service_name(bad),
                Err(StoreError::InvalidServiceName { .. })
            ),
            "{bad:?} was accepted"
        );
    }
}

#[tokio::test]
async fn bad_service_name_is_refused_before_opening() {
    let test = TestDatabase::sqlite().unwrap();
    let error = test.connect("../escape").await.unwrap_err();
    assert!(matches!(error, StoreError::InvalidServiceName { .. }));
    assert!(!test.config().data_dir.exists());
}

#[tokio::test]
async fn sqlite_file_is_created_with_its_settings() {
    let test = TestDatabase::sqlite().unwrap();
    let Database::Sqlite(sqlite) = test.connect("learner").await.unwrap() else {
        panic!("expected SQLite");
    };

    assert_eq!(sqlite.path(), test.config().data_dir.join("learner.db"));
    assert!(sqlite.path().is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&test.config().data_dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        execute(
            &Database::Sqlite(sqlite.clone()),
            "CREATE TABLE t (x INTEGER)",
        )
        .await
        .unwrap();
        let wal = sqlite.path().with_extension("db-wal");
        for file in [sqlite.path().to_owned(), wal] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
    for pool in [sqlite.writer(), sqlite.reader()] {
        assert_eq!(sqlite_pragma(pool, "journal_mode").await, "wal");
        assert_eq!(sqlite_pragma(pool, "synchronous").await, "1");
        assert_eq!(sqlite_pragma(pool, "foreign_keys").await, "1");
        assert_eq!(sqlite_pragma(pool, "busy_timeout").await, "5000");
    }
    assert_eq!(sqlite.writer().options().get_max_connections(), 1);
    assert_eq!(sqlite.reader().options().get_max_connections(), 4);
    test.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_reader_refuses_writes() {
    let test = TestDatabase::sqlite().unwrap();
    let database = test.connect("learner").await.unwrap();
    database.migrate(&POSTGRES_V1, &SQLITE_V1).await.unwrap();
    let Database::Sqlite(sqlite) = &database else {
        panic!("expected SQLite");
    };

    let write = sqlite
        .reader()
        .execute("INSERT INTO visit (id, note) VALUES (1, 'x')")
        .await;
    assert!(write.is_err());
    sqlite
        .writer()
        .execute("INSERT INTO visit (id, note) VALUES (1, 'x')")
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM visit")
        .fetch_one(sqlite.reader())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn data_dir_that_cannot_be_created_is_named_in_the_error() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let config = DatabaseConfig::sqlite(file.join("data"));

    let error = connect(&config, "learner").await.unwrap_err();

    assert!(
        matches!(error, StoreError::CreateDataDir { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("not-a-folder"), "{error}");

    let error = connect(&DatabaseConfig::sqlite(&file), "learner")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::CreateDataDir { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_config_is_refused_before_opening() {
    let error = connect(&DatabaseConfig::postgres("sqlite://x.db"), "learner")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Config(_)), "{error:?}");
}

#[tokio::test]
async fn unreachable_postgres_is_named_without_its_password() {
    let mut config = DatabaseConfig::postgres("postgres://lrs:hunter2@127.0.0.1:1/lrs");
    config.acquire_timeout = Duration::from_secs(1);

    let error = connect(&config, "learner").await.unwrap_err();

    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("postgres://lrs:***@127.0.0.1:1/lrs"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn migrate_reports_versions_and_readiness() {
    for_each_backend("learner", async |database| {
        assert_eq!(database.schema_version().await.unwrap(), None);
        let status = database
            .schema_status(&POSTGRES_V2, &SQLITE_V2)
            .await
            .unwrap();
        assert_eq!(status.applied, None);
        assert_eq!(status.expected, Some(2));
        assert_eq!(status.missing, vec![1, 2]);
        assert!(!status.is_ready());

        let applied = database.migrate(&POSTGRES_V1, &SQLITE_V1).await.unwrap();
        assert_eq!(applied, Some(1));
        let status = database
            .schema_status(&POSTGRES_V2, &SQLITE_V2)
            .await
            .unwrap();
        assert_eq!(status.missing, vec![2]);
        assert!(!status.is_ready());
        let status = database
            .schema_status(&POSTGRES_V1, &SQLITE_V1)
            .await
            .unwrap();
        assert!(status.is_ready());

        let applied = database.migrate(&POSTGRES_V2, &SQLITE_V2).await.unwrap();
        assert_eq!(applied, Some(2));
        assert_eq!(
            database.migrate(&POSTGRES_V2, &SQLITE_V2).await.unwrap(),
            Some(2)
        );
        let status = database
            .schema_status(&POSTGRES_V2, &SQLITE_V2)
            .await
            .unwrap();
        assert!(status.is_ready(), "{status:?}");
        // An older release sees a newer schema as ready.
        let status = database
            .schema_status(&POSTGRES_V1, &SQLITE_V1)
            .await
            .unwrap();
        assert!(status.is_ready(), "{status:?}");
        assert_eq!(status.applied, Some(2));
    })
    .await;
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    for_each_backend("learner", async |database| {
        database.migrate(&POSTGRES_V2, &SQLITE_V2).await.unwrap();

        let orphan = execute(
            &database,
            "INSERT INTO visit_tag (visit_id, tag) VALUES (9, 'x')",
        );
        assert!(orphan.await.is_err(), "{}", database.backend());
        execute(&database, "INSERT INTO visit (id, note) VALUES (9, 'x')")
            .await
            .unwrap();
        execute(
            &database,
            "INSERT INTO visit_tag (visit_id, tag) VALUES (9, 'x')",
        )
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test]
async fn services_migrate_independently() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(test) = TestDatabase::for_backend(backend).await.unwrap() else {
            println!("services_migrate_independently: {backend} skipped");
            continue;
        };
        let learner = test.connect("learner").await.unwrap();
        let identity = test.connect("identity").await.unwrap();

        learner.migrate(&POSTGRES_V2, &SQLITE_V2).await.unwrap();
        identity.migrate(&POSTGRES_V1, &SQLITE_V1).await.unwrap();
        execute(
            &learner,
            "INSERT INTO visit (id, note) VALUES (1, 'learner')",
        )
        .await
        .unwrap();

        assert_eq!(learner.schema_version().await.unwrap(), Some(2));
        assert_eq!(identity.schema_version().await.unwrap(), Some(1));
        let count: i64 = match &identity {
            Database::Postgres(postgres) => sqlx::query_scalar("SELECT COUNT(*) FROM visit")
                .fetch_one(postgres.pool())
                .await
                .unwrap(),
            Database::Sqlite(sqlite) => sqlx::query_scalar("SELECT COUNT(*) FROM visit")
                .fetch_one(sqlite.reader())
                .await
                .unwrap(),
        };
        assert_eq!(count, 0, "identity sees the learner's rows on {backend}");

        learner.close().await;
        identity.close().await;
        test.close().await.unwrap();
    }
}

/// The schema of the table `visit`, as PostgreSQL resolves it.
async fn visit_schema(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'visit'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn postgres_tables_live_in_the_service_schema() {
    let Some(admin_url) = admin_url_from_env() else {
        println!("postgres_tables_live_in_the_service_schema: skipped, DATABASE_URL is not set");
        return;
    };
    let test = TestDatabase::postgres(&admin_url).await.unwrap();
    let database = test.connect("batch").await.unwrap();
    database.migrate(&POSTGRES_V1, &SQLITE_V1).await.unwrap();
    let Database::Postgres(postgres) = &database else {
        panic!("expected PostgreSQL");
    };

    assert_eq!(postgres.schema(), "batch");
    assert_eq!(visit_schema(postgres.pool()).await, "batch");
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(postgres.pool())
        .await
        .unwrap();
    assert_eq!(path, "batch, public");
    let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(postgres.pool())
        .await
        .unwrap();
    assert_eq!(name, "lrs-batch");

    database.close().await;
    test.close().await.unwrap();
}

/// The role-per-service setup in `docs/postgres.md`: a role that owns its schema but may not
/// create schemas migrates; one without a schema gets an error naming it.
#[tokio::test]
async fn postgres_service_role_needs_only_its_own_schema() {
    let Some(admin_url) = admin_url_from_env() else {
        println!(
            "postgres_service_role_needs_only_its_own_schema: skipped, DATABASE_URL is not set"
        );
        return;
    };
    let test = TestDatabase::postgres(&admin_url).await.unwrap();
    let role = format!("lrs_test_role_{}", uuid::Uuid::new_v4().simple());
    let admin = test.connect("admin").await.unwrap();
    let Database::Postgres(admin_postgres) = &admin else {
        panic!("expected PostgreSQL");
    };
    let setup = format!(
        "CREATE ROLE {role} LOGIN; \
         REVOKE CREATE ON DATABASE \"{database}\" FROM PUBLIC; \
         CREATE SCHEMA learner AUTHORIZATION {role};",
        database = url::Url::parse(&test.config().database_url).unwrap().path()[1..].to_owned(),
    );
    admin_postgres.pool().execute(setup.as_str()).await.unwrap();

    let mut url = url::Url::parse(&test.config().database_url).unwrap();
    url.set_username(&role).unwrap();
    let config = DatabaseConfig::postgres(url.to_string());

    let learner = connect(&config, "learner").await.unwrap();
    assert_eq!(
        learner.migrate(&POSTGRES_V1, &SQLITE_V1).await.unwrap(),
        Some(1)
    );
    let Database::Postgres(learner_postgres) = &learner else {
        panic!("expected PostgreSQL");
    };
    assert_eq!(visit_schema(learner_postgres.pool()).await, "learner");

    let batch = connect(&config, "batch").await.unwrap();
    assert_eq!(batch.schema_version().await.unwrap(), None);
    let error = batch.migrate(&POSTGRES_V1, &SQLITE_V1).await.unwrap_err();
    assert!(
        matches!(error, StoreError::CreateSchema { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("`batch`"), "{error}");

    learner.close().await;
    batch.close().await;
    admin.close().await;
    test.close().await.unwrap();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(format!("DROP ROLE {role}").as_str())
        .await
        .unwrap();
}

/// A fresh PostgreSQL test database opened for `service_name` with a pool of one connection,
/// so that every statement runs on the same one; `None` (said on the output) when
/// `DATABASE_URL` is unset. Answers the admin URL beside it.
async fn postgres_with_one_connection(
    service_name: &str,
) -> Option<(String, TestDatabase, Database)> {
    let Some(admin_url) = admin_url_from_env() else {
        println!("skipped, {} is not set", crate::testing::DATABASE_URL);
        return None;
    };
    let test_database = TestDatabase::postgres(&admin_url).await.unwrap();
    let mut config = test_database.config().clone();
    config.max_connections = 1;
    let database = connect(&config, service_name).await.unwrap();
    Some((admin_url, test_database, database))
}

/// A connection used a moment ago is handed out without a ping: one that broke meanwhile
/// fails the statement that finds it, and the pool replaces it for the next.
#[tokio::test]
async fn postgres_broken_connection_fails_one_statement_and_is_replaced() {
    let Some((admin_url, test_database, database)) = postgres_with_one_connection("pings").await
    else {
        return;
    };
    let Database::Postgres(postgres) = &database else {
        panic!("a PostgreSQL database");
    };
    assert!(!postgres.pool().options().get_test_before_acquire());
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(postgres.pool())
        .await
        .unwrap();

    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(terminated);

    let broken = sqlx::query("SELECT 1").execute(postgres.pool()).await;
    assert!(
        broken.is_err(),
        "the broken connection was pinged and replaced first"
    );
    let replaced: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(postgres.pool())
        .await
        .unwrap();
    assert_ne!(replaced, pid);

    admin.close().await.unwrap();
    database.close().await;
    test_database.close().await.unwrap();
}

/// A statement cancelled before its answer came, a stream dropped after its first row and a
/// transaction dropped without commit all leave the connection consistent for the next
/// statement, without a ping on release.
#[tokio::test]
async fn postgres_cancelled_statements_leave_the_connection_consistent() {
    let Some((_, test_database, database)) = postgres_with_one_connection("cancels").await else {
        return;
    };
    let Database::Postgres(postgres) = &database else {
        panic!("a PostgreSQL database");
    };
    let pool = postgres.pool();
    pool.execute("CREATE TABLE numbers (n int)").await.unwrap();

    let slow = sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.3)").fetch_one(pool);
    let cancelled = tokio::time::timeout(Duration::from_millis(50), slow).await;
    assert!(cancelled.is_err(), "the slow statement was cancelled");
    let answer: i32 = sqlx::query_scalar("SELECT 2")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(answer, 2);

    {
        let mut rows =
            sqlx::query_scalar::<_, i32>("SELECT n FROM generate_series(10, 20000) n").fetch(pool);
        let first = futures::TryStreamExt::try_next(&mut rows).await.unwrap();
        assert_eq!(first, Some(10));
    }
    let answer: i32 = sqlx::query_scalar("SELECT 3")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(answer, 3);

    {
        let mut transaction = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO numbers VALUES (1)")
            .execute(&mut *transaction)
            .await
            .unwrap();
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM numbers")
        .fetch_one(pool)
        .await
        .unwrap();
    // On the same, only connection: were the transaction still open, it would see its row.
    assert_eq!(count, 0, "the dropped transaction was rolled back");

    database.close().await;
    test_database.close().await.unwrap();
}
