//! Who signed what, and when (R-PROC-2): the signed records of an
//! application, or of a household and all its applications, read back with
//! the assertion that proved each officer and the digest of what they signed.

use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of;
use dibao_platform::runtime::access::Reader;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{DivisionCode as PbDivision, OfficerSignature};
use dibao_proto::labels::Label;
use dibao_proto::types::{DivisionCode, InvalidField};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::application::ProcessError;
use crate::households::{HouseholdError, Roster};

fn entry(row: &Row, action: String) -> pb::HistoryEntry {
    let step: i32 = row.get("step");
    pb::HistoryEntry {
        application_id: row.get::<_, Option<Uuid>>("application_id").map(|u| u.to_string()).unwrap_or_default(),
        action,
        step,
        approve: row.get("approve"),
        remarks: row.get("remarks"),
        officer: Some(OfficerSignature {
            officer_id: row.get("officer_id"),
            officer_name: row.get("officer_name"),
            role: row.get("role"),
            division: Some(PbDivision { code: row.get("division") }),
            signed_at: Some(timestamp_of(row.get("signed_at"))),
        }),
        assertion_id: row.get::<_, Option<String>>("assertion_id").unwrap_or_default(),
        issuer: row.get::<_, Option<String>>("issuer").unwrap_or_default(),
        digest: row.get::<_, Option<String>>("digest").unwrap_or_default(),
    }
}

/// The village of a household, when it exists.
async fn village(
    client: &impl tokio_postgres::GenericClient,
    household_id: Uuid,
) -> Result<Option<DivisionCode>, Error> {
    Ok(client
        .query_opt("SELECT village FROM household WHERE household_id = $1", &[&household_id])
        .await?
        .and_then(|r| DivisionCode::parse(r.get("village")).ok()))
}

pub async fn history(
    roster: &Roster,
    reader: &Reader,
    req: pb::GetHistoryRequest,
) -> Result<pb::GetHistoryResponse, Error> {
    let client = roster.pool.get().await?;
    let parse = |raw: &str, field: &str| {
        Uuid::parse_str(raw.trim()).map_err(|_| Error::from(InvalidField::new(field, "编号格式不正确")))
    };
    let (household_id, application): (Uuid, Option<Uuid>) = match &req.of {
        Some(pb::get_history_request::Of::ApplicationId(a)) => {
            let id = parse(a, "application_id")?;
            let household = client
                .query_opt("SELECT household_id FROM application WHERE application_id = $1", &[&id])
                .await?
                .ok_or(ProcessError::ApplicationNotFound(id))?
                .get("household_id");
            (household, Some(id))
        }
        Some(pb::get_history_request::Of::HouseholdId(h)) => (parse(h, "household_id")?, None),
        None => return Err(InvalidField::new("of", "请指定申请编号或家庭编号").into()),
    };
    // To an officer of another division, neither is there.
    if !village(&**client, household_id).await?.is_some_and(|v| reader.covers(&v)) {
        return Err(match application {
            Some(id) => ProcessError::ApplicationNotFound(id).into(),
            None => HouseholdError::NotFound(household_id).into(),
        });
    }
    let steps = client
        .query(
            "SELECT s.application_id, s.step, s.approve, s.remarks, s.officer_id, s.officer_name, s.role, s.division,
                    s.signed_at, s.assertion_id, s.issuer, s.digest
             FROM application_step s JOIN application a USING (application_id)
             WHERE a.household_id = $1 AND ($2::uuid IS NULL OR a.application_id = $2)
             ORDER BY s.id",
            &[&household_id, &application],
        )
        .await?;
    let mut entries: Vec<pb::HistoryEntry> = steps
        .iter()
        .map(|r| {
            let step = pb::ProcessStep::try_from(r.get::<_, i32>("step")).unwrap_or(pb::ProcessStep::Unspecified);
            entry(r, step.label().to_owned())
        })
        .collect();
    if application.is_none() {
        let reviews = client
            .query(
                "SELECT NULL::uuid AS application_id, 0 AS step, true AS approve, remarks, officer_id, officer_name,
                        role, division, signed_at, assertion_id, issuer, digest, explanation
                 FROM household_review WHERE household_id = $1 ORDER BY reviewed_on, signed_at",
                &[&household_id],
            )
            .await?;
        entries.extend(reviews.iter().map(|r| entry(r, "复核".to_owned())));
        let deaths = client
            .query(
                "SELECT NULL::uuid AS application_id, 0 AS step, true AS approve, source AS remarks,
                        recorded_by AS officer_id, '' AS officer_name, 0 AS role, '' AS division,
                        recorded_at AS signed_at, assertion_id, NULL::text AS issuer, NULL::text AS digest
                 FROM member_death WHERE household_id = $1 ORDER BY recorded_at",
                &[&household_id],
            )
            .await?;
        entries.extend(deaths.iter().map(|r| entry(r, "死亡登记".to_owned())));
        entries.sort_by_key(|e| e.officer.as_ref().and_then(|o| o.signed_at).map(|t| (t.seconds, t.nanos)));
    }
    Ok(pb::GetHistoryResponse { entries })
}
