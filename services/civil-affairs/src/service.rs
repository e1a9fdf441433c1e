//! The gRPC face of civil affairs: each method parses its request, hands
//! it to the room that holds what it asks about, and converts the answer
//! once, at the edge.

use std::sync::Arc;

use dibao_platform::runtime::access::{Reader, officer_of};
use dibao_platform::runtime::error::respond;
use dibao_platform::store::import;
use dibao_platform::store::snapshot::Export;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::civil_affairs::v1::civil_affairs_service_server::CivilAffairsService;
use dibao_proto::civil_affairs::v1::complaint_service_server::ComplaintService;
use dibao_proto::civil_affairs::v1::payment_service_server::PaymentService;
use dibao_proto::civil_affairs::v1::report_service_server::ReportService;
use dibao_proto::sync::v1::poverty_roster_view_service_server::PovertyRosterViewService;
use dibao_proto::sync::v1::{RebuildPovertyViewRequest, RebuildPovertyViewResponse};
use tonic::{Request, Response, Status, Streaming};

use crate::application::{self, DeathReport, ExitStart, ObjectionNote, Signing, Submission};
use crate::households::{self, Roster};
use crate::import::RosterImport;
use crate::notice::{self, NoticeRequest};
use crate::policy::{self, Saving};
use crate::sampling::{self, SampleRequest};
use crate::{complaints, convert, history, members, payments, reports, review, sync};

pub struct CivilAffairs(pub Arc<Roster>);

#[tonic::async_trait]
impl CivilAffairsService for CivilAffairs {
    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        respond(
            async {
                let id = convert::uuid(&request.get_ref().household_id, "household_id", "家庭编号格式不正确")?;
                let reader = Reader::of(&request);
                Ok(pb::GetHouseholdResponse { household: Some(households::read(&self.0, &reader, id).await?) })
            }
            .await,
        )
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        respond(
            async {
                let id = convert::uuid(&request.get_ref().application_id, "application_id", "申请编号格式不正确")?;
                let reader = Reader::of(&request);
                Ok(pb::GetApplicationResponse { application: Some(application::get(&self.0, &reader, id).await?) })
            }
            .await,
        )
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let reader = Reader::of(&request);
        respond(application::list(&self.0, &reader, request.into_inner()).await)
    }

    async fn list_households(
        &self,
        request: Request<pb::ListHouseholdsRequest>,
    ) -> Result<Response<pb::ListHouseholdsResponse>, Status> {
        let reader = Reader::of(&request);
        respond(households::list(&self.0, &reader, request.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn import_roster(
        &self,
        request: Request<Streaming<pb::ImportRosterRequest>>,
    ) -> Result<Response<pb::ImportRosterResponse>, Status> {
        let officer = match officer_of(&request) {
            Ok(o) => o,
            Err(e) => return respond(Err(e)),
        };
        respond(
            async {
                let id = crate::import::begin(&self.0, &officer).await?;
                let o = import::run(&self.0.pool, &RosterImport(&self.0, &officer, id), request.into_inner()).await?;
                crate::import::finish(&self.0, id, &o).await?;
                Ok(pb::ImportRosterResponse {
                    households_applied: o.applied,
                    households_unchanged: o.unchanged,
                    errors: o.errors,
                })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn change_members(
        &self,
        request: Request<pb::ChangeMembersRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                members::change(&self.0, members::MemberChange::check(request.into_inner(), &officer)?).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn draw_sample(
        &self,
        request: Request<pb::DrawSampleRequest>,
    ) -> Result<Response<pb::DrawSampleResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                sampling::draw_sample(&self.0, SampleRequest::check(request.into_inner(), &officer)?).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn list_reviews_due(
        &self,
        request: Request<pb::ListReviewsDueRequest>,
    ) -> Result<Response<pb::ListReviewsDueResponse>, Status> {
        let reader = Reader::of(&request);
        respond(review::reviews_due(&self.0, &reader, request.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn record_review(
        &self,
        request: Request<pb::RecordReviewRequest>,
    ) -> Result<Response<pb::RecordReviewResponse>, Status> {
        respond(async { review::review(&self.0, &officer_of(&request)?, request.into_inner()).await }.await)
    }

    #[tracing::instrument(skip_all)]
    async fn apply_month(
        &self,
        request: Request<pb::ApplyMonthRequest>,
    ) -> Result<Response<pb::ApplyMonthResponse>, Status> {
        respond(async { review::step_gradual_exits(&self.0, &officer_of(&request)?, request.into_inner()).await }.await)
    }

    #[tracing::instrument(skip_all)]
    async fn export_public_notice(
        &self,
        request: Request<pb::ExportPublicNoticeRequest>,
    ) -> Result<Response<pb::ExportPublicNoticeResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            async { notice::export(&self.0, &reader, NoticeRequest::check(request.get_ref(), &reader)?).await }.await,
        )
    }

    type ExportRosterStream = Export<pb::ExportRosterResponse>;

    async fn export_roster(
        &self,
        request: Request<pb::ExportRosterRequest>,
    ) -> Result<Response<Self::ExportRosterStream>, Status> {
        respond(households::export(&self.0, Reader::of(&request), request.get_ref()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn save_policy(
        &self,
        request: Request<pb::SavePolicyRequest>,
    ) -> Result<Response<pb::SavePolicyResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                policy::save(&self.0, Saving::check(request.into_inner(), &officer)?).await
            }
            .await,
        )
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::GetPolicyResponse>, Status> {
        let reader = Reader::of(&request);
        respond(policy::get(&self.0, &reader, request.into_inner()).await)
    }

    async fn assess_household(
        &self,
        request: Request<pb::AssessHouseholdRequest>,
    ) -> Result<Response<pb::AssessHouseholdResponse>, Status> {
        respond(async { policy::assess_household(&self.0, &officer_of(&request)?, request.into_inner()).await }.await)
    }

    #[tracing::instrument(skip_all)]
    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        let now = self.0.clock.now();
        respond(
            async {
                let officer = officer_of(&request)?;
                application::submit(&self.0, Submission::check(request.into_inner(), &officer, now)?).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(application_id = %request.get_ref().application_id))]
    async fn sign_step(&self, request: Request<pb::SignStepRequest>) -> Result<Response<pb::SignStepResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                application::sign(&self.0, Signing::check(request.into_inner(), &officer)?).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(household_id = %request.get_ref().household_id))]
    async fn start_exit(
        &self,
        request: Request<pb::StartExitRequest>,
    ) -> Result<Response<pb::StartExitResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                application::start_exit(&self.0, ExitStart::check(request.into_inner(), &officer)?).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn record_death(
        &self,
        request: Request<pb::RecordDeathRequest>,
    ) -> Result<Response<pb::RecordDeathResponse>, Status> {
        let now = self.0.clock.now();
        respond(
            async {
                let officer = officer_of(&request)?;
                application::record_death(&self.0, DeathReport::check(request.into_inner(), &officer, now)?).await
            }
            .await,
        )
    }

    async fn record_objection(
        &self,
        request: Request<pb::RecordObjectionRequest>,
    ) -> Result<Response<pb::RecordObjectionResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                application::record_objection(&self.0, ObjectionNote::check(request.into_inner(), &officer)?).await
            }
            .await,
        )
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let reader = Reader::of(&request);
        respond(history::history(&self.0, &reader, request.into_inner()).await)
    }

    async fn reproduce_sample(
        &self,
        request: Request<pb::ReproduceSampleRequest>,
    ) -> Result<Response<pb::ReproduceSampleResponse>, Status> {
        let reader = Reader::of(&request);
        respond(sampling::reproduce(&self.0, &reader, request.get_ref()).await)
    }

    async fn get_certificate(
        &self,
        request: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::GetCertificateResponse>, Status> {
        let reader = Reader::of(&request);
        respond(crate::certificates::get(&self.0, &reader, request.get_ref()).await)
    }
}

/// The operator's resync of the view of the registered-poor roster.
pub struct PovertyRosterView(pub Arc<Roster>);

#[tonic::async_trait]
impl PovertyRosterViewService for PovertyRosterView {
    #[tracing::instrument(skip_all)]
    async fn rebuild_poverty_view(
        &self,
        request: Request<Streaming<RebuildPovertyViewRequest>>,
    ) -> Result<Response<RebuildPovertyViewResponse>, Status> {
        let reader = Reader::of(&request);
        respond(sync::rebuild(&self.0.pool, &reader, request.into_inner()).await)
    }
}

/// Complaints and reports (R-AUD-2).
pub struct Complaints(pub Arc<Roster>);

impl Complaints {
    fn today(&self) -> time::Date {
        dibao_platform::runtime::clock::china_date(self.0.clock.now())
    }
}

#[tonic::async_trait]
impl ComplaintService for Complaints {
    #[tracing::instrument(skip_all)]
    async fn file_complaint(
        &self,
        request: Request<pb::FileComplaintRequest>,
    ) -> Result<Response<pb::FileComplaintResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                let intake = complaints::Intake::check(request.into_inner(), &officer, self.today())?;
                complaints::file(&self.0, &officer, intake).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn assign_complaint(
        &self,
        request: Request<pb::AssignComplaintRequest>,
    ) -> Result<Response<pb::AssignComplaintResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                let assignment = complaints::Assignment::check(request.into_inner(), self.today())?;
                complaints::assign(&self.0, &officer, assignment).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn add_complaint_step(
        &self,
        request: Request<pb::AddComplaintStepRequest>,
    ) -> Result<Response<pb::AddComplaintStepResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                complaints::add_step(&self.0, &officer, complaints::FollowUp::check(request.into_inner())?).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn close_complaint(
        &self,
        request: Request<pb::CloseComplaintRequest>,
    ) -> Result<Response<pb::CloseComplaintResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                complaints::close(&self.0, &officer, complaints::Closing::check(request.into_inner())?).await
            }
            .await,
        )
    }

    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::GetComplaintResponse>, Status> {
        let reader = Reader::of(&request);
        respond(complaints::get(&self.0, &reader, &request.get_ref().complaint_id).await)
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        let reader = Reader::of(&request);
        respond(complaints::list(&self.0, &reader, request.into_inner()).await)
    }
}

/// The monthly payment roll (R-PROC-1).
pub struct Payments(pub Arc<Roster>);

#[tonic::async_trait]
impl PaymentService for Payments {
    #[tracing::instrument(skip_all)]
    async fn prepare_roll(
        &self,
        request: Request<pb::PrepareRollRequest>,
    ) -> Result<Response<pb::PrepareRollResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                let this_month = households::first_of_month(self.0.clock.now());
                let roll = payments::RollRequest::check(request.get_ref(), &officer, this_month)?;
                payments::prepare(&self.0, &officer, roll).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn sign_roll(&self, request: Request<pb::SignRollRequest>) -> Result<Response<pb::SignRollResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            async {
                let officer = officer_of(&request)?;
                payments::sign(&self.0, &reader, &officer, &request.get_ref().roll_id).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn export_disbursement(
        &self,
        request: Request<pb::ExportDisbursementRequest>,
    ) -> Result<Response<pb::ExportDisbursementResponse>, Status> {
        let reader = Reader::of(&request);
        respond(payments::export(&self.0, &reader, request.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn import_bank_return(
        &self,
        request: Request<Streaming<pb::ImportBankReturnRequest>>,
    ) -> Result<Response<pb::ImportBankReturnResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            import::run(&self.0.pool, &payments::BankReturn(&self.0, &reader), request.into_inner())
                .await
                .map(|o| pb::ImportBankReturnResponse { applied: o.applied, unchanged: o.unchanged, errors: o.errors }),
        )
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        let reader = Reader::of(&request);
        respond(payments::list(&self.0, &reader, request.into_inner()).await)
    }

    async fn get_payment_history(
        &self,
        request: Request<pb::GetPaymentHistoryRequest>,
    ) -> Result<Response<pb::GetPaymentHistoryResponse>, Status> {
        let reader = Reader::of(&request);
        respond(payments::history(&self.0, &reader, request.get_ref()).await)
    }

    async fn list_overpayments(
        &self,
        request: Request<pb::ListOverpaymentsRequest>,
    ) -> Result<Response<pb::ListOverpaymentsResponse>, Status> {
        let reader = Reader::of(&request);
        respond(payments::overpayments(&self.0, &reader, request.get_ref()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn record_recovery(
        &self,
        request: Request<pb::RecordRecoveryRequest>,
    ) -> Result<Response<pb::RecordRecoveryResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            async {
                let officer = officer_of(&request)?;
                let recovery = payments::Recovery::check(request.get_ref())?;
                payments::record_recovery(&self.0, &reader, &officer, recovery).await
            }
            .await,
        )
    }
}

/// Upward reports (R-AUD-3).
pub struct UpwardReports(pub Arc<Roster>);

#[tonic::async_trait]
impl ReportService for UpwardReports {
    #[tracing::instrument(skip_all)]
    async fn generate_report(
        &self,
        request: Request<pb::GenerateReportRequest>,
    ) -> Result<Response<pb::GenerateReportResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            async {
                let today = dibao_platform::runtime::clock::china_date(self.0.clock.now());
                let ask = reports::Ask::check(request.get_ref(), &reader, today)?;
                reports::generate(&self.0, &reader, ask).await
            }
            .await,
        )
    }

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::GetReportResponse>, Status> {
        let reader = Reader::of(&request);
        respond(reports::get(&self.0, &reader, request.get_ref()).await)
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        let reader = Reader::of(&request);
        respond(reports::list(&self.0, &reader, request.get_ref()).await)
    }

    async fn export_report(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<pb::ExportReportResponse>, Status> {
        let reader = Reader::of(&request);
        respond(reports::export(&self.0, &reader, request.get_ref()).await)
    }
}
