//! The officials' registry as the services that act on households keep it
//! (civil affairs, the hub): the links between the officials who handle
//! dibao or sit on village committees and their close relatives, from the
//! roster comparison's `OfficialLinksChanged` events. An officer does not
//! sign for, decide on or verify a household they or a registered relative
//! belong to (优亲厚友, seed 001).

use deadpool_postgres::{GenericClient, Pool};
use dibao_proto::common::v1::IdentityNumber;
use dibao_proto::events::v1::OfficialLinksChanged;

use crate::Error;
use crate::store::db::{DbError, Migration, cached};
use crate::trust::officer::Officer;

pub const MIGRATIONS: &[Migration] = &[(
    "0001_official_relative",
    "CREATE TABLE IF NOT EXISTS official_relative (
         division text NOT NULL,
         official text NOT NULL,
         person   text NOT NULL,
         relation text NOT NULL,
         PRIMARY KEY (division, official, person)
     );
     CREATE INDEX IF NOT EXISTS official_relative_by_official ON official_relative (official);",
)];

/// Creates the registry's table (component `officials`).
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    crate::store::db::migrate(pool, "officials", MIGRATIONS).await
}

fn value(i: &Option<IdentityNumber>) -> String {
    i.as_ref().map(|i| i.value.clone()).unwrap_or_default()
}

/// Applies a change of the registry, in the inbox's transaction.
pub async fn apply(tx: &impl GenericClient, e: &OfficialLinksChanged) -> Result<(), tokio_postgres::Error> {
    let division = e.division.as_ref().map(|d| d.code.clone()).unwrap_or_default();
    for l in &e.removed {
        cached::execute(
            tx,
            "DELETE FROM official_relative WHERE division = $1 AND official = $2 AND person = $3",
            &[&division, &value(&l.official), &value(&l.person)],
        )
        .await?;
    }
    for l in &e.added {
        cached::execute(
            tx,
            "INSERT INTO official_relative (division, official, person, relation) VALUES ($1, $2, $3, $4)
             ON CONFLICT (division, official, person) DO UPDATE SET relation = $4",
            &[&division, &value(&l.official), &value(&l.person), &l.relation],
        )
        .await?;
    }
    Ok(())
}

/// Whether the officer, or a close relative of theirs on the registry, is
/// among `persons` (identity numbers).
pub async fn involved(client: &impl GenericClient, officer: &Officer, persons: &[String]) -> Result<bool, Error> {
    let Some(me) = &officer.identity_number else { return Ok(false) };
    if persons.iter().any(|p| p == me.as_str()) {
        return Ok(true);
    }
    Ok(client
        .query_opt(
            "SELECT 1 FROM official_relative WHERE official = $1 AND person = ANY($2) LIMIT 1",
            &[&me.as_str(), &persons],
        )
        .await?
        .is_some())
}
