//! `pipeline-probe write|apply`: the probe as a process of its own, so the
//! fault test can SIGKILL it. Settings come from `PIPELINE_PROBE__…`.

use std::time::Duration;

use dibao_platform::events::ops::Ops;
use dibao_platform::runtime::access::{Gate, Rules};
use dibao_platform::runtime::server::ServerBuilder;
use dibao_platform::runtime::settings::{
    self, DatabaseSettings, KafkaSettings, ServerSettings, TelemetrySettings, TlsSettings, Validate,
};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::{events::inbox, events::kafka, events::outbox, runtime::telemetry, store::db};
use dibao_tests::probe;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct ProbeSettings {
    database: DatabaseSettings,
    kafka: KafkaSettings,
    #[serde(default)]
    telemetry: TelemetrySettings,
    /// With `server` and `tls`, the applier also serves health and
    /// reflection over mTLS, like every service of the mesh.
    server: Option<ServerSettings>,
    tls: Option<TlsSettings>,
}

impl Validate for ProbeSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.database.validate();
        problems.extend(self.kafka.validate());
        problems.extend(self.tls.as_ref().map(Validate::validate).unwrap_or_default());
        if self.server.is_some() != self.tls.is_some() {
            problems.push("server and tls go together: set both or neither".to_owned());
        }
        problems
    }
}

const DEFAULTS: &str = "[database]\npool_size = 16\n";

fn arg(args: &[String], name: &str, default: i64) -> anyhow::Result<i64> {
    match args.iter().position(|a| a == name) {
        Some(i) => {
            let v = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?;
            v.parse().map_err(|_| anyhow::anyhow!("{name}: {v:?} is not a whole number"))
        }
        None => Ok(default),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipeline-probe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let (writing, migrations) = match mode.as_str() {
        "write" => (true, probe::WRITER_MIGRATIONS),
        "apply" => (false, probe::APPLIER_MIGRATIONS),
        other => anyhow::bail!(
            "usage: pipeline-probe write|apply [--events N --keys K --tasks T | --expect N]; got {other:?}"
        ),
    };
    let settings: ProbeSettings = settings::load("pipeline-probe", DEFAULTS)?;
    let _guard = telemetry::init("pipeline-probe", &settings.telemetry)?;
    // Fail loudly at start-up, naming what cannot be reached.
    let pool = db::connect_and_migrate(&settings.database, &[("service", migrations)]).await?;
    kafka::check_reachable(&settings.kafka, Duration::from_secs(10)).await?;
    let topic = kafka::topic(&settings.kafka, probe::TOPIC);
    kafka::ensure_topics(&settings.kafka, &[(topic.clone(), probe::PARTITIONS)]).await?;
    let shutdown = Shutdown::on_signals();
    if writing {
        {
            let plan = probe::Plan {
                events: arg(&args, "--events", 10_000)?,
                keys: arg(&args, "--keys", 50)?,
                tasks: arg(&args, "--tasks", 8)?,
                body: 64,
                pause: Duration::from_millis(u64::try_from(arg(&args, "--pause-ms", 0)?)?),
            };
            let relay = tokio::spawn(outbox::run_relay(
                pool.clone(),
                settings.kafka.clone(),
                outbox::RelayConfig::default(),
                shutdown.clone(),
            ));
            probe::write(&pool, &topic, plan).await?;
            tracing::info!(events = plan.events, "all events written, waiting for the relay");
            probe::wait_published(&pool, Duration::from_secs(600)).await?;
            // The relay marks rows only after their delivery report, so
            // nothing is left in flight once the outbox is empty.
            relay.abort();
            println!("written and published: {}", plan.events);
            Ok(())
        }
    } else {
        {
            let expect = arg(&args, "--expect", 0)?;
            let (stop, stopped) = Shutdown::new();
            let mut signals = shutdown.clone();
            let config = inbox::InboxConfig { topics: vec![topic], max_batch: 500 };
            let task = tokio::spawn(inbox::run_inbox(
                pool.clone(),
                settings.kafka.clone(),
                probe::ProbeHandler,
                config,
                stopped.clone(),
            ));
            if let (Some(server), Some(tls)) = (&settings.server, &settings.tls) {
                let material = TlsMaterial::load(tls)?;
                // The platform's table alone; with no officer issuers, the
                // ops methods (an operator's) are refused.
                let gate = Gate::new(Rules::new(&[]), None);
                let running = ServerBuilder::new(material, gate, Some(Ops::new(pool.clone())))
                    .start(server.listen, stopped)
                    .await?;
                println!("serving health, reflection and ops on {}", running.addr);
            }
            loop {
                if expect > 0 && probe::applied_count(&pool).await? >= expect {
                    break;
                }
                tokio::select! {
                    () = signals.wait() => break,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            stop.trigger();
            task.await??;
            println!("applied: {}", probe::applied_count(&pool).await?);
            Ok(())
        }
    }
}
