//! The gRPC face of the poverty office: each method parses its request,
//! hands it to the room that holds what it asks about, and converts the
//! answer once, at the edge.

use std::sync::Arc;

use dibao_platform::runtime::access::{Reader, officer_of};
use dibao_platform::runtime::error::respond;
use dibao_platform::store::import;
use dibao_platform::store::snapshot::Export;
use dibao_proto::poverty_alleviation::v1 as pb;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_server::PovertyAlleviationService;
use dibao_proto::sync::v1::dibao_roster_view_service_server::DibaoRosterViewService;
use dibao_proto::sync::v1::{RebuildDibaoViewRequest, RebuildDibaoViewResponse};
use dibao_proto::types::InvalidField;
use tonic::{Request, Response, Status, Streaming};

use crate::households::{self, DeathReport, FlagChange, MembersChange, Roster, StatusChange};
use crate::import::RosterImport;
use crate::sync;

pub struct PovertyAlleviation(pub Arc<Roster>);

#[tonic::async_trait]
impl PovertyAlleviationService for PovertyAlleviation {
    #[tracing::instrument(skip_all)]
    async fn register_household(
        &self,
        request: Request<pb::RegisterHouseholdRequest>,
    ) -> Result<Response<pb::RegisterHouseholdResponse>, Status> {
        respond(async { households::register_one(&self.0, &officer_of(&request)?, request.into_inner()).await }.await)
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        respond(
            async {
                let id = uuid::Uuid::parse_str(&request.get_ref().household_id)
                    .map_err(|_| InvalidField::new("household_id", "户编号格式不正确"))?;
                let reader = Reader::of(&request);
                Ok(pb::GetHouseholdResponse { household: Some(households::get(&self.0, &reader, id).await?) })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn change_status(
        &self,
        request: Request<pb::ChangeStatusRequest>,
    ) -> Result<Response<pb::ChangeStatusResponse>, Status> {
        let now = self.0.clock.now();
        let reader = Reader::of(&request);
        respond(
            async {
                households::change_status(&self.0, &reader, StatusChange::check(request.into_inner(), now)?).await
            }
            .await,
        )
    }

    async fn list_candidates(
        &self,
        request: Request<pb::ListCandidatesRequest>,
    ) -> Result<Response<pb::ListCandidatesResponse>, Status> {
        let reader = Reader::of(&request);
        respond(households::candidates(&self.0, &reader, request.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn record_death(
        &self,
        request: Request<pb::RecordDeathRequest>,
    ) -> Result<Response<pb::RecordDeathResponse>, Status> {
        let now = self.0.clock.now();
        let reader = Reader::of(&request);
        respond(
            async { households::record_death(&self.0, &reader, DeathReport::check(request.into_inner(), now)?).await }
                .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn set_dibao_flag(
        &self,
        request: Request<pb::SetDibaoFlagRequest>,
    ) -> Result<Response<pb::SetDibaoFlagResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            async {
                let officer = officer_of(&request)?;
                households::set_flag(&self.0, &reader, &officer, FlagChange::check(request.into_inner())?).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn change_members(
        &self,
        request: Request<pb::ChangeMembersRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            async {
                let officer = officer_of(&request)?;
                households::change_members(&self.0, &reader, &officer, MembersChange::check(request.into_inner())?)
                    .await
            }
            .await,
        )
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
        respond(import::run(&self.0.pool, &RosterImport(&self.0, &officer), request.into_inner()).await.map(|o| {
            pb::ImportRosterResponse {
                households_applied: o.applied,
                households_unchanged: o.unchanged,
                errors: o.errors,
            }
        }))
    }

    type ExportRosterStream = Export<pb::ExportRosterResponse>;

    async fn export_roster(
        &self,
        request: Request<pb::ExportRosterRequest>,
    ) -> Result<Response<Self::ExportRosterStream>, Status> {
        respond(households::export(&self.0, Reader::of(&request), request.get_ref()).await)
    }
}

/// The operator's resync of the view of the dibao roster.
pub struct DibaoRosterView(pub Arc<Roster>);

#[tonic::async_trait]
impl DibaoRosterViewService for DibaoRosterView {
    #[tracing::instrument(skip_all)]
    async fn rebuild_dibao_view(
        &self,
        request: Request<Streaming<RebuildDibaoViewRequest>>,
    ) -> Result<Response<RebuildDibaoViewResponse>, Status> {
        let reader = Reader::of(&request);
        respond(sync::rebuild(&self.0.pool, &self.0.topic, &reader, request.into_inner()).await)
    }
}
