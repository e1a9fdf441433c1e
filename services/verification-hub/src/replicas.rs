//! The hub's replicas share each department's rate limit: every replica
//! marks itself alive in PostgreSQL twice a second and paces each
//! department at its rate divided by the replicas alive, so two (or ten)
//! hubs together stay under what the department allows. A replica that
//! stops is forgotten within [`ALIVE_FOR`]; one that starts counts the
//! others at once, and they count it at their next beat.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_platform::runtime::shutdown::Shutdown;
use uuid::Uuid;

use crate::fanout::Departments;

/// How often a replica marks itself alive and counts the others.
pub const BEAT: Duration = Duration::from_millis(500);
/// A replica not seen for this long is no longer counted.
pub const ALIVE_FOR: Duration = Duration::from_secs(2);

/// This replica marked alive; the replicas alive now, itself included.
async fn beat(pool: &Pool, id: Uuid) -> Result<u32, Error> {
    let client = pool.get().await?;
    let alive = format!("{} milliseconds", ALIVE_FOR.as_millis());
    let row = client
        .query_one(
            "WITH me AS (
                 INSERT INTO hub_replica (replica_id) VALUES ($1)
                 ON CONFLICT (replica_id) DO UPDATE SET seen_at = now()
             ), gone AS (
                 DELETE FROM hub_replica WHERE seen_at < now() - interval '1 minute'
             )
             SELECT 1 + count(*) FROM hub_replica WHERE replica_id <> $1 AND seen_at > now() - $2::text::interval",
            &[&id, &alive],
        )
        .await?;
    Ok(u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX))
}

/// Joins the replicas (the departments paced at this replica's share
/// before the first query), then keeps the share up to date until
/// shutdown, when the replica leaves.
pub async fn join(pool: Pool, departments: Arc<Departments>, mut shutdown: Shutdown) -> Result<(), Error> {
    let id = Uuid::now_v7();
    departments.share_among(beat(&pool, id).await?);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(BEAT) => {}
                () = shutdown.wait() => break,
            }
            match beat(&pool, id).await {
                Ok(replicas) => departments.share_among(replicas),
                // Without the database, the last share stands.
                Err(e) => tracing::warn!(error = %e, "replicas not counted"),
            }
        }
        if let Ok(client) = pool.get().await {
            let _ = client.execute("DELETE FROM hub_replica WHERE replica_id = $1", &[&id]).await;
        }
    });
    Ok(())
}
