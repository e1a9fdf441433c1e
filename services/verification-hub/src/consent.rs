//! The consent registry (R-VER-1): a signed consent document (授权书) is
//! registered with its signatories, the persons and items it covers, its
//! date and validity; it can be revoked. Every check goes through
//! [`Consent::permits`] first.

use std::collections::HashSet;

use deadpool_postgres::{GenericClient, Pool};
use dibao_platform::runtime::clock::{add_months, china_date};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1::CountyPolicy;
use dibao_proto::common::v1::{OfficerRole, Relation};
use dibao_proto::department::v1::Item;
use dibao_proto::labels::Label;
use dibao_proto::types::{DivisionCode, IdentityNumber, InvalidField, Signature};
use dibao_proto::verification::v1 as pb;
use time::{Date, OffsetDateTime};

use dibao_platform::Error;
use dibao_platform::runtime::error::{Refusal, RefusalKind};

use crate::households;

/// A consent as registered.
#[derive(Debug, Clone)]
pub struct Consent {
    pub consent_id: uuid::Uuid,
    pub signed_on: Date,
    pub valid_until: Date,
    pub items: Vec<Item>,
    pub persons: HashSet<String>,
    pub revoked_at: Option<OffsetDateTime>,
    /// The close lineal relatives outside the household who signed it: a
    /// check reports them apart from the members (R-ELIG-2).
    pub relatives: HashSet<String>,
    /// The registering officer found no such relatives to sign.
    pub no_relatives_outside_household: bool,
    /// The county it was registered for (none before counties were recorded).
    pub county: Option<DivisionCode>,
    /// The household it was signed for (none before households were bound).
    pub household_id: Option<String>,
}

/// Why a check is refused under a consent, in Chinese.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub enum Refused {
    Revoked(OffsetDateTime),
    NotYetValid(Date),
    Expired(Date),
    PersonNotCovered {
        index: usize,
        masked: String,
    },
    ItemNotCovered(Item),
    /// The county asks for relatives' signatures; the consent has none.
    RelativesMissing(String),
    /// Whether the county asks for them is unknown (why, in Chinese).
    RelativesUnknown(String),
    /// Registered for another county's household.
    OtherCounty(String),
    /// Signed for another household, or for none.
    OtherHousehold,
    /// Neither a live member of the household nor a relative who signed.
    NotOfHousehold {
        index: usize,
        masked: String,
    },
}

impl Refused {
    pub fn message(&self) -> String {
        match self {
            Refused::Revoked(at) => format!("授权书已于{}撤销，不能据此核对", china_date(*at)),
            Refused::NotYetValid(d) => format!("授权书的签署日期为{d}，尚未生效"),
            Refused::Expired(d) => format!("授权书已于{d}到期，请重新签署授权书"),
            Refused::PersonNotCovered { index, masked } => {
                format!("persons[{index}]（{masked}）不在授权书的授权范围内，不能核对此人")
            }
            Refused::ItemNotCovered(i) => format!("授权书未授权核对“{}”", i.label()),
            Refused::RelativesMissing(county) => format!(
                "{county}的县级政策要求三代以内直系亲属在授权书上签字，本授权书没有直系亲属签字；如家庭成员确无户外直系亲属，应在登记授权书时注明"
            ),
            Refused::OtherCounty(county) => format!("该授权书登记于{county}，不能用于本县的核对"),
            Refused::OtherHousehold => {
                "该授权书不是为本户签署登记的（或登记时未注明家庭），不能用于本户的核对；请按本户登记授权书".to_owned()
            }
            Refused::NotOfHousehold { index, masked } => format!(
                "persons[{index}]（{masked}）不是该户在民政业务系统中的在世成员，也不是在授权书上签字的户外直系亲属，不能按该户核对（R-ELIG-2）"
            ),
            Refused::RelativesUnknown(why) => format!(
                "{why}，无法确认本县是否要求直系亲属签字；本授权书没有直系亲属签字，也未注明户外没有直系亲属，暂不能核对"
            ),
        }
    }
}

impl Refusal for Refused {
    fn kind(&self) -> RefusalKind {
        RefusalKind::FailedPrecondition
    }

    fn reason(&self) -> &'static str {
        match self {
            Refused::Revoked(_) => "CONSENT_REVOKED",
            Refused::NotYetValid(_) => "CONSENT_NOT_YET_VALID",
            Refused::Expired(_) => "CONSENT_EXPIRED",
            Refused::PersonNotCovered { .. } => "PERSON_NOT_COVERED",
            Refused::ItemNotCovered(_) => "ITEM_NOT_COVERED",
            Refused::RelativesMissing(_) => "RELATIVES_MISSING",
            Refused::RelativesUnknown(_) => "RELATIVES_UNKNOWN",
            Refused::OtherCounty(_) => "CONSENT_OF_ANOTHER_COUNTY",
            Refused::NotOfHousehold { .. } => "PERSON_NOT_OF_HOUSEHOLD",
            Refused::OtherHousehold => "CONSENT_OF_ANOTHER_HOUSEHOLD",
        }
    }
}

impl Consent {
    /// Whether `persons` of household `household_id` in `county` may be
    /// checked for `items` on `today`.
    pub fn permits(
        &self,
        household_id: &str,
        county: &DivisionCode,
        persons: &[IdentityNumber],
        items: &[Item],
        today: Date,
    ) -> Result<(), Refused> {
        if let Some(own) = self.county.as_ref().filter(|own| *own != county) {
            return Err(Refused::OtherCounty(own.to_string()));
        }
        if self.household_id.as_deref() != Some(household_id) {
            return Err(Refused::OtherHousehold);
        }
        if let Some(at) = self.revoked_at {
            return Err(Refused::Revoked(at));
        }
        if today < self.signed_on {
            return Err(Refused::NotYetValid(self.signed_on));
        }
        if today > self.valid_until {
            return Err(Refused::Expired(self.valid_until));
        }
        if let Some((index, p)) = persons.iter().enumerate().find(|(_, p)| !self.persons.contains(p.as_str())) {
            return Err(Refused::PersonNotCovered { index, masked: p.masked() });
        }
        if let Some(i) = items.iter().find(|i| !self.items.contains(i)) {
            return Err(Refused::ItemNotCovered(*i));
        }
        Ok(())
    }

    /// Whether the relatives' part of R-VER-1 holds whatever the county
    /// asks: a relative signed, or the officer found none to sign.
    pub fn relatives_settled(&self) -> bool {
        !self.relatives.is_empty() || self.no_relatives_outside_household
    }

    /// The relatives' part of R-VER-1 under `county`'s `policy` (or why
    /// there is none): where the county asks for close lineal relatives'
    /// signatures, a consent without them is refused.
    pub fn relatives_under(&self, county: &str, policy: &Result<CountyPolicy, String>) -> Result<(), Refused> {
        match policy {
            _ if self.relatives_settled() => Ok(()),
            Ok(p) if !p.consent_requires_relatives => Ok(()),
            Ok(_) => Err(Refused::RelativesMissing(county.to_owned())),
            Err(why) => Err(Refused::RelativesUnknown(why.clone())),
        }
    }
}

fn date(d: &Option<dibao_proto::common::v1::Date>, field: &str, errors: &mut Vec<InvalidField>) -> Option<Date> {
    match d {
        None => {
            errors.push(InvalidField::new(field, "必填项缺失"));
            None
        }
        Some(d) => Date::try_from(d).map_err(|e| errors.push(e.within(field))).ok(),
    }
}

/// The largest scan kept (a gRPC message carries 4 MiB at most).
const DOCUMENT_MAX_BYTES: usize = 3 * 1024 * 1024;

/// A registration request, checked field by field.
pub struct Checked {
    pub document_sha256: String,
    /// The scan itself, where it was sent.
    pub document: Vec<u8>,
    pub signatories: Vec<(IdentityNumber, String, Relation, bool)>,
    pub persons: Vec<IdentityNumber>,
    pub items: Vec<Item>,
    pub signed_on: Date,
    pub valid_until: Date,
    pub officer: Signature,
    pub no_relatives_outside_household: bool,
    pub county: DivisionCode,
    pub household_id: String,
}

/// The household a consent names, as civil affairs holds it; not found
/// alike where the officer's jurisdiction does not hold it.
pub async fn household_of(
    hub: &crate::verify::Hub,
    c: &Option<pb::Consent>,
    officer: &Officer,
) -> Result<households::Household, Error> {
    let id = c.as_ref().map_or("", |c| c.household_id.trim());
    if id.is_empty() {
        return Err(
            InvalidField::new("consent.household_id", "请填写授权书所属家庭在民政业务系统中的编号（R-VER-1）").into()
        );
    }
    let household = households::resolve(hub.policies.client.as_ref(), id).await.map_err(|e| match e {
        Error::InvalidArgument(fields) => {
            Error::InvalidArgument(fields.into_iter().map(|f| f.within("consent")).collect())
        }
        other => other,
    })?;
    if !officer.covers(&household.village) {
        return Err(households::not_found(id));
    }
    Ok(household)
}

/// Checks a consent for `household`: document digest, signatories with
/// valid identity numbers — the household's live members, and relatives
/// outside it marked as such —, covered persons (each a member or a
/// relative who signed; each adult covered must have signed; a minor is
/// covered by an adult member's signature), items, dates, officer.
pub fn check(
    c: &Option<pb::Consent>,
    household: &households::Household,
    officer: &Officer,
    now: OffsetDateTime,
) -> Result<Checked, Error> {
    let Some(c) = c else {
        return Err(InvalidField::new("consent", "必填项缺失").into());
    };
    let mut errors = Vec::new();
    let typed = c.document_sha256.trim().to_ascii_lowercase();
    let digest = if c.document.is_empty() {
        if typed.len() != 64 || !typed.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.push(InvalidField::new("consent.document_sha256", "应为授权书扫描件的SHA-256摘要（64位十六进制）"));
        }
        typed
    } else {
        // The scan itself: its digest is the hub's, not the caller's word.
        if c.document.len() > DOCUMENT_MAX_BYTES {
            errors.push(InvalidField::new(
                "consent.document",
                format!(
                    "授权书扫描件为{}字节，超过上限{DOCUMENT_MAX_BYTES}字节（3MB），请压缩后上传",
                    c.document.len()
                ),
            ));
        }
        let computed =
            dibao_platform::trust::assertion::hex(ring::digest::digest(&ring::digest::SHA256, &c.document).as_ref());
        if !typed.is_empty() && typed != computed {
            errors.push(InvalidField::new(
                "consent.document_sha256",
                format!("填写的摘要与上传的授权书扫描件不符（扫描件的SHA-256为{computed}）"),
            ));
        }
        computed
    };
    let mut signatories = Vec::new();
    if c.signatories.is_empty() {
        errors.push(InvalidField::new("consent.signatories", "授权书至少要有一位签字人"));
    }
    for (i, s) in c.signatories.iter().enumerate() {
        let field = format!("consent.signatories[{i}]");
        let Some(p) = &s.person else {
            errors.push(InvalidField::new(format!("{field}.person"), "必填项缺失"));
            continue;
        };
        let id = match p.identity_number.as_ref().map(|n| IdentityNumber::parse(&n.value)) {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                errors.push(e.within(&format!("{field}.person.identity_number")));
                None
            }
            None => {
                errors.push(InvalidField::new(format!("{field}.person.identity_number"), "必填项缺失"));
                None
            }
        };
        if p.name.trim().is_empty() {
            errors.push(InvalidField::new(format!("{field}.person.name"), "签字人姓名不能为空"));
        }
        let relation = Relation::try_from(s.relation).unwrap_or(Relation::Unspecified);
        if relation == Relation::Unspecified {
            errors.push(InvalidField::new(format!("{field}.relation"), "请填写签字人与户主的关系"));
        }
        if let Some(id) = id {
            if signatories.iter().any(|(other, ..): &(IdentityNumber, String, Relation, bool)| *other == id) {
                errors.push(InvalidField::new(format!("{field}.person.identity_number"), "同一签字人重复出现"));
            }
            let member = household.members.contains(id.as_str());
            if !s.relative && !member {
                errors.push(InvalidField::new(
                    format!("{field}.person.identity_number"),
                    format!("{}不是该户在民政业务系统中的在世成员；户外的直系亲属请标注为亲属", id.masked()),
                ));
            }
            if s.relative && member {
                errors.push(InvalidField::new(
                    format!("{field}.relative"),
                    format!("{}是该户成员，不是户外亲属", id.masked()),
                ));
            }
            signatories.push((id, p.name.trim().to_owned(), relation, s.relative));
        }
    }
    let signed_on = date(&c.signed_on, "consent.signed_on", &mut errors);
    let valid_until = date(&c.valid_until, "consent.valid_until", &mut errors);
    if let Some(d) = signed_on
        && d > china_date(now)
    {
        errors.push(InvalidField::new("consent.signed_on", format!("签署日期{d}晚于今天")));
    }
    if let (Some(s), Some(u)) = (signed_on, valid_until)
        && u < s
    {
        errors.push(InvalidField::new("consent.valid_until", format!("有效期至{u}早于签署日期{s}")));
    }
    let mut persons = Vec::new();
    if c.covered_persons.is_empty() {
        errors.push(InvalidField::new("consent.covered_persons", "授权书至少要覆盖一人"));
    }
    let signed_ids: HashSet<&str> = signatories.iter().map(|(id, ..)| id.as_str()).collect();
    for (i, p) in c.covered_persons.iter().enumerate() {
        let field = format!("consent.covered_persons[{i}]");
        match IdentityNumber::parse(&p.value) {
            Err(e) => errors.push(e.within(&field)),
            Ok(id) => {
                let relative = signatories.iter().any(|(s, .., relative)| *relative && *s == id);
                if !household.members.contains(id.as_str()) && !relative {
                    errors.push(InvalidField::new(
                        field.clone(),
                        format!("{}既不是该户成员，也不是在授权书上签字的户外直系亲属", id.masked()),
                    ));
                }
                let adult = signed_on.is_some_and(|d| id.age_on(d) >= 18);
                if adult && !signed_ids.contains(id.as_str()) {
                    errors.push(InvalidField::new(
                        field,
                        format!("{}已成年，须本人在授权书上签字才能核对其信息", id.masked()),
                    ));
                }
                if !persons.contains(&id) {
                    persons.push(id);
                }
            }
        }
    }
    if !signatories.iter().any(|(id, .., relative)| !relative && signed_on.is_some_and(|d| id.age_on(d) >= 18)) {
        errors.push(InvalidField::new("consent.signatories", "授权书须有至少一位成年家庭成员签字"));
    }
    if c.no_relatives_outside_household && signatories.iter().any(|(.., relative)| *relative) {
        errors.push(InvalidField::new(
            "consent.no_relatives_outside_household",
            "已有直系亲属在授权书上签字，不能同时注明户外没有直系亲属",
        ));
    }
    let mut items = Vec::new();
    if c.covered_items.is_empty() {
        errors.push(InvalidField::new("consent.covered_items", "授权书至少要授权一个核对项目"));
    }
    for (i, v) in c.covered_items.iter().enumerate() {
        match Item::try_from(*v) {
            Ok(item) if item != Item::Unspecified => {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            _ => {
                errors.push(InvalidField::new(format!("consent.covered_items[{i}]"), format!("未知的核对项目（{v}）")))
            }
        }
    }
    let role = officer
        .role_among(&[OfficerRole::VerificationOfficer, OfficerRole::TownshipCaseworker])
        .unwrap_or(OfficerRole::VerificationOfficer);
    let officer = officer.signature(role, now);
    match (signed_on, valid_until, errors.is_empty()) {
        (Some(signed_on), Some(valid_until), true) => Ok(Checked {
            county: household.county.clone(),
            household_id: c.household_id.trim().to_owned(),
            document_sha256: digest,
            document: c.document.clone(),
            signatories,
            persons,
            items,
            signed_on,
            valid_until,
            officer,
            no_relatives_outside_household: c.no_relatives_outside_household,
        }),
        _ => Err(Error::InvalidArgument(errors)),
    }
}

pub async fn insert(tx: &impl GenericClient, c: &Checked, now: OffsetDateTime) -> Result<uuid::Uuid, Error> {
    let id = uuid::Uuid::now_v7();
    let items: Vec<&str> = c.items.iter().map(|i| i.as_str_name()).collect();
    tx.execute(
        "INSERT INTO consent (consent_id, document_sha256, signed_on, valid_until, items, registered_by, registered_name, registered_at,
                              no_relatives_outside_household, county, household_id, digest_computed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &id,
            &c.document_sha256,
            &c.signed_on,
            &c.valid_until,
            &items,
            &c.officer.officer_id,
            &c.officer.officer_name,
            &now,
            &c.no_relatives_outside_household,
            &c.county.as_str(),
            &c.household_id,
            &!c.document.is_empty(),
        ],
    )
    .await?;
    if !c.document.is_empty() {
        tx.execute(
            "INSERT INTO consent_document (consent_id, content, size_bytes) VALUES ($1, $2, $3)",
            &[&id, &c.document, &(c.document.len() as i32)],
        )
        .await?;
    }
    for (p, name, relation, relative) in &c.signatories {
        tx.execute(
            "INSERT INTO consent_signatory (consent_id, identity_number, name, relation, relative) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &p.as_str(), name, &relation.as_str_name(), relative],
        )
        .await?;
    }
    let persons: Vec<&str> = c.persons.iter().map(IdentityNumber::as_str).collect();
    tx.execute(
        "INSERT INTO consent_person (consent_id, identity_number) SELECT $1, unnest($2::text[])",
        &[&id, &persons],
    )
    .await?;
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("没有编号为“{0}”的授权书")]
    NotFound(String),
    #[error("授权书已于{0}撤销")]
    AlreadyRevoked(Date),
}

impl Refusal for ConsentError {
    fn kind(&self) -> RefusalKind {
        match self {
            ConsentError::NotFound(_) => RefusalKind::NotFound,
            ConsentError::AlreadyRevoked(_) => RefusalKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ConsentError::NotFound(_) => "CONSENT_NOT_FOUND",
            ConsentError::AlreadyRevoked(_) => "CONSENT_ALREADY_REVOKED",
        }
    }
}

/// Registers a signed consent (R-VER-1).
#[tracing::instrument(skip_all)]
pub async fn register(
    hub: &crate::verify::Hub,
    officer: &Officer,
    req: &pb::RegisterConsentRequest,
    now: OffsetDateTime,
) -> Result<uuid::Uuid, Error> {
    let household = household_of(hub, &req.consent, officer).await?;
    let checked = check(&req.consent, &household, officer, now)?;
    // The county's limits on backdating and validity (R-VER-1); the
    // province's where the county's policy cannot be read now.
    let month = dibao_proto::common::v1::YearMonth { year: now.year(), month: i32::from(now.month() as u8) };
    let policy = hub.policies.get(&checked.county, month).await.ok();
    within_limits(&checked, policy.as_ref(), china_date(now))?;
    let mut client = hub.pool.get().await?;
    let tx = client.transaction().await?;
    let id = insert(&tx, &checked, now).await?;
    tx.commit().await?;
    tracing::info!(consent_id = %id, persons = checked.persons.len(), "consent registered");
    Ok(id)
}

/// The province's defaults where a county's policy sets no limit.
const SIGNED_WITHIN_DAYS: i32 = 30;
const VALID_MONTHS_MAX: i32 = 12;

/// A consent signed no longer before `today` than the county allows, and
/// valid no longer after it (R-VER-1): a backdated signature would make
/// adults of minors, who need not sign.
fn within_limits(c: &Checked, policy: Option<&CountyPolicy>, today: Date) -> Result<(), Error> {
    let or = |v: i32, default: i32| if v > 0 { v } else { default };
    let within = or(policy.map_or(0, |p| p.consent_signed_within_days), SIGNED_WITHIN_DAYS);
    let months = or(policy.map_or(0, |p| p.consent_valid_months_max), VALID_MONTHS_MAX);
    let mut errors = Vec::new();
    if c.signed_on < today - time::Duration::days(i64::from(within)) {
        errors.push(InvalidField::new(
            "consent.signed_on",
            format!("签署日期{}距今已超过本县规定的{within}天，请重新签署授权书", c.signed_on),
        ));
    }
    let latest = add_months(today, months.unsigned_abs());
    if c.valid_until > latest {
        errors.push(InvalidField::new(
            "consent.valid_until",
            format!("有效期至{}超过本县规定的最长{months}个月（至{latest}）", c.valid_until),
        ));
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(errors)) }
}

/// Revokes a consent: no check goes ahead under it from now on.
#[tracing::instrument(skip_all)]
pub async fn revoke(
    pool: &Pool,
    officer: &Officer,
    req: pb::RevokeConsentRequest,
    now: OffsetDateTime,
) -> Result<(), Error> {
    if req.reason.trim().is_empty() {
        return Err(InvalidField::new("reason", "请写明撤销原因").into());
    }
    let client = pool.get().await?;
    let consent = load(&client, &req.consent_id).await?;
    // Another county's consent is not this officer's to see.
    if !consent.county.as_ref().is_none_or(|c| officer.covers(c)) {
        return Err(ConsentError::NotFound(req.consent_id.clone()).into());
    }
    if let Some(at) = consent.revoked_at {
        return Err(ConsentError::AlreadyRevoked(china_date(at)).into());
    }
    client
        .execute(
            "UPDATE consent SET revoked_at = $2, revoked_by = $3, revoke_reason = $4 WHERE consent_id = $1 AND revoked_at IS NULL",
            &[&consent.consent_id, &now, &officer.officer_id, &req.reason.trim()],
        )
        .await?;
    tracing::info!(consent_id = %consent.consent_id, "consent revoked");
    Ok(())
}

pub async fn load(client: &impl GenericClient, id: &str) -> Result<Consent, Error> {
    let not_found = || ConsentError::NotFound(id.to_owned());
    let consent_id = uuid::Uuid::parse_str(id.trim()).map_err(|_| not_found())?;
    let row = dibao_platform::store::db::cached::query_opt(
        client,
        "SELECT signed_on, valid_until, items, revoked_at,
                ARRAY(SELECT identity_number FROM consent_person p WHERE p.consent_id = c.consent_id) AS persons,
                ARRAY(SELECT identity_number FROM consent_signatory s WHERE s.consent_id = c.consent_id AND s.relative)
                    AS relatives,
                no_relatives_outside_household, county, household_id
         FROM consent c WHERE consent_id = $1",
        &[&consent_id],
    )
    .await?
    .ok_or_else(not_found)?;
    let items: Vec<String> = row.get("items");
    let persons: Vec<String> = row.get("persons");
    let relatives: Vec<String> = row.get("relatives");
    Ok(Consent {
        consent_id,
        signed_on: row.get("signed_on"),
        valid_until: row.get("valid_until"),
        items: items.iter().filter_map(|i| Item::from_str_name(i)).collect(),
        persons: persons.into_iter().collect(),
        revoked_at: row.get("revoked_at"),
        relatives: relatives.into_iter().collect(),
        no_relatives_outside_household: row.get("no_relatives_outside_household"),
        county: row.get::<_, Option<String>>("county").and_then(|c| DivisionCode::parse(&c).ok()),
        household_id: row.get("household_id"),
    })
}
