//! What the operator and officer commands share: `--server` (the
//! gateway), `--ca`, the officer's session (`--token FILE`, or
//! `DIBAO_TOKEN`, from `dibao-login`), `--server-name`, `--service` (for a
//! method every service serves: which one), and for a departmental system
//! its certificate (`--cert`, `--key`); a TLS channel whose every call
//! carries the session.

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::runtime::server::{CallerChannel, Credentials};

/// The connection flags of a command, and its other arguments in order.
pub struct ClientArgs {
    pub server: String,
    pub ca: Certificate,
    /// A departmental system's certificate and key; an officer has none.
    pub identity: Option<Identity>,
    pub server_name: String,
    /// The officer's session token at the gateway, if any.
    pub token: Option<String>,
    /// The service a call served by every service is for (`--service`).
    pub service: Option<String>,
    pub rest: Vec<String>,
}

impl ClientArgs {
    /// Reads the flags; the message names what is missing or unreadable, in Chinese.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let (mut server, mut ca, mut cert, mut key, mut name, mut rest) = (None, None, None, None, None, Vec::new());
        let (mut token_file, mut service) = (None, None);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--server" => server = args.next(),
                "--token" => token_file = args.next(),
                "--service" => service = args.next(),
                "--ca" => ca = args.next(),
                "--cert" => cert = args.next(),
                "--key" => key = args.next(),
                "--server-name" => name = args.next(),
                _ => rest.push(a),
            }
        }
        let missing: Vec<&str> =
            [("--server", &server), ("--ca", &ca)].into_iter().filter(|(_, v)| v.is_none()).map(|(f, _)| f).collect();
        let (Some(server), Some(ca)) = (server, ca) else {
            return Err(format!("缺少参数：{}", missing.join("、")));
        };
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("无法读取证书文件{p}：{e}"));
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some(Identity::from_pem(read(&cert)?, read(&key)?)),
            (None, None) => None,
            _ => return Err("--cert 与 --key 须同时给出".to_owned()),
        };
        let ca = Certificate::from_pem(read(&ca)?);
        let token = match token_file {
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| format!("无法读取登录凭据文件{path}：{e}"))?),
            None => std::env::var("DIBAO_TOKEN").ok(),
        }
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
        Ok(Self {
            server,
            ca,
            identity,
            server_name: name.unwrap_or_else(|| "localhost".to_owned()),
            token,
            service,
            rest,
        })
    }

    /// The channel to `--server`, every call carrying the officer's session when there is one.
    pub async fn connect(&self) -> Result<CallerChannel, String> {
        self.connect_to(&self.server).await
    }

    /// The same to another address.
    pub async fn connect_to(&self, addr: &str) -> Result<CallerChannel, String> {
        let mut tls = ClientTlsConfig::new().ca_certificate(self.ca.clone()).domain_name(&self.server_name);
        if let Some(identity) = &self.identity {
            tls = tls.identity(identity.clone());
        }
        let fail = |e: tonic::transport::Error| format!("无法连接{addr}：{e}");
        let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
            .map_err(fail)?
            .tls_config(tls)
            .map_err(fail)?
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .map_err(fail)?;
        let mut credentials = self.token.as_deref().map_or_else(Credentials::none, Credentials::bearer);
        if let Some(service) = &self.service {
            credentials = credentials.with("x-dibao-service", service);
        }
        Ok(tonic::service::interceptor::InterceptedService::new(channel, credentials))
    }
}

/// The whole of a roster-import command: flags, one file read by `open`,
/// streamed by `import` over the channel, the report printed. Exit codes:
/// 0 all imported, 3 some lines refused (the rest imported), 2 bad usage,
/// 1 could not run.
pub async fn import_command<R, Fut>(
    usage: &str,
    open: impl FnOnce(&std::path::Path) -> Result<R, crate::files::tabular::FileError>,
    import: impl FnOnce(CallerChannel, R) -> Fut,
) -> std::process::ExitCode
where
    Fut: std::future::Future<Output = Result<crate::files::tabular::Report, tonic::Status>>,
{
    use std::process::ExitCode;
    let args = match ClientArgs::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let [file] = args.rest.as_slice() else {
        eprintln!("请给出一个花名册文件\n{usage}");
        return ExitCode::from(2);
    };
    let file = std::path::PathBuf::from(file);
    let records = match open(&file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}：{e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let channel = match args.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match import(channel, records).await {
        Ok(report) => {
            print!("{report}");
            if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) }
        }
        Err(status) => {
            eprintln!("导入中断：{}（{:?}）", status.message(), status.code());
            ExitCode::FAILURE
        }
    }
}
