//! What the operator and officer commands share: `--server`, `--ca`,
//! `--cert`, `--key`, `--server-name` and a channel with mutual TLS.

use crate::runtime::server::connect;
use crate::runtime::tls::TlsMaterial;

/// The connection flags of a command, and its other arguments in order.
pub struct ClientArgs {
    pub server: String,
    pub tls: TlsMaterial,
    pub server_name: String,
    pub rest: Vec<String>,
}

impl ClientArgs {
    /// Reads the flags; the message names what is missing or unreadable, in Chinese.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let (mut server, mut ca, mut cert, mut key, mut name, mut rest) = (None, None, None, None, None, Vec::new());
        while let Some(a) = args.next() {
            match a.as_str() {
                "--server" => server = args.next(),
                "--ca" => ca = args.next(),
                "--cert" => cert = args.next(),
                "--key" => key = args.next(),
                "--server-name" => name = args.next(),
                _ => rest.push(a),
            }
        }
        let missing: Vec<&str> = [("--server", &server), ("--ca", &ca), ("--cert", &cert), ("--key", &key)]
            .into_iter()
            .filter(|(_, v)| v.is_none())
            .map(|(f, _)| f)
            .collect();
        let (Some(server), Some(ca), Some(cert), Some(key)) = (server, ca, cert, key) else {
            return Err(format!("缺少参数：{}", missing.join("、")));
        };
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("无法读取证书文件{p}：{e}"));
        let tls = TlsMaterial::from_pem(&read(&ca)?, &read(&cert)?, &read(&key)?);
        Ok(Self { server, tls, server_name: name.unwrap_or_else(|| "localhost".to_owned()), rest })
    }

    pub async fn connect(&self) -> Result<tonic::transport::Channel, String> {
        connect(&self.tls, &self.server, &self.server_name).await.map_err(|e| format!("无法连接{}：{e}", self.server))
    }
}

/// The whole of a roster-import command: flags, one file read by `open`,
/// streamed by `import` over the channel, the report printed. Exit codes:
/// 0 all imported, 3 some lines refused (the rest imported), 2 bad usage,
/// 1 could not run.
pub async fn import_command<R, Fut>(
    usage: &str,
    open: impl FnOnce(&std::path::Path) -> Result<R, crate::files::tabular::FileError>,
    import: impl FnOnce(tonic::transport::Channel, R) -> Fut,
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
