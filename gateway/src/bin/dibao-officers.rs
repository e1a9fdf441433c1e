//! The officer registry's administration, through the gateway as an
//! administrator logged in with `dibao-login`:
//!
//! dibao-officers --server GATEWAY:PORT --ca ca.pem --token FILE create --officer ID --name 姓名 --roles r1,r2 --division CODE [--identity 身份证号] [--oidc SUBJECT]
//! dibao-officers … update --officer ID [--name 姓名] [--roles r1,r2] [--division CODE] [--status active|disabled]
//! dibao-officers … reset --officer ID
//! dibao-officers … list [--division CODE]
//! dibao-officers … changes [--officer ID]
//!
//! And once, on a new deployment, with the gateway's own settings
//! (`GATEWAY__DATABASE__URL`, `GATEWAY__OFFICERS__SECRET_KEY`, …), the first
//! administrator, into an empty registry only:
//!
//! dibao-officers bootstrap --officer ID --name 姓名 --division CODE
//!
//! and, with the same settings, the division names the console shows beside
//! codes (a `code,name` file; a bad line is named and nothing is imported):
//!
//! dibao-officers divisions FILE
//!
//! Roles by name: village_committee, township_caseworker, township_reviewer,
//! county_approver, verification_officer, poverty_officer, county_operator,
//! province_auditor, administrator, system_operator.

use std::collections::HashMap;
use std::process::ExitCode;

use dibao_platform::files::command::ClientArgs;
use dibao_platform::runtime::service::Service;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, OfficerRole, PageRequest};
use dibao_proto::gateway::v1 as pb;
use dibao_proto::gateway::v1::officer_admin_service_client::OfficerAdminServiceClient;
use dibao_proto::labels::Label;

const USAGE: &str = "用法：dibao-officers --server 网关地址 --ca CA证书 --token 凭据文件 create|update|reset|list|changes …；dibao-officers bootstrap --officer 编号 --name 姓名 --division 区划代码；dibao-officers divisions 区划名称文件";

fn flags(rest: &[String]) -> Result<(String, HashMap<String, String>), String> {
    let mut it = rest.iter();
    let command = it.next().cloned().ok_or("请给出 create、update、reset、list、changes 或 bootstrap")?;
    let mut map = HashMap::new();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| format!("无法识别的参数“{flag}”"))?;
        let value = it.next().ok_or_else(|| format!("{flag} 缺少取值"))?;
        map.insert(name.to_owned(), value.clone());
    }
    Ok((command, map))
}

fn roles(list: &str) -> Result<Vec<i32>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            OfficerRole::from_str_name(&format!("OFFICER_ROLE_{}", r.to_ascii_uppercase()))
                .map(|r| r as i32)
                .ok_or_else(|| format!("没有名为“{r}”的角色"))
        })
        .collect()
}

fn officer_from(f: &HashMap<String, String>) -> Result<pb::Officer, String> {
    Ok(pb::Officer {
        officer_id: f.get("officer").cloned().unwrap_or_default(),
        name: f.get("name").cloned().unwrap_or_default(),
        roles: f.get("roles").map(|r| roles(r)).transpose()?.unwrap_or_default(),
        division: f.get("division").map(|d| DivisionCode { code: d.clone() }),
        status: match f.get("status").map(String::as_str) {
            Some("disabled") => pb::OfficerStatus::Disabled as i32,
            Some("active") | None => pb::OfficerStatus::Active as i32,
            Some(other) => return Err(format!("--status 应为 active 或 disabled，而不是“{other}”")),
        },
        identity_number: f.get("identity").map(|v| IdentityNumber { value: v.clone() }),
        oidc_subject: f.get("oidc").cloned().unwrap_or_default(),
        locked_until: None,
    })
}

fn show(o: &pb::Officer) -> String {
    let roles: Vec<&str> = o.roles.iter().filter_map(|r| OfficerRole::try_from(*r).ok()).map(Label::label).collect();
    let status = if o.status == pb::OfficerStatus::Disabled as i32 { "停用" } else { "启用" };
    format!(
        "{}\t{}\t{}\t辖区{}\t{status}{}",
        o.officer_id,
        o.name,
        roles.join("、"),
        o.division.as_ref().map_or("", |d| d.code.as_str()),
        if o.locked_until.is_some() { "\t已锁定" } else { "" }
    )
}

fn show_credentials(c: &pb::Credentials) {
    println!("一次性口令（请当面交给本人，首次登录后修改）：{}", c.one_time_password);
    println!("动态口令密钥（在身份验证器中添加）：{}", c.totp_secret);
    println!("{}", c.otpauth_uri);
}

async fn bootstrap(f: &HashMap<String, String>) -> Result<(), String> {
    use dibao_gateway::{admin, registry, secrets::SecretKey};
    let settings = dibao_gateway::Application::settings().map_err(|e| e.to_string())?;
    let pool = dibao_platform::store::db::connect_and_migrate(
        &settings.platform.database,
        &[("service", dibao_gateway::startup::MIGRATIONS)],
    )
    .await
    .map_err(|e| format!("无法连接网关数据库：{e}"))?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    if !registry::is_empty(&client).await.map_err(|e| e.to_string())? {
        return Err("经办人登记簿已有人员：首位管理员只能在新部署时建立，其余人员由管理员通过 create 添加".into());
    }
    let wanted = pb::Officer { roles: vec![OfficerRole::Administrator as i32], ..officer_from(f)? };
    let mut errors = Vec::new();
    let officer = admin::officer_of(&wanted, &mut errors)
        .filter(|_| errors.is_empty())
        .ok_or_else(|| errors.iter().map(|e| format!("{}：{}", e.field, e.reason)).collect::<Vec<_>>().join("；"))?;
    let key = SecretKey::load(&settings.own.officers.secret_key).map_err(|e| e.to_string())?;
    let creds = admin::create(&pool, &key, time::OffsetDateTime::now_utc(), &officer, "bootstrap")
        .await
        .map_err(|e| e.to_string())?;
    println!("已建立首位系统管理员：{}", officer.officer_id);
    show_credentials(&creds);
    Ok(())
}

async fn divisions(file: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("无法读取{file}：{e}"))?;
    let (rows, bad) = dibao_gateway::divisions::parse(&text);
    if !bad.is_empty() {
        let lines: Vec<String> = bad.iter().map(|b| format!("第{}行 {}：{}", b.line, b.field, b.reason)).collect();
        return Err(format!("{}\n未导入任何区划名称", lines.join("\n")));
    }
    let settings = dibao_gateway::Application::settings().map_err(|e| e.to_string())?;
    let pool = dibao_platform::store::db::connect_and_migrate(
        &settings.platform.database,
        &[("service", dibao_gateway::startup::MIGRATIONS)],
    )
    .await
    .map_err(|e| format!("无法连接网关数据库：{e}"))?;
    let n = dibao_gateway::divisions::import(&pool, &rows).await.map_err(|e| e.to_string())?;
    println!("已导入区划名称{n}条（网关一分钟内生效）");
    Ok(())
}

async fn run(args: ClientArgs, command: &str, f: &HashMap<String, String>) -> Result<(), String> {
    let mut client = OfficerAdminServiceClient::new(args.connect().await?);
    let status = |s: tonic::Status| format!("{}（{:?}）", s.message(), s.code());
    let page = |token: String| Some(PageRequest { page_size: 500, page_token: token });
    match command {
        "create" => {
            let r = client
                .create_officer(pb::CreateOfficerRequest { officer: Some(officer_from(f)?) })
                .await
                .map_err(status)?
                .into_inner();
            println!("已建立：{}", r.officer.as_ref().map(show).unwrap_or_default());
            if let Some(c) = &r.credentials {
                show_credentials(c);
            }
        }
        "update" => {
            let mask: Vec<String> = ["name", "roles", "division", "status", "identity", "oidc"]
                .iter()
                .filter(|k| f.contains_key(**k))
                .map(|k| match *k {
                    "identity" => "identity_number".to_owned(),
                    "oidc" => "oidc_subject".to_owned(),
                    k => k.to_owned(),
                })
                .collect();
            let r = client
                .update_officer(pb::UpdateOfficerRequest { officer: Some(officer_from(f)?), update_mask: mask })
                .await
                .map_err(status)?
                .into_inner();
            println!("已修改：{}", r.officer.as_ref().map(show).unwrap_or_default());
        }
        "reset" => {
            let id = f.get("officer").cloned().unwrap_or_default();
            let r = client.reset_credentials(pb::ResetCredentialsRequest { account: id }).await.map_err(status)?;
            if let Some(c) = &r.into_inner().credentials {
                show_credentials(c);
            }
        }
        "list" => {
            let mut token = String::new();
            loop {
                let r = client
                    .list_officers(pb::ListOfficersRequest {
                        division: f.get("division").map(|d| DivisionCode { code: d.clone() }),
                        page: page(token),
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                for o in &r.officers {
                    println!("{}", show(o));
                }
                token = r.page.map(|p| p.next_page_token).unwrap_or_default();
                if token.is_empty() {
                    break;
                }
            }
        }
        "changes" => {
            let mut token = String::new();
            loop {
                let r = client
                    .list_officer_changes(pb::ListOfficerChangesRequest {
                        account: f.get("officer").cloned().unwrap_or_default(),
                        page: page(token),
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                for c in &r.changes {
                    let at = c.at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok());
                    println!(
                        "{}\t{}\t{}\t由{}\t{}",
                        c.sequence,
                        at.map(|t| t.to_string()).unwrap_or_default(),
                        c.officer_id,
                        c.changed_by,
                        c.change
                    );
                }
                token = r.page.map(|p| p.next_page_token).unwrap_or_default();
                if token.is_empty() {
                    break;
                }
            }
        }
        other => return Err(format!("没有“{other}”这个命令")),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("divisions") {
        let Some(file) = raw.get(1) else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        return match divisions(file).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    if raw.first().map(String::as_str) == Some("bootstrap") {
        let result = async { bootstrap(&flags(&raw)?.1).await }.await;
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match ClientArgs::parse(raw) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (command, f) = match flags(&args.rest) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args, &command, &f).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
