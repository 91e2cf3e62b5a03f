//! Mobile text (SPEC §2 Flow B): the password round sends a code through a courier and
//! answers Access-Challenge; the code comes back with the State. The couriers talk to real
//! servers on loopback: the aiosmtpd SMTP server (the test reads the mail it received) and an
//! HTTP SMS-gateway stand-in (tests/sms_gateway.py).

#[allow(dead_code)]
mod common;

use common::slapd::Slapd;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_radius::{Code, Packet};

const SECRET: &str = "testing123-mobile";

/// A real process on loopback, killed when dropped.
struct Process(Child);
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < until, "{what} within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// aiosmtpd with its Maildir handler: every message lands in `maildir/new`.
fn smtp_server(maildir: &Path) -> (Process, u16) {
    for _ in 0..5 {
        if let Some(started) = try_smtp_server(maildir) {
            return started;
        }
    }
    panic!("aiosmtpd did not start");
}

fn try_smtp_server(maildir: &Path) -> Option<(Process, u16)> {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd (scripts/install-test-deps.sh installs it)");
    let mut p = Process(child);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        // Ours must be the one listening: it exits when another test drew the same port.
        if let Ok(Some(_)) = p.0.try_wait() {
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((p, port));
        }
        assert!(Instant::now() < until, "aiosmtpd listening within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mails(maildir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(maildir.join("new"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The six-digit code in "Your code is NNNNNN".
fn code_in(text: &str) -> String {
    let at = text.find("Your code is ").expect("the code line") + "Your code is ".len();
    text[at..at + 6].to_owned()
}

fn ask(port: u16, user: &str, password: &str, state: Option<&str>) -> Reply {
    let mut input = pap_input(user, password, true, None);
    if let Some(s) = state {
        input.push_str(&format!("State = {s}\n"));
    }
    radclient(port, "auth", SECRET, &input, 15.0)
}

fn import(t: &Tessera, doc: &str) {
    let cfg = t.write_file("system.toml", doc);
    t.cli(&["config", "import", cfg.to_str().unwrap()]);
    t.cli(&["publish"]);
}

fn client(method: &str) -> String {
    format!(
        "[[client]]\nname = \"gw\"\naddress = \"127.0.0.1/32\"\nsecret = \"{SECRET}\"\nmethod = \"{method}\"\n"
    )
}

/// The AD flow of SPEC §2: directory password (slapd), code by e-mail (aiosmtpd), the code
/// typed back with the State (radclient) → Access-Accept.
#[test]
fn code_by_email_from_a_directory_user() {
    let mut t = Tessera::new("mt-mail");
    let slapd = Slapd::start(t.path("slapd"));
    let maildir = t.path("maildir");
    let (_smtp, smtp_port) = smtp_server(&maildir);
    import(
        &t,
        &format!(
            "{dir}\n[[courier]]\nname = \"mail\"\nkind = \"smtp\"\nurl = \"smtp://127.0.0.1:{smtp_port}?tls=none\"\n\
             from = \"tessera@example.com\"\nsubject = \"Your login code\"\nbody = \"Hello {{user}}. Your code is {{code}}\"\n\n\
             [[courier]]\nname = \"strict\"\nkind = \"smtp\"\nurl = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"tessera@example.com\"\n\n\
             [[method]]\nname = \"vpn\"\nkind = \"mobile-text\"\ndirectory = \"corp\"\ncourier = \"mail\"\n\
             [method.replies]\nchallenge = \"Enter the code sent to {{destination}}\"\naccept = \"Welcome {{user}}\"\n\n\
             [[method]]\nname = \"strict\"\nkind = \"mobile-text\"\ndirectory = \"corp\"\ncourier = \"strict\"\n\n\
             {client}\n[[client]]\nname = \"gw2\"\naddress = \"127.0.0.2/32\"\nsecret = \"{SECRET}\"\nmethod = \"strict\"\n",
            dir = slapd.directory_toml("corp", "2s"),
            client = client("vpn"),
        ),
    );
    let port = t.start();

    // Wrong password: rejected, and no code is sent.
    ask(port, "alice", "wrong-password", None).assert_reject();
    std::thread::sleep(Duration::from_millis(300));
    assert!(mails(&maildir).is_empty(), "no mail for a wrong password");

    let r = ask(port, "alice", "alice-password", None);
    assert_eq!(
        r.code.as_deref(),
        Some("Access-Challenge"),
        "{}",
        r.transcript
    );
    assert_eq!(
        r.reply_message(),
        Some("Enter the code sent to a***@example.com")
    );
    let state = r.get("State").unwrap().to_owned();
    wait_until("the mail", || mails(&maildir).len() == 1);
    let mail = &mails(&maildir)[0];
    assert!(mail.contains("To: alice@example.com"), "{mail}");
    assert!(mail.contains("Subject: Your login code"), "{mail}");
    assert!(mail.contains("Hello alice."), "{mail}");
    let code = code_in(mail);

    ask(
        port,
        "alice",
        &format!("{}", (code.parse::<u32>().unwrap() + 1) % 1_000_000),
        Some(&state),
    )
    .assert_reject();
    let ok = ask(port, "alice", &code, Some(&state));
    ok.assert_accept();
    assert_eq!(ok.reply_message(), Some("Welcome alice"));
    ask(port, "alice", &code, Some(&state)).assert_reject();

    // A retransmitted first round gets the same challenge back and sends no second code.
    let sock = udp_to(port);
    let auth = random16();
    let req = access_request(SECRET, 7, auth, "alice", "alice-password");
    sock.send(&req).unwrap();
    let first = recv(&sock, Duration::from_secs(15)).expect("a challenge");
    sock.send(&req).unwrap();
    let second = recv(&sock, Duration::from_secs(15)).expect("the same challenge");
    assert_eq!(first, second);
    assert_eq!(Packet::decode(&first).unwrap().code, Code::AccessChallenge);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        mails(&maildir).len(),
        2,
        "one mail per first round, not per copy"
    );

    // A courier that insists on STARTTLS against a server without it: a prompt reject and a
    // clear log line, no hang.
    let started = Instant::now();
    let r = radclient(
        port,
        "auth",
        SECRET,
        &pap_input("alice", "alice-password", true, Some("127.0.0.2")),
        15.0,
    );
    r.assert_reject();
    assert!(started.elapsed() < Duration::from_secs(12));
    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(
        stopped.log.contains("code not delivered"),
        "{}",
        stopped.log
    );
}

struct Gateway {
    _process: Process,
    port: u16,
    log: PathBuf,
}

fn sms_gateway(dir: &Path) -> Gateway {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sms_gateway.py");
    let (port_file, log) = (dir.join("gateway.port"), dir.join("gateway.log"));
    let child = Command::new("python3")
        .arg(script)
        .arg(&port_file)
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 sms_gateway.py");
    let p = Process(child);
    wait_until("the gateway's port file", || port_file.exists());
    let port = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Gateway {
        _process: p,
        port,
        log,
    }
}

fn gateway_requests(g: &Gateway) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&g.log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The HTTP courier: the gateway receives the templated JSON (values escaped), the API key
/// header from the sealed `password`, and the code completes the login; a gateway error
/// rejects.
#[test]
fn code_by_sms_through_an_http_gateway() {
    let mut t = Tessera::new("mt-sms");
    let gw = sms_gateway(&t.path(""));
    import(
        &t,
        &format!(
            "[[courier]]\nname = \"sms\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{p}/send\"\n\
             http_method = \"POST\"\ncontent_type = \"application/json\"\n\
             body = '{{\"to\":\"{{phone}}\",\"text\":\"Code for {{user}}: {{code}}\"}}'\n\
             password = \"api-key-0123\"\nheaders = {{ \"X-Api-Key\" = \"{{password}}\" }}\n\n\
             [[courier]]\nname = \"broken\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{p}/fail?to={{phone}}&c={{code}}\"\nhttp_method = \"GET\"\n\n\
             [[method]]\nname = \"vpn\"\nkind = \"mobile-text\"\ndirectory = \"local\"\ncourier = \"sms\"\ncode_length = 8\n\n\
             [[method]]\nname = \"broken\"\nkind = \"mobile-text\"\ndirectory = \"local\"\ncourier = \"broken\"\n\n\
             {client}\n[[client]]\nname = \"gw2\"\naddress = \"127.0.0.2/32\"\nsecret = \"{SECRET}\"\nmethod = \"broken\"\n",
            p = gw.port,
            client = client("vpn"),
        ),
    );
    t.cli(&[
        "user",
        "add",
        "o'hara",
        "--password",
        "local-password",
        "--phone",
        "+46 70 123 45 12",
    ]);
    let port = t.start();

    let r = ask(port, "o'hara", "local-password", None);
    assert_eq!(
        r.code.as_deref(),
        Some("Access-Challenge"),
        "{}",
        r.transcript
    );
    assert_eq!(
        r.reply_message(),
        Some("Enter the code sent to +46 *** ** 12")
    );
    let state = r.get("State").unwrap().to_owned();
    let reqs = gateway_requests(&gw);
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["path"], "/send");
    assert_eq!(req["headers"]["x-api-key"], "api-key-0123");
    assert_eq!(req["headers"]["content-type"], "application/json");
    let body: serde_json::Value =
        serde_json::from_str(req["body"].as_str().unwrap()).expect("the body is valid JSON");
    assert_eq!(body["to"], "+46 70 123 45 12");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("Code for o'hara: "), "{text}");
    let code = &text[text.len() - 8..];
    ask(port, "o'hara", code, Some(&state)).assert_accept();

    // The gateway answers 503: reject, with the reason in the log.
    let r = radclient(
        port,
        "auth",
        SECRET,
        &pap_input("o'hara", "local-password", true, Some("127.0.0.2")),
        15.0,
    );
    r.assert_reject();
    let reqs = gateway_requests(&gw);
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1]["path"]
            .as_str()
            .unwrap()
            .starts_with("/fail?to=%2B46%2070%20123%2045%2012&c="),
        "{}",
        reqs[1]["path"]
    );
    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(stopped.log.contains("HTTP 503"), "{}", stopped.log);
    assert!(
        !stopped.log.contains("api-key-0123"),
        "secrets stay out of the log"
    );
}

/// A method `vpn` of kind mobile-text against slapd, with codes mailed to aiosmtpd; `policy`
/// is the `[policy]` table's body.
fn mail_method(t: &Tessera, slapd: &Slapd, smtp_port: u16, policy: &str) {
    import(
        t,
        &format!(
            "[policy]\n{policy}\n\n{dir}\n[[courier]]\nname = \"mail\"\nkind = \"smtp\"\n\
             url = \"smtp://127.0.0.1:{smtp_port}?tls=none\"\nfrom = \"tessera@example.com\"\n\
             body = \"Your code is {{code}}\"\n\n\
             [[method]]\nname = \"vpn\"\nkind = \"mobile-text\"\ndirectory = \"corp\"\ncourier = \"mail\"\n\
             max_attempts = 3\n\n{client}",
            dir = slapd.directory_toml("corp", "2s"),
            client = client("vpn"),
        ),
    );
}

/// Issue 11, hole 1: bob exists only in the directory (no tessera record). Wrong codes spread
/// over many challenges are counted on his name and lock it at `max_failures`; new challenges
/// bring no fresh attempts, and once locked the right password opens no challenge and sends no
/// code. `user unlock` clears it.
#[test]
fn a_directory_only_user_is_locked_across_challenges() {
    let mut t = Tessera::new("mt-dirlock");
    let slapd = Slapd::start(t.path("slapd"));
    let maildir = t.path("maildir");
    let (_smtp, smtp_port) = smtp_server(&maildir);
    mail_method(
        &t,
        &slapd,
        smtp_port,
        "max_failures = 10\ncodes_per_user = 0\nchallenges_per_user = 0",
    );
    let port = t.start();

    let mut guesses = 0;
    let mut locked = false;
    for challenge in 0..20 {
        let r = ask(port, "bob", "bob-password", None);
        if r.code.as_deref() == Some("Access-Reject") {
            locked = true;
            break;
        }
        assert_eq!(
            r.code.as_deref(),
            Some("Access-Challenge"),
            "{}",
            r.transcript
        );
        let state = r.get("State").unwrap().to_owned();
        wait_until("the mail", || mails(&maildir).len() == challenge + 1);
        let code: u32 = code_in(mails(&maildir).last().unwrap()).parse().unwrap();
        for k in 1..=3 {
            let guess = format!("{:06}", (code + k) % 1_000_000);
            ask(port, "bob", &guess, Some(&state)).assert_reject();
            guesses += 1;
        }
    }
    assert!(locked, "never locked after {guesses} wrong codes");
    assert!(guesses <= 12, "{guesses} wrong codes before the lock");
    let show = t.cli(&["user", "show", "bob"]);
    assert!(show.contains("locked"), "{show}");
    // The administrator sees the directory user among the users, with its lock.
    let list = t.cli(&["user", "list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("bob "))
        .unwrap_or_default();
    assert!(
        row.contains("locked") && row.contains("(directory user)"),
        "{list}"
    );

    // Locked: the right password gets the same reject and no mail goes out.
    let sent = mails(&maildir).len();
    ask(port, "BOB", "bob-password", None).assert_reject();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mails(&maildir).len(), sent);

    t.cli(&["user", "unlock", "bob"]);
    let r = ask(port, "bob", "bob-password", None);
    assert_eq!(
        r.code.as_deref(),
        Some("Access-Challenge"),
        "{}",
        r.transcript
    );
    let state = r.get("State").unwrap().to_owned();
    wait_until("the mail", || mails(&maildir).len() == sent + 1);
    let code = code_in(mails(&maildir).last().unwrap());
    ask(port, "bob", &code, Some(&state)).assert_accept();
    t.stop().assert_clean_exit();
}

/// Issue 11, hole 7: at most `codes_per_user` codes per window go to one person, however many
/// first rounds with the right password arrive, also when they arrive at once.
#[test]
fn codes_sent_to_one_user_are_limited() {
    let mut t = Tessera::new("mt-codelimit");
    let slapd = Slapd::start(t.path("slapd"));
    let maildir = t.path("maildir");
    let (_smtp, smtp_port) = smtp_server(&maildir);
    mail_method(&t, &slapd, smtp_port, "codes_per_user = 3");
    let port = t.start();

    let asks: Vec<_> = (0..12)
        .map(|_| std::thread::spawn(move || ask(port, "alice", "alice-password", None)))
        .collect();
    let replies: Vec<Reply> = asks.into_iter().map(|h| h.join().unwrap()).collect();
    let challenges = replies
        .iter()
        .filter(|r| r.code.as_deref() == Some("Access-Challenge"))
        .count();
    let rejects = replies
        .iter()
        .filter(|r| r.code.as_deref() == Some("Access-Reject"))
        .count();
    assert_eq!((challenges, rejects), (3, 9));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mails(&maildir).len(), 3);
    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(stopped.log.contains("limit reached"), "{}", stopped.log);
}
