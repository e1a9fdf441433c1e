//! The officers' commands, as run from a terminal, through the gateway:
//! the first administrator bootstrapped, officers enrolled and listed with
//! `dibao-officers`, a login and logout with `dibao-login`, and a county's
//! roster file imported with `roster-import` on an officer's session.

use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::{Household, Member, WorkAbility};
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, OfficerRole, Person, Relation};
use dibao_proto::events::v1::BenefitCategory;
use dibao_test_mesh::gateway;
use dibao_tests::{TestEnv, spawn};

const COUNTY: &str = "220581";
const VILLAGE: &str = "220581101201";

fn id(birth: &str, seq: &str) -> IdentityNumber {
    let body = format!("{COUNTY}{birth}{seq}");
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn member(birth: &str, seq: &str, name: &str, relation: Relation, covered: bool) -> Member {
    Member {
        person: Some(Person { identity_number: Some(id(birth, seq)), name: name.into(), ..Default::default() }),
        relation: relation as i32,
        work_ability: WorkAbility::Partial as i32,
        covered,
        ..Default::default()
    }
}

/// A household of four, its members born on `birth` and numbered from `first_seq`.
fn renumbered(birth: &str, first_seq: usize) -> Household {
    let names = [
        ("王建国", Relation::Head, false),
        ("李秀英", Relation::Spouse, false),
        ("王老汉", Relation::Parent, true),
        ("王小明", Relation::Child, true),
    ];
    Household {
        village: Some(DivisionCode { code: VILLAGE.into() }),
        category: BenefitCategory::C as i32,
        members: names
            .iter()
            .enumerate()
            .map(|(i, (name, relation, covered))| {
                member(birth, &format!("{:03}", first_seq + i), name, *relation, *covered)
            })
            .collect(),
        ..Default::default()
    }
}

fn household() -> Household {
    renumbered("19700101", 1)
}

/// A roster file line for member `m` of a household.
fn roster_line(key: &str, village: &str, m: &Member, relation: &str, amount: &str) -> String {
    let p = m.person.as_ref().expect("person");
    let id = &p.identity_number.as_ref().expect("id").value;
    let covered = if m.covered { "是" } else { "否" };
    format!("{key},{village},{},{id},{relation},低保,C类,{amount},2025-03-01,,否,部分,{covered}\n", p.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_files_import_through_the_command_and_errors_name_line_and_column() {
    let env = TestEnv::start().await;
    let civil = spawn::<dibao_civil_affairs::Application>(&env).await;
    let gw = gateway::start(&env, &[("civil-affairs", civil.addr)]).await;
    // The county's operator, logged in: the command carries their session.
    let token = gw.token("operator-220581", &[OfficerRole::CountyOperator], COUNTY).await;
    let token_file = env.certs.join("operator-token");
    std::fs::write(&token_file, &token).expect("token");
    let good = household();
    let relations = ["户主", "配偶", "父母", "子女"];
    let mut csv = String::from("\u{feff}");
    csv.push_str(&dibao_civil_affairs::roster_file::COLUMNS[..13].join(","));
    csv.push('\n');
    for (m, rel) in good.members.iter().zip(relations) {
        csv.push_str(&roster_line("F-001", VILLAGE, m, rel, "565.00"));
    }
    // Line 6 onwards: a second household whose spouse's identity number has a wrong check character.
    let mut bad = renumbered("19800505", 21);
    let spouse = bad.members[1].person.as_mut().expect("person").identity_number.as_mut().expect("id");
    let last = if spouse.value.ends_with('0') { '1' } else { '0' };
    spouse.value.replace_range(17.., &last.to_string());
    for (m, rel) in bad.members.iter().zip(relations) {
        csv.push_str(&roster_line("F-002", VILLAGE, m, rel, "300"));
    }
    let dir = env.certs.clone();
    let file = dir.join("花名册.csv");
    std::fs::write(&file, &csv).expect("write csv");

    let run = |file: std::path::PathBuf| {
        let (ca, server, token_file) = (gw.ca.clone(), gw.addr.to_string(), token_file.clone());
        async move {
            tokio::process::Command::new(dibao_tests::service_binary("roster-import"))
                .args(["--server", &server, "--ca"])
                .arg(ca)
                .arg("--token")
                .arg(token_file)
                .arg(file)
                .output()
                .await
                .expect("roster-import")
        }
    };
    let out = run(file.clone()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "errors make a non-zero exit: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("读取2户：新增或更新1户，未变化0户，有误1行"), "{stdout}");
    assert!(stdout.contains("第7行【身份证号】"), "the spouse's line and column: {stdout}");

    // The same roster as xlsx, the bad line fixed: the first household is
    // unchanged, the second now imported.
    let fixed = renumbered("19800505", 21);
    let xlsx = dir.join("花名册.xlsx");
    {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in dibao_civil_affairs::roster_file::COLUMNS[..13].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).expect("heading");
        }
        let lines: Vec<String> = good
            .members
            .iter()
            .zip(relations)
            .map(|(m, rel)| roster_line("F-001", VILLAGE, m, rel, "565.00"))
            .chain(fixed.members.iter().zip(relations).map(|(m, rel)| roster_line("F-002", VILLAGE, m, rel, "300")))
            .collect();
        for (i, line) in lines.iter().enumerate() {
            for (c, v) in line.trim_end().split(',').enumerate() {
                // The county number typed as a number, as spreadsheets do.
                if c == 1 {
                    sheet.write_number(1 + i as u32, c as u16, v.parse::<f64>().expect("n")).expect("cell");
                } else {
                    sheet.write_string(1 + i as u32, c as u16, v).expect("cell");
                }
            }
        }
        book.save(&xlsx).expect("save xlsx");
    }
    let mut client = CivilAffairsServiceClient::new(gw.channel(&token).await);
    let report = dibao_civil_affairs::roster_file::import(
        &mut client,
        dibao_civil_affairs::roster_file::open(&xlsx).expect("open xlsx"),
    )
    .await
    .expect("import");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!((report.records_read, report.applied, report.unchanged), (2, 1, 1), "{report}");
    // Re-running the same file changes nothing.
    let again = run(xlsx).await;
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("新增或更新0户，未变化2户"), "{again:?}");
}

/// What a command printed after `label`, on its line.
fn printed(out: &str, label: &str) -> String {
    out.lines().find_map(|l| l.split_once(label).map(|(_, v)| v.trim().to_owned())).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_administrator_is_bootstrapped_and_officers_are_managed_with_the_commands() {
    let env = TestEnv::start().await;
    let civil = spawn::<dibao_civil_affairs::Application>(&env).await;
    let how = gateway::spawn_vars(&env, &[("civil-affairs", civil.addr)]);
    // The gateway's settings, as the commands read them on the gateway's host.
    let mut settings = env.vars("gateway");
    settings.extend(how.vars.iter().cloned());
    let officers = |args: &[&str]| {
        let mut command = tokio::process::Command::new(dibao_tests::service_binary("dibao-officers"));
        command.envs(&settings).args(args);
        command
    };

    // Bootstrap: the first administrator, into an empty registry only.
    let out = officers(&["bootstrap", "--officer", "admin-1", "--name", "省管理员", "--division", "220000"])
        .output()
        .await
        .expect("bootstrap");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let password = printed(&stdout, "一次性口令（请当面交给本人，首次登录后修改）：");
    let secret = printed(&stdout, "动态口令密钥（在身份验证器中添加）：");
    assert!(!password.is_empty() && !secret.is_empty(), "{stdout}");
    let again = officers(&["bootstrap", "--officer", "admin-2", "--name", "又一位", "--division", "220000"])
        .output()
        .await
        .expect("bootstrap again");
    assert!(!again.status.success(), "a second bootstrap is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("已有人员"), "{again:?}");

    // The gateway starts on that registry; the administrator logs in from the terminal.
    let gw = gateway::start_with(&env, how).await;
    let token = env.certs.join("admin-token");
    let login = |officer: &str, password: &str, secret: &str| {
        let code =
            dibao_gateway::client::totp_code(secret, time::OffsetDateTime::now_utc().unix_timestamp()).expect("code");
        tokio::process::Command::new(dibao_tests::service_binary("dibao-login"))
            .args(["--server", &gw.addr.to_string(), "--ca"])
            .arg(&gw.ca)
            .args(["--officer", officer, "--out"])
            .arg(&token)
            .env("DIBAO_PASSWORD", password)
            .env("DIBAO_TOTP", code)
            .output()
    };
    let out = login("admin-1", &password, &secret).await.expect("dibao-login");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("已登录：省管理员（系统管理员，辖区220000）"), "{stdout}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token).expect("token file").permissions().mode();
    assert_eq!(mode & 0o077, 0, "the token file is the officer's alone");

    // Enrol, list, see the record of changes: through the gateway, on the session.
    let with_token = |token: &std::path::Path, args: &[&str]| {
        let mut c = tokio::process::Command::new(dibao_tests::service_binary("dibao-officers"));
        c.args(["--server", &gw.addr.to_string(), "--ca"]).arg(&gw.ca).arg("--token").arg(token).args(args);
        c
    };
    let with = |args: &[&str]| with_token(&token, args);
    let out = with(&[
        "create",
        "--officer",
        "cw-1",
        "--name",
        "刘志强",
        "--roles",
        "township_caseworker",
        "--division",
        "220581101",
    ])
    .output()
    .await
    .expect("create");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("已建立：cw-1\t刘志强\t乡镇经办人员\t辖区220581101\t启用"), "{stdout}");
    let out =
        with(&["create", "--officer", "cw-2", "--name", "某", "--roles", "no_such_role", "--division", "220581101"])
            .output()
            .await
            .expect("create");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("没有名为“no_such_role”的角色"), "{out:?}");
    let out = with(&["list"]).output().await.expect("list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cw-1\t刘志强") && stdout.contains("admin-1\t省管理员"), "{stdout}");
    let out = with(&["changes", "--officer", "cw-1"]).output().await.expect("changes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cw-1\t由admin-1\t新建：刘志强，乡镇经办人员，辖区220581101"), "{stdout}");

    // Logout: the session is over, even for a copy of its token.
    let stale = env.certs.join("stale-token");
    std::fs::copy(&token, &stale).expect("copy");
    let out = tokio::process::Command::new(dibao_tests::service_binary("dibao-login"))
        .args(["--server", &gw.addr.to_string(), "--ca"])
        .arg(&gw.ca)
        .args(["--logout", "--out"])
        .arg(&token)
        .output()
        .await
        .expect("logout");
    assert!(out.status.success(), "{out:?}");
    assert!(!token.exists(), "the token file is removed");
    let out = with_token(&stale, &["list"]).output().await.expect("list after logout");
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("登录已注销"), "{out:?}");
}
