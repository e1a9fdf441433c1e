//! The adapter's gRPC face: the assertion is checked first, then the
//! department is asked while the query is logged; nothing is answered
//! before the query's record is committed.

use std::sync::Arc;

use dibao_platform::Error;
use dibao_platform::runtime::access::caller_of;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::error::{Refusal, RefusalKind, respond};
use dibao_platform::trust::access_log::{self, AccessEntry, AccessLog};
use dibao_platform::trust::assertion::{AssertionRefusal, AssertionVerifier};
use dibao_platform::trust::officer::ReplayGuard;
use dibao_proto::department::v1::department_service_server::DepartmentService;
use dibao_proto::department::v1::{ConsentAssertion, Item, QueryRequest, QueryResponse};
use dibao_proto::types::InvalidField;
use tonic::{Request, Response, Status};

use crate::kit::{Connector, Kit};

pub struct Adapter<C: Connector> {
    pub connector: C,
    pub kit: Kit,
    pub verifier: AssertionVerifier,
    /// The consent assertions' ids seen, each accepted once.
    pub replay: ReplayGuard,
    pub log: AccessLog,
    pub clock: Arc<dyn Clock>,
}

/// A query refused for its assertion: never reaches the department.
#[derive(Debug, thiserror::Error)]
#[error("拒绝查询：{}", text(.0))]
pub struct QueryRefused(pub AssertionRefusal);

fn text(r: &AssertionRefusal) -> &'static str {
    match r {
        AssertionRefusal::Missing => "缺少授权核对凭证",
        AssertionRefusal::UnknownKey(_) => "授权核对凭证的签发密钥不受信任",
        AssertionRefusal::BadSignature => "授权核对凭证签名无效（可能被伪造或篡改）",
        AssertionRefusal::Expired => "授权核对凭证已过期或尚未生效",
        AssertionRefusal::NoPerson => "授权核对凭证未载明有效的被核对人",
        AssertionRefusal::ItemOutOfScope(_) => "所查项目超出授权范围",
        AssertionRefusal::Incomplete => "授权核对凭证未载明授权书、用途或凭证编号",
        AssertionRefusal::OtherAudience(_) => "授权核对凭证是签发给其他部门的",
        AssertionRefusal::Replayed(_) => "授权核对凭证已使用过，不能重复使用",
    }
}

impl Refusal for QueryRefused {
    fn kind(&self) -> RefusalKind {
        RefusalKind::PermissionDenied
    }

    fn reason(&self) -> &'static str {
        match self.0 {
            AssertionRefusal::Missing => "ASSERTION_MISSING",
            AssertionRefusal::UnknownKey(_) => "ASSERTION_KEY_UNTRUSTED",
            AssertionRefusal::BadSignature => "ASSERTION_SIGNATURE_INVALID",
            AssertionRefusal::Expired => "ASSERTION_EXPIRED",
            AssertionRefusal::NoPerson => "ASSERTION_NAMES_NO_PERSON",
            AssertionRefusal::ItemOutOfScope(_) => "ITEM_OUT_OF_SCOPE",
            AssertionRefusal::Incomplete => "ASSERTION_INCOMPLETE",
            AssertionRefusal::OtherAudience(_) => "ASSERTION_FOR_ANOTHER_DEPARTMENT",
            AssertionRefusal::Replayed(_) => "ASSERTION_REPLAYED",
        }
    }
}

fn items_of<C: Connector>(raw: &[i32]) -> Result<Vec<Item>, Error> {
    if raw.is_empty() {
        return Err(InvalidField::new("items", "至少要查询一个项目").into());
    }
    let mut items = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        match Item::try_from(*v) {
            Ok(item) if C::ITEMS.contains(&item) => {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            _ => return Err(InvalidField::new(format!("items[{i}]"), format!("本部门不提供此项目（{v}）")).into()),
        }
    }
    Ok(items)
}

impl<C: Connector> Adapter<C> {
    async fn query(&self, caller: String, req: QueryRequest) -> Result<QueryResponse, Error> {
        let items = items_of::<C>(&req.items)?;
        let item_names: Vec<String> = items.iter().map(|i| i.as_str_name().to_owned()).collect();
        let claimed = req.assertion.clone().unwrap_or_default();
        let entry = |outcome: String, completes: Option<i64>, a: &ConsentAssertion| AccessEntry {
            caller: caller.clone(),
            officer_id: a.officer_id.clone(),
            consent_id: a.consent_id.clone(),
            purpose: a.purpose.clone(),
            person: a.person.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
            items: item_names.clone(),
            outcome,
            completes,
        };
        let audience = dibao_proto::departments::name(C::DEPARTMENT);
        let verified = match self.verifier.verify(req.assertion.as_ref(), &items, audience, self.clock.now()) {
            Ok(v) if !self.replay.first_seen(&v.assertion_id, v.expires_at).await? => {
                Err(AssertionRefusal::Replayed(v.assertion_id))
            }
            checked => checked,
        };
        let verified = match verified {
            Ok(v) => v,
            Err(refusal) => {
                tracing::warn!(%caller, consent_id = %claimed.consent_id, reason = %refusal, "query refused");
                self.log.record(entry(format!("refused: {refusal}"), None, &claimed)).await?;
                return Err(QueryRefused(refusal).into());
            }
        };
        // The query's record commits while the department works; no answer
        // leaves before it has (R-VER-1).
        let (asked, answer) = tokio::join!(
            self.log.record(entry(access_log::ASKED.to_owned(), None, &claimed)),
            self.kit.query(&self.connector, &verified.person, &items)
        );
        let asked = asked?;
        let outcome = if answer.unavailable.is_empty() {
            format!("answered: {} records", answer.records.len())
        } else {
            format!(
                "partial: {} records, unavailable {:?}",
                answer.records.len(),
                answer.unavailable.keys().collect::<Vec<_>>()
            )
        };
        self.log.record_outcome(entry(outcome, Some(asked), &claimed));
        Ok(answer)
    }
}

#[tonic::async_trait]
impl<C: Connector> DepartmentService for Adapter<C> {
    #[tracing::instrument(skip_all, fields(department = C::DEPARTMENT.as_str_name()))]
    async fn query(&self, request: Request<QueryRequest>) -> Result<Response<QueryResponse>, Status> {
        let caller = caller_of(&request);
        respond(Adapter::query(self, caller, request.into_inner()).await)
    }
}
