//! The gRPC service: runs, entries, decisions, open items, exports, and the
//! two registers the lists (f) and (g) are read against.

use std::collections::BTreeMap;
use std::sync::Arc;

use deadpool_postgres::Pool;
use dibao_platform::events::outbox::timestamp_of;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::error::{Error, invalid};
use dibao_proto::common::v1::{self as common, OfficerRole};
use dibao_proto::comparison::v1 as pb;
use dibao_proto::comparison::v1::comparison_service_server::ComparisonService;
use dibao_proto::types::{DivisionCode, IdentityNumber, InvalidField, Signature};
use futures_util::StreamExt;
use tokio::sync::{Mutex, mpsc};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::engine::Kind;
use crate::export;
use crate::rebuild;
use crate::registers;
use crate::run::{Progress, Runs, StoredEntry};

#[derive(Clone)]
pub struct Comparison {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    pub runs: Arc<Runs>,
    /// Roles that see identity numbers in full in exports.
    pub full_identity_roles: Arc<Vec<OfficerRole>>,
    /// One run at a time: a second waits for the first.
    pub running: Arc<Mutex<()>>,
    /// Civil affairs and the poverty office, for `RebuildView`.
    pub civil: Option<Channel>,
    pub poverty: Option<Channel>,
}

fn list_kind(k: Kind) -> pb::ListKind {
    match k {
        Kind::PoorNotDibao => pb::ListKind::PoorNotDibao,
        Kind::DibaoNotPoor => pb::ListKind::DibaoNotPoor,
        Kind::OnBoth => pb::ListKind::OnBoth,
        Kind::MembersDiffer => pb::ListKind::MembersDiffer,
        Kind::FlagMismatch => pb::ListKind::FlagMismatch,
        Kind::DeceasedPaid => pb::ListKind::DeceasedPaid,
        Kind::OfficialRelative => pb::ListKind::OfficialRelative,
    }
}

fn kind_of(k: pb::ListKind) -> Option<Kind> {
    Kind::ALL.into_iter().find(|x| list_kind(*x) == k)
}

fn sizes(sizes: &[i64]) -> Vec<pb::ListSize> {
    Kind::ALL.iter().zip(sizes).map(|(k, n)| pb::ListSize { kind: list_kind(*k) as i32, entries: *n }).collect()
}

fn division_field(d: &Option<common::DivisionCode>, field: &str) -> Result<Option<DivisionCode>, Status> {
    match d {
        Some(d) if !d.code.trim().is_empty() => {
            DivisionCode::try_from(d).map(Some).map_err(|e| invalid(vec![e.within(field)]))
        }
        _ => Ok(None),
    }
}

fn uuid_field(s: &str, field: &str) -> Result<Option<Uuid>, Status> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(s.trim()).map(Some).map_err(|_| invalid(vec![InvalidField::new(field, "批次编号格式有误")]))
}

fn status(e: impl Into<Error>) -> Status {
    e.into().into()
}

/// The run an entry listing or report is on: the one named, else the
/// latest finished run covering `division`.
async fn run_for(
    client: &deadpool_postgres::Object,
    run_id: Option<Uuid>,
    division: &str,
) -> Result<(Uuid, time::Date), Status> {
    let row = match run_id {
        Some(id) => client
            .query_opt("SELECT run_id, as_of FROM comparison_run WHERE run_id = $1 AND finished_at IS NOT NULL", &[&id])
            .await
            .map_err(status)?,
        None => client
            .query_opt(
                "SELECT run_id, as_of FROM comparison_run
                 WHERE finished_at IS NOT NULL AND starts_with($1, scope)
                 ORDER BY finished_at DESC LIMIT 1",
                &[&division],
            )
            .await
            .map_err(status)?,
    };
    row.map(|r| (r.get(0), r.get(1)))
        .ok_or_else(|| status(Error::NotFound("没有找到已完成的比对批次，请先运行比对".to_owned())))
}

fn stored(row: &tokio_postgres::Row) -> StoredEntry {
    let kind: i8 = row.get("kind");
    StoredEntry {
        id: row.get("entry_key"),
        key: String::new(),
        kind: Kind::from_letter(kind as u8 as char).unwrap_or(Kind::OnBoth),
        village: row.get("village"),
        dibao: row.get("dibao"),
        poor: row.get("poor"),
        members: row.get("members"),
        explanation: row.get("explanation"),
    }
}

fn entry_household(s: &str) -> pb::EntryHousehold {
    let mut parts = s.split('|');
    pb::EntryHousehold {
        household_id: parts.next().unwrap_or_default().to_owned(),
        village: parts.next().map(|v| common::DivisionCode { code: v.to_owned() }),
        head_name: parts.next().unwrap_or_default().to_owned(),
        members: parts.next().and_then(|n| n.parse().ok()).unwrap_or(0),
    }
}

/// Who may decide an entry of each list (R-CMP-3): civil affairs' officers
/// for (a) and the lists civil affairs keeps on file, the poverty office for (b).
fn may_decide(kind: Kind, role: OfficerRole) -> bool {
    let civil =
        matches!(role, OfficerRole::TownshipCaseworker | OfficerRole::TownshipReviewer | OfficerRole::CountyApprover);
    match kind {
        Kind::DibaoNotPoor => role == OfficerRole::PovertyOfficer,
        Kind::FlagMismatch | Kind::OnBoth | Kind::MembersDiffer => civil || role == OfficerRole::PovertyOfficer,
        Kind::PoorNotDibao | Kind::DeceasedPaid | Kind::OfficialRelative => civil,
    }
}

impl Comparison {
    /// A list (a) entry ends in an enrolment only through civil affairs'
    /// own application (R-CMP-3): it must exist, be an enrolment that was
    /// not refused, and be for a household sharing a member with the
    /// registered-poor household(s) the entry reported.
    async fn check_enrolment(
        &self,
        client: &deadpool_postgres::Object,
        entry_id: &str,
        application_id: &str,
    ) -> Result<(), Status> {
        use dibao_proto::civil_affairs::v1 as ca;
        use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
        let field = |reason: String| invalid(vec![InvalidField::new("application_id", reason)]);
        if Uuid::parse_str(application_id).is_err() {
            return Err(field("申请编号格式不正确".to_owned()));
        }
        let channel = self.civil.clone().ok_or_else(|| {
            status(Error::FailedPrecondition(
                "未配置民政服务地址（comparison.civil_affairs），无法核对纳入的申请".to_owned(),
            ))
        })?;
        let answer = CivilAffairsServiceClient::new(channel)
            .get_application(ca::GetApplicationRequest { application_id: application_id.to_owned() })
            .await;
        let application = match answer {
            Ok(r) => r.into_inner().application.unwrap_or_default(),
            Err(e) if e.code() == tonic::Code::NotFound => {
                return Err(field(format!("民政部门没有编号为{application_id}的申请")));
            }
            Err(e) => {
                return Err(status(Error::Unavailable(format!("civil affairs GetApplication: {}", e.message()))));
            }
        };
        if application.kind() != ca::ApplicationKind::Enrolment {
            return Err(field(format!("申请{application_id}是退出申请，不是纳入低保或特困的申请")));
        }
        if application.status() == ca::ApplicationStatus::Refused {
            return Err(field(format!("申请{application_id}已被拒绝，不能作为纳入的结论")));
        }
        let poor = entry_members(client, entry_id, "poor").await?;
        let shares = application.household.iter().flat_map(|h| &h.members).any(|m| {
            m.person.as_ref().and_then(|p| p.identity_number.as_ref()).is_some_and(|id| poor.contains(&id.value))
        });
        if !shares {
            return Err(field(format!("申请{application_id}的家庭与该建档立卡户没有相同成员，不是该户的纳入申请")));
        }
        Ok(())
    }

    /// A list (b) entry ends in a registration only through the poverty
    /// office's own roster: `registration` is the registered-poor household
    /// it registered, which must share a member with the entry's dibao
    /// household(s) and not have exited.
    async fn check_registration(
        &self,
        client: &deadpool_postgres::Object,
        entry_id: &str,
        registration: &str,
    ) -> Result<(), Status> {
        use dibao_proto::poverty_alleviation::v1 as pa;
        use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
        let field = |reason: String| invalid(vec![InvalidField::new("application_id", reason)]);
        if Uuid::parse_str(registration).is_err() {
            return Err(field("应填写扶贫部门认定登记的建档立卡户编号，格式不正确".to_owned()));
        }
        let channel = self.poverty.clone().ok_or_else(|| {
            status(Error::FailedPrecondition(
                "未配置扶贫服务地址（comparison.poverty_alleviation），无法核对认定登记".to_owned(),
            ))
        })?;
        let answer = PovertyAlleviationServiceClient::new(channel)
            .get_household(pa::GetHouseholdRequest { household_id: registration.to_owned() })
            .await;
        let household = match answer {
            Ok(r) => r.into_inner().household.unwrap_or_default(),
            Err(e) if e.code() == tonic::Code::NotFound => {
                return Err(field(format!("扶贫部门没有编号为{registration}的建档立卡户")));
            }
            Err(e) => {
                return Err(status(Error::Unavailable(format!("poverty alleviation GetHousehold: {}", e.message()))));
            }
        };
        let dibao = entry_members(client, entry_id, "dibao").await?;
        let shares = household.members.iter().any(|m| {
            m.person.as_ref().and_then(|p| p.identity_number.as_ref()).is_some_and(|id| dibao.contains(&id.value))
        });
        if !shares {
            return Err(field(format!("建档立卡户{registration}与该低保户没有相同成员，不是该户的认定登记")));
        }
        if household.status() == pa::PovertyStatus::Exited {
            return Err(field(format!("建档立卡户{registration}已标注脱贫，不能作为认定的结论")));
        }
        Ok(())
    }
}

/// The members of an entry's households on one side (`dibao` or `poor`),
/// as the latest run reporting the entry saw them, and as they are now.
async fn entry_members(client: &deadpool_postgres::Object, entry_id: &str, side: &str) -> Result<Vec<String>, Status> {
    let column = if side == "dibao" { "dibao" } else { "poor" };
    Ok(client
        .query(
            &format!(
                "WITH latest AS (
                     SELECT e.{column} AS households, r.view_position FROM run_entry e JOIN comparison_run r USING (run_id)
                     WHERE e.entry_key = $1 ORDER BY r.view_position DESC LIMIT 1)
                 SELECT DISTINCT m FROM latest CROSS JOIN unnest(latest.households) p
                 JOIN roster_household h ON h.side = $2 AND h.household_id = split_part(p, '|', 1)
                      AND (h.valid_to IS NULL OR (h.valid_from <= latest.view_position AND h.valid_to > latest.view_position))
                 CROSS JOIN unnest(h.members) m"
            ),
            &[&entry_id, &column],
        )
        .await
        .map_err(status)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A written conclusion must give reasons: this many characters at least.
const MIN_CONCLUSION_CHARS: usize = 10;

#[tonic::async_trait]
impl ComparisonService for Comparison {
    type RunComparisonStream = tokio_stream::wrappers::ReceiverStream<Result<pb::RunComparisonResponse, Status>>;

    async fn run_comparison(
        &self,
        request: Request<pb::RunComparisonRequest>,
    ) -> Result<Response<Self::RunComparisonStream>, Status> {
        let r = request.into_inner();
        let division = division_field(&r.division, "division")?;
        let reproduce = uuid_field(&r.reproduce_run_id, "reproduce_run_id")?;
        let (tx, rx) = mpsc::channel(64);
        let (progress_tx, mut progress_rx) = mpsc::channel::<Progress>(64);
        let this = self.clone();
        let out = tx.clone();
        tokio::spawn(async move {
            while let Some(p) = progress_rx.recv().await {
                let msg = pb::RunComparisonResponse {
                    run_id: p.run_id.to_string(),
                    phase: p.phase.to_owned(),
                    households_done: p.done,
                    households_total: p.total,
                    list_sizes: sizes(&p.sizes),
                    finished_at: p.finished.map(timestamp_of),
                };
                if out.send(Ok(msg)).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let _one_at_a_time = this.running.lock().await;
            // The run goes on if the caller hangs up: it is recorded whole.
            if let Err(e) = this.runs.run(division, reproduce, progress_tx).await {
                let _ = tx.send(Err(status(e))).await;
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn get_run(&self, request: Request<pb::GetRunRequest>) -> Result<Response<pb::GetRunResponse>, Status> {
        let id = uuid_field(&request.get_ref().run_id, "run_id")?
            .ok_or_else(|| invalid(vec![InvalidField::new("run_id", "必填项缺失")]))?;
        let client = self.pool.get().await.map_err(status)?;
        let row = client
            .query_opt(
                "SELECT run_id, division, view_position, dibao_events, poverty_events, dibao_households, poor_households,
                        as_of, started_at, finished_at, list_sizes, digest, reproduces
                 FROM comparison_run WHERE run_id = $1",
                &[&id],
            )
            .await
            .map_err(status)?
            .ok_or_else(|| status(Error::NotFound(format!("比对批次{id}不存在"))))?;
        let as_of: time::Date = row.get(7);
        let run = pb::Run {
            run_id: id.to_string(),
            division: Some(common::DivisionCode { code: row.get(1) }),
            view_position: row.get(2),
            dibao_events: row.get(3),
            poverty_events: row.get(4),
            dibao_households: row.get(5),
            poor_households: row.get(6),
            as_of: Some(dibao_proto::types::date_to_pb(as_of)),
            started_at: Some(timestamp_of(row.get(8))),
            finished_at: row.get::<_, Option<time::OffsetDateTime>>(9).map(timestamp_of),
            list_sizes: sizes(&row.get::<_, Vec<i64>>(10)),
            digest: row.get(11),
            reproduces_run_id: row.get::<_, Option<Uuid>>(12).map(|u| u.to_string()).unwrap_or_default(),
        };
        Ok(Response::new(pb::GetRunResponse { run: Some(run) }))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let r = request.into_inner();
        let division = division_field(&r.division, "division")?.map(|d| d.prefix().to_owned()).unwrap_or_default();
        let run_id = uuid_field(&r.run_id, "run_id")?;
        let kind = pb::ListKind::try_from(r.kind).unwrap_or(pb::ListKind::Unspecified);
        let letter = kind_of(kind).map(|k| k.letter() as u8 as i8);
        let page = r.page.unwrap_or_default();
        let size = match page.page_size {
            0 => 100,
            n if (1..=1000).contains(&n) => i64::from(n),
            _ => return Err(invalid(vec![InvalidField::new("page.page_size", "每页条数应在1到1000之间")])),
        };
        let client = self.pool.get().await.map_err(status)?;
        let bad_token = || invalid(vec![InvalidField::new("page.page_token", "翻页标记无效，请使用上一页返回的标记")]);
        // The decision and first sighting of each entry, whichever list it comes from.
        const DECIDED: &str = "d.application_id, d.conclusion, d.officer_id, d.officer_name, d.officer_role,
                               d.officer_division, d.recorded_at, s.first_seen_at";
        let rows = if r.continuous {
            // Keyset pagination on the list order: (kind, village, id).
            let (k, v, id) = match page.page_token.as_str() {
                "" => (0i8, String::new(), String::new()),
                t => {
                    let mut parts = t.splitn(3, '|');
                    let k = parts.next().and_then(|k| k.parse::<i8>().ok()).ok_or_else(bad_token)?;
                    let v = parts.next().ok_or_else(bad_token)?.to_owned();
                    let id = parts.next().ok_or_else(bad_token)?.to_owned();
                    (k, v, id)
                }
            };
            client
                .query(
                    &format!(
                        "SELECT 0 AS ordinal, e.entry_key, e.kind, e.village, e.dibao, e.poor, e.members, e.explanation, {DECIDED}
                         FROM live_entry e
                         LEFT JOIN decision d ON d.entry_key = e.entry_key
                         LEFT JOIN entry_seen s ON s.entry_key = e.entry_key
                         WHERE ($1::\"char\" IS NULL OR e.kind = $1) AND starts_with(e.village, $2)
                           AND (e.kind::int, e.village, e.entry_key) > ($3::int, $4, $5)
                         ORDER BY e.kind::int, e.village, e.entry_key LIMIT $6"
                    ),
                    &[&letter, &division, &i32::from(k), &v, &id, &(size + 1)],
                )
                .await
                .map_err(status)?
        } else {
            let after: i32 = match page.page_token.as_str() {
                "" => -1,
                t => t.parse().map_err(|_| bad_token())?,
            };
            let (run_id, _) = run_for(&client, run_id, &division).await?;
            client
                .query(
                    &format!(
                        "SELECT e.ordinal, e.entry_key, e.kind, e.village, e.dibao, e.poor, e.members, e.explanation, {DECIDED}
                         FROM run_entry e
                         LEFT JOIN decision d ON d.entry_key = e.entry_key
                         LEFT JOIN entry_seen s ON s.entry_key = e.entry_key
                         WHERE e.run_id = $1 AND ($2::\"char\" IS NULL OR e.kind = $2) AND starts_with(e.village, $3)
                           AND e.ordinal > $4
                         ORDER BY e.ordinal LIMIT $5"
                    ),
                    &[&run_id, &letter, &division, &after, &(size + 1)],
                )
                .await
                .map_err(status)?
        };
        let more = rows.len() as i64 > size;
        let mut entries = Vec::new();
        let mut last = String::new();
        for row in rows.iter().take(size as usize) {
            let e = stored(row);
            last = if r.continuous {
                format!("{}|{}|{}", e.kind.letter() as u8 as i8, e.village, e.id)
            } else {
                row.get::<_, i32>(0).to_string()
            };
            let decision = row.get::<_, Option<String>>("officer_id").map(|officer_id| pb::Decision {
                application_id: row.get("application_id"),
                conclusion: row.get("conclusion"),
                signature: Some(common::OfficerSignature {
                    officer_id,
                    officer_name: row.get("officer_name"),
                    role: row.get("officer_role"),
                    division: Some(common::DivisionCode { code: row.get("officer_division") }),
                    signed_at: Some(timestamp_of(row.get("recorded_at"))),
                }),
                recorded_at: Some(timestamp_of(row.get("recorded_at"))),
            });
            entries.push(pb::Entry {
                entry_id: e.id.clone(),
                kind: list_kind(e.kind) as i32,
                village: Some(common::DivisionCode { code: e.village.clone() }),
                dibao_households: e.dibao.iter().map(|h| entry_household(h)).collect(),
                poor_households: e.poor.iter().map(|h| entry_household(h)).collect(),
                members: e.members.iter().map(|m| common::IdentityNumber { value: m.clone() }).collect(),
                explanation: e.explanation,
                decision,
                first_seen_at: row.get::<_, Option<time::OffsetDateTime>>("first_seen_at").map(timestamp_of),
            });
        }
        let next_page_token = if more { last } else { String::new() };
        Ok(Response::new(pb::ListEntriesResponse { entries, page: Some(common::PageResponse { next_page_token }) }))
    }

    async fn record_decision(
        &self,
        request: Request<pb::RecordDecisionRequest>,
    ) -> Result<Response<pb::RecordDecisionResponse>, Status> {
        let r = request.into_inner();
        let now = self.clock.now();
        let mut errors = Vec::new();
        let entry_id = r.entry_id.trim().to_owned();
        if entry_id.is_empty() {
            errors.push(InvalidField::new("entry_id", "必填项缺失"));
        }
        let application_id = r.application_id.trim().to_owned();
        let conclusion = r.conclusion.trim().to_owned();
        match (application_id.is_empty(), conclusion.chars().count()) {
            (true, 0) => errors
                .push(InvalidField::new("conclusion", "请填写纳入的申请编号，或写明不符合条件的结论及理由（R-CMP-3）")),
            (true, n) if n < MIN_CONCLUSION_CHARS => {
                errors.push(InvalidField::new("conclusion", format!("结论应写明理由，至少{MIN_CONCLUSION_CHARS}个字")))
            }
            _ => {}
        }
        let signature = Signature::from_pb(&r.signature, now).map_err(|e| {
            errors.extend(e);
        });
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        let Ok(signature) = signature else { return Err(invalid(errors)) };
        let client = self.pool.get().await.map_err(status)?;
        let kind: i8 = client
            .query_opt("SELECT kind FROM run_entry WHERE entry_key = $1 LIMIT 1", &[&entry_id])
            .await
            .map_err(status)?
            .ok_or_else(|| status(Error::NotFound(format!("比对项{entry_id}不存在"))))?
            .get(0);
        let kind = Kind::from_letter(kind as u8 as char).unwrap_or(Kind::OnBoth);
        if !may_decide(kind, signature.role) {
            let who = if kind == Kind::DibaoNotPoor {
                "扶贫部门经办人员"
            } else {
                "民政部门乡镇或县级经办人员"
            };
            return Err(invalid(vec![InvalidField::new(
                "signature.role",
                format!("（{}）{}的结论应由{who}签署", kind.letter(), kind.name_zh()),
            )]));
        }
        if !application_id.is_empty() {
            match kind {
                Kind::PoorNotDibao => self.check_enrolment(&client, &entry_id, &application_id).await?,
                Kind::DibaoNotPoor => self.check_registration(&client, &entry_id, &application_id).await?,
                _ => {
                    return Err(invalid(vec![InvalidField::new(
                        "application_id",
                        format!(
                            "只有（a）（b）类以纳入或认定作结论；（{}）{}请写明结论及理由",
                            kind.letter(),
                            kind.name_zh()
                        ),
                    )]));
                }
            }
        }
        let inserted = client
            .execute(
                "INSERT INTO decision (entry_key, kind, application_id, conclusion, officer_id, officer_name,
                                       officer_role, officer_division, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (entry_key) DO NOTHING",
                &[
                    &entry_id,
                    &(kind.letter() as u8 as i8),
                    &application_id,
                    &conclusion,
                    &signature.officer_id,
                    &signature.officer_name,
                    &(signature.role as i32),
                    &signature.division.as_str(),
                    &now,
                ],
            )
            .await
            .map_err(status)?;
        if inserted == 0 {
            return Err(status(Error::FailedPrecondition(format!("比对项{entry_id}已有结论，不能重复记录"))));
        }
        tracing::info!(%entry_id, kind = %kind.letter(), officer = %signature.officer_id, "comparison decision recorded");
        Ok(Response::new(pb::RecordDecisionResponse { recorded_at: Some(timestamp_of(now)) }))
    }

    async fn report_open_items(
        &self,
        request: Request<pb::ReportOpenItemsRequest>,
    ) -> Result<Response<pb::ReportOpenItemsResponse>, Status> {
        let division =
            division_field(&request.get_ref().division, "division")?.map(|d| d.prefix().to_owned()).unwrap_or_default();
        let client = self.pool.get().await.map_err(status)?;
        let (run_id, _) = run_for(&client, None, &division).await?;
        let today = self.clock.now();
        let rows = client
            .query(
                "SELECT left(e.village, 9), e.kind, count(*),
                        count(*) FILTER (WHERE s.first_seen_at < $3::timestamptz - interval '30 days'),
                        count(*) FILTER (WHERE s.first_seen_at < $3::timestamptz - interval '90 days'),
                        coalesce(max(extract(day FROM $3::timestamptz - s.first_seen_at)), 0)::bigint
                 FROM run_entry e
                 JOIN entry_seen s ON s.entry_key = e.entry_key
                 LEFT JOIN decision d ON d.entry_key = e.entry_key
                 WHERE e.run_id = $1 AND e.kind IN ('a', 'b') AND starts_with(e.village, $2) AND d.entry_key IS NULL
                 GROUP BY 1, 2 ORDER BY 1, 2",
                &[&run_id, &division, &today],
            )
            .await
            .map_err(status)?;
        let townships = rows
            .iter()
            .map(|r| {
                let kind: i8 = r.get(1);
                pb::OpenItems {
                    township: Some(common::DivisionCode { code: r.get(0) }),
                    kind: Kind::from_letter(kind as u8 as char).map_or(0, |k| list_kind(k) as i32),
                    open: r.get(2),
                    over_30_days: r.get(3),
                    over_90_days: r.get(4),
                    oldest_days: r.get(5),
                }
            })
            .collect();
        Ok(Response::new(pb::ReportOpenItemsResponse { run_id: run_id.to_string(), townships }))
    }

    type ExportListsStream = tokio_stream::wrappers::ReceiverStream<Result<pb::ExportListsResponse, Status>>;

    async fn export_lists(
        &self,
        request: Request<pb::ExportListsRequest>,
    ) -> Result<Response<Self::ExportListsStream>, Status> {
        let r = request.into_inner();
        let run_id =
            uuid_field(&r.run_id, "run_id")?.ok_or_else(|| invalid(vec![InvalidField::new("run_id", "必填项缺失")]))?;
        let division = division_field(&r.division, "division")?.map(|d| d.prefix().to_owned()).unwrap_or_default();
        let format = pb::ExportFormat::try_from(r.format).unwrap_or(pb::ExportFormat::Unspecified);
        let grouping = pb::ExportGrouping::try_from(r.grouping).unwrap_or(pb::ExportGrouping::Unspecified);
        let officer = Signature::from_pb(&r.officer, self.clock.now()).map_err(|e| {
            invalid(
                e.into_iter()
                    .map(|f| InvalidField::new(f.field.replacen("signature", "officer", 1), f.reason))
                    .collect(),
            )
        })?;
        let full = self.full_identity_roles.contains(&officer.role);
        let client = self.pool.get().await.map_err(status)?;
        let (run_id, as_of) = run_for(&client, Some(run_id), "").await?;
        let rows = client
            .query(
                "SELECT entry_key, kind, village, dibao, poor, members, explanation FROM run_entry
                 WHERE run_id = $1 AND starts_with(village, $2) ORDER BY ordinal",
                &[&run_id, &division],
            )
            .await
            .map_err(status)?;
        let width = if grouping == pb::ExportGrouping::Village { 12 } else { 9 };
        let mut groups: BTreeMap<String, Vec<StoredEntry>> = BTreeMap::new();
        for row in &rows {
            let e = stored(row);
            let code: String = e.village.chars().take(width).collect();
            groups.entry(code).or_default().push(e);
        }
        tracing::info!(%run_id, officer = %officer.officer_id, full_identity = full, files = groups.len(), "lists exported");
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            for (code, entries) in groups {
                let (name, content) = match format {
                    pb::ExportFormat::Csv => {
                        (format!("{code}_台账比对_{as_of}.csv"), Ok(export::to_csv(&entries, full)))
                    }
                    _ => (format!("{code}_台账比对_{as_of}.xlsx"), export::to_xlsx(&entries, full, as_of)),
                };
                let msg = content
                    .map(|content| pb::ExportListsResponse { file_name: name, content, entries: entries.len() as i64 })
                    .map_err(|e| status(anyhow::anyhow!("xlsx: {e}")));
                if tx.blocking_send(msg).is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn rebuild_view(
        &self,
        request: Request<pb::RebuildViewRequest>,
    ) -> Result<Response<pb::RebuildViewResponse>, Status> {
        let division = division_field(&request.get_ref().division, "division")?
            .ok_or_else(|| invalid(vec![InvalidField::new("division", "请指定重建视图的行政区划")]))?;
        let (Some(civil), Some(poverty)) = (self.civil.clone(), self.poverty.clone()) else {
            return Err(status(Error::FailedPrecondition(
                "未配置民政和扶贫服务地址（comparison.civil_affairs、comparison.poverty_alleviation），无法重建"
                    .to_owned(),
            )));
        };
        // Runs wait: they must read the view before or after a rebuild, never halfway.
        let _one_at_a_time = self.running.lock().await;
        let answer = rebuild::rebuild(&self.pool, civil, poverty, &division).await?;
        tracing::info!(division = %division, ?answer, "roster view rebuilt from the rosters' snapshots");
        Ok(Response::new(answer))
    }

    async fn import_death_register(
        &self,
        request: Request<Streaming<pb::ImportDeathRegisterRequest>>,
    ) -> Result<Response<pb::ImportDeathRegisterResponse>, Status> {
        let mut stream = request.into_inner();
        let mut rows = Vec::new();
        while let Some(r) = stream.next().await {
            rows.push(r?);
        }
        let result = registers::import_deaths(&self.pool, rows, self.clock.now().date()).await.map_err(status)?;
        Ok(Response::new(pb::ImportDeathRegisterResponse { result: Some(result) }))
    }

    async fn import_officials(
        &self,
        request: Request<Streaming<pb::ImportOfficialsRequest>>,
    ) -> Result<Response<pb::ImportOfficialsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut rows = Vec::new();
        while let Some(r) = stream.next().await {
            rows.push(r?);
        }
        let result = registers::import_officials(&self.pool, rows).await.map_err(status)?;
        Ok(Response::new(pb::ImportOfficialsResponse { result: Some(result) }))
    }
}

/// Parses an identity number field of a register row.
pub(crate) fn identity(
    v: &Option<common::IdentityNumber>,
    field: &str,
    errors: &mut Vec<InvalidField>,
) -> Option<IdentityNumber> {
    match v {
        Some(v) => IdentityNumber::parse(&v.value).map_err(|e| errors.push(e.within(field))).ok(),
        None => {
            errors.push(InvalidField::new(field, "必填项缺失"));
            None
        }
    }
}
