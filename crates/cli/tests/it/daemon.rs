//! `communitas run` child processes and small helpers to drive them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{communitas, run, stderr, stdout};

/// A `communitas run` child, stopped with SIGTERM when dropped.
pub(crate) struct Daemon {
    child: Child,
    home: PathBuf,
    pub dial: Vec<String>,
}

impl Daemon {
    pub(crate) fn start(home: &Path, server: bool, bootstrap: Option<&str>) -> Daemon {
        Self::start_with(home, server, bootstrap, &[])
    }

    /// [`Daemon::start`] with more `run` flags.
    pub(crate) fn start_with(
        home: &Path,
        server: bool,
        bootstrap: Option<&str>,
        extra: &[&str],
    ) -> Daemon {
        let mut cmd = communitas(home);
        cmd.env("COMMUNITAS_PASSPHRASE", "pw-for-tests").args([
            "run",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ]);
        cmd.args(extra);
        if server {
            cmd.arg("--server");
        }
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let daemon = Self::spawn(cmd, home);
        assert!(!daemon.dial.is_empty(), "{} printed no listen address", home.display());
        daemon
    }

    /// `run --locked`: the API only, until the identity is created or unlocked.
    pub(crate) fn start_locked(home: &Path) -> Daemon {
        let mut cmd = communitas(home);
        cmd.args(["run", "--locked", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        Self::spawn(cmd, home)
    }

    /// Starts `cmd` and reads its banner up to the `api` line.
    fn spawn(mut cmd: Command, home: &Path) -> Daemon {
        // COMMUNITAS_TEST_LOGS=DIR keeps each node's log (with COMMUNITAS_LOG's filter).
        let stderr = match std::env::var_os("COMMUNITAS_TEST_LOGS") {
            Some(dir) => {
                let name = home.file_name().unwrap().to_string_lossy().into_owned();
                let path = Path::new(&dir).join(format!("{name}.log"));
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
                Stdio::from(file.unwrap())
            }
            None => Stdio::null(),
        };
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
        let mut dial = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(addr) = line.strip_prefix("listening  ") {
                dial.push(addr.to_owned());
            }
            if line.starts_with("api ") {
                break;
            }
        }
        Daemon { child, home: home.to_owned(), dial }
    }

    pub(crate) fn api(&self) -> (String, String) {
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(self.home.join("api.json")).unwrap())
                .unwrap();
        let url = info["url"].as_str().unwrap().trim_start_matches("http://").to_owned();
        (url, std::fs::read_to_string(self.home.join("api-token")).unwrap())
    }

    /// Stops with SIGTERM and returns whether it exited cleanly.
    pub(crate) fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        status.success()
    }
}

impl Daemon {
    /// Sends a signal (`STOP`, `CONT`, ...).
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
    }

    /// Kills with SIGKILL: no shutdown code runs.
    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request: (status code, body).
pub(crate) fn http(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> =
        auth.as_deref().map(|a| vec![("Authorization", a)]).unwrap_or_default();
    let answer = request(addr, method, path, &headers, None);
    (answer.code, answer.body)
}

/// An HTTP answer: status code, head (status line and headers) and body.
pub(crate) struct Answer {
    pub code: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The `error.code` of a JSON error body.
    pub(crate) fn error(&self) -> String {
        let body: Value = serde_json::from_str(&self.body).unwrap_or_default();
        body["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    /// The JSON body.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One raw HTTP/1.1 request with headers and an optional JSON body.
pub(crate) fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    write!(stream, "{head}\r\n{body}").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Answer { code, head: head.to_owned(), body: body.to_owned() }
}

pub(crate) fn init_all(root: &Path, names: &[&str]) -> Vec<(PathBuf, String)> {
    let threads: Vec<_> = names
        .iter()
        .map(|name| {
            let home = root.join(name);
            std::thread::spawn(move || {
                let out =
                    run(communitas(&home).env("COMMUNITAS_PASSPHRASE", "pw-for-tests").arg("init"));
                assert!(out.status.success(), "{}", stderr(&out));
                (home, stdout(&out).trim().to_owned())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

pub(crate) fn metric(addr: &str, token: &str, name: &str) -> f64 {
    let (_, body) = http(addr, "GET", "/metrics", Some(token));
    body.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

/// Waits until `done`, polling, or fails the test after `timeout`.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A conversation's messages, as the API shows them (newest 200), without the lines
/// the node writes itself (a session started again after a kill, `system`).
pub(crate) fn history(node: &Daemon, peer: &str) -> Vec<Value> {
    let (api, token) = node.api();
    let (code, body) =
        http(&api, "GET", &format!("/v1/conversations/{peer}/messages?limit=200"), Some(&token));
    assert_eq!(code, 200, "{body}");
    let entries: Vec<Value> = serde_json::from_str(&body).unwrap();
    entries.into_iter().filter(|m| m.get("system").is_none()).collect()
}

/// Every one of `texts` is in `history` exactly once, and nothing else is.
pub(crate) fn assert_each_once(history: &[Value], texts: &[String]) {
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for m in history {
        *counts.entry(m["text"].as_str().unwrap_or_default()).or_default() += 1;
    }
    for text in texts {
        assert_eq!(counts.get(text.as_str()), Some(&1), "{text:?} must arrive exactly once");
    }
    assert_eq!(history.len(), texts.len(), "nothing else arrived");
}

/// The start of the mailbox tests: server nodes, alice running with bob pinned, and
/// bob (who published his keys) offline.
pub(crate) struct Mailboxes {
    /// The servers; `None` once a test killed one.
    pub(crate) servers: Vec<Option<Daemon>>,
    /// The first server's address, everyone's bootstrap.
    pub(crate) boot: String,
    pub(crate) alice: Daemon,
    pub(crate) alice_home: PathBuf,
    pub(crate) alice_addr: String,
    pub(crate) bob_home: PathBuf,
    pub(crate) bob_addr: String,
}

/// Starts `servers` server nodes (with `server_args`), then alice and bob; alice pins
/// bob; bob stops.
pub(crate) fn mailboxes(root: &Path, servers: usize, server_args: &[&str]) -> Mailboxes {
    let mut names: Vec<String> = (0..servers).map(|i| format!("s{i}")).collect();
    names.extend(["alice".into(), "bob".into()]);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut homes = init_all(root, &names);
    let (bob_home, bob_addr) = homes.pop().unwrap();
    let (alice_home, alice_addr) = homes.pop().unwrap();
    let first = Daemon::start_with(&homes[0].0, true, None, server_args);
    let boot = first.dial[0].clone();
    let mut nodes = vec![Some(first)];
    for (home, _) in &homes[1..] {
        nodes.push(Some(Daemon::start_with(home, true, Some(&boot), server_args)));
    }
    let bob = Daemon::start(&bob_home, false, Some(&boot));
    let alice = Daemon::start(&alice_home, false, Some(&boot));
    wait_for("alice to find bob", Duration::from_secs(30), || {
        run(communitas(&alice_home).args(["contacts", "add", &bob_addr])).status.success()
    });
    // Bob knows alice too: a stranger's messages would be a bounded request (issue 15).
    wait_for("bob to find alice", Duration::from_secs(30), || {
        run(communitas(&bob_home).args(["contacts", "add", &alice_addr])).status.success()
    });
    assert!(bob.stop());
    Mailboxes { servers: nodes, boot, alice, alice_home, alice_addr, bob_home, bob_addr }
}

/// Retries `contacts add` until the other side's identity record is in the DHT.
pub(crate) fn add_contact(home: &Path, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(communitas(home).args(["contacts", "add", address]));
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "never found {address}: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    }
}
