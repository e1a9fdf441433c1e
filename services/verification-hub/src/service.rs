//! The hub's gRPC face: each method parses its request, hands it to the
//! room that holds what it asks about, and converts the answer once.

use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of as timestamp;
use dibao_platform::runtime::access::{Reader, officer_of};
use dibao_platform::runtime::error::respond;
use dibao_platform::trust::access_log::AccessEntry;
use dibao_platform::trust::officer::Officer;
use dibao_platform::trust::relatives;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::types::{DivisionCode, InvalidField, Signature};
use dibao_proto::verification::v1::verification_service_server::VerificationService;
use dibao_proto::verification::v1::*;
use tonic::{Request, Response, Status};

use crate::campaign::{self, Campaigns};
use crate::verify::{self, Hub};
use crate::{consent, households, reports};

pub struct Verification {
    pub hub: Hub,
    pub campaigns: Campaigns,
}

/// A new campaign's division, purpose and officer, checked.
fn campaign_request(
    req: &StartCampaignRequest,
    officer: &Officer,
    now: time::OffsetDateTime,
) -> Result<(DivisionCode, Signature), Error> {
    let mut errors = Vec::new();
    let division = match req.division.as_ref().map(DivisionCode::try_from) {
        None => {
            errors.push(InvalidField::new("division", "必填项缺失：核查哪个县或乡镇"));
            None
        }
        Some(Err(e)) => {
            errors.push(e.within("division"));
            None
        }
        Some(Ok(d)) => match campaign::check_division(&d) {
            Ok(()) => Some(d),
            Err(why) => {
                errors.push(InvalidField::new("division", why));
                None
            }
        },
    };
    if req.purpose.trim().is_empty() {
        errors.push(InvalidField::new("purpose", "请写明核查用途（如“2026年低保集中核查”）"));
    }
    // Outside the jurisdiction: refused before anything else is said.
    if let Some(d) = &division {
        officer.must_cover(d, "division")?;
    }
    let role = officer
        .role_among(&[OfficerRole::VerificationOfficer, OfficerRole::CountyApprover])
        .unwrap_or(OfficerRole::VerificationOfficer);
    match (division, errors.is_empty()) {
        (Some(division), true) => Ok((division, officer.signature(role, now))),
        _ => Err(Error::InvalidArgument(errors)),
    }
}

/// The officer a checked call was admitted for.
fn officer_of_checked(reader: &Reader) -> Result<Officer, Error> {
    reader.officer.clone().ok_or_else(|| Error::PermissionDenied("此事项须由经办人办理".to_owned()))
}

#[tonic::async_trait]
impl VerificationService for Verification {
    #[tracing::instrument(skip_all)]
    async fn register_consent(
        &self,
        request: Request<RegisterConsentRequest>,
    ) -> Result<Response<RegisterConsentResponse>, Status> {
        let now = self.hub.clock.now();
        respond(
            async {
                let officer = officer_of(&request)?;
                let id = consent::register(&self.hub, &officer, request.get_ref(), now).await?;
                Ok(RegisterConsentResponse { consent_id: id.to_string() })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_consent(
        &self,
        request: Request<RevokeConsentRequest>,
    ) -> Result<Response<RevokeConsentResponse>, Status> {
        let now = self.hub.clock.now();
        respond(
            async {
                let officer = officer_of(&request)?;
                consent::revoke(&self.hub.pool, &officer, request.into_inner(), now).await?;
                Ok(RevokeConsentResponse { revoked_at: Some(timestamp(now)) })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(household_id = %request.get_ref().household_id))]
    async fn verify_household(
        &self,
        request: Request<VerifyHouseholdRequest>,
    ) -> Result<Response<VerifyHouseholdResponse>, Status> {
        let now = self.hub.clock.now();
        let reader = Reader::of(&request);
        let caller = reader.caller.clone();
        let officer = officer_of(&request);
        let req = request.into_inner();
        respond(
            async {
                let officer = officer?;
                // A refused attempt on a household is on record with who tried.
                let (reader, req) = (&reader, &req);
                let refuse = |why: String| async move {
                    let refused = format!("refused: {why}");
                    let entries = req
                        .persons
                        .iter()
                        .map(|p| AccessEntry { outcome: refused.clone(), ..reader.entry(&p.value, req.purpose.trim()) })
                        .collect();
                    self.hub.log.record_all(entries).await
                };
                let asked = match verify::check(req, &officer, now) {
                    Err(Error::PermissionDenied(why)) => {
                        refuse(why.clone()).await?;
                        return Err(Error::PermissionDenied(why));
                    }
                    asked => asked?,
                };
                // The household as civil affairs holds it: its county and
                // members are never the caller's word (R-VER-2).
                let household = households::resolve(self.hub.policies.client.as_ref(), &asked.household_id).await?;
                if !officer.covers(&household.village) {
                    refuse(format!("household {} outside the officer's jurisdiction", asked.household_id)).await?;
                    return Err(households::not_found(&asked.household_id));
                }
                let checked = asked.of(household);
                // Nor a household of a relative on the officials' registry (优亲厚友).
                let persons: Vec<String> = checked.persons.iter().map(|p| p.as_str().to_owned()).collect();
                let officer = officer_of_checked(reader)?;
                if relatives::involved(&self.hub.pool.get().await?, &officer, &persons).await? {
                    let why = "您本人或您备案的近亲属是该户成员，应当回避，不能核对该户（优亲厚友）".to_owned();
                    let entries = persons
                        .iter()
                        .map(|p| AccessEntry {
                            outcome: format!("refused: {why}"),
                            ..reader.entry(p, req.purpose.trim())
                        })
                        .collect();
                    self.hub.log.record_all(entries).await?;
                    return Err(Error::PermissionDenied(why));
                }
                let consent = consent::load(&self.hub.pool.get().await?, &req.consent_id).await?;
                let report = self.hub.verify(&caller, &checked, &consent, &req.report_id, None).await?;
                Ok(VerifyHouseholdResponse { report: Some(report) })
            }
            .await,
        )
    }

    async fn get_report(&self, request: Request<GetReportRequest>) -> Result<Response<GetReportResponse>, Status> {
        let reader = Reader::of(&request);
        respond(reports::get(&self.hub, &reader, request.into_inner()).await)
    }

    type StartCampaignStream = tokio_stream::wrappers::ReceiverStream<Result<StartCampaignResponse, Status>>;

    /// Starts a campaign over a county or township (or, given its id,
    /// resumes one) and streams its progress until it is finished.
    #[tracing::instrument(skip_all)]
    async fn start_campaign(
        &self,
        request: Request<StartCampaignRequest>,
    ) -> Result<Response<Self::StartCampaignStream>, Status> {
        let now = self.hub.clock.now();
        let officer = officer_of(&request);
        let req = request.into_inner();
        respond(
            async {
                let officer = officer?;
                let id = if req.campaign_id.trim().is_empty() {
                    let (division, signature) = campaign_request(&req, &officer, now)?;
                    self.campaigns.create(&self.hub, &division, req.purpose.trim(), &signature).await?
                } else {
                    let id = uuid::Uuid::parse_str(req.campaign_id.trim())
                        .map_err(|_| campaign::CampaignError::NotFound(req.campaign_id.clone()))?;
                    self.campaigns.must_see(&self.hub, &officer, id).await?;
                    id
                };
                let progress = self.campaigns.run(&self.hub, id).await?;
                Ok(campaign::stream(progress))
            }
            .await,
        )
    }
}
