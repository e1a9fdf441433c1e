//! Resync of the two rosters' views (R-SYNC-3): each side's view of the
//! other rebuilt from the other's full snapshot, each correction reported.
//! The `dibao-resync` command runs it for a system operator, through the gateway.

use dibao_platform::runtime::server::CallerChannel as Channel;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::DivisionCode;
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_proto::sync::v1::dibao_roster_view_service_client::DibaoRosterViewServiceClient;
use dibao_proto::sync::v1::poverty_roster_view_service_client::PovertyRosterViewServiceClient;
use dibao_proto::sync::v1::{
    RebuildDibaoViewRequest, RebuildPovertyViewRequest, RebuildReport, rebuild_dibao_view_request,
    rebuild_poverty_view_request,
};

/// What each side corrected: the poverty office's view of the dibao roster,
/// then civil affairs' view of the registered-poor roster.
pub struct Resynced {
    pub dibao_view: RebuildReport,
    pub poverty_view: RebuildReport,
}

/// Pipes civil affairs' snapshot of `division` into the poverty office's
/// rebuild, then the poverty office's into civil affairs'.
pub async fn resync(civil_channel: Channel, poverty_channel: Channel, division: &str) -> Result<Resynced, String> {
    let division = DivisionCode { code: division.to_owned() };
    let status = |s: tonic::Status| format!("{}（{:?}）", s.message(), s.code());

    // The whole snapshot is read before the rebuild starts: a rebuild fed a
    // snapshot cut short would remove what it missed.
    let mut export = CivilAffairsServiceClient::new(civil_channel.clone())
        .export_roster(ca::ExportRosterRequest { division: Some(division.clone()) })
        .await
        .map_err(status)?
        .into_inner();
    let mut civil =
        vec![RebuildDibaoViewRequest { item: Some(rebuild_dibao_view_request::Item::Division(division.clone())) }];
    while let Some(h) = export.message().await.map_err(|e| format!("民政名单导出中断，未做任何更正：{}", status(e)))?
    {
        civil.push(RebuildDibaoViewRequest { item: Some(rebuild_dibao_view_request::Item::Household(h)) });
    }
    let dibao_view = DibaoRosterViewServiceClient::new(poverty_channel.clone())
        .rebuild_dibao_view(futures_util::stream::iter(civil))
        .await
        .map_err(status)?
        .into_inner()
        .report
        .unwrap_or_default();

    let mut export = PovertyAlleviationServiceClient::new(poverty_channel)
        .export_roster(pa::ExportRosterRequest { division: Some(division.clone()) })
        .await
        .map_err(status)?
        .into_inner();
    let mut poverty =
        vec![RebuildPovertyViewRequest { item: Some(rebuild_poverty_view_request::Item::Division(division)) }];
    while let Some(h) =
        export.message().await.map_err(|e| format!("扶贫名单导出中断，民政侧未做更正：{}", status(e)))?
    {
        poverty.push(RebuildPovertyViewRequest { item: Some(rebuild_poverty_view_request::Item::Household(h)) });
    }
    let poverty_view = PovertyRosterViewServiceClient::new(civil_channel)
        .rebuild_poverty_view(futures_util::stream::iter(poverty))
        .await
        .map_err(status)?
        .into_inner()
        .report
        .unwrap_or_default();
    Ok(Resynced { dibao_view, poverty_view })
}
