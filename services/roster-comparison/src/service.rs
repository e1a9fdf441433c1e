//! The comparison's gRPC face: each method parses its request, hands it to
//! the room that holds what it asks about, and converts the answer once.

use std::sync::Arc;

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of;
use dibao_platform::runtime::access::{Reader, officer_of};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind, respond};
use dibao_platform::trust::access_log::AccessLog;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::comparison::v1 as pb;
use dibao_proto::comparison::v1::comparison_service_server::ComparisonService;
use dibao_proto::types::{DivisionLevel, InvalidField};
use futures_util::StreamExt;
use tokio::sync::{Mutex, mpsc};
use tonic::{Request, Response, Status, Streaming};

use crate::decisions::{self, Deciding, Rosters};
use crate::lists::{self, division_field, uuid_field};
use crate::rebuild;
use crate::registers;
use crate::run::{Progress, Runs};

#[derive(Clone)]
pub struct Comparison {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    pub runs: Arc<Runs>,
    /// Roles that see identity numbers in full in exports.
    pub full_identity_roles: Arc<Vec<OfficerRole>>,
    /// One run at a time: a second waits for the first.
    pub running: Arc<Mutex<()>>,
    /// Civil affairs and the poverty office: decisions are checked with
    /// them, and `RebuildView` reads their snapshots.
    pub rosters: Arc<Rosters>,
    /// Every read of the lists' members is on record here.
    pub log: AccessLog,
    /// The topic the comparison publishes on (runs, the officials' registry).
    pub topic: String,
    /// Open-items reports already counted (the county's work lists all ask for one).
    pub open_items: Arc<lists::OpenItemsReports>,
}

#[derive(Debug, thiserror::Error)]
#[error("未配置民政和扶贫服务地址（comparison.civil_affairs、comparison.poverty_alleviation），无法重建")]
pub struct RebuildNotConfigured;

impl Refusal for RebuildNotConfigured {
    fn kind(&self) -> RefusalKind {
        RefusalKind::FailedPrecondition
    }

    fn reason(&self) -> &'static str {
        "ROSTERS_NOT_CONFIGURED"
    }
}

/// Every row of a register's stream, or the stream's break.
async fn rows<T>(mut stream: Streaming<T>) -> Result<Vec<T>, Error> {
    let mut rows = Vec::new();
    while let Some(r) = stream.next().await {
        rows.push(r.map_err(|s| Error::Unavailable(format!("the caller's stream of rows broke: {s}")))?);
    }
    Ok(rows)
}

#[tonic::async_trait]
impl ComparisonService for Comparison {
    type RunComparisonStream = tokio_stream::wrappers::ReceiverStream<Result<pb::RunComparisonResponse, Status>>;

    async fn run_comparison(
        &self,
        request: Request<pb::RunComparisonRequest>,
    ) -> Result<Response<Self::RunComparisonStream>, Status> {
        let reader = Reader::of(&request);
        let r = request.into_inner();
        respond(
            async {
                // An officer compares their own jurisdiction (the whole
                // province only an officer of the province).
                let division = match (division_field(&r.division, "division")?, &reader.officer) {
                    (Some(d), _) => {
                        reader.must_cover(&d, "division")?;
                        Some(d)
                    }
                    (None, Some(o)) if o.division.level() != DivisionLevel::Province => Some(o.division.clone()),
                    (None, _) => None,
                };
                let reproduce = uuid_field(&r.reproduce_run_id, "reproduce_run_id")?;
                let (tx, rx) = mpsc::channel(64);
                let (progress_tx, mut progress_rx) = mpsc::channel::<Progress>(64);
                let out = tx.clone();
                tokio::spawn(async move {
                    while let Some(p) = progress_rx.recv().await {
                        let msg = pb::RunComparisonResponse {
                            run_id: p.run_id.to_string(),
                            phase: p.phase.to_owned(),
                            households_done: p.done,
                            households_total: p.total,
                            list_sizes: lists::sizes(&p.sizes),
                            finished_at: p.finished.map(timestamp_of),
                        };
                        if out.send(Ok(msg)).await.is_err() {
                            break;
                        }
                    }
                });
                let this = self.clone();
                tokio::spawn(async move {
                    let _one_at_a_time = this.running.lock().await;
                    let scope = division.as_ref().map(|d| d.as_str().to_owned()).unwrap_or_default();
                    // The run goes on if the caller hangs up: it is recorded whole.
                    match this.runs.run(division, reproduce, progress_tx).await {
                        // The stream ends once the run's open items are
                        // counted for the work lists (a failed count is
                        // made again when a work list asks).
                        Ok(run_id) => {
                            if let Err(e) = this.open_items.warm(&this.pool, run_id, &scope).await {
                                tracing::warn!(error = %e, %run_id, "counting the open items of a run failed");
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                        }
                    }
                });
                Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
            }
            .await,
        )
    }

    async fn get_run(&self, request: Request<pb::GetRunRequest>) -> Result<Response<pb::GetRunResponse>, Status> {
        respond(lists::get_run(&self.pool, &Reader::of(&request), request.get_ref()).await)
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let reader = Reader::of(&request);
        respond(lists::entries(&self.pool, &self.log, &reader, &self.full_identity_roles, request.into_inner()).await)
    }

    async fn record_decision(
        &self,
        request: Request<pb::RecordDecisionRequest>,
    ) -> Result<Response<pb::RecordDecisionResponse>, Status> {
        let now = self.clock.now();
        respond(
            async {
                let deciding = Deciding::check(request.get_ref().clone(), &officer_of(&request)?)?;
                decisions::record(&self.pool, &self.log, &self.rosters, deciding, now).await
            }
            .await,
        )
    }

    async fn report_open_items(
        &self,
        request: Request<pb::ReportOpenItemsRequest>,
    ) -> Result<Response<pb::ReportOpenItemsResponse>, Status> {
        let reader = Reader::of(&request);
        respond(lists::open_items(&self.pool, &reader, request.get_ref(), self.clock.now(), &self.open_items).await)
    }

    type ExportListsStream = lists::Files;

    async fn export_lists(
        &self,
        request: Request<pb::ExportListsRequest>,
    ) -> Result<Response<Self::ExportListsStream>, Status> {
        let reader = Reader::of(&request);
        respond(lists::export(&self.pool, &self.log, &reader, request.into_inner(), &self.full_identity_roles).await)
    }

    async fn rebuild_view(
        &self,
        request: Request<pb::RebuildViewRequest>,
    ) -> Result<Response<pb::RebuildViewResponse>, Status> {
        let reader = Reader::of(&request);
        respond(
            async {
                let division = division_field(&request.get_ref().division, "division")?
                    .ok_or_else(|| InvalidField::new("division", "请指定重建视图的行政区划"))?;
                reader.must_cover(&division, "division")?;
                let (Some(civil), Some(poverty)) = (self.rosters.civil.clone(), self.rosters.poverty.clone()) else {
                    return Err(RebuildNotConfigured.into());
                };
                // Runs wait: they must read the view before or after a rebuild, never halfway.
                let _one_at_a_time = self.running.lock().await;
                let answer = rebuild::rebuild(&self.pool, civil, poverty, &division).await?;
                tracing::info!(division = %division, ?answer, "roster view rebuilt from the rosters' snapshots");
                Ok(answer)
            }
            .await,
        )
    }

    async fn import_death_register(
        &self,
        request: Request<Streaming<pb::ImportDeathRegisterRequest>>,
    ) -> Result<Response<pb::ImportDeathRegisterResponse>, Status> {
        let today = china_date(self.clock.now());
        respond(
            async {
                let officer = officer_of(&request)?;
                let rows = rows(request.into_inner()).await?;
                let result = registers::import_deaths(&self.pool, &officer, rows, today).await?;
                Ok(pb::ImportDeathRegisterResponse { result: Some(result) })
            }
            .await,
        )
    }

    async fn import_officials(
        &self,
        request: Request<Streaming<pb::ImportOfficialsRequest>>,
    ) -> Result<Response<pb::ImportOfficialsResponse>, Status> {
        respond(
            async {
                let officer = officer_of(&request)?;
                let rows = rows(request.into_inner()).await?;
                let result = registers::import_officials(&self.pool, &self.topic, &officer, rows).await?;
                Ok(pb::ImportOfficialsResponse { result: Some(result) })
            }
            .await,
        )
    }
}
