//! Operator RPCs every service serves: outbox backlog, inbox state, dead
//! letters and their retry.

use std::sync::Arc;

use deadpool_postgres::Pool;
use dibao_proto::ops::v1::ops_service_server::{OpsService, OpsServiceServer};
use dibao_proto::ops::v1::{
    ConsumerLag, DeadLetter, GetPipelineStatusRequest, GetPipelineStatusResponse, ListDeadLettersRequest,
    ListDeadLettersResponse, RetryDeadLetterRequest, RetryDeadLetterResponse,
};
use dibao_proto::types::InvalidField;
use tonic::{Request, Response, Status};

use crate::Error;
use crate::events::outbox;
use crate::runtime::error::{Refusal, RefusalKind, respond};
use crate::runtime::metrics::{Source, Text};
use crate::runtime::settings::KafkaSettings;

#[derive(Clone)]
pub struct Ops {
    pool: Pool,
    /// The broker and the topics the service's inbox consumes, for lag.
    inbox: Option<(KafkaSettings, Vec<String>)>,
}

impl Ops {
    pub fn new(pool: Pool) -> Self {
        Self { pool, inbox: None }
    }

    /// Reports consumer lag on `topics` too.
    pub fn with_inbox(mut self, kafka: KafkaSettings, topics: Vec<String>) -> Self {
        self.inbox = Some((kafka, topics));
        self
    }

    pub fn server(self) -> OpsServiceServer<Ops> {
        OpsServiceServer::new(self)
    }

    /// The pipeline's status as metrics, read at each scrape: the outbox
    /// backlog and its oldest row's age, the open dead letters and the
    /// inbox's lag per partition.
    pub fn metrics(&self) -> Source {
        let ops = self.clone();
        Arc::new(move |mut text: Text| {
            let ops = ops.clone();
            Box::pin(async move {
                let status = ops.status().await;
                text.family("dibao_pipeline_status_up", "gauge", "Whether the pipeline's status could be read.");
                text.sample("dibao_pipeline_status_up", &[], u8::from(status.is_ok()));
                let status = match status {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "pipeline status for the metrics");
                        return text;
                    }
                };
                text.family("dibao_outbox_backlog", "gauge", "Outbox rows not yet published.");
                text.sample("dibao_outbox_backlog", &[], status.outbox_pending);
                text.family("dibao_outbox_published_total", "counter", "Outbox rows published.");
                text.sample("dibao_outbox_published_total", &[], status.outbox_published);
                let oldest = status
                    .oldest_pending_at
                    .map_or(0, |t| (time::OffsetDateTime::now_utc().unix_timestamp() - t.seconds).max(0));
                text.family(
                    "dibao_outbox_oldest_pending_seconds",
                    "gauge",
                    "Age of the oldest unpublished outbox row (0 when none).",
                );
                text.sample("dibao_outbox_oldest_pending_seconds", &[], oldest);
                text.family("dibao_inbox_applied_total", "counter", "Events the inbox applied.");
                text.sample("dibao_inbox_applied_total", &[], status.inbox_applied);
                text.family("dibao_dead_letters_open", "gauge", "Dead letters not yet retried.");
                text.sample("dibao_dead_letters_open", &[], status.dead_letters_open);
                if ops.inbox.is_some() {
                    text.family(
                        "dibao_inbox_lag",
                        "gauge",
                        "Events on the broker the inbox has not applied, per partition.",
                    );
                    for lag in &status.consumer_lag {
                        let partition = lag.partition.to_string();
                        text.sample("dibao_inbox_lag", &[("topic", &lag.topic), ("partition", &partition)], lag.lag);
                    }
                    text.family("dibao_inbox_lag_readable", "gauge", "Whether the broker's offsets could be read.");
                    text.sample("dibao_inbox_lag_readable", &[], u8::from(status.lag_error.is_empty()));
                }
                text
            })
        })
    }
}

fn ts(t: Option<time::OffsetDateTime>) -> Option<prost_types::Timestamp> {
    t.map(outbox::timestamp_of)
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("死信记录{0}不存在")]
    NotFound(i64),
    #[error("死信记录{0}已重新投递过")]
    AlreadyRetried(i64),
    #[error("死信记录{0}没有消息内容，无法重新投递")]
    NoPayload(i64),
}

impl Refusal for OpsError {
    fn kind(&self) -> RefusalKind {
        match self {
            OpsError::NotFound(_) => RefusalKind::NotFound,
            _ => RefusalKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            OpsError::NotFound(_) => "DEAD_LETTER_NOT_FOUND",
            OpsError::AlreadyRetried(_) => "DEAD_LETTER_ALREADY_RETRIED",
            OpsError::NoPayload(_) => "DEAD_LETTER_WITHOUT_PAYLOAD",
        }
    }
}

impl Ops {
    async fn status(&self) -> Result<GetPipelineStatusResponse, Error> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT
                   (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS outbox_pending,
                   (SELECT min(created_at) FROM outbox WHERE published_at IS NULL) AS oldest_pending_at,
                   (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL) AS outbox_published,
                   (SELECT count(*) FROM inbox) AS inbox_applied,
                   (SELECT max(applied_at) FROM inbox) AS last_applied_at,
                   (SELECT count(*) FROM dead_letter WHERE retried_at IS NULL) AS dead_letters_open",
                &[],
            )
            .await?;
        let last = client
            .query_opt("SELECT event_type, aggregate_key FROM inbox ORDER BY applied_at DESC LIMIT 1", &[])
            .await?;
        let (mut consumer_lag, mut lag_error) = (Vec::new(), String::new());
        if let Some((kafka, topics)) = &self.inbox {
            let positions: std::collections::HashMap<(String, i32), i64> = client
                .query("SELECT topic, partition, next_offset FROM consumer_position WHERE topic = ANY($1)", &[topics])
                .await?
                .iter()
                .map(|r| ((r.get("topic"), r.get("partition")), r.get("next_offset")))
                .collect();
            match crate::events::kafka::high_watermarks(kafka, topics).await {
                Ok(marks) => {
                    consumer_lag = marks
                        .into_iter()
                        .map(|(topic, partition, high)| {
                            let position = positions.get(&(topic.clone(), partition)).copied().unwrap_or(0);
                            ConsumerLag {
                                topic,
                                partition,
                                position,
                                high_watermark: high,
                                lag: (high - position).max(0),
                            }
                        })
                        .collect()
                }
                Err(e) => lag_error = format!("无法从消息队列获取偏移量：{e}"),
            }
        }
        Ok(GetPipelineStatusResponse {
            outbox_pending: row.get("outbox_pending"),
            oldest_pending_at: ts(row.get("oldest_pending_at")),
            outbox_published: row.get("outbox_published"),
            inbox_applied: row.get("inbox_applied"),
            last_applied_at: ts(row.get("last_applied_at")),
            dead_letters_open: row.get("dead_letters_open"),
            consumer_lag,
            last_applied_event_type: last.as_ref().map(|r| r.get("event_type")).unwrap_or_default(),
            last_applied_key: last.as_ref().map(|r| r.get("aggregate_key")).unwrap_or_default(),
            lag_error,
        })
    }

    async fn dead_letters(&self, req: ListDeadLettersRequest) -> Result<ListDeadLettersResponse, Error> {
        if !(0..=1000).contains(&req.limit) {
            return Err(InvalidField::new("limit", format!("每页条数应在1到1000之间，实际为{}", req.limit)).into());
        }
        let limit = i64::from(if req.limit == 0 { 100 } else { req.limit });
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, topic, partition, \"offset\", coalesce(record_key, '') AS record_key, reason,
                        dead_lettered_at, retried_at
                 FROM dead_letter WHERE $1 OR retried_at IS NULL ORDER BY id LIMIT $2",
                &[&req.include_retried, &limit],
            )
            .await?;
        let dead_letters = rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get("id"),
                topic: r.get("topic"),
                partition: r.get("partition"),
                offset: r.get("offset"),
                key: r.get("record_key"),
                reason: r.get("reason"),
                dead_lettered_at: ts(Some(r.get("dead_lettered_at"))),
                retried_at: ts(r.get("retried_at")),
            })
            .collect();
        Ok(ListDeadLettersResponse { dead_letters })
    }

    async fn retry(&self, id: i64) -> Result<RetryDeadLetterResponse, Error> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT topic, coalesce(record_key, '') AS record_key, payload, retried_at
                 FROM dead_letter WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
            .ok_or(OpsError::NotFound(id))?;
        let retried: Option<time::OffsetDateTime> = row.get("retried_at");
        if retried.is_some() {
            return Err(OpsError::AlreadyRetried(id).into());
        }
        let topic: String = row.get("topic");
        let key: String = row.get("record_key");
        let payload: Option<Vec<u8>> = row.get("payload");
        let payload = payload.ok_or(OpsError::NoPayload(id))?;
        // A fresh outbox id; the consumer still dedups by the envelope's event id.
        let outbox_id = uuid::Uuid::now_v7();
        outbox::insert(&tx, outbox_id, &topic, &key, &payload, &crate::runtime::telemetry::current_trace_context())
            .await?;
        tx.execute("UPDATE dead_letter SET retried_at = now() WHERE id = $1", &[&id]).await?;
        tx.commit().await?;
        tracing::info!(dead_letter_id = id, %topic, "dead letter queued for redelivery");
        Ok(RetryDeadLetterResponse { event_id: outbox_id.to_string() })
    }
}

#[tonic::async_trait]
impl OpsService for Ops {
    async fn get_pipeline_status(
        &self,
        _: Request<GetPipelineStatusRequest>,
    ) -> Result<Response<GetPipelineStatusResponse>, Status> {
        respond(self.status().await)
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        respond(self.dead_letters(request.into_inner()).await)
    }

    #[tracing::instrument(skip_all, fields(dead_letter_id = request.get_ref().id))]
    async fn retry_dead_letter(
        &self,
        request: Request<RetryDeadLetterRequest>,
    ) -> Result<Response<RetryDeadLetterResponse>, Status> {
        respond(self.retry(request.into_inner().id).await)
    }
}
