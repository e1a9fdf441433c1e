//! The officer registry's queries: who an officer is (roles, division,
//! status), their credentials and lock-out state, the append-only record
//! of every change and of every login attempt.

use deadpool_postgres::GenericClient;
use dibao_platform::Error;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::types::{DivisionCode, IdentityNumber};
use time::OffsetDateTime;
use tokio_postgres::Row;

/// Whether an officer may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "active" { Status::Active } else { Status::Disabled }
    }
}

/// An officer as the registry holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Officer {
    pub officer_id: String,
    pub name: String,
    pub roles: Vec<OfficerRole>,
    pub division: DivisionCode,
    pub status: Status,
    pub identity_number: Option<IdentityNumber>,
    pub oidc_subject: Option<String>,
    pub locked_until: Option<OffsetDateTime>,
}

/// An officer with what their login is checked against.
pub struct LoginRow {
    pub officer: Officer,
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub last_totp_step: i64,
    pub failed_attempts: i32,
}

const COLUMNS: &str = "officer_id, name, roles, division, status, identity_number, oidc_subject, locked_until";

pub fn roles_of(values: &[i32]) -> Vec<OfficerRole> {
    values.iter().filter_map(|r| OfficerRole::try_from(*r).ok()).filter(|r| *r != OfficerRole::Unspecified).collect()
}

fn officer_of(row: &Row) -> Result<Officer, Error> {
    let id: String = row.get("officer_id");
    let division: String = row.get("division");
    Ok(Officer {
        division: DivisionCode::parse(&division)
            .map_err(|_| Error::stored(format!("officer {id}: division {division}")))?,
        name: row.get("name"),
        roles: roles_of(&row.get::<_, Vec<i32>>("roles")),
        status: Status::parse(row.get("status")),
        identity_number: row.get::<_, Option<String>>("identity_number").and_then(|i| IdentityNumber::parse(&i).ok()),
        oidc_subject: row.get("oidc_subject"),
        locked_until: row.get("locked_until"),
        officer_id: id,
    })
}

fn role_values(roles: &[OfficerRole]) -> Vec<i32> {
    roles.iter().map(|r| *r as i32).collect()
}

#[tracing::instrument(skip(client))]
pub async fn get(client: &impl GenericClient, officer_id: &str) -> Result<Option<Officer>, Error> {
    let row = client.query_opt(&format!("SELECT {COLUMNS} FROM officer WHERE officer_id = $1"), &[&officer_id]).await?;
    row.as_ref().map(officer_of).transpose()
}

#[tracing::instrument(skip(client))]
pub async fn by_oidc_subject(client: &impl GenericClient, subject: &str) -> Result<Option<Officer>, Error> {
    let row = client.query_opt(&format!("SELECT {COLUMNS} FROM officer WHERE oidc_subject = $1"), &[&subject]).await?;
    row.as_ref().map(officer_of).transpose()
}

/// The officer and their credentials, locked for this login's transaction.
#[tracing::instrument(skip(client))]
pub async fn for_login(client: &impl GenericClient, officer_id: &str) -> Result<Option<LoginRow>, Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS}, password_hash, totp_secret, last_totp_step, failed_attempts
                 FROM officer WHERE officer_id = $1 FOR UPDATE"
            ),
            &[&officer_id],
        )
        .await?;
    row.map(|r| {
        Ok(LoginRow {
            officer: officer_of(&r)?,
            password_hash: r.get("password_hash"),
            totp_secret: r.get("totp_secret"),
            last_totp_step: r.get("last_totp_step"),
            failed_attempts: r.get("failed_attempts"),
        })
    })
    .transpose()
}

/// A failed attempt: counted, and the account locked until `locked_until` if given.
pub async fn record_failure(
    client: &impl GenericClient,
    officer_id: &str,
    locked_until: Option<OffsetDateTime>,
) -> Result<(), Error> {
    client
        .execute(
            "UPDATE officer SET failed_attempts = CASE WHEN $2::timestamptz IS NULL THEN failed_attempts + 1 ELSE 0 END,
                                locked_until = coalesce($2, locked_until)
             WHERE officer_id = $1",
            &[&officer_id, &locked_until],
        )
        .await?;
    Ok(())
}

/// A successful login: the failures forgotten, the TOTP step used up.
pub async fn record_success(client: &impl GenericClient, officer_id: &str, totp_step: i64) -> Result<(), Error> {
    client
        .execute(
            "UPDATE officer SET failed_attempts = 0, locked_until = NULL, last_totp_step = $2 WHERE officer_id = $1",
            &[&officer_id, &totp_step],
        )
        .await?;
    Ok(())
}

/// One login attempt, kept for the audit whatever its outcome.
pub async fn record_login(
    client: &impl GenericClient,
    officer_id: &str,
    outcome: &str,
    via: &str,
    peer: &str,
    at: OffsetDateTime,
) -> Result<(), Error> {
    client
        .execute(
            "INSERT INTO login_event (officer_id, outcome, via, client, at) VALUES ($1, $2, $3, $4, $5)",
            &[&officer_id, &outcome, &via, &peer, &at],
        )
        .await?;
    Ok(())
}

pub async fn insert(
    client: &impl GenericClient,
    o: &Officer,
    password_hash: &str,
    sealed_totp: &[u8],
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let inserted = client
        .execute(
            "INSERT INTO officer (officer_id, name, roles, division, status, identity_number, oidc_subject,
                                  password_hash, totp_secret, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (officer_id) DO NOTHING",
            &[
                &o.officer_id,
                &o.name,
                &role_values(&o.roles),
                &o.division.as_str(),
                &o.status.as_str(),
                &o.identity_number.as_ref().map(IdentityNumber::as_str),
                &o.oidc_subject,
                &password_hash,
                &sealed_totp,
                &now,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// Name, roles, division, status, identity number and OIDC subject as `o` has them.
pub async fn update(client: &impl GenericClient, o: &Officer, now: OffsetDateTime) -> Result<(), Error> {
    client
        .execute(
            "UPDATE officer SET name = $2, roles = $3, division = $4, status = $5, identity_number = $6,
                                oidc_subject = $7, updated_at = $8
             WHERE officer_id = $1",
            &[
                &o.officer_id,
                &o.name,
                &role_values(&o.roles),
                &o.division.as_str(),
                &o.status.as_str(),
                &o.identity_number.as_ref().map(IdentityNumber::as_str),
                &o.oidc_subject,
                &now,
            ],
        )
        .await?;
    Ok(())
}

/// New credentials; the lock and the failures forgotten.
pub async fn set_credentials(
    client: &impl GenericClient,
    officer_id: &str,
    password_hash: &str,
    sealed_totp: &[u8],
    now: OffsetDateTime,
) -> Result<(), Error> {
    client
        .execute(
            "UPDATE officer SET password_hash = $2, totp_secret = $3, last_totp_step = 0, failed_attempts = 0,
                                locked_until = NULL, updated_at = $4
             WHERE officer_id = $1",
            &[&officer_id, &password_hash, &sealed_totp, &now],
        )
        .await?;
    Ok(())
}

/// A new password, the officer's own.
pub async fn set_password(
    client: &impl GenericClient,
    officer_id: &str,
    hash: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    client
        .execute(
            "UPDATE officer SET password_hash = $2, updated_at = $3 WHERE officer_id = $1",
            &[&officer_id, &hash, &now],
        )
        .await?;
    Ok(())
}

/// A change to the registry, with who made it.
pub async fn record_change(
    client: &impl GenericClient,
    officer_id: &str,
    changed_by: &str,
    change: &str,
    division: &DivisionCode,
    at: OffsetDateTime,
) -> Result<(), Error> {
    client
        .execute(
            "INSERT INTO officer_change (officer_id, changed_by, change, division, at) VALUES ($1, $2, $3, $4, $5)",
            &[&officer_id, &changed_by, &change, &division.as_str(), &at],
        )
        .await?;
    Ok(())
}

/// A page of the officers inside `prefix`, by id.
#[tracing::instrument(skip(client))]
pub async fn list(client: &impl GenericClient, prefix: &str, after: &str, limit: i64) -> Result<Vec<Officer>, Error> {
    client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM officer WHERE starts_with(division, $1) AND officer_id > $2
                 ORDER BY officer_id LIMIT $3"
            ),
            &[&prefix, &after, &limit],
        )
        .await?
        .iter()
        .map(officer_of)
        .collect()
}

/// A recorded change.
pub struct Change {
    pub seq: i64,
    pub officer_id: String,
    pub changed_by: String,
    pub change: String,
    pub at: OffsetDateTime,
}

/// A page of the changes inside `prefix` (one officer's, given one).
#[tracing::instrument(skip(client))]
pub async fn changes(
    client: &impl GenericClient,
    prefix: &str,
    officer_id: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<Change>, Error> {
    Ok(client
        .query(
            "SELECT seq, officer_id, changed_by, change, at FROM officer_change
             WHERE starts_with(division, $1) AND ($2::text IS NULL OR officer_id = $2) AND seq > $3
             ORDER BY seq LIMIT $4",
            &[&prefix, &officer_id, &after, &limit],
        )
        .await?
        .iter()
        .map(|r| Change {
            seq: r.get("seq"),
            officer_id: r.get("officer_id"),
            changed_by: r.get("changed_by"),
            change: r.get("change"),
            at: r.get("at"),
        })
        .collect())
}

/// Whether the registry holds anyone (the first administrator is created
/// by the bootstrap command, only into an empty registry).
pub async fn is_empty(client: &impl GenericClient) -> Result<bool, Error> {
    Ok(client.query_opt("SELECT 1 FROM officer LIMIT 1", &[]).await?.is_none())
}
