//! A real browser for the console's tests: Debian's Chromium, headless,
//! driven over WebDriver by Debian's `chromedriver` (both installed by
//! `scripts/deps.sh`; nothing downloads a browser of its own). A small
//! HTTP/1.1 client speaks the W3C protocol; each [`Browser`] is a window of
//! its own (its own cookies) at 1366×768, the size county offices use.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The element key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
}

/// A `chromedriver` process on a free port. Its browsers keep their
/// profiles under one directory of their own, by which they are found and
/// stopped when the driver is dropped (a failed test leaves no Chromium behind).
pub struct Driver {
    port: u16,
    profiles: PathBuf,
    windows: std::sync::atomic::AtomicU32,
    _child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .arg("-f")
            .arg(self.profiles.display().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.profiles);
    }
}

impl Driver {
    /// Starts chromedriver; fails, naming what is missing, when Chromium or
    /// its driver is not installed (`scripts/deps.sh` installs both).
    pub async fn start() -> anyhow::Result<Self> {
        let driver = which(&["chromedriver"]).context("chromedriver is not installed: run scripts/deps.sh")?;
        which(&["chromium", "chromium-browser"]).context("chromium is not installed: run scripts/deps.sh")?;
        let port = crate::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, body)) = request(port, "GET", "/status", None).await
                && body["value"]["ready"].as_bool() == Some(true)
            {
                let profiles = std::env::temp_dir().join(format!("dibao-chromium-{port}-{}", std::process::id()));
                return Ok(Self { port, profiles, windows: Default::default(), _child: child });
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless window of its own.
    pub async fn browser(&self) -> anyhow::Result<Browser> {
        let binary = which(&["chromium", "chromium-browser"]).context("chromium")?;
        let window = self.windows.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let profile = self.profiles.join(window.to_string());
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            // The test's own CA signed the gateway's certificate.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": binary.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1366,768", "--lang=zh-CN", "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let (status, body) = request(self.port, "POST", "/session", Some(&caps)).await?;
        if status != 200 {
            bail!("chromedriver refused a session: {body}");
        }
        let id = body["value"]["sessionId"].as_str().context("sessionId")?.to_owned();
        Ok(Browser { port: self.port, session: id })
    }
}

/// One browser window.
pub struct Browser {
    port: u16,
    session: String,
}

impl Browser {
    async fn command(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let (status, answer) = request(self.port, method, &format!("/session/{}{path}", self.session), body).await?;
        if status != 200 {
            bail!("WebDriver {method} {path}: {status} {}", answer["value"]["message"]);
        }
        Ok(answer["value"].clone())
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "/url", Some(&json!({ "url": url }))).await.map(drop)
    }

    /// The current page's address.
    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self.command("GET", "/url", None).await?.as_str().unwrap_or_default().to_owned())
    }

    /// The page's whole text as a person reads it.
    pub async fn text(&self) -> anyhow::Result<String> {
        self.text_of("body").await
    }

    /// The page's text now, for a failure's message.
    async fn text_now(&self) -> String {
        match self.find_now("body").await {
            Ok(Some(id)) => self
                .command("GET", &format!("/element/{id}/text"), None)
                .await
                .ok()
                .and_then(|t| t.as_str().map(str::to_owned))
                .unwrap_or_default(),
            _ => self.command("GET", "/source", None).await.map(|s| s.to_string()).unwrap_or_default(),
        }
    }

    /// The text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> anyhow::Result<String> {
        let id = self.find(css).await?;
        Ok(self.command("GET", &format!("/element/{id}/text"), None).await?.as_str().unwrap_or_default().to_owned())
    }

    async fn find_now(&self, css: &str) -> anyhow::Result<Option<String>> {
        let found = self.command("POST", "/elements", Some(&json!({ "using": "css selector", "value": css }))).await?;
        Ok(found.as_array().and_then(|a| a.first()).and_then(|e| e[ELEMENT].as_str()).map(str::to_owned))
    }

    /// The first element matching `css`, waiting up to 10 s for it.
    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.find_now(css).await? {
                return Ok(id);
            }
            if Instant::now() > deadline {
                let text = self.text_now().await;
                bail!("no element `{css}` on {}:\n{text}", self.url().await.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether an element matches `css` now.
    pub async fn has(&self, css: &str) -> anyhow::Result<bool> {
        Ok(self.find_now(css).await?.is_some())
    }

    /// Types `text` into the field matching `css` (cleared first).
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        self.command("POST", &format!("/element/{id}/clear"), Some(&json!({}))).await?;
        self.command("POST", &format!("/element/{id}/value"), Some(&json!({ "text": text }))).await.map(drop)
    }

    /// Chooses the file at `path` in the file input matching `css`, as an officer picking a scan.
    pub async fn attach(&self, css: &str, path: &Path) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        // The driver takes canonical paths only.
        let text = std::fs::canonicalize(path)?.display().to_string();
        self.command("POST", &format!("/element/{id}/value"), Some(&json!({ "text": text }))).await.map(drop)
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        self.command("POST", &format!("/element/{id}/click"), Some(&json!({}))).await.map(drop)
    }

    /// Waits up to `secs` for the page's text to contain `needle`.
    pub async fn wait_for_text(&self, needle: &str, secs: u64) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.text().await.unwrap_or_default();
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!("`{needle}` did not appear on {}:\n{text}", self.url().await.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `script` in the page; its result.
    pub async fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.command("POST", "/execute/sync", Some(&json!({ "script": script, "args": [] }))).await
    }

    /// Runs `script` in the page, which ends by calling its last argument
    /// with the result (`fetch` and other promises); the result.
    pub async fn script_async(&self, script: &str) -> anyhow::Result<Value> {
        self.command("POST", "/execute/async", Some(&json!({ "script": script, "args": [] }))).await
    }

    /// The cookies the browser holds for the page, HttpOnly ones included
    /// (as WebDriver reports them: name, value, httpOnly, secure, sameSite).
    pub async fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self.command("GET", "/cookie", None).await?.as_array().cloned().unwrap_or_default())
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.command("GET", "/screenshot", None).await?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, bytes).with_context(|| path.display().to_string())
    }

    /// Closes the window.
    pub async fn close(self) -> anyhow::Result<()> {
        request(self.port, "DELETE", &format!("/session/{}", self.session), None).await.map(drop)
    }
}

/// One WebDriver call: the status and the JSON answer.
async fn request(port: u16, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(payload.as_bytes()).await?;
    // chromedriver keeps the connection open whatever the request says:
    // the answer ends where its Content-Length (or last chunk) says.
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            raw.extend_from_slice(&buf[..n]);
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let body = &raw[split + 4..];
                let complete = match length {
                    Some(len) => body.len() >= len,
                    None => head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n"),
                };
                if complete || n == 0 {
                    return Ok::<_, anyhow::Error>(raw);
                }
            } else if n == 0 {
                bail!("WebDriver closed the connection without an answer");
            }
        }
    };
    let raw = tokio::time::timeout(Duration::from_secs(60), read).await.context("WebDriver timed out")??;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no HTTP head")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status")?;
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    let json = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body)? };
    Ok((status, json))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}
