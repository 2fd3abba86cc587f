//! Headless Chromium driven through chromedriver's W3C WebDriver HTTP API (ureq + serde_json),
//! with every network request of the page sent to a proxy the test owns, which only counts.
//!
//! Network blocking: `--proxy-server` points at [`ProxyTrap`] (it records the first line of
//! every connection and closes it) and `--host-resolver-rules` makes every host name unresolvable.
//! Chromium itself talks to a few Google and search-engine endpoints in the background even
//! with `--disable-background-networking`; those exact hosts (listed in [`BROWSER_OWN_HOSTS`])
//! bypass the proxy and fail on the resolver rules, so whatever the proxy sees came from a page.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::redis::free_port;

/// Hosts Chromium contacts on its own (seen with Debian's Chromium 156 under these flags):
/// they go DIRECT (and fail to resolve) instead of to the proxy, so the proxy counts pages only.
pub const BROWSER_OWN_HOSTS: &str =
    "start.duckduckgo.com;update.googleapis.com;accounts.google.com;clients2.google.com";

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A TCP listener that accepts every connection, records its first line, and closes it.
pub struct ProxyTrap {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ProxyTrap {
    pub fn start() -> ProxyTrap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy trap");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                        let mut buf = [0u8; 512];
                        let n = s.read(&mut buf).unwrap_or(0);
                        let text = String::from_utf8_lossy(&buf[..n]);
                        let line = text
                            .lines()
                            .next()
                            .unwrap_or("(no request line)")
                            .to_string();
                        seen2.lock().expect("lock").push(line);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ProxyTrap { port, seen, stop }
    }

    /// The request lines seen so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for ProxyTrap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The Chromium binary and chromedriver: `RDBINSIGHT_TEST_CHROMIUM` /
/// `RDBINSIGHT_TEST_CHROMEDRIVER`, else Debian's real binary `/usr/lib/chromium/chromium`
/// (the `/usr/bin/chromium` wrapper adds API keys and extensions we do not want), else
/// `chromium` on the PATH.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("RDBINSIGHT_TEST_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/lib/chromium/chromium")).filter(|p| p.is_file()))
        .or_else(|| which("chromium"))
        .or_else(|| which("chromium-browser"))?;
    let driver = std::env::var_os("RDBINSIGHT_TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which("chromedriver"))?;
    Some((chromium, driver))
}

/// One chromedriver with one headless Chromium session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
    pub proxy: ProxyTrap,
    pub downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a session, or `None` (with a note) when the binaries are absent.
    pub fn start(width: u32, height: u32) -> Option<Browser> {
        let Some((chromium, driver_bin)) = find_browser() else {
            eprintln!(
                "SKIPPED: chromium and chromedriver are not installed (apt-get install chromium chromium-driver); \
                 the real-browser report test did not run"
            );
            return None;
        };
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build()
            .into();
        let proxy = ProxyTrap::start();
        let downloads = tempfile::tempdir().expect("temp dir");
        let profile = tempfile::tempdir().expect("temp dir");
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            agent,
            proxy,
            downloads,
            _profile: profile,
        };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            thread::sleep(Duration::from_millis(50));
        }
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", b._profile.path().display()),
            format!("--window-size={width},{height}"),
            format!("--proxy-server=127.0.0.1:{}", b.proxy.port),
            format!("--proxy-bypass-list={BROWSER_OWN_HOSTS}"),
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1".into(),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": args,
                "prefs": {
                    "download.default_directory": b.downloads.path().to_string_lossy(),
                    "download.prompt_for_download": false,
                },
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let v = b.raw("POST", "/session", Some(caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b.base = format!("{}/session/{id}", b.base);
        Some(b)
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let resp = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let text = resp
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}: {text}"));
        let value = v["value"].clone();
        if let Some(err) = value.get("error") {
            panic!("webdriver {method} {path}: {err}: {}", value["message"]);
        }
        value
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.raw("POST", path, Some(body))
    }

    /// Navigate and wait for the load event.
    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    /// Run `script` (a function body; `arguments` holds `args`) and return its value.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Like [`Browser::exec`] with a callback: the script ends by calling
    /// `arguments[arguments.length - 1](value)`.
    pub fn exec_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
    }

    /// Poll `expr` (a JS expression) until it is truthy; return its value.
    pub fn wait_for(&self, expr: &str, timeout: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.exec(&format!("return ({expr});"), json!([]));
            let truthy = !(v.is_null() || v == json!(false) || v == json!(0) || v == json!(""));
            if truthy {
                return v;
            }
            assert!(t0.elapsed() < timeout, "timed out waiting for {expr}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.post("/element", json!({"using": "css selector", "value": css}));
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.post(&format!("/element/{id}/click"), json!({}));
    }

    pub fn type_text(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.post(&format!("/element/{id}/value"), json!({ "text": text }));
    }

    pub fn clear(&self, css: &str) {
        let id = self.find(css);
        self.post(&format!("/element/{id}/clear"), json!({}));
    }

    /// `textContent` of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let v = self.exec(
            "var e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        );
        v.as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    /// Move the mouse to viewport point (x, y), optionally clicking there.
    pub fn pointer(&self, x: f64, y: f64, click: bool) {
        let mut actions = vec![
            json!({"type": "pointerMove", "duration": 0, "origin": "viewport",
            "x": x.round() as i64, "y": y.round() as i64}),
        ];
        if click {
            actions.push(json!({"type": "pointerDown", "button": 0}));
            actions.push(json!({"type": "pointerUp", "button": 0}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"}, "actions": actions}]}),
        );
        self.raw("DELETE", "/actions", None);
    }

    /// Drain a chromedriver log (`browser`: console and page errors; `performance`: DevTools
    /// events).
    pub fn log(&self, kind: &str) -> Vec<Value> {
        match self.post("/se/log", json!({ "type": kind })) {
            Value::Array(v) => v,
            other => panic!("log {kind}: {other}"),
        }
    }

    /// URLs of the requests made for the document `page_url` (its navigation included) since
    /// the performance log was last drained. Requests of other documents (the browser's own
    /// start page still loading) are left out.
    pub fn requests_of(&self, page_url: &str) -> Vec<String> {
        self.log("performance")
            .iter()
            .filter_map(|e| {
                let m: Value = serde_json::from_str(e["message"].as_str()?).ok()?;
                let m = &m["message"];
                let p = &m["params"];
                (m["method"] == "Network.requestWillBeSent" && p["documentURL"] == page_url)
                    .then(|| p["request"]["url"].as_str().map(str::to_string))
                    .flatten()
            })
            .collect()
    }

    /// A DevTools command on the current page.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
    }

    pub fn screenshot(&self, path: &Path) {
        let v = self.raw("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 png"))
            .expect("decode screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Wait for a finished download named `name` and return its bytes.
    pub fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        let t0 = Instant::now();
        loop {
            if path.is_file() {
                let partial = self.downloads.path().join(format!("{name}.crdownload"));
                if !partial.exists() {
                    return std::fs::read(&path).expect("read download");
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "no download {name}");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `1234567` -> `1,234,567`, as the report page writes exact counts.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
