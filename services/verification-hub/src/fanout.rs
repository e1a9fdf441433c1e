//! Asking the departments (R-VER-3): one adapter per department over mTLS,
//! each behind its own concurrency limit, pace (requests per second) and
//! circuit breaker, so a department that is slow or down costs only its
//! own items — marked unavailable with the reason — and never the report's
//! deadline or the other departments' answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dibao_platform::events::outbox::timestamp_of as timestamp;
use dibao_platform::runtime::metrics::{Counters, Histograms, Source, Text};
use dibao_platform::runtime::server::{MeshChannel, lazy_channel};
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::trust::assertion::AssertionSigner;
use dibao_proto::common::v1::IdentityNumber as PbIdentity;
use dibao_proto::department::v1::department_service_client::DepartmentServiceClient;
use dibao_proto::department::v1::{ConsentAssertion, Department, Item, QueryRequest, Record};
use dibao_proto::types::IdentityNumber;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How one department is reached and protected.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DepartmentLimits {
    /// `host:port` of the department's adapter.
    pub address: String,
    /// Name in the adapter's certificate (`adapter-public-security`, …).
    pub server_name: String,
    /// Longest wait for one answer (the report's own deadline still rules).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Queries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Queries per second the department allows; 0 for no limit.
    #[serde(default)]
    pub rate_per_second: u32,
    /// Consecutive failures that open the breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker refuses before letting one trial through.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
}

fn default_timeout_ms() -> u64 {
    4_000
}
fn default_concurrency() -> usize {
    64
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    10_000
}

/// A department as metrics name it: `public_security`, `bank`, …
fn label(department: Department) -> String {
    department.as_str_name().trim_start_matches("DEPARTMENT_").to_ascii_lowercase()
}

/// Closed → (failures) → open → (time) → half-open: one trial decides.
enum BreakerState {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

struct Breaker {
    state: Mutex<BreakerState>,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    /// Whether a call may go; `Err` is the reason it may not.
    fn admit(&self) -> Result<(), String> {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *s {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } if Instant::now() >= until => {
                *s = BreakerState::HalfOpen;
                Ok(())
            }
            BreakerState::Open { .. } => {
                Err(format!("该部门连续{}次查询失败，暂停查询（熔断），稍后自动重试", self.threshold))
            }
            BreakerState::HalfOpen => Err("该部门正在恢复试探中，暂停查询（熔断）".to_owned()),
        }
    }

    fn record(&self, ok: bool) {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *s = match (&*s, ok) {
            (_, true) => BreakerState::Closed { failures: 0 },
            (BreakerState::Closed { failures }, false) if failures + 1 < self.threshold => {
                BreakerState::Closed { failures: failures + 1 }
            }
            (_, false) => {
                tracing::warn!(threshold = self.threshold, "department breaker open");
                BreakerState::Open { until: Instant::now() + self.open_for }
            }
        };
    }

    pub fn is_open(&self) -> bool {
        matches!(*self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner), BreakerState::Open { .. })
    }
}

/// Spaces queries `replicas/rate` apart: the department's rate is shared
/// by every live replica of the hub (see [`crate::replicas`]).
struct Pace {
    /// Queries per second the department allows; 0 for no limit.
    rate: u32,
    /// Live hub replicas sharing the rate (at least 1).
    replicas: AtomicU32,
    next: Mutex<Instant>,
}

impl Pace {
    fn interval(&self) -> Option<Duration> {
        (self.rate > 0).then(|| Duration::from_secs(1) * self.replicas.load(Ordering::Relaxed).max(1) / self.rate)
    }

    /// Waits for this query's slot; `false` if it comes after `deadline`.
    async fn wait(&self, deadline: Instant) -> bool {
        let Some(interval) = self.interval() else { return true };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            if slot > deadline {
                return false;
            }
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
        // Woken late (a busy machine), this query leaves later than its
        // slot: the next may not leave sooner than an interval after it, or
        // a late one and an on-time one would reach the department together.
        let woke = Instant::now();
        if woke > slot {
            let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *next = (*next).max(woke + interval);
        }
        true
    }
}

struct Link {
    client: DepartmentServiceClient<MeshChannel>,
    limits: DepartmentLimits,
    slots: Semaphore,
    pace: Pace,
    breaker: Breaker,
}

/// What one department said about one person.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub records: Vec<Record>,
    /// Items it could not answer, with the reason in Chinese.
    pub unavailable: Vec<(Item, String)>,
}

impl Answer {
    fn unavailable(items: &[Item], reason: &str) -> Self {
        Self { records: vec![], unavailable: items.iter().map(|i| (*i, reason.to_owned())).collect() }
    }
}

/// Who asks: consent, purpose, officer — signed into each assertion.
pub struct Mandate<'a> {
    pub consent_id: &'a str,
    pub purpose: &'a str,
    pub officer_id: &'a str,
}

pub struct Departments {
    links: HashMap<Department, Link>,
    signer: AssertionSigner,
    assertion_ttl: Duration,
    /// Questions asked, by department and outcome (`answered`, `unanswered`, `breaker_open`).
    asked: Counters,
    /// Time to a department's answer, by department.
    latency: Histograms,
}

impl Departments {
    pub fn new(
        tls: &TlsMaterial,
        config: &HashMap<String, DepartmentLimits>,
        signer: AssertionSigner,
        assertion_ttl: Duration,
    ) -> anyhow::Result<Self> {
        let mut links = HashMap::new();
        for (name, limits) in config {
            let department = Department::from_str_name(&format!("DEPARTMENT_{}", name.to_ascii_uppercase()))
                .filter(|d| *d != Department::Unspecified)
                .ok_or_else(|| anyhow::anyhow!("hub.departments.{name}: not a department"))?;
            let channel = lazy_channel(tls, &limits.address, &limits.server_name)?;
            let pace =
                Pace { rate: limits.rate_per_second, replicas: AtomicU32::new(1), next: Mutex::new(Instant::now()) };
            let breaker = Breaker {
                state: Mutex::new(BreakerState::Closed { failures: 0 }),
                threshold: limits.breaker_failures.max(1),
                open_for: Duration::from_millis(limits.breaker_open_ms),
            };
            links.insert(
                department,
                Link {
                    client: DepartmentServiceClient::new(channel),
                    slots: Semaphore::new(limits.concurrency.max(1)),
                    limits: limits.clone(),
                    pace,
                    breaker,
                },
            );
        }
        Ok(Self { links, signer, assertion_ttl, asked: Counters::default(), latency: Histograms::default() })
    }

    /// Each department's rate shared among `replicas` live hubs from now on.
    pub fn share_among(&self, replicas: u32) {
        for link in self.links.values() {
            link.pace.replicas.store(replicas.max(1), Ordering::Relaxed);
        }
    }

    pub fn breaker_open(&self, department: Department) -> bool {
        self.links.get(&department).is_some_and(|l| l.breaker.is_open())
    }

    /// Asks `department` about `person`'s `items` before `deadline`.
    pub async fn ask(
        &self,
        department: Department,
        person: &IdentityNumber,
        items: &[Item],
        mandate: &Mandate<'_>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Answer {
        let Some(link) = self.links.get(&department) else {
            return Answer::unavailable(items, "本平台未接入该部门");
        };
        let name = &label(department);
        if let Err(reason) = link.breaker.admit() {
            self.asked.add(name, "breaker_open");
            return Answer::unavailable(items, &reason);
        }
        let started = Instant::now();
        let answer = self.ask_link(link, department, person, items, mandate, now, deadline).await;
        self.latency.observe(name, started.elapsed());
        // A department that answered nothing of what was asked counts against it.
        let failed = answer.unavailable.len() == items.len();
        self.asked.add(name, if failed { "unanswered" } else { "answered" });
        link.breaker.record(!failed);
        answer
    }

    /// Questions to each department, their latency and each breaker's state.
    pub fn metrics(self: &Arc<Self>) -> Source {
        let this = self.clone();
        Arc::new(move |mut text: Text| {
            text.family("dibao_department_requests_total", "counter", "Questions to each department, by outcome.");
            this.asked.render(&mut text, "dibao_department_requests_total", ("department", "outcome"));
            text.family("dibao_department_request_seconds", "histogram", "Time to a department's answer.");
            this.latency.render(&mut text, "dibao_department_request_seconds", "department");
            text.family("dibao_department_breaker_open", "gauge", "1 while a department's breaker is open.");
            let mut links: Vec<(String, bool)> =
                this.links.iter().map(|(d, l)| (label(*d), l.breaker.is_open())).collect();
            links.sort();
            for (name, open) in links {
                text.sample("dibao_department_breaker_open", &[("department", &name)], u8::from(open));
            }
            Box::pin(std::future::ready(text))
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn ask_link(
        &self,
        link: &Link,
        department: Department,
        person: &IdentityNumber,
        items: &[Item],
        mandate: &Mandate<'_>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Answer {
        let late = "该部门未在核对时限内应答";
        let Ok(Ok(_permit)) = tokio::time::timeout_at(deadline, link.slots.acquire()).await else {
            return Answer::unavailable(items, late);
        };
        if !link.pace.wait(deadline).await {
            return Answer::unavailable(items, "该部门的查询限额已满，未能在核对时限内排上");
        }
        let assertion = self.signer.sign(ConsentAssertion {
            consent_id: mandate.consent_id.to_owned(),
            person: Some(PbIdentity { value: person.as_str().to_owned() }),
            items: items.iter().map(|i| *i as i32).collect(),
            purpose: mandate.purpose.to_owned(),
            officer_id: mandate.officer_id.to_owned(),
            issued_at: Some(timestamp(now)),
            expires_at: Some(timestamp(now + self.assertion_ttl)),
            audience: dibao_proto::departments::name(department).to_owned(),
            assertion_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        });
        let mut request = tonic::Request::new(QueryRequest {
            assertion: Some(assertion),
            items: items.iter().map(|i| *i as i32).collect(),
        });
        let budget =
            deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(link.limits.timeout_ms));
        request.set_timeout(budget);
        let mut client = link.client.clone();
        match tokio::time::timeout(budget, client.query(request)).await {
            Err(_) => Answer::unavailable(items, late),
            Ok(Err(status)) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "department adapter error");
                let reason = match status.code() {
                    tonic::Code::PermissionDenied => format!("部门接口拒绝了查询：{}", status.message()),
                    tonic::Code::DeadlineExceeded => late.to_owned(),
                    _ => "无法连接该部门的接口".to_owned(),
                };
                Answer::unavailable(items, &reason)
            }
            Ok(Ok(response)) => {
                let r = response.into_inner();
                let unavailable = r
                    .unavailable
                    .iter()
                    .filter_map(|(k, v)| Item::from_str_name(k).map(|i| (i, v.clone())))
                    .filter(|(i, _)| items.contains(i))
                    .collect();
                // Only what was asked, and only about this person, goes into a report.
                let records = r
                    .records
                    .into_iter()
                    .filter(|rec| Item::try_from(rec.item).is_ok_and(|i| items.contains(&i)))
                    .collect();
                Answer { records, unavailable }
            }
        }
    }
}
