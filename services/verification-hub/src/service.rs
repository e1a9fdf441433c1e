//! The hub's gRPC face: each method parses its request, hands it to the
//! room that holds what it asks about, and converts the answer once.

use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of as timestamp;
use dibao_platform::runtime::error::respond;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::types::{DivisionCode, InvalidField, Signature};
use dibao_proto::verification::v1::verification_service_server::VerificationService;
use dibao_proto::verification::v1::*;
use tonic::{Request, Response, Status};

use crate::campaign::{self, Campaigns};
use crate::verify::{self, Hub, caller_of};
use crate::{accesses, consent, reports};

pub struct Verification {
    pub hub: Hub,
    pub campaigns: Campaigns,
}

/// A new campaign's division, purpose and officer, checked.
fn campaign_request(req: &StartCampaignRequest, now: time::OffsetDateTime) -> Result<(DivisionCode, Signature), Error> {
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
    let officer = match Signature::from_pb(&req.officer, now) {
        Ok(s) if matches!(s.role, OfficerRole::VerificationOfficer | OfficerRole::CountyApprover) => Some(s),
        Ok(_) => {
            errors.push(InvalidField::new("officer.role", "批量核查须由核对人员或县级审批人员发起"));
            None
        }
        Err(es) => {
            errors.extend(es.into_iter().map(|e| e.within("officer")));
            None
        }
    };
    match (division, officer, errors.is_empty()) {
        (Some(division), Some(officer), true) => Ok((division, officer)),
        _ => Err(Error::InvalidArgument(errors)),
    }
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
            consent::register(&self.hub.pool, request.get_ref(), now)
                .await
                .map(|id| RegisterConsentResponse { consent_id: id.to_string() }),
        )
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_consent(
        &self,
        request: Request<RevokeConsentRequest>,
    ) -> Result<Response<RevokeConsentResponse>, Status> {
        let now = self.hub.clock.now();
        respond(
            consent::revoke(&self.hub.pool, request.into_inner(), now)
                .await
                .map(|()| RevokeConsentResponse { revoked_at: Some(timestamp(now)) }),
        )
    }

    #[tracing::instrument(skip_all, fields(household_id = %request.get_ref().household_id))]
    async fn verify_household(
        &self,
        request: Request<VerifyHouseholdRequest>,
    ) -> Result<Response<VerifyHouseholdResponse>, Status> {
        let now = self.hub.clock.now();
        let caller = caller_of(&request);
        let req = request.into_inner();
        respond(
            async {
                let checked = verify::check(&req, now)?;
                let consent = consent::load(&self.hub.pool.get().await?, &req.consent_id).await?;
                let report = self.hub.verify(&caller, &checked, &consent, &req.report_id, None).await?;
                Ok(VerifyHouseholdResponse { report: Some(report) })
            }
            .await,
        )
    }

    async fn get_report(&self, request: Request<GetReportRequest>) -> Result<Response<GetReportResponse>, Status> {
        respond(reports::get(&self.hub.pool, request.into_inner()).await)
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
        let req = request.into_inner();
        respond(
            async {
                let id = if req.campaign_id.trim().is_empty() {
                    let (division, officer) = campaign_request(&req, now)?;
                    self.campaigns.create(&self.hub, &division, req.purpose.trim(), &officer).await?
                } else {
                    uuid::Uuid::parse_str(req.campaign_id.trim())
                        .map_err(|_| campaign::CampaignError::NotFound(req.campaign_id.clone()))?
                };
                let progress = self.campaigns.run(&self.hub, id).await?;
                Ok(campaign::stream(progress))
            }
            .await,
        )
    }

    async fn list_accesses(
        &self,
        request: Request<ListAccessesRequest>,
    ) -> Result<Response<ListAccessesResponse>, Status> {
        respond(accesses::list(&self.hub.pool, request.into_inner()).await)
    }
}
