//! The two registers lists (f) and (g) are read against, kept versioned
//! beside the roster view so a re-run sees them as they were:
//! public security's death register and the registry of dibao handlers and
//! village committee members with their close relatives (001).

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Pool;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::error::Error;
use dibao_platform::trust::officer::Officer;
use dibao_proto::common::v1::{self as common, RowError};
use dibao_proto::comparison::v1 as pb;
use dibao_proto::events::v1::{OfficialLink, OfficialLinksChanged, event_envelope::Payload};
use dibao_proto::types::{DivisionCode, DivisionLevel, IdentityNumber, InvalidField};
use time::Date;

use crate::live;
use crate::view::next_position;

/// Relations the registry may name: the official themselves and close
/// relatives (spouse, lineal relatives, siblings, in-laws of the household).
pub const RELATIONS: &[&str] = &[
    "本人",
    "配偶",
    "父母",
    "子女",
    "兄弟姐妹",
    "祖父母",
    "外祖父母",
    "孙子女",
    "外孙子女",
    "儿媳",
    "女婿",
    "公婆",
    "岳父母",
];

const DEFAULT_DEATH_SOURCE: &str = "公安人口信息系统";

fn row_errors(row: i64, errors: Vec<InvalidField>) -> Vec<RowError> {
    errors.into_iter().map(|e| RowError { row, field: e.field, message: e.reason }).collect()
}

/// Parses an identity number field of a register row.
fn identity(v: &Option<common::IdentityNumber>, field: &str, errors: &mut Vec<InvalidField>) -> Option<IdentityNumber> {
    match v {
        Some(v) => IdentityNumber::parse(&v.value).map_err(|e| errors.push(e.within(field))).ok(),
        None => {
            errors.push(InvalidField::new(field, "必填项缺失"));
            None
        }
    }
}

struct Death {
    row: i64,
    id: String,
    name: String,
    died_on: Date,
    source: String,
}

/// Imports death-register rows: each valid row recorded (a changed date or
/// name replaces the earlier record from the next view position on), each
/// invalid row reported with its field and left out.
pub async fn import_deaths(
    pool: &Pool,
    officer: &Officer,
    rows: Vec<pb::ImportDeathRegisterRequest>,
    today: Date,
) -> Result<pb::RegisterImport, Error> {
    let mut answer = pb::RegisterImport::default();
    // Later rows of one person win, as in the file.
    let mut valid: Vec<Death> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for r in rows {
        let mut errors = Vec::new();
        let id = identity(&r.identity_number, "identity_number", &mut errors);
        if r.name.trim().is_empty() {
            errors.push(InvalidField::new("name", "姓名不能为空"));
        }
        let died_on = match &r.died_on {
            Some(d) => match Date::try_from(d) {
                Ok(d) if d > today => {
                    errors.push(InvalidField::new("died_on", format!("死亡日期{d}晚于今天")));
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(e.within("died_on"));
                    None
                }
            },
            None => {
                errors.push(InvalidField::new("died_on", "必填项缺失"));
                None
            }
        };
        match (id, died_on, errors.is_empty()) {
            (Some(id), Some(died_on), true) => {
                let source = if r.source.trim().is_empty() { DEFAULT_DEATH_SOURCE } else { r.source.trim() };
                let d = Death {
                    row: r.row,
                    id: id.as_str().to_owned(),
                    name: r.name.trim().to_owned(),
                    died_on,
                    source: source.to_owned(),
                };
                match index.get(&d.id) {
                    Some(&i) => valid[i] = d,
                    None => {
                        index.insert(d.id.clone(), valid.len());
                        valid.push(d);
                    }
                }
            }
            _ => answer.errors.extend(row_errors(r.row, errors)),
        }
    }
    let mut client = pool.get().await?;
    // Below the province an officer records the deaths of their own
    // rosters' members: a row about anyone else is refused, not applied.
    if officer.division.level() != DivisionLevel::Province {
        let ids: Vec<&str> = valid.iter().map(|d| d.id.as_str()).collect();
        let ours: HashSet<String> = client
            .query(
                "SELECT DISTINCT m FROM roster_household h CROSS JOIN unnest(h.members) m
                 WHERE h.valid_to IS NULL AND h.on_roster AND h.members && $1::text[] AND starts_with(h.village, $2) AND m = ANY($1)",
                &[&ids, &officer.division.prefix()],
            )
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let (kept, refused): (Vec<Death>, Vec<Death>) = valid.into_iter().partition(|d| ours.contains(&d.id));
        for d in refused {
            answer.errors.push(RowError {
                row: d.row,
                field: "identity_number".to_owned(),
                message: format!("该人员不在您辖区（{}）的低保或建档立卡花名册中，不能由您登记死亡", officer.division),
            });
        }
        valid = kept;
    }
    for chunk in valid.chunks(2_000) {
        let tx = client.transaction().await?;
        let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
        let held: HashMap<String, (String, Date, String)> = tx
            .query(
                "SELECT identity_number, name, died_on, source FROM death_record
                 WHERE identity_number = ANY($1) AND valid_to IS NULL",
                &[&ids],
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
            .collect();
        let changed: Vec<&Death> =
            chunk.iter().filter(|d| held.get(&d.id) != Some(&(d.name.clone(), d.died_on, d.source.clone()))).collect();
        answer.rows_unchanged += (chunk.len() - changed.len()) as i64;
        if changed.is_empty() {
            continue;
        }
        let position = next_position(&tx).await?;
        let ids: Vec<&str> = changed.iter().map(|d| d.id.as_str()).collect();
        let names: Vec<&str> = changed.iter().map(|d| d.name.as_str()).collect();
        let dates: Vec<Date> = changed.iter().map(|d| d.died_on).collect();
        let sources: Vec<&str> = changed.iter().map(|d| d.source.as_str()).collect();
        tx.execute(
            "UPDATE death_record SET valid_to = $2 WHERE identity_number = ANY($1) AND valid_to IS NULL",
            &[&ids, &position],
        )
        .await?;
        tx.execute(
            "INSERT INTO death_record (identity_number, name, died_on, source, valid_from)
             SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::date[]), unnest($4::text[]), $5",
            &[&ids, &names, &dates, &sources, &position],
        )
        .await?;
        live::refresh(&tx, ids.iter().map(|s| (*s).to_owned()), &[], position).await?;
        tx.commit().await?;
        answer.rows_applied += changed.len() as i64;
    }
    Ok(answer)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Link {
    official_id: String,
    official_name: String,
    role: i32,
    official_village: String,
    person_id: String,
    person_name: String,
    relation: String,
}

/// Replaces the registry of the division the first row names. The registry
/// is one document: if any row is wrong nothing changes, and every wrong
/// row is reported.
pub async fn import_officials(
    pool: &Pool,
    topic: &str,
    officer: &Officer,
    rows: Vec<pb::ImportOfficialsRequest>,
) -> Result<pb::RegisterImport, Error> {
    let mut answer = pb::RegisterImport::default();
    let Some(first) = rows.first() else {
        return Err(Error::InvalidArgument(vec![InvalidField::new(
            "division",
            "登记表为空：第一行应注明所属行政区划",
        )]));
    };
    let division = match &first.division {
        Some(d) => DivisionCode::try_from(d).map_err(|e| Error::InvalidArgument(vec![e.within("division")]))?,
        None => {
            return Err(Error::InvalidArgument(vec![InvalidField::new("division", "第一行应注明登记表所属行政区划")]));
        }
    };
    officer.must_cover(&division, "division")?;
    let mut links: Vec<Link> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for r in &rows {
        let mut errors = Vec::new();
        let official = identity(&r.official, "official", &mut errors);
        let person = identity(&r.person, "person", &mut errors);
        if r.official_name.trim().is_empty() {
            errors.push(InvalidField::new("official_name", "姓名不能为空"));
        }
        if r.person_name.trim().is_empty() {
            errors.push(InvalidField::new("person_name", "姓名不能为空"));
        }
        let role = pb::OfficialRole::try_from(r.role).unwrap_or(pb::OfficialRole::Unspecified);
        if role == pb::OfficialRole::Unspecified {
            errors.push(InvalidField::new("role", "请注明是低保经办人员还是村委会成员"));
        }
        let village = match &r.official_village {
            Some(v) => match DivisionCode::try_from(v) {
                Ok(v) if division.contains(&v) => Some(v),
                Ok(v) => {
                    errors.push(InvalidField::new("official_village", format!("{v}不在登记表所属的{division}范围内")));
                    None
                }
                Err(e) => {
                    errors.push(e.within("official_village"));
                    None
                }
            },
            None => {
                errors.push(InvalidField::new("official_village", "必填项缺失"));
                None
            }
        };
        let relation = r.relation.trim();
        if !RELATIONS.contains(&relation) {
            errors.push(InvalidField::new(
                "relation",
                format!("“{relation}”不是近亲属关系，应为{}之一", RELATIONS.join("、")),
            ));
        }
        if let (Some(o), Some(p)) = (&official, &person) {
            if (o == p) != (relation == "本人") {
                errors.push(InvalidField::new("relation", "本人一行的身份证号应与干部本人相同，亲属一行应不同"));
            }
            if !seen.insert((o.as_str().to_owned(), p.as_str().to_owned())) {
                errors.push(InvalidField::new("person", "同一干部的同一亲属重复登记"));
            }
        }
        match (official, person, village, errors.is_empty()) {
            (Some(o), Some(p), Some(v), true) => links.push(Link {
                official_id: o.as_str().to_owned(),
                official_name: r.official_name.trim().to_owned(),
                role: role as i32,
                official_village: v.as_str().to_owned(),
                person_id: p.as_str().to_owned(),
                person_name: r.person_name.trim().to_owned(),
                relation: relation.to_owned(),
            }),
            _ => answer.errors.extend(row_errors(r.row, errors)),
        }
    }
    if !answer.errors.is_empty() {
        return Ok(answer);
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let held: HashSet<Link> = tx
        .query(
            "SELECT official_id, official_name, role, official_village, person_id, person_name, relation
             FROM official_link WHERE division = $1 AND valid_to IS NULL",
            &[&division.as_str()],
        )
        .await?
        .into_iter()
        .map(|r| Link {
            official_id: r.get(0),
            official_name: r.get(1),
            role: r.get(2),
            official_village: r.get(3),
            person_id: r.get(4),
            person_name: r.get(5),
            relation: r.get(6),
        })
        .collect();
    let now: HashSet<&Link> = links.iter().collect();
    let added: Vec<&Link> = links.iter().filter(|l| !held.contains(*l)).collect();
    let removed: Vec<&Link> = held.iter().filter(|l| !now.contains(l)).collect();
    answer.rows_unchanged = (links.len() - added.len()) as i64;
    answer.rows_applied = added.len() as i64;
    if added.is_empty() && removed.is_empty() {
        return Ok(answer);
    }
    let position = next_position(&tx).await?;
    for l in removed.iter().chain(added.iter()) {
        tx.execute(
            "UPDATE official_link SET valid_to = $4
             WHERE division = $1 AND official_id = $2 AND person_id = $3 AND valid_to IS NULL",
            &[&division.as_str(), &l.official_id, &l.person_id, &position],
        )
        .await?;
    }
    for l in &added {
        tx.execute(
            "INSERT INTO official_link (division, official_id, official_name, role, official_village, person_id,
                                        person_name, relation, valid_from)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &division.as_str(),
                &l.official_id,
                &l.official_name,
                &l.role,
                &l.official_village,
                &l.person_id,
                &l.person_name,
                &l.relation,
                &position,
            ],
        )
        .await?;
    }
    let persons: Vec<String> = removed.iter().chain(added.iter()).map(|l| l.person_id.clone()).collect();
    live::refresh(&tx, persons, &[], position).await?;
    publish_links(&tx, topic, &division, &added, &removed, position).await?;
    tx.commit().await?;
    tracing::info!(division = %division, officer = %officer.officer_id, added = added.len(), removed = removed.len(),
        "officials' registry imported");
    Ok(answer)
}

/// Links per event: a county's registry fits well under the broker's
/// message size in pieces of this many.
const LINKS_PER_EVENT: usize = 2_000;

/// The registry's change, for civil affairs' separation of duties, in the
/// import's transaction (outbox): in order, in pieces.
async fn publish_links(
    tx: &deadpool_postgres::Transaction<'_>,
    topic: &str,
    division: &DivisionCode,
    added: &[&Link],
    removed: &[&Link],
    position: i64,
) -> Result<(), Error> {
    let link = |l: &&Link| OfficialLink {
        official: Some(common::IdentityNumber { value: l.official_id.clone() }),
        person: Some(common::IdentityNumber { value: l.person_id.clone() }),
        relation: l.relation.clone(),
    };
    let changes: Vec<(bool, OfficialLink)> =
        removed.iter().map(|l| (false, link(l))).chain(added.iter().map(|l| (true, link(l)))).collect();
    for (i, piece) in changes.chunks(LINKS_PER_EVENT).enumerate() {
        let (added, removed): (Vec<_>, Vec<_>) = piece.iter().cloned().partition(|(add, _)| *add);
        outbox::enqueue(
            tx,
            NewEvent {
                topic,
                aggregate_type: "comparison.officials",
                aggregate_key: division.as_str(),
                // Orders the pieces of one import after the earlier imports'.
                aggregate_version: position * 1_000 + i as i64,
                producer: crate::run::PRODUCER,
                payload: Payload::OfficialLinksChanged(OfficialLinksChanged {
                    division: Some(division.into()),
                    added: added.into_iter().map(|(_, l)| l).collect(),
                    removed: removed.into_iter().map(|(_, l)| l).collect(),
                }),
            },
        )
        .await?;
    }
    Ok(())
}
