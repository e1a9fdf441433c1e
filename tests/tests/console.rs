//! The officers' console in a real browser (Debian's Chromium, headless,
//! over WebDriver) against the real gateway and every service: officers log
//! in with a password and an authenticator code computed here (a wrong code
//! refused), work an application through its steps — each signature shown
//! for confirmation before it is made — see their work lists, are refused
//! county approval while the public notice runs and approve after it; an
//! officer of another county finds nothing of it, by list or by URL; the
//! access-history page lists the views the earlier steps made; a form
//! posted without its CSRF token is refused; the Content-Security-Policy is
//! sent and the session cookie is out of the page's reach. Screenshots of
//! each main page go to `target/console-screenshots/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dibao_platform::runtime::clock::{Clock, ManualClock};
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation};
use dibao_proto::comparison::v1 as cmp;
use dibao_proto::events::v1::BenefitCategory;
use dibao_test_mesh::gateway::{self, Enrolled, Gateway};
use dibao_tests::TestEnv;
use dibao_tests::browser::{Browser, Driver};

const COUNTY: &str = "220581";
const TOWNSHIP: &str = "220581101";
const VILLAGE: &str = "220581101201";
const OTHER_COUNTY: &str = "220582";

fn id(seq: u32) -> IdentityNumber {
    let body = format!("{COUNTY}19700101{seq:03}");
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
}

/// Logs `officer` in through the console's form; the page after it.
async fn login(b: &Browser, gw: &Gateway, officer: &Enrolled) -> String {
    b.goto(&format!("https://{}/login", gw.addr)).await.expect("login page");
    b.fill("#officer_id", &officer.officer_id).await.expect("id");
    b.fill("#password", &officer.password).await.expect("password");
    b.fill("#totp", &officer.code(gw.clock.now().unix_timestamp())).await.expect("code");
    b.click("#login").await.expect("log in");
    b.wait_for_text("我的待办", 10).await.expect("the work list after login")
}

/// Signs the open step of the application on the page: the form, the
/// confirmation (which must show what is signed), then the signature.
async fn sign(b: &Browser, approve: bool, remarks: &str, report: Option<&str>) -> String {
    b.click(if approve { "#approve" } else { "#refuse" }).await.expect("decision");
    b.fill("#remarks", remarks).await.expect("remarks");
    if let Some(report) = report {
        b.fill("#report", report).await.expect("report");
    }
    b.click("#review-sign").await.expect("to the confirmation");
    let confirm = b.wait_for_text("确认签署", 10).await.expect("confirmation page");
    assert!(confirm.contains(remarks) && confirm.contains(if approve { "同意" } else { "不同意" }), "{confirm}");
    b.click("#confirm-sign").await.expect("sign");
    // Signed or refused, the application's page follows, with its signed
    // history; the confirmation page names the signed record too, so wait
    // until it is gone (the click may return before the page it posts to).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = b.text().await.unwrap_or_default();
        if text.contains("签署记录") && !text.contains("请逐项核对") {
            return text;
        }
        assert!(Instant::now() < deadline, "the application after signing did not appear:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn officers_work_an_application_through_the_console_in_a_real_browser() {
    // The scenario is one large future (every service, four browsers): in a
    // debug build its frames outgrow a test thread's 2 MiB stack.
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .thread_stack_size(8 << 20)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(Box::pin(scenario()))
        })
        .expect("thread")
        .join()
        .expect("the scenario");
}

async fn scenario() {
    let driver = Driver::start().await.expect("chromedriver (scripts/deps.sh installs it)");
    let env = TestEnv::start().await;
    let clock = ManualClock::at(time::OffsetDateTime::now_utc());
    let all = dibao_test_mesh::all::start_with(env, Some(Arc::new(clock.clone()))).await;
    let upstreams: Vec<(&str, std::net::SocketAddr)> = all.addrs.iter().map(|(k, v)| (*k, *v)).collect();
    // The province's division names, imported before the gateway starts (it reads them every minute).
    let names = dibao_platform::store::db::connect_and_migrate(
        &all.env.db.settings("gateway"),
        &[("service", dibao_gateway::startup::MIGRATIONS)],
    )
    .await
    .expect("gateway schema");
    let (rows, bad) =
        dibao_gateway::divisions::parse(&format!("{COUNTY},梅河口市\n{TOWNSHIP},山城镇\n{VILLAGE},山城村\n"));
    assert!(bad.is_empty(), "{bad:?}");
    dibao_gateway::divisions::import(&names, &rows).await.expect("division names");
    let how = gateway::spawn_vars(&all.env, &upstreams).clock(Arc::new(clock.clone()));
    let gw = gateway::start_with(&all.env, how).await;
    let base = format!("https://{}", gw.addr);

    // The county's policy and an application, the way a system would put them (gRPC through the gateway).
    let policy_officer = gw.officer("policy-office", &[OfficerRole::CountyApprover], COUNTY).await;
    CivilAffairsServiceClient::new(policy_officer.clone())
        .save_policy(ca::SavePolicyRequest { policy: Some(dibao_test_mesh::verification::policy(COUNTY)) })
        .await
        .expect("policy");
    let caseworker = gw.enrol("liu-caseworker", "刘志强", &[OfficerRole::TownshipCaseworker], TOWNSHIP).await;
    let intake = gw.channel(&gw.login(&caseworker).await.expect("caseworker logs in")).await;
    let member = |seq, name: &str, relation: Relation, ability: ca::WorkAbility| ca::Member {
        person: Some(Person { identity_number: Some(id(seq)), name: name.into(), ..Default::default() }),
        relation: relation as i32,
        work_ability: ability as i32,
        covered: true,
        ..Default::default()
    };
    let submitted = CivilAffairsServiceClient::new(intake)
        .submit_application(ca::SubmitApplicationRequest {
            household: Some(ca::Household {
                village: Some(DivisionCode { code: VILLAGE.into() }),
                category: BenefitCategory::C as i32,
                payee: Some(ca::Payee {
                    bank: "梅河口农商银行".into(),
                    account: "6230520012345678901".into(),
                    holder_name: "王建国".into(),
                }),
                members: vec![
                    member(1, "王建国", Relation::Head, ca::WorkAbility::Partial),
                    member(2, "李秀英", Relation::Spouse, ca::WorkAbility::None),
                ],
                ..Default::default()
            }),
            income: vec![ca::IncomeItem {
                kind: ca::IncomeKind::Wage as i32,
                label: "零工".into(),
                monthly: Some(Money { fen: 20_000 }),
                ..Default::default()
            }],
            supporters: vec![],
        })
        .await
        .expect("application")
        .into_inner();
    let app = submitted.application_id.clone();

    // --- the caseworker: a wrong code refused, then in; the home visit signed.
    let a = driver.browser().await.expect("browser");
    a.goto(&format!("{base}/login")).await.expect("login page");
    a.screenshot(&shots().join("login.png")).await.expect("screenshot");
    a.fill("#officer_id", &caseworker.officer_id).await.expect("id");
    a.fill("#password", &caseworker.password).await.expect("password");
    let good = caseworker.code(clock.now().unix_timestamp());
    a.fill("#totp", if good == "000000" { "111111" } else { "000000" }).await.expect("code");
    a.click("#login").await.expect("submit");
    let refused = a.wait_for_text("不正确", 10).await.expect("a wrong code is refused");
    assert!(refused.contains("账号、口令或动态口令不正确"), "{refused}");
    let work = login(&a, &gw, &caseworker).await;
    assert!(work.contains("王建国") && work.contains("入户调查"), "the application waits for the caseworker:\n{work}");
    // A complaint the township took by phone four days ago (R-AUD-2), registered at the
    // intake form; the county assigns it to the township: on the caseworker's list until closed.
    a.click("#file-complaint").await.expect("to the intake form");
    a.wait_for_text("反映内容", 10).await.expect("intake form");
    let today = dibao_platform::runtime::clock::china_date(clock.now());
    let pb_date = |d: time::Date| dibao_proto::common::v1::Date {
        year: d.year(),
        month: i32::from(d.month() as u8),
        day: i32::from(d.day()),
    };
    a.script(&format!("document.getElementById('received_on').value = '{}';", today - time::Duration::days(4)))
        .await
        .expect("received on");
    a.fill("#content", "反映某户家中有车仍享受低保").await.expect("content");
    a.fill("#application_id", "不是编号").await.expect("a wrong number");
    a.click("#file").await.expect("file");
    let refused = a.wait_for_text("编号格式不正确", 10).await.expect("a wrong application number refused");
    assert!(refused.contains("application_id"), "the field is named:\n{refused}");
    assert!(a.has("#complaint-error").await.expect("page"), "refused at the form:\n{refused}");
    assert_eq!(
        a.text_of("#content").await.expect("kept").trim(),
        "反映某户家中有车仍享受低保",
        "nothing typed is lost"
    );
    a.fill("#application_id", "").await.expect("cleared");
    a.click("#anonymous").await.expect("anonymous");
    a.screenshot(&shots().join("complaint-intake.png")).await.expect("screenshot");
    a.click("#file").await.expect("file");
    a.wait_for_text("办理记录", 10).await.expect("the complaint filed");
    let url = a.url().await.expect("url");
    let complaint = ca::FileComplaintResponse {
        complaint_id: url.rsplit('/').next().expect("id").to_owned(),
        complaint_number: a.text_of("#complaint-number").await.expect("number").trim().to_owned(),
    };
    assert!(!complaint.complaint_number.is_empty(), "{url}");
    ca::complaint_service_client::ComplaintServiceClient::new(policy_officer)
        .assign_complaint(ca::AssignComplaintRequest {
            complaint_id: complaint.complaint_id.clone(),
            township: Some(DivisionCode { code: TOWNSHIP.into() }),
            due_on: Some(pb_date(today + time::Duration::days(14))),
            note: "请核实".into(),
        })
        .await
        .expect("assigned to the township");
    a.goto(&format!("{base}/work")).await.expect("back to the work list");
    let work = a.wait_for_text("待我签署的申请", 10).await.expect("work list");
    assert!(
        work.contains("待办理的举报、信访")
            && work.contains(&complaint.complaint_number)
            && work.contains("反映某户家中有车仍享受低保"),
        "the complaint waits for the township:\n{work}"
    );
    a.screenshot(&shots().join("work.png")).await.expect("screenshot");
    // The page's script cannot read the session cookie.
    let cookies = a.script("return document.cookie;").await.expect("script");
    assert!(!cookies.as_str().unwrap_or_default().contains("dibao_session"), "HttpOnly: {cookies}");
    // The complaint, from the list: what was reported, then a follow-up signed by the caseworker.
    a.click(&format!("a[href='/complaints/{}']", complaint.complaint_id)).await.expect("open the complaint");
    let page = a.wait_for_text("办理记录", 10).await.expect("complaint page");
    assert!(page.contains("反映某户家中有车仍享受低保") && page.contains("匿名"), "{page}");
    a.fill("#step-note", "已入户核查，该车为残疾人代步车").await.expect("note");
    a.click("#add-step").await.expect("record the step");
    // Waited for by who signed it: the note is on the form too.
    let followed = a.wait_for_text("刘志强（乡镇经办人员）", 10).await.expect("the step recorded");
    assert!(followed.contains("已入户核查，该车为残疾人代步车") && followed.contains("核查"), "{followed}");
    a.goto(&format!("{base}/work")).await.expect("back to the work list");
    a.wait_for_text("待我签署的申请", 10).await.expect("work list");
    a.click(&format!("a[href='/applications/{app}']")).await.expect("open the application");
    let page = a.wait_for_text("家庭成员", 10).await.expect("application page");
    assert!(page.contains("李秀英") && page.contains(&id(2).value), "a caseworker sees members in full:\n{page}");
    assert!(page.contains(&format!("山城村（{VILLAGE}）")), "the village by its name:\n{page}");
    // The assessment as the engine makes it: each line with its treatment and rule.
    for shown in ["收入核算", "零工", "200.00 元", "计入", "人均月收入", "100.00 元", "符合"] {
        assert!(page.contains(shown), "the assessment shows {shown}:\n{page}");
    }
    a.script("window.scrollTo(0, 0);").await.expect("scroll");
    a.screenshot(&shots().join("application.png")).await.expect("screenshot");
    a.click("#approve").await.expect("approve");
    a.fill("#remarks", "入户核实，家中无劳动力收入来源").await.expect("remarks");
    a.click("#review-sign").await.expect("to the confirmation");
    let confirm = a.wait_for_text("确认签署", 10).await.expect("confirmation");
    for shown in ["入户调查", "同意", "入户核实，家中无劳动力收入来源", "刘志强", "乡镇经办人员", VILLAGE]
    {
        assert!(confirm.contains(shown), "the confirmation shows {shown}:\n{confirm}");
    }
    a.screenshot(&shots().join("confirm.png")).await.expect("screenshot");
    a.click("#confirm-sign").await.expect("sign");
    let signed = a.wait_for_text("已签署“入户调查”（同意）", 10).await.expect("signed");
    assert!(signed.contains("民主评议"), "next: the village review\n{signed}");

    // --- the village review and the verification, as their officers' systems do them.
    let committee = gw.officer("wang-committee", &[OfficerRole::VillageCommittee], VILLAGE).await;
    CivilAffairsServiceClient::new(committee)
        .sign_step(ca::SignStepRequest {
            application_id: app.clone(),
            step: ca::ProcessStep::VillageReview as i32,
            approve: true,
            remarks: "民主评议通过".into(),
            ..Default::default()
        })
        .await
        .expect("village review");
    // --- the verification officer registers the family's consent at the console (the scan uploaded,
    // its digest shown in the browser first, the signatories ticked among the members), verifies the household
    // under it and signs the verification step on the report.
    let checker = gw.enrol("chen-checker", "陈核对", &[OfficerRole::VerificationOfficer], COUNTY).await;
    let k = driver.browser().await.expect("browser");
    login(&k, &gw, &checker).await;
    k.goto(&format!("{base}/applications/{app}")).await.expect("open");
    k.click("#verify-link").await.expect("to the verification");
    k.wait_for_text("授权书扫描件", 10).await.expect("the consent form");
    let scan = shots().join("consent-scan.pdf");
    std::fs::write(&scan, b"%PDF-1.4 consent signed by the household").expect("scan");
    let expected: String = ring::digest::digest(&ring::digest::SHA256, &std::fs::read(&scan).expect("scan"))
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    k.attach("#scan", &scan).await.expect("choose the scan");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let digest = k.script("return document.getElementById('document_sha256').value;").await.expect("script");
        if digest.as_str() == Some(expected.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "the browser computes the scan's SHA-256: {digest} ≠ {expected}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // This mesh has the public-security adapter only: the vehicles are what it answers.
    k.script("document.querySelectorAll('input[name^=item-]').forEach(i => { i.checked = i.name === 'item-1'; });")
        .await
        .expect("items");
    k.click("input[name=no_relatives]").await.expect("no relatives outside");
    k.screenshot(&shots().join("verify.png")).await.expect("screenshot");
    k.click("#verify").await.expect("register and verify");
    let verified = k.wait_for_text("核对完成", 20).await.expect("verified");
    assert!(verified.contains("签署本环节：信息核对"), "{verified}");
    // The scan itself went up: the hub keeps it, its digest the hub's own (R-VER-1).
    let kept = all
        .env
        .db
        .client()
        .await
        .expect("db")
        .query_one(
            "SELECT d.content, c.document_sha256, c.digest_computed FROM verification_hub.consent_document d
             JOIN verification_hub.consent c USING (consent_id)",
            &[],
        )
        .await
        .expect("the scan kept");
    assert_eq!(kept.get::<_, Vec<u8>>(0), std::fs::read(&scan).expect("scan"));
    assert_eq!((kept.get::<_, String>(1), kept.get::<_, bool>(2)), (expected.clone(), true));
    let report = k.text_of("#verified-report").await.expect("report link").trim_start_matches("核对报告").to_owned();
    let prefilled = k.script("return document.getElementById('report').value;").await.expect("script");
    assert_eq!(prefilled.as_str(), Some(report.as_str()), "the report is offered to the step");
    // Civil affairs reads the report from the hub and holds it against the household (R-VER-2).
    let after = sign(&k, true, "核对无异常", None).await;
    assert!(after.contains("已签署“信息核对”（同意）"), "verification step: {after}");
    // What the step found is kept with the application and shown to whoever reads it next.
    assert!(after.contains("部门核对结果") && after.contains("部门记录与申报收入对照"), "findings shown: {after}");

    // --- the township reviewer takes it through township review; the caseworker puts it on notice.
    let reviewer = gw.enrol("sun-reviewer", "孙丽", &[OfficerRole::TownshipReviewer], TOWNSHIP).await;
    let r = driver.browser().await.expect("browser");
    let work = login(&r, &gw, &reviewer).await;
    assert!(work.contains("王建国") && work.contains("乡镇审核"), "{work}");
    r.click(&format!("a[href='/applications/{app}']")).await.expect("open");
    r.wait_for_text("签署本环节：乡镇审核", 10).await.expect("the reviewer's step");
    let after = sign(&r, true, "审核同意，予以公示", None).await;
    assert!(after.contains("已签署“乡镇审核”（同意）") && after.contains("公示"), "{after}");
    a.goto(&format!("{base}/applications/{app}")).await.expect("reload");
    a.wait_for_text("签署本环节：公示", 10).await.expect("the caseworker's notice step");
    let after = sign(&a, true, "已在村务公开栏张贴公示", None).await;
    assert!(after.contains("已签署“公示”（同意）") && after.contains("公示期满"), "{after}");
    // The notice list the caseworker prints for the village's board: the household, its number hidden.
    a.goto(&format!("{base}/notice")).await.expect("notice list");
    let notice = a.wait_for_text("低保申请对象公示名单", 10).await.expect("notice page");
    assert!(notice.contains("王建国") && notice.contains("共1户"), "{notice}");
    // Its dates and whom to call (R-PROC-1, R-AUD-2).
    assert!(
        notice.contains("公示期")
            && notice.contains("监督举报电话：梅河口市民政部门 0435-4221234")
            && notice.contains("红梅镇联盟村"),
        "{notice}"
    );
    assert!(!notice.contains(&id(1).value), "identity numbers hidden on the notice:\n{notice}");
    a.screenshot(&shots().join("notice.png")).await.expect("screenshot");
    let xlsx = a
        .script_async(
            "const done = arguments[arguments.length - 1];\
             fetch('/notice/export?kind=1').then(async r => {\
               const bytes = new Uint8Array(await r.arrayBuffer());\
               done([r.status, String.fromCharCode(bytes[0], bytes[1])]);\
             });",
        )
        .await
        .expect("download");
    assert_eq!((xlsx[0].as_i64(), xlsx[1].as_str()), (Some(200), Some("PK")), "{xlsx}");

    // --- the county approver: in the work list, refused while the notice runs.
    let approver = gw.enrol("zhou-approver", "周敏", &[OfficerRole::CountyApprover], COUNTY).await;
    let c = driver.browser().await.expect("browser");
    let work = login(&c, &gw, &approver).await;
    assert!(work.contains("王建国") && work.contains("县级审批") && work.contains("各乡镇待办件数"), "{work}");
    c.screenshot(&shots().join("work-county.png")).await.expect("screenshot");
    // The county's list counts the township's open complaint; its approver closes it with the outcome.
    assert!(work.contains("各乡镇举报、信访") && work.contains(&complaint.complaint_number), "{work}");
    c.goto(&format!("{base}/complaints/{}", complaint.complaint_id)).await.expect("the complaint");
    c.wait_for_text("核查结论", 10).await.expect("the form to close it");
    c.fill("#reply", "经核查，该车为残疾人代步车，反映不属实").await.expect("reply");
    c.script("document.getElementById('outcome').value = '3';").await.expect("outcome");
    c.click("#close").await.expect("close");
    let closed = c.wait_for_text("答复：经核查，该车为残疾人代步车，反映不属实", 10).await.expect("closed");
    assert!(closed.contains("办结：不属实") && closed.contains("已入户核查，该车为残疾人代步车"), "{closed}");
    assert!(!c.has("#close").await.expect("page"), "a closed complaint offers nothing more");
    c.goto(&format!("{base}/work")).await.expect("back to the work list");
    c.wait_for_text("待我签署的申请", 10).await.expect("work list");
    c.click(&format!("a[href='/applications/{app}']")).await.expect("open");
    c.wait_for_text("签署本环节：县级审批", 10).await.expect("the approver's step");
    let refused = sign(&c, true, "同意纳入低保", None).await;
    assert!(refused.contains("公示期为7天，尚未期满"), "refused during the notice:\n{refused}");
    assert!(c.has("#sign-error").await.expect("page"), "the refusal is shown at the form");
    c.screenshot(&shots().join("refused.png")).await.expect("screenshot");

    // --- an approver of another county finds nothing of it, by list or by URL.
    let stranger = gw.enrol("qian-elsewhere", "钱进", &[OfficerRole::CountyApprover], OTHER_COUNTY).await;
    let s = driver.browser().await.expect("browser");
    let work = login(&s, &gw, &stranger).await;
    assert!(work.contains("暂无待您签署的申请") && !work.contains("王建国"), "{work}");
    s.goto(&format!("{base}/applications/{app}")).await.expect("by URL");
    let nothing = s.text().await.expect("page");
    assert!(nothing.contains("没有找到这份申请，或不在您的管辖范围内"), "{nothing}");
    assert!(!nothing.contains("王建国") && !nothing.contains("李秀英"), "nothing of it:\n{nothing}");

    // --- who looked at 王建国's data: the views above, by officer; his number never in a URL.
    c.goto(&format!("{base}/history")).await.expect("history page");
    c.fill("#person", &id(1).value).await.expect("person");
    c.fill("#village", VILLAGE).await.expect("village");
    c.click("#search").await.expect("search");
    let history = c.wait_for_text("的查询记录", 10).await.expect("records");
    for officer in ["liu-caseworker", "sun-reviewer", "zhou-approver", "chen-checker"] {
        assert!(history.contains(officer), "{officer} in the history:\n{history}");
    }
    assert!(!history.contains("qian-elsewhere"), "the refused officer read nothing:\n{history}");
    assert!(history.contains("查阅公示名单"), "the notice list's view is on record:\n{history}");
    assert!(!c.url().await.expect("url").contains(&id(1).value), "no identity number in the URL");
    c.screenshot(&shots().join("history.png")).await.expect("screenshot");

    // --- a form posted without its CSRF token is refused; the page's policy forbids inline script.
    c.goto(&format!("{base}/history")).await.expect("history page");
    c.fill("#person", &id(1).value).await.expect("person");
    c.script("document.querySelector('form.inline input[name=csrf]').remove();").await.expect("drop the token");
    c.click("#search").await.expect("post without the token");
    let forged = c.wait_for_text("请求被拒绝", 10).await.expect("refused");
    assert!(forged.contains("表单校验码不正确"), "{forged}");
    let csp = c
        .script_async(
            "const done = arguments[arguments.length - 1];\
             fetch('/work').then(r => done(r.headers.get('content-security-policy')));",
        )
        .await
        .expect("fetch");
    let csp = csp.as_str().unwrap_or_default().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let inline = c.script("return document.querySelectorAll('script:not([src])').length;").await.expect("script");
    assert_eq!(inline.as_i64(), Some(0), "no inline script");

    // Enrolled now: the administrator's session ends with the clock's move too.
    let operator = gw.enrol("zhao-operator", "赵明", &[OfficerRole::CountyOperator], COUNTY).await;
    let poverty_officer = gw.enrol("qian-poverty", "钱芳", &[OfficerRole::PovertyOfficer], TOWNSHIP).await;
    let campaigner = gw.enrol("wu-checker", "吴静", &[OfficerRole::VerificationOfficer], COUNTY).await;
    let system_operator = gw.enrol("he-ops", "何运维", &[OfficerRole::SystemOperator], "220000").await;
    let roll_operator = gw.enrol("roll-operator", "孙会计", &[OfficerRole::CountyOperator], COUNTY).await;
    let roll_approver = gw.enrol("roll-approver", "李审批", &[OfficerRole::CountyApprover], COUNTY).await;
    let death_caseworker = gw.enrol("death-caseworker", "马经办", &[OfficerRole::TownshipCaseworker], TOWNSHIP).await;

    // --- sixteen idle minutes end the session; eight days on, the notice is over and the approver approves.
    clock.advance(time::Duration::minutes(16));
    c.goto(&format!("{base}/work")).await.expect("work list");
    let idle = c.wait_for_text("登录", 10).await.expect("back at the login");
    assert!(idle.contains("长时间未操作"), "{idle}");
    clock.advance(time::Duration::days(8));
    login(&c, &gw, &approver).await;
    c.goto(&format!("{base}/applications/{app}")).await.expect("open");
    c.wait_for_text("签署本环节：县级审批", 10).await.expect("the approver's step");
    let approved = sign(&c, true, "同意纳入低保", None).await;
    assert!(approved.contains("已签署“县级审批”（同意）"), "{approved}");
    assert!(approved.contains("已纳入保障") && approved.contains("月保障金"), "{approved}");
    // The explanation printed for the household: the lines and the result in plain words.
    c.click("#explanation-link").await.expect("the explanation");
    let printed = c.wait_for_text("家庭签收", 10).await.expect("explanation page");
    assert!(printed.contains("零工") && printed.contains("周敏") && printed.contains("元"), "{printed}");
    assert!(c.has("button[data-print]").await.expect("page"), "a print button");
    c.screenshot(&shots().join("explanation.png")).await.expect("screenshot");
    c.goto(&format!("{base}/applications/{app}")).await.expect("back to the application");
    c.wait_for_text("核对报告", 10).await.expect("application page");
    // The report the verification step was signed on, item by item with its source.
    c.click("#report-link").await.expect("the report");
    let report = c.wait_for_text("各部门答复", 10).await.expect("report page");
    assert!(report.contains("机动车") && report.contains("公安") && report.contains("完整"), "{report}");
    c.screenshot(&shots().join("report.png")).await.expect("screenshot");
    // The certificate issued at enrolment (低保证, R-PROC-1), printed from the application.
    c.goto(&format!("{base}/applications/{app}")).await.expect("back to the application");
    c.wait_for_text("核对报告", 10).await.expect("application page");
    c.click("#certificate-link").await.expect("the certificate");
    let certificate = c.wait_for_text("发证机关", 10).await.expect("certificate page");
    assert!(certificate.contains("证号：220581-DB-") && certificate.contains("月保障金"), "{certificate}");
    assert!(c.has("button[data-print]").await.expect("page"), "a print button");

    // --- the comparison: the enrolled household is on the dibao roster only, list (b); decided in writing.
    let db = all.env.db.client().await.expect("db");
    let deadline = Instant::now() + Duration::from_secs(30);
    let in_view = "SELECT count(*) FROM roster_comparison.roster_household WHERE valid_to IS NULL AND side = 'dibao'";
    while db.query_one(in_view, &[]).await.map(|r| r.get::<_, i64>(0)).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the enrolment did not reach the comparison's view");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The county operator runs it at the console and follows it to its end without reloading.
    let o = driver.browser().await.expect("browser");
    login(&o, &gw, &operator).await;
    o.goto(&format!("{base}/comparison")).await.expect("comparison");
    o.fill("#run-division", COUNTY).await.expect("division");
    o.click("#run-comparison").await.expect("run");
    o.wait_for_text("台账比对进度", 10).await.expect("the run's page");
    o.script("window.notReloaded = true;").await.expect("mark the page");
    let done = o.wait_for_text("已完成", 60).await.expect("the run ends on the page");
    assert!(done.contains("100%") && done.contains("低保或特困户未纳入建档立卡"), "{done}");
    assert_eq!(o.script("return window.notReloaded === true;").await.expect("script").as_bool(), Some(true));
    o.screenshot(&shots().join("comparison-run.png")).await.expect("screenshot");
    // The township's lists as the xlsx the service writes, downloaded with the session.
    let xlsx = o
        .script_async(&format!(
            "const done = arguments[arguments.length - 1];\
             fetch('/comparison/export?division={TOWNSHIP}').then(async r => {{\
               const bytes = new Uint8Array(await r.arrayBuffer());\
               done([r.status, r.headers.get('content-type'), r.headers.get('content-disposition'),\
                     String.fromCharCode(bytes[0], bytes[1]), bytes.length]);\
             }});"
        ))
        .await
        .expect("download");
    assert_eq!(xlsx[0].as_i64(), Some(200), "{xlsx}");
    assert!(xlsx[1].as_str().unwrap_or_default().contains("spreadsheetml"), "{xlsx}");
    assert!(xlsx[2].as_str().unwrap_or_default().contains(&format!("{TOWNSHIP}_")), "{xlsx}");
    assert_eq!(xlsx[3].as_str(), Some("PK"), "an xlsx is a zip: {xlsx}");
    c.goto(&format!("{base}/work")).await.expect("work list");
    let work = c.wait_for_text("待处理的比对条目", 10).await.expect("open entries on the work list");
    assert!(work.contains("低保或特困户未纳入建档立卡"), "{work}");
    c.goto(&format!("{base}/comparison?kind={}", cmp::ListKind::DibaoNotPoor as i32)).await.expect("list (b)");
    let list = c.wait_for_text("待处理（1条）", 10).await.expect("the open entry");
    assert!(list.contains("王建国"), "the households named by head, not by id:\n{list}");
    c.click("details summary").await.expect("open the form");
    c.fill("textarea[name=conclusion]", "经核实该户收入来源为零工，已纳入低保，不属建档立卡对象")
        .await
        .expect("conclusion");
    c.click("form.decide button").await.expect("decide");
    // The list page itself names the poverty office: wait for the refusal's own words.
    let refused =
        c.wait_for_text("应由扶贫部门经办人员签署", 10).await.expect("list (b) is the poverty office's to conclude");
    assert!(c.has("#decide-error").await.expect("page"), "the refusal is shown at the form:\n{refused}");
    // Narrowed to a village: the entry is in its own, not in the next.
    c.fill("#scope", VILLAGE).await.expect("village");
    c.click("#narrow").await.expect("narrow");
    let narrowed = c.wait_for_text("当前：山城村", 10).await.expect("narrowed");
    assert!(narrowed.contains("待处理（1条）"), "{narrowed}");
    c.fill("#scope", "220581101202").await.expect("another village");
    c.click("#narrow").await.expect("narrow");
    // A village the province's own names leave out: by the shipped table's name.
    let other = c.wait_for_text("当前：岭西村（220581101202）", 10).await.expect("narrowed");
    assert!(other.contains("待处理（0条）"), "{other}");
    let p = driver.browser().await.expect("browser");
    login(&p, &gw, &poverty_officer).await;
    p.goto(&format!("{base}/comparison?kind={}", cmp::ListKind::DibaoNotPoor as i32)).await.expect("list (b)");
    p.wait_for_text("待处理（1条）", 10).await.expect("the open entry");
    p.click("details summary").await.expect("open the form");
    p.fill("textarea[name=conclusion]", "经入户核实，该户不符合建档立卡识别标准，维持低保").await.expect("conclusion");
    p.screenshot(&shots().join("comparison.png")).await.expect("screenshot");
    p.click("form.decide button").await.expect("decide");
    let decided = p.wait_for_text("结论已记录", 10).await.expect("decided");
    assert!(decided.contains("本清单没有待处理的条目") && decided.contains("已处理（1条）"), "{decided}");
    assert!(decided.contains("钱芳"), "the decision names its officer:\n{decided}");

    // --- a campaign over the township, followed to its end on one page, never reloaded.
    let v = driver.browser().await.expect("browser");
    login(&v, &gw, &campaigner).await;
    v.goto(&format!("{base}/campaigns")).await.expect("campaigns");
    v.fill("#division", TOWNSHIP).await.expect("division");
    v.click("#start-campaign").await.expect("start");
    v.wait_for_text("集中核查进度", 10).await.expect("the campaign's page");
    v.script("window.notReloaded = true;").await.expect("mark the page");
    let ended = v.wait_for_text("已结束", 60).await.expect("the campaign ends on the page");
    assert!(ended.contains("100%"), "{ended}");
    assert_eq!(v.script("return window.notReloaded === true;").await.expect("script").as_bool(), Some(true));
    let updates = v.script("return document.getElementById('campaign').getAttribute('data-updates');").await;
    assert!(
        updates.expect("script").as_str().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 1),
        "the page took the progress from the event stream"
    );
    assert!(ended.contains("公安"), "the departments' progress is on the page:\n{ended}");
    v.screenshot(&shots().join("campaign.png")).await.expect("screenshot");
    let findings = v.text_of("#camp-findings").await.expect("count");
    v.click("#findings-link").await.expect("the households with findings");
    let listed = v.wait_for_text("有发现的家庭", 10).await.expect("findings page");
    if findings.trim() == "0" {
        assert!(listed.contains("尚无有发现的家庭"), "{listed}");
    } else {
        assert!(listed.contains("户主") && !listed.contains("尚无有发现的家庭"), "{listed}");
    }
    // The work list names the campaign and the comparison run held for the county, with how far each is.
    v.goto(&format!("{base}/work")).await.expect("work list");
    let work = v.wait_for_text("集中核查与台账比对", 10).await.expect("held work on the work list");
    assert!(work.contains("台账比对") && work.contains("100%") && work.contains("已结束"), "{work}");

    // --- the operators' page: a record civil affairs cannot read is a dead letter there, published again from the page.
    {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let ks = all.env.broker.kafka_settings(&all.env.prefix, "console-test");
        let topic = dibao_platform::events::kafka::topic(&ks, dibao_proto::topics::POVERTY_ALLEVIATION_HOUSEHOLD.0);
        let raw: FutureProducer = dibao_platform::events::kafka::producer(&ks).expect("producer");
        raw.send(
            FutureRecord::to(&topic).key("console-bad").payload(&b"\xff\x00not a protobuf"[..]),
            Duration::from_secs(10),
        )
        .await
        .expect("raw send");
    }
    let ops = driver.browser().await.expect("browser");
    login(&ops, &gw, &system_operator).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        ops.goto(&format!("{base}/operations")).await.expect("operations");
        let page = ops.wait_for_text("运行监控", 10).await.expect("the operators' page");
        if page.contains("重新发布") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for shown in ["民政（低保、特困）", "台账比对", "发件箱积压", "滞后", "console-bad"] {
        assert!(page.contains(shown), "the operators' page shows {shown}:\n{page}");
    }
    ops.screenshot(&shots().join("operations.png")).await.expect("screenshot");
    ops.click("form[action='/operations/retry'] button").await.expect("retry");
    let retried = ops.wait_for_text("已重新发布，新事件编号", 10).await.expect("retried");
    assert!(retried.contains("已重新发布（"), "the dead letter is marked retried:\n{retried}");
    // Anyone else is refused by the services themselves.
    c.goto(&format!("{base}/operations")).await.expect("operations");
    let refused = c.wait_for_text("运行监控", 10).await.expect("page");
    assert!(
        refused.contains("无权办理") && !refused.contains("console-bad") && !refused.contains("待发布"),
        "{refused}"
    );

    // --- the money (R-PROC-1; issue 23, item 1): next month's roll, paid by the bank; then both
    // members die today, so nothing was owed for it; the county recovers it at the console.
    let mut roll_office = ca::payment_service_client::PaymentServiceClient::new(
        gw.channel(&gw.login(&roll_operator).await.expect("login")).await,
    );
    let today = dibao_platform::runtime::clock::china_date(clock.now());
    let next = dibao_platform::runtime::clock::add_months(today.replace_day(1).expect("day"), 1);
    let roll = dibao_test_mesh::payments::prepare(&mut roll_office, COUNTY, next).await;
    assert_eq!(roll.households, 1, "{roll:?}");
    ca::payment_service_client::PaymentServiceClient::new(
        gw.channel(&gw.login(&roll_approver).await.expect("login")).await,
    )
    .sign_roll(ca::SignRollRequest { roll_id: roll.roll_id.clone() })
    .await
    .expect("signed");
    let paid = dibao_test_mesh::payments::bank_pays_all(&mut roll_office, &roll.roll_id).await;
    let reference = paid[0].reference.clone();
    let mut deaths =
        CivilAffairsServiceClient::new(gw.channel(&gw.login(&death_caseworker).await.expect("login")).await);
    for seq in [1, 2] {
        deaths
            .record_death(ca::RecordDeathRequest {
                identity_number: Some(id(seq)),
                died_on: Some(dibao_proto::common::v1::Date {
                    year: today.year(),
                    month: i32::from(today.month() as u8),
                    day: i32::from(today.day()),
                }),
                source: "公安死亡登记".into(),
            })
            .await
            .expect("death");
    }
    let owed_back = paid[0].amount.as_ref().map_or(0, |m| m.fen);
    c.click("a[href='/overpayments']").await.expect("the county's overpayments");
    let listed = c.wait_for_text("多发款项共1笔", 10).await.expect("overpayments page");
    assert!(listed.contains(&reference) && listed.contains("家庭成员均已死亡"), "{listed}");
    let recover = |field: &str| format!("form[action='/overpayments/recover'] input[name={field}]");
    c.fill(&recover("amount"), "12.345").await.expect("amount");
    c.fill(&recover("note"), "家属退回现金，收据0001").await.expect("note");
    c.click("form[action='/overpayments/recover'] button").await.expect("record");
    let refused = c.wait_for_text("amount：", 10).await.expect("a bad amount named");
    assert!(refused.contains("最多两位小数"), "{refused}");
    c.fill(&recover("amount"), &format!("{}.{:02}", owed_back / 100, owed_back % 100)).await.expect("amount");
    c.fill(&recover("note"), "家属退回现金，收据0001").await.expect("note");
    c.click("form[action='/overpayments/recover'] button").await.expect("record");
    c.wait_for_text("本县没有待追回的多发款项", 10).await.expect("recovered in full");

    // --- logout ends the session: the work list sends the officer to the login.
    c.click("header form button").await.expect("log out");
    c.wait_for_text("已退出登录", 10).await.expect("logged out");
    c.goto(&format!("{base}/work")).await.expect("work list");
    c.find("#login").await.expect("back at the login form");

    for b in [a, r, c, s, k, o, p, v, ops] {
        b.close().await.expect("close");
    }
}
