//! Long calls the gateway holds for an officer — a verification campaign
//! ([`super::campaign`]), a roster comparison run ([`super::comparison`]) —
//! and their progress, which the pages follow live over server-sent events.
//!
//! The service runs the work for as long as its streaming call lasts, so
//! the gateway holds that call itself (not the browser, which may close its
//! tab) and keeps the latest progress an hour after the end, for the
//! officer to come back to. Progress is held by the gateway replica that
//! started it; the officer who started it, or one whose division holds the
//! work's, may watch it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;
use tokio::sync::watch;
use tonic::body::Body;

use super::Visit;
use super::html::{self, Page};

/// How long the progress of finished work is kept.
const KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether held work has ended, and why early if it did.
#[derive(Debug, Clone, Default)]
pub struct End {
    pub finished: bool,
    pub error: Option<String>,
}

/// What a page shows of the work, as it stands.
pub trait Progress: Clone + Send + Sync + 'static {
    /// The progress as the page's script reads it.
    fn json(&self) -> String;
    /// How far the work is, 0–100.
    fn percent(&self) -> i64;
    fn end(&self) -> &End;
    fn end_mut(&mut self) -> &mut End;

    fn finished(&self) -> bool {
        self.end().finished
    }

    /// Marks the work ended: by the service's end of the stream, or by `error`.
    fn finish(&mut self, error: Option<String>) {
        *self.end_mut() = End { finished: true, error };
    }
}

/// Held work, as an officer may watch it.
pub struct Watched<P> {
    pub division: String,
    pub title: String,
    pub progress: watch::Receiver<P>,
}

struct Held<P> {
    officer_id: String,
    division: dibao_proto::types::DivisionCode,
    title: String,
    progress: watch::Receiver<P>,
}

/// The work of one kind this gateway holds, by id.
pub struct Live<P>(Arc<Mutex<HashMap<String, Held<P>>>>);

impl<P> Default for Live<P> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<P: Progress> Live<P> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held<P>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The work `id`, if this officer may watch it.
    pub fn watch(&self, v: &Visit, id: &str) -> Option<Watched<P>> {
        let held = self.lock();
        let h = held.get(id)?;
        let claims = &v.session.claims;
        (h.officer_id == claims.officer_id || claims.division.contains(&h.division)).then(|| Watched {
            division: h.division.as_str().to_owned(),
            title: h.title.clone(),
            progress: h.progress.clone(),
        })
    }

    /// Every piece of work this officer may watch, by id, oldest first.
    pub fn visible(&self, v: &Visit) -> Vec<(String, Watched<P>)> {
        let claims = &v.session.claims;
        let mut seen: Vec<(String, Watched<P>)> = self
            .lock()
            .iter()
            .filter(|(_, h)| h.officer_id == claims.officer_id || claims.division.contains(&h.division))
            .map(|(id, h)| {
                let watched = Watched {
                    division: h.division.as_str().to_owned(),
                    title: h.title.clone(),
                    progress: h.progress.clone(),
                };
                (id.clone(), watched)
            })
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        seen
    }

    /// Holds `stream` for `v`'s officer as work `id` over `division`; its
    /// first message `first`, already read, and each after, as progress.
    pub fn hold<M: Send + 'static>(
        &self,
        v: &Visit,
        id: &str,
        (division, title): (dibao_proto::types::DivisionCode, &str),
        first: &M,
        mut stream: tonic::Streaming<M>,
    ) where
        P: for<'a> From<&'a M>,
    {
        let (tx, rx) = watch::channel(P::from(first));
        let held =
            Held { officer_id: v.session.claims.officer_id.clone(), division, title: title.to_owned(), progress: rx };
        self.lock().insert(id.to_owned(), held);
        let (registry, key) = (self.0.clone(), id.to_owned());
        tokio::spawn(async move {
            let last = loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        let _ = tx.send(P::from(&m));
                    }
                    Ok(None) => break None,
                    Err(status) => break Some(super::refusal(&status, "没有找到该区划")),
                };
            };
            tx.send_modify(|p| p.finish(last));
            tokio::time::sleep(KEPT).await;
            registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
        });
    }
}

/// The page an officer gets for work that is not there for them.
pub fn not_found(title: &str, what: &str) -> Page {
    Page::message(
        StatusCode::NOT_FOUND,
        title,
        &format!("没有找到这次{what}（或不在您的管辖范围内，或由其他网关节点发起）"),
    )
}

/// The progress of `watched` as server-sent events: one at once and one
/// at every change, until the work ends.
pub fn events<P: Progress>(watched: Option<Watched<P>>, title: &str, what: &str) -> http::Response<Body> {
    let Some(watched) = watched else {
        return html::respond(&not_found(title, what), None, &[]);
    };
    let stream = futures_util::stream::unfold((watched.progress, true, false), |(mut rx, first, done)| async move {
        if done {
            return None;
        }
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let p = rx.borrow_and_update().clone();
        let frame = hyper::body::Frame::data(Bytes::from(format!("data: {}\n\n", p.json())));
        Some((Ok::<_, Infallible>(frame), (rx, false, p.finished())))
    });
    html::protected(http::Response::builder().status(StatusCode::OK))
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .body(Body::new(http_body_util::StreamBody::new(stream)))
        .unwrap_or_else(|_| http::Response::new(Body::empty()))
}
