//! Postgres: a pool whose connections live in the service's own schema, and
//! numbered SQL migrations applied by the service itself at start-up.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::ExposeSecret;
use tokio_postgres::NoTls;

use crate::runtime::settings::DatabaseSettings;
use crate::store::pg_tls::VerifyFull;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database.url is not a valid Postgres URL: {0}")]
    Url(tokio_postgres::Error),
    #[error("cannot reach Postgres at {target}: {source}")]
    Connect { target: String, source: deadpool_postgres::PoolError },
    #[error("migration {component}/{name} failed: {source}")]
    Migration { component: String, name: String, source: tokio_postgres::Error },
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("cannot build the pool: {0}")]
    Build(String),
    #[error("{0}")]
    Tls(String),
}

/// One numbered migration: `(name, sql)`, where the name starts with its
/// number (`0001_outbox_inbox`). Applied once, in order, in one transaction each.
pub type Migration = (&'static str, &'static str);

/// Migrations of the platform's own tables (outbox, inbox, dead letters),
/// applied to every service's schema before the service's own.
pub const PLATFORM_MIGRATIONS: &[Migration] = &[
    ("0001_outbox_inbox", include_str!("../../migrations/0001_outbox_inbox.sql")),
    ("0002_consumer_position", include_str!("../../migrations/0002_consumer_position.sql")),
    ("0003_position_event", include_str!("../../migrations/0003_position_event.sql")),
    ("0004_seen_assertion", include_str!("../../migrations/0004_seen_assertion.sql")),
];

/// Connects, creates the schema if needed, and returns a pool whose
/// connections use it as their `search_path`.
pub async fn connect(settings: &DatabaseSettings) -> Result<Pool, DbError> {
    let url = settings.url.expose_secret();
    let mut pg = tokio_postgres::Config::from_str(url).map_err(DbError::Url)?;
    let target = describe(&pg);
    // Each connection starts in the service's schema, so its SQL never names it.
    pg.options(format!("-c search_path={}", settings.schema));
    // Operators (and the benchmarks) see in pg_stat_activity which
    // service each backend serves.
    pg.application_name(format!("dibao-mesh/{}", settings.schema));
    pg.connect_timeout(std::time::Duration::from_secs(5));
    let tls = settings.ca_cert.as_deref().map(VerifyFull::from_ca_file).transpose().map_err(DbError::Tls)?;
    if tls.is_some() {
        pg.ssl_mode(tokio_postgres::config::SslMode::Require);
    }

    // The schema's owner creates it, over a connection without the
    // search_path (it may not exist yet); a runtime role may not.
    if settings.owner_url.is_none() {
        let mut admin = pg.clone();
        admin.options("");
        let bootstrap =
            Pool::builder(manager(admin, &tls)).max_size(1).build().map_err(|e| DbError::Build(e.to_string()))?;
        let client = bootstrap.get().await.map_err(|source| DbError::Connect { target: target.clone(), source })?;
        client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", settings.schema)).await?;
    }

    let manager = manager(pg, &tls);
    let pool =
        Pool::builder(manager).max_size(settings.pool_size).build().map_err(|e| DbError::Build(e.to_string()))?;
    drop(pool.get().await.map_err(|source| DbError::Connect { target, source })?);
    Ok(pool)
}

/// Connections verified against the CA when there is one, plain otherwise.
fn manager(pg: tokio_postgres::Config, tls: &Option<VerifyFull>) -> Manager {
    let config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    match tls {
        Some(tls) => Manager::from_config(pg, tls.clone(), config),
        None => Manager::from_config(pg, NoTls, config),
    }
}

fn describe(pg: &tokio_postgres::Config) -> String {
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", pg.get_dbname().unwrap_or(""))
}

/// Applies `migrations` of `component` that have not run yet. Replicas
/// starting together serialise on an advisory lock.
pub async fn migrate(pool: &Pool, component: &str, migrations: &[Migration]) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.migrations'));
         CREATE TABLE IF NOT EXISTS schema_migrations (
             component text NOT NULL,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (component, name))",
    )
    .await?;
    for (name, sql) in migrations {
        let done = tx
            .query_opt("SELECT 1 FROM schema_migrations WHERE component = $1 AND name = $2", &[&component, name])
            .await?
            .is_some();
        if done {
            continue;
        }
        let fail = |source| DbError::Migration { component: component.to_owned(), name: (*name).to_owned(), source };
        tx.batch_execute(sql).await.map_err(fail)?;
        tx.execute("INSERT INTO schema_migrations (component, name) VALUES ($1, $2)", &[&component, name])
            .await
            .map_err(fail)?;
        tracing::info!(component, migration = name, "migration applied");
    }
    tx.commit().await?;
    Ok(())
}

/// A deployable's migrations of one component (`service`, `access-log`, …).
pub type Component<'a> = (&'a str, &'a [Migration]);

/// Connects and applies the platform's migrations, then each component's.
/// With `owner_url`, as the schema's owner, granting the serving role its
/// rows (and nothing else: it cannot alter a table, and the append-only
/// tables' triggers, which only their owner may disable, refuse it any
/// change); the pool returned serves as that role.
pub async fn connect_and_migrate(settings: &DatabaseSettings, components: &[Component<'_>]) -> Result<Pool, DbError> {
    let Some(owner_url) = &settings.owner_url else {
        let pool = connect(settings).await?;
        apply(&pool, components).await?;
        return Ok(pool);
    };
    let owner =
        connect(&DatabaseSettings { url: owner_url.clone(), owner_url: None, pool_size: 1, ..settings.clone() })
            .await?;
    apply(&owner, components).await?;
    let runtime = tokio_postgres::Config::from_str(settings.url.expose_secret()).map_err(DbError::Url)?;
    let role = runtime.get_user().unwrap_or_default().replace('"', "\"\"");
    owner
        .get()
        .await?
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA {schema} TO \"{role}\";
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO \"{role}\";
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO \"{role}\";",
            schema = settings.schema
        ))
        .await?;
    connect(settings).await
}

async fn apply(pool: &Pool, components: &[Component<'_>]) -> Result<(), DbError> {
    migrate(pool, "platform", PLATFORM_MIGRATIONS).await?;
    for (component, migrations) in components {
        migrate(pool, component, migrations).await?;
    }
    Ok(())
}

/// The next number of a county's household sequence (户编号): the county
/// code and six digits (`220581000001`), from the service's own
/// `household_number_counter` table. The caller checks the number is not
/// already a roster file's, and asks again if it is.
pub async fn next_county_number(
    tx: &impl deadpool_postgres::GenericClient,
    county: &str,
) -> Result<String, tokio_postgres::Error> {
    let next: i64 = tx
        .query_one(
            "INSERT INTO household_number_counter AS c (county, last) VALUES ($1, 1)
             ON CONFLICT (county) DO UPDATE SET last = c.last + 1 RETURNING last",
            &[&county],
        )
        .await?
        .get(0);
    Ok(format!("{county}{next:06}"))
}

/// Statements prepared once per connection and reused: for handlers that run
/// the same few statements per event (the inbox), where preparing each time
/// doubles the round trips.
pub mod cached {
    use deadpool_postgres::GenericClient;
    use tokio_postgres::Row;
    use tokio_postgres::types::ToSql;

    pub async fn execute(
        c: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = c.prepare_cached(sql).await?;
        c.execute(&statement, params).await
    }

    pub async fn query(
        c: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = c.prepare_cached(sql).await?;
        c.query(&statement, params).await
    }

    /// Runs `statements` in order and in one round trip: each is prepared
    /// (once per connection) before any is sent, then all are sent without
    /// waiting for the previous answer; the server still runs them one after
    /// the other, in this order. The rows of each, in order.
    pub async fn pipeline(
        c: &impl GenericClient,
        statements: &[(&str, &[&(dyn ToSql + Sync)])],
    ) -> Result<Vec<Vec<Row>>, tokio_postgres::Error> {
        let mut prepared = Vec::with_capacity(statements.len());
        for (sql, _) in statements {
            prepared.push(c.prepare_cached(sql).await?);
        }
        // try_join_all polls each future once, in order, before waiting on
        // any: each request is queued on the connection in that order.
        futures_util::future::try_join_all(
            prepared.iter().zip(statements).map(|(statement, (_, params))| c.query(statement, params)),
        )
        .await
    }

    pub async fn query_opt(
        c: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = c.prepare_cached(sql).await?;
        c.query_opt(&statement, params).await
    }
}
