//! One household checked (R-VER-1..4): the consent first, then every
//! department at once, then the report — findings against the county's
//! property rules, stored by version and published — with every access
//! to a person's data in the access log before any answer leaves.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of as timestamp;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::server::MeshChannel;
use dibao_platform::trust::access_log::{self, AccessEntry, AccessLog};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::{CountyPolicy, GetPolicyRequest};
use dibao_proto::common::v1::{IdentityNumber as PbIdentity, OfficerRole, YearMonth};
use dibao_proto::department::v1::{Department, Item};
use dibao_proto::departments::department_of;
use dibao_proto::types::{DivisionCode, IdentityNumber, InvalidField, Signature};
use dibao_proto::verification::v1::{Report, VerifyHouseholdRequest};
use tokio::time::Instant;
use tonic::Request;

use crate::consent;
use crate::fanout::{Answer, Departments, Mandate};
use crate::households;
use crate::report;
use crate::reports;

/// County code, year, month.
type PolicyKey = (String, i32, i32);
/// When it was fetched, and the policy or why there is none.
type Cached = (Instant, Result<CountyPolicy, String>);

/// The county policy of civil affairs, cached for a minute per county and month.
pub struct Policies {
    pub client: Option<CivilAffairsServiceClient<MeshChannel>>,
    cache: Mutex<HashMap<PolicyKey, Cached>>,
}

impl Policies {
    pub fn new(client: Option<CivilAffairsServiceClient<MeshChannel>>) -> Self {
        Self { client, cache: Mutex::new(HashMap::new()) }
    }

    pub async fn get(&self, county: &DivisionCode, month: YearMonth) -> Result<CountyPolicy, String> {
        let key = (county.as_str().to_owned(), month.year, month.month);
        if let Some((at, p)) = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key)
            && at.elapsed() < Duration::from_secs(60)
        {
            return p.clone();
        }
        let Some(mut client) = self.client.clone() else {
            return Err("本平台未配置民政业务系统的地址".to_owned());
        };
        let mut request = Request::new(GetPolicyRequest { county: Some(county.into()), month: Some(month) });
        request.set_timeout(Duration::from_secs(2));
        let result = match client.get_policy(request).await {
            Ok(r) => r.into_inner().policy.ok_or_else(|| "民政业务系统未返回县级政策".to_owned()),
            Err(s) if s.code() == tonic::Code::NotFound => Err(format!("民政业务系统中没有{county}本月适用的县级政策")),
            Err(s) => {
                tracing::warn!(code = ?s.code(), message = s.message(), "county policy unavailable");
                // Not cached: the next report tries again.
                return Err("暂时无法从民政业务系统取得县级政策".to_owned());
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (Instant::now(), result.clone()));
        result
    }
}

/// What every check works with: the hub's database, clock, department
/// links, the county's policy, its access log and its reports' topic.
#[derive(Clone)]
pub struct Hub {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    pub departments: Arc<Departments>,
    pub policies: Arc<Policies>,
    pub log: AccessLog,
    pub topic: String,
    pub report_deadline: Duration,
}

/// A checked verification request, for the household as civil affairs holds it.
pub struct Checked {
    pub household_id: String,
    /// The household's own county (R-VER-2): its thresholds apply.
    pub county: DivisionCode,
    /// The household's live members: a person checked who is not one must
    /// be a relative who signed the consent as such (R-ELIG-2).
    pub members: HashSet<String>,
    pub persons: Vec<IdentityNumber>,
    pub items: Option<Vec<Item>>,
    pub purpose: String,
    pub officer: Signature,
}

/// A verification request checked field by field, before its household is read.
pub struct Asked {
    pub household_id: String,
    pub persons: Vec<IdentityNumber>,
    pub items: Option<Vec<Item>>,
    pub purpose: String,
    pub officer: Signature,
}

impl Asked {
    /// The request for `household` as civil affairs holds it (the caller
    /// has checked that the officer's jurisdiction holds it).
    pub fn of(self, household: households::Household) -> Checked {
        Checked {
            household_id: self.household_id,
            county: household.county,
            members: household.members,
            persons: self.persons,
            items: self.items,
            purpose: self.purpose,
            officer: self.officer,
        }
    }
}

pub fn check(req: &VerifyHouseholdRequest, officer: &Officer, now: time::OffsetDateTime) -> Result<Asked, Error> {
    let mut errors = Vec::new();
    let household_id = req.household_id.trim().to_owned();
    if household_id.is_empty() {
        errors.push(InvalidField::new("household_id", "请填写被核对家庭的编号"));
    }
    let mut persons = Vec::new();
    if req.persons.is_empty() {
        errors.push(InvalidField::new("persons", "至少要核对一人"));
    }
    for (i, p) in req.persons.iter().enumerate() {
        match IdentityNumber::parse(&p.value) {
            Ok(id) if !persons.contains(&id) => persons.push(id),
            Ok(_) => errors.push(InvalidField::new(format!("persons[{i}]"), "同一人重复出现")),
            Err(e) => errors.push(e.within(&format!("persons[{i}]"))),
        }
    }
    let mut items = Vec::new();
    for (i, v) in req.items.iter().enumerate() {
        match Item::try_from(*v) {
            Ok(item) if item != Item::Unspecified => items.push(item),
            _ => errors.push(InvalidField::new(format!("items[{i}]"), format!("未知的核对项目（{v}）"))),
        }
    }
    if req.purpose.trim().is_empty() {
        errors.push(InvalidField::new("purpose", "请写明核对用途（如“低保申请审核”）"));
    }
    if req.consent_id.trim().is_empty() {
        errors.push(InvalidField::new("consent_id", "没有授权书不能核对（R-VER-1）"));
    }
    // An officer does not check their own household (优亲厚友, seed 001).
    if let Some(own) = &officer.identity_number
        && persons.iter().any(|p| p == own)
    {
        return Err(Error::PermissionDenied("不能核对本人所在家庭：请由其他核对人员办理（优亲厚友）".to_owned()));
    }
    let role = officer
        .role_among(&[OfficerRole::VerificationOfficer, OfficerRole::TownshipCaseworker])
        .unwrap_or(OfficerRole::VerificationOfficer);
    let officer = officer.signature(role, now);
    if !errors.is_empty() {
        return Err(Error::InvalidArgument(errors));
    }
    Ok(Asked {
        household_id,
        persons,
        items: (!items.is_empty()).then_some(items),
        purpose: req.purpose.trim().to_owned(),
        officer,
    })
}

/// The hub's inbox: the officials' registry's changes (a verifying officer
/// may not check a household they or a registered relative belong to).
pub struct RegistryEvents;

impl dibao_platform::events::inbox::Handler for RegistryEvents {
    async fn apply(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        event: &dibao_proto::events::v1::EventEnvelope,
    ) -> Result<(), dibao_platform::events::inbox::HandlerError> {
        if let Some(dibao_proto::events::v1::event_envelope::Payload::OfficialLinksChanged(e)) = &event.payload {
            dibao_platform::trust::relatives::apply(tx, e).await?;
        }
        Ok(())
    }
}

impl Hub {
    /// One record per person checked.
    fn entries<'a>(
        &'a self,
        caller: &'a str,
        c: &'a Checked,
        consent_id: &'a str,
        items: &[Item],
        outcome: &'a str,
        asked: Option<&'a [i64]>,
    ) -> impl Iterator<Item = AccessEntry> + 'a {
        let names: Vec<String> = items.iter().map(|i| i.as_str_name().to_owned()).collect();
        c.persons.iter().enumerate().map(move |(i, p)| AccessEntry {
            caller: caller.to_owned(),
            officer_id: c.officer.officer_id.clone(),
            consent_id: consent_id.to_owned(),
            purpose: c.purpose.clone(),
            person: p.as_str().to_owned(),
            items: names.clone(),
            outcome: outcome.to_owned(),
            completes: asked.and_then(|seqs| seqs.get(i).copied()),
        })
    }

    /// Records the access to every person and returns their sequence
    /// numbers once committed; all go to the writer at once, so they share
    /// one append.
    async fn log_all(
        &self,
        caller: &str,
        c: &Checked,
        consent_id: &str,
        items: &[Item],
        outcome: &str,
    ) -> Result<Vec<i64>, Error> {
        let records = self.entries(caller, c, consent_id, items, outcome, None).map(|e| self.log.record(e));
        Ok(futures_util::future::try_join_all(records).await?)
    }

    /// Checks `c`'s persons under `consent` with every department and
    /// returns the stored report; `report_id` names an earlier report to
    /// store the result as its next version, `campaign` the campaign whose
    /// household this is.
    pub async fn verify(
        &self,
        caller: &str,
        c: &Checked,
        consent: &consent::Consent,
        report_id: &str,
        campaign: Option<uuid::Uuid>,
    ) -> Result<Report, Error> {
        let started = Instant::now();
        let deadline = started + self.report_deadline;
        let now = self.clock.now();
        let consent_id = consent.consent_id.to_string();
        let items = c.items.clone().unwrap_or_else(|| consent.items.clone());
        let month = YearMonth { year: now.year(), month: i32::from(now.month() as u8) };
        // Where the county asks for close lineal relatives' signatures too
        // (R-VER-1), its policy decides a consent that has none before any
        // department is asked; other consents don't wait for the policy.
        let permitted = match consent.permits(&c.household_id, &c.county, &c.persons, &items, china_date(now)) {
            Ok(()) if !consent.relatives_settled() => {
                consent.relatives_under(c.county.as_str(), &self.policies.get(&c.county, month).await)
            }
            other => other,
        }
        // Whoever is not a live member of the household is checked only as a
        // relative who signed as such, reported apart (R-ELIG-2).
        .and_then(|()| {
            match c
                .persons
                .iter()
                .enumerate()
                .find(|(_, p)| !c.members.contains(p.as_str()) && !consent.relatives.contains(p.as_str()))
            {
                Some((index, p)) => Err(consent::Refused::NotOfHousehold { index, masked: p.masked() }),
                None => Ok(()),
            }
        });
        if let Err(refused) = permitted {
            let message = refused.message();
            self.log_all(caller, c, &consent_id, &items, &format!("refused: {message}")).await?;
            tracing::warn!(consent_id, reason = %message, "verification refused");
            return Err(refused.into());
        }
        let (report_id, version) = reports::next_version(&self.pool, report_id, &c.household_id, &consent_id).await?;

        let mut by_department: Vec<(Department, Vec<Item>)> = Vec::new();
        for item in &items {
            let Some(d) = department_of(*item) else { continue };
            match by_department.iter_mut().find(|(x, _)| *x == d) {
                Some((_, list)) => list.push(*item),
                None => by_department.push((d, vec![*item])),
            }
        }
        let mandate = &Mandate { consent_id: &consent_id, purpose: &c.purpose, officer_id: &c.officer.officer_id };
        let by_department = &by_department;
        let asks = c.persons.iter().flat_map(|p| {
            by_department.iter().map(move |(d, its)| async move {
                (p, *d, self.departments.ask(*d, p, its, mandate, now, deadline).await)
            })
        });
        // The hub's record of the query commits while the departments work;
        // the report leaves only after it has (R-VER-1).
        let (asked, answers, policy) = tokio::join!(
            self.log_all(caller, c, &consent_id, &items, access_log::ASKED),
            futures_util::future::join_all(asks),
            self.policies.get(&c.county, month)
        );
        let asked = asked?;
        let mut report_items = Vec::new();
        for p in &c.persons {
            let mine: Vec<(Department, Answer)> =
                answers.iter().filter(|(q, ..)| *q == p).map(|(_, d, a)| (*d, a.clone())).collect();
            report_items.extend(report::items_of(p, &items, &mine));
        }
        let (policy, policy_note) = match policy {
            Ok(p) => (Some(p), String::new()),
            Err(why) => (None, format!("{why}，未能对照本县财产标准，请取得政策后重新核对。")),
        };
        let findings =
            report::findings(&report_items, &c.persons, &consent.relatives, policy.as_ref(), china_date(now));
        let unavailable = report_items.iter().filter(|i| i.unavailable).count();
        let summary = report::summary(c.persons.len(), &report_items, &findings, &policy_note);
        let report = Report {
            report_id,
            version,
            household_id: c.household_id.clone(),
            consent_id: consent_id.clone(),
            complete: unavailable == 0 && policy.is_some(),
            items: report_items,
            findings,
            completed_at: Some(timestamp(self.clock.now())),
            county: Some((&c.county).into()),
            purpose: c.purpose.clone(),
            officer_id: c.officer.officer_id.clone(),
            persons: c.persons.iter().map(|p| PbIdentity { value: p.as_str().to_owned() }).collect(),
            relatives: c
                .persons
                .iter()
                .filter(|p| consent.relatives.contains(p.as_str()))
                .map(|p| PbIdentity { value: p.as_str().to_owned() })
                .collect(),
            policy_note,
            summary,
        };
        let records = report.items.iter().filter(|i| i.record.is_some()).count();
        reports::store(&self.pool, &self.topic, &report, campaign).await?;
        let outcome =
            format!("reported {} v{}: {records} records, {unavailable} unavailable", report.report_id, report.version);
        for entry in self.entries(caller, c, &consent_id, &items, &outcome, Some(&asked)) {
            self.log.record_outcome(entry);
        }
        tracing::info!(
            report_id = %report.report_id,
            version = report.version,
            records,
            unavailable,
            findings = report.findings.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "verification reported"
        );
        Ok(report)
    }
}
