//! What the operator and officer commands share: `--server`, `--ca`,
//! `--cert`, `--key`, `--server-name` and a channel with mutual TLS.

use crate::server::connect;
use crate::tls::TlsMaterial;

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
