//! Operator RPCs every service serves: outbox backlog, inbox state, dead
//! letters and their retry.

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
use crate::runtime::settings::KafkaSettings;

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
}

fn ts(t: Option<time::OffsetDateTime>) -> Option<prost_types::Timestamp> {
    t.map(outbox::timestamp_of)
}

#[tonic::async_trait]
impl OpsService for Ops {
    async fn get_pipeline_status(
        &self,
        _: Request<GetPipelineStatusRequest>,
    ) -> Result<Response<GetPipelineStatusResponse>, Status> {
        let client = self.pool.get().await.map_err(Error::from)?;
        let row = client
            .query_one(
                "SELECT
                   (SELECT count(*) FROM outbox WHERE published_at IS NULL),
                   (SELECT min(created_at) FROM outbox WHERE published_at IS NULL),
                   (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL),
                   (SELECT count(*) FROM inbox),
                   (SELECT max(applied_at) FROM inbox),
                   (SELECT count(*) FROM dead_letter WHERE retried_at IS NULL)",
                &[],
            )
            .await
            .map_err(Error::from)?;
        let last = client
            .query_opt("SELECT event_type, aggregate_key FROM inbox ORDER BY applied_at DESC LIMIT 1", &[])
            .await
            .map_err(Error::from)?;
        let (mut consumer_lag, mut lag_error) = (Vec::new(), String::new());
        if let Some((kafka, topics)) = &self.inbox {
            let positions: std::collections::HashMap<(String, i32), i64> = client
                .query("SELECT topic, partition, next_offset FROM consumer_position WHERE topic = ANY($1)", &[topics])
                .await
                .map_err(Error::from)?
                .iter()
                .map(|r| ((r.get(0), r.get(1)), r.get(2)))
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
        Ok(Response::new(GetPipelineStatusResponse {
            outbox_pending: row.get(0),
            oldest_pending_at: ts(row.get(1)),
            outbox_published: row.get(2),
            inbox_applied: row.get(3),
            last_applied_at: ts(row.get(4)),
            dead_letters_open: row.get(5),
            consumer_lag,
            last_applied_event_type: last.as_ref().map(|r| r.get(0)).unwrap_or_default(),
            last_applied_key: last.as_ref().map(|r| r.get(1)).unwrap_or_default(),
            lag_error,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let req = request.into_inner();
        if !(0..=1000).contains(&req.limit) {
            return Err(Error::from(InvalidField::new(
                "limit",
                format!("每页条数应在1到1000之间，实际为{}", req.limit),
            ))
            .into());
        }
        let limit = i64::from(if req.limit == 0 { 100 } else { req.limit });
        let client = self.pool.get().await.map_err(Error::from)?;
        let rows = client
            .query(
                "SELECT id, topic, partition, \"offset\", coalesce(record_key, ''), reason, dead_lettered_at, retried_at
                 FROM dead_letter WHERE $1 OR retried_at IS NULL ORDER BY id LIMIT $2",
                &[&req.include_retried, &limit],
            )
            .await
            .map_err(Error::from)?;
        let dead_letters = rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                topic: r.get(1),
                partition: r.get(2),
                offset: r.get(3),
                key: r.get(4),
                reason: r.get(5),
                dead_lettered_at: ts(Some(r.get(6))),
                retried_at: ts(r.get(7)),
            })
            .collect();
        Ok(Response::new(ListDeadLettersResponse { dead_letters }))
    }

    #[tracing::instrument(skip_all, fields(dead_letter_id = request.get_ref().id))]
    async fn retry_dead_letter(
        &self,
        request: Request<RetryDeadLetterRequest>,
    ) -> Result<Response<RetryDeadLetterResponse>, Status> {
        let id = request.into_inner().id;
        let mut client = self.pool.get().await.map_err(Error::from)?;
        let tx = client.transaction().await.map_err(Error::from)?;
        let row = tx
            .query_opt(
                "SELECT topic, coalesce(record_key, ''), payload, retried_at FROM dead_letter WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("死信记录{id}不存在")))?;
        let retried: Option<time::OffsetDateTime> = row.get(3);
        if retried.is_some() {
            return Err(Error::FailedPrecondition(format!("死信记录{id}已重新投递过")).into());
        }
        let topic: String = row.get(0);
        let key: String = row.get(1);
        let payload: Option<Vec<u8>> = row.get(2);
        let payload =
            payload.ok_or_else(|| Error::FailedPrecondition(format!("死信记录{id}没有消息内容，无法重新投递")))?;
        // A fresh outbox id; the consumer still dedups by the envelope's event id.
        let outbox_id = uuid::Uuid::now_v7();
        outbox::insert(&tx, outbox_id, &topic, &key, &payload, &crate::runtime::telemetry::current_trace_context())
            .await
            .map_err(Error::from)?;
        tx.execute("UPDATE dead_letter SET retried_at = now() WHERE id = $1", &[&id]).await.map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        tracing::info!(dead_letter_id = id, %topic, "dead letter queued for redelivery");
        Ok(Response::new(RetryDeadLetterResponse { event_id: outbox_id.to_string() }))
    }
}
