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

use secrecy::ExposeSecret;

use crate::runtime::settings::KafkaSettings;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create the Kafka client for {brokers}: {source}")]
    Client { brokers: String, source: rdkafka::error::KafkaError },
    /// `reason`: librdkafka's error, and its last complaint where it made one.
    #[error("cannot reach the Kafka brokers at {brokers} within {seconds} s: {reason}")]
    Unreachable { brokers: String, seconds: u64, reason: String },
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
}

/// Full name of a topic under the configured prefix.
pub fn topic(settings: &KafkaSettings, name: &str) -> String {
    format!("{}.{name}", settings.topic_prefix)
}

/// Our defaults for one kind of client, then the operator's tuning
/// properties, then the security `kafka.tls` and `kafka.sasl` say — last,
/// so no property can weaken them (validation refuses such properties too).
fn config(settings: &KafkaSettings, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &settings.brokers);
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    for (k, v) in &settings.properties {
        cfg.set(k, v);
    }
    for (k, v) in security_properties(settings) {
        cfg.set(k, v);
    }
    cfg
}

fn create<T: rdkafka::config::FromClientConfig>(
    settings: &KafkaSettings,
    defaults: &[(&str, &str)],
) -> Result<T, KafkaError> {
    config(settings, defaults)
        .create()
        .map_err(|source| KafkaError::Client { brokers: settings.brokers.clone(), source })
}

/// The librdkafka properties of `kafka.tls` and `kafka.sasl`: TLS with the
/// brokers' CA and host names verified, a client certificate or SCRAM.
pub fn security_properties(settings: &KafkaSettings) -> Vec<(&'static str, String)> {
    let Some(tls) = &settings.tls else {
        return vec![("security.protocol", "plaintext".to_owned())];
    };
    let path = |p: &std::path::Path| p.display().to_string();
    let mut props = vec![
        ("security.protocol", if settings.sasl.is_some() { "sasl_ssl" } else { "ssl" }.to_owned()),
        ("ssl.ca.location", path(&tls.ca_cert)),
        ("enable.ssl.certificate.verification", "true".to_owned()),
        ("ssl.endpoint.identification.algorithm", "https".to_owned()),
    ];
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        props.push(("ssl.certificate.location", path(cert)));
        props.push(("ssl.key.location", path(key)));
    }
    if let Some(sasl) = &settings.sasl {
        props.push(("sasl.mechanism", sasl.mechanism.as_str().to_owned()));
        props.push(("sasl.username", sasl.username.clone()));
        props.push(("sasl.password", sasl.password.expose_secret().to_owned()));
    }
    props
}

/// Keeps the last error librdkafka reported, so a start-up that cannot
/// reach the brokers says why (a refused certificate, a failed login)
/// rather than only that it timed out.
#[derive(Default)]
struct LastError(std::sync::Mutex<Option<String>>);

impl rdkafka::ClientContext for LastError {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::error!(target: "librdkafka", %error, "librdkafka: {reason}");
        if let Ok(mut last) = self.0.lock() {
            *last = Some(reason.to_owned());
        }
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}");
                if let Ok(mut last) = self.0.lock() {
                    *last = Some(message.to_owned());
                }
            }
            L::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
            L::Notice | L::Info => tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}"),
            L::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for LastError {}

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
        Ok(r) => r.map_err(|source| KafkaError::Unreachable { brokers, seconds: 10, reason: source.to_string() }),
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

/// Asks the brokers for metadata, so start-up fails loudly when they are
/// unreachable, naming librdkafka's last complaint (a certificate from
/// another CA, a refused login).
pub async fn check_reachable(settings: &KafkaSettings, timeout: Duration) -> Result<(), KafkaError> {
    let consumer: rdkafka::consumer::BaseConsumer<LastError> = config(settings, &[])
        .create_with_context(LastError::default())
        .map_err(|source| KafkaError::Client { brokers: settings.brokers.clone(), source })?;
    let brokers = settings.brokers.clone();
    let (result, last) = tokio::task::spawn_blocking(move || {
        let result = consumer.fetch_metadata(None, timeout).map(|_| ());
        // The client's errors and logs wait on its queue until polled (the
        // fetch does not poll): served now, they reach the context.
        if result.is_err() {
            for _ in 0..1000 {
                if consumer.poll(Duration::ZERO).is_none() {
                    break;
                }
            }
        }
        let last = consumer.context().0.lock().ok().and_then(|mut l| l.take());
        (result, last)
    })
    .await
    .unwrap_or_else(|join| {
        tracing::error!(error = %join, "metadata probe panicked");
        (Err(rdkafka::error::KafkaError::Global(RDKafkaErrorCode::Fail)), None)
    });
    result.map_err(|source| KafkaError::Unreachable {
        brokers,
        seconds: timeout.as_secs(),
        reason: match last {
            Some(last) => format!("{source} (last error: {last})"),
            None => source.to_string(),
        },
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::settings::{KafkaSaslSettings, KafkaTlsSettings, ScramMechanism};

    fn settings(tls: Option<KafkaTlsSettings>, sasl: Option<KafkaSaslSettings>) -> KafkaSettings {
        KafkaSettings {
            brokers: "kafka:9093".into(),
            topic_prefix: "prod".into(),
            group_id: "civil-affairs".into(),
            tls,
            sasl,
            properties: [("security.protocol".to_owned(), "plaintext".to_owned())].into(),
        }
    }

    fn value(props: &[(&str, String)], key: &str) -> Option<String> {
        props.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn tls_verifies_the_brokers_and_presents_the_services_certificate() {
        let tls = KafkaTlsSettings {
            ca_cert: "/certs/kafka-ca/ca.crt".into(),
            cert: Some("/certs/kafka-user/user.crt".into()),
            key: Some("/certs/kafka-user/user.key".into()),
        };
        let props = security_properties(&settings(Some(tls), None));
        assert_eq!(value(&props, "security.protocol").as_deref(), Some("ssl"));
        assert_eq!(value(&props, "ssl.ca.location").as_deref(), Some("/certs/kafka-ca/ca.crt"));
        assert_eq!(value(&props, "enable.ssl.certificate.verification").as_deref(), Some("true"));
        assert_eq!(value(&props, "ssl.endpoint.identification.algorithm").as_deref(), Some("https"));
        assert_eq!(value(&props, "ssl.key.location").as_deref(), Some("/certs/kafka-user/user.key"));
    }

    #[test]
    fn scram_goes_over_tls_and_the_typed_settings_win_over_properties() {
        let tls = KafkaTlsSettings { ca_cert: "/certs/ca.crt".into(), cert: None, key: None };
        let sasl = KafkaSaslSettings {
            mechanism: ScramMechanism::ScramSha256,
            username: "civil-affairs".into(),
            password: "s3cret".to_owned().into(),
        };
        let s = settings(Some(tls), Some(sasl));
        let props = security_properties(&s);
        assert_eq!(value(&props, "security.protocol").as_deref(), Some("sasl_ssl"));
        assert_eq!(value(&props, "sasl.mechanism").as_deref(), Some("SCRAM-SHA-256"));
        assert_eq!(value(&props, "sasl.password").as_deref(), Some("s3cret"));
        assert_eq!(value(&props, "ssl.certificate.location"), None);
        let cfg = config(&s, &[]);
        assert_eq!(cfg.get("security.protocol"), Some("sasl_ssl"), "a property cannot weaken kafka.tls");
        assert_eq!(
            value(&security_properties(&settings(None, None)), "security.protocol").as_deref(),
            Some("plaintext")
        );
    }
}
