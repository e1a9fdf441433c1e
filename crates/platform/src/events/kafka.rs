//! Producer, consumer and topic set-up. Only standard Kafka protocol and
//! librdkafka properties are used, so the same code runs on Apache Kafka in
//! production and on Tansu in development.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};

use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;

use crate::runtime::settings::KafkaSettings;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create the Kafka client for {brokers}: {source}")]
    Client { brokers: String, source: rdkafka::error::KafkaError },
    #[error("cannot reach the Kafka brokers at {brokers} within {seconds} s: {source}")]
    Unreachable { brokers: String, seconds: u64, source: rdkafka::error::KafkaError },
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
}

/// Full name of a topic under the configured prefix.
pub fn topic(settings: &KafkaSettings, name: &str) -> String {
    format!("{}.{name}", settings.topic_prefix)
}

/// Our defaults for one kind of client, then the operator's properties
/// (security.protocol, sasl.*, …), which override them.
fn create<T: rdkafka::config::FromClientConfig>(
    settings: &KafkaSettings,
    defaults: &[(&str, &str)],
) -> Result<T, KafkaError> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &settings.brokers);
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    for (k, v) in &settings.properties {
        cfg.set(k, v);
    }
    cfg.create().map_err(|source| KafkaError::Client { brokers: settings.brokers.clone(), source })
}

/// Idempotent producer: the broker drops retried duplicates and keeps order
/// per partition. Delivery never times out, so a message waits through a
/// broker outage instead of failing and leaving a gap behind a later one.
pub fn producer(settings: &KafkaSettings) -> Result<FutureProducer, KafkaError> {
    create(
        settings,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", "0"),
            ("linger.ms", "5"),
            ("reconnect.backoff.max.ms", "1000"),
        ],
    )
}

/// Consumer for the inbox. Partitions are assigned explicitly and positions
/// live in the service's database (see `inbox`), so nothing depends on the
/// broker's group coordinator: a restarted consumer resumes at once, where
/// its last committed transaction left off.
pub fn consumer(settings: &KafkaSettings) -> Result<StreamConsumer, KafkaError> {
    create(
        settings,
        &[
            ("group.id", settings.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            // Some brokers (Tansu among them) hold a fetch for the whole
            // wait even when data arrives meanwhile; a short wait bounds
            // the lag that adds, at the cost of more fetch requests.
            ("fetch.wait.max.ms", "25"),
            ("reconnect.backoff.max.ms", "1000"),
        ],
    )
}

/// Number of partitions of each topic, from the brokers' metadata.
pub async fn partition_counts(settings: &KafkaSettings, topics: &[String]) -> Result<Vec<i32>, KafkaError> {
    let consumer: rdkafka::consumer::BaseConsumer = create(settings, &[])?;
    let topics = topics.to_vec();
    let brokers = settings.brokers.clone();
    let lookup = move || {
        let mut counts = Vec::with_capacity(topics.len());
        for topic in &topics {
            let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let n = md.topics().first().map_or(0, |t| t.partitions().len());
            counts.push(i32::try_from(n).unwrap_or(i32::MAX));
        }
        Ok::<_, rdkafka::error::KafkaError>(counts)
    };
    match tokio::task::spawn_blocking(lookup).await {
        Ok(r) => r.map_err(|source| KafkaError::Unreachable { brokers, seconds: 10, source }),
        Err(_) => Err(KafkaError::CreateTopic { topic: String::new(), reason: "metadata lookup panicked".into() }),
    }
}

/// The next offset the broker will give on each partition of `topics`
/// (its high watermark), for consumer lag: (topic, partition, high watermark).
pub async fn high_watermarks(settings: &KafkaSettings, topics: &[String]) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let consumer: rdkafka::consumer::BaseConsumer = create(settings, &[])?;
    let topics = topics.to_vec();
    let lookup = move || {
        let mut out = Vec::new();
        for topic in &topics {
            let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let partitions = md.topics().first().map_or(0, |t| t.partitions().len());
            for p in 0..i32::try_from(partitions).unwrap_or(0) {
                let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(5))?;
                out.push((topic.clone(), p, high));
            }
        }
        Ok::<_, rdkafka::error::KafkaError>(out)
    };
    Ok(tokio::task::spawn_blocking(lookup).await??)
}

/// Asks the brokers for metadata, so start-up fails loudly when they are unreachable.
pub async fn check_reachable(settings: &KafkaSettings, timeout: Duration) -> Result<(), KafkaError> {
    let consumer: rdkafka::consumer::BaseConsumer = create(settings, &[])?;
    let brokers = settings.brokers.clone();
    let unreachable = |source| KafkaError::Unreachable { brokers: brokers.clone(), seconds: timeout.as_secs(), source };
    match tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, timeout).map(|_| ())).await {
        Ok(result) => result.map_err(unreachable),
        Err(join) => Err(unreachable(rdkafka::error::KafkaError::Global(RDKafkaErrorCode::Fail)))
            .inspect_err(|_| tracing::error!(error = %join, "metadata probe panicked")),
    }
}

/// Creates the topics that do not exist yet. Brokers without auto-create
/// (Tansu, locked-down Kafka clusters) need them before the first produce.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[(String, i32)]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = create(settings, &[])?;
    let new: Vec<NewTopic<'_>> =
        topics.iter().map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1))).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let all = || topics.iter().map(|t| t.0.clone()).collect::<Vec<_>>().join(",");
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| KafkaError::CreateTopic { topic: all(), reason: e.to_string() })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, reason: code.to_string() }),
        }
    }
    Ok(())
}

/// The record at `offset` of one partition, if the broker gives it within
/// `timeout` (`None` when it does not: past the log's end, or no answer).
pub async fn record_at(
    settings: &KafkaSettings,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> anyhow::Result<Option<rdkafka::message::OwnedMessage>> {
    use rdkafka::Message;
    let consumer: rdkafka::consumer::BaseConsumer = create(
        settings,
        &[("group.id", settings.group_id.as_str()), ("enable.auto.commit", "false"), ("auto.offset.reset", "error")],
    )?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
    consumer.assign(&assignment)?;
    let lookup = move || {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match consumer.poll(left.min(Duration::from_millis(200))) {
                Some(Ok(m)) if m.offset() == offset => return Some(m.detach()),
                // Anything else (an error such as offset out of range, or
                // another offset) says the record is not there as asked.
                Some(_) => return None,
                None => {}
            }
        }
        None
    };
    Ok(tokio::task::spawn_blocking(lookup).await?)
}
