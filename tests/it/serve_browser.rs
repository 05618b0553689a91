//! End to end: headless Chromium, driven through ChromeDriver's WebDriver API, opens the page of
//! `digitnet serve`, draws a 7 and a 1 on the canvas with pointer strokes, and the page shows the
//! model's reading; Clear resets it. A screenshot is saved in `$CARGO_TARGET_TMPDIR`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Where they are
//! missing the test says so on stderr and passes, except under `CI=true`, where it fails.

#![cfg(all(feature = "serve", feature = "flex"))]

use crate::common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::served::Served;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let agent = agent();
    let mut res = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        (_, body) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or_else(|| json!({})).to_string()),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status().as_u16();
    let json: Value = common::read_json(&mut res).unwrap();
    assert!(status < 300, "{method} {url}: {status} {json}");
    json["value"].clone()
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver (Debian: chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while agent().get(&format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--window-size=1100,800"]
            }
        }}});
        let mut driver = Driver {
            child,
            base,
            session: String::new(),
        };
        let value = call("POST", &format!("{}/session", driver.base), Some(caps));
        driver.session = value["sessionId"].as_str().unwrap().to_string();
        driver
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    fn element(&self, css: &str) -> String {
        let v = call(
            "POST",
            &self.url("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    fn text(&self, element: &str) -> String {
        call("GET", &self.url(&format!("/element/{element}/text")), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Draws strokes on `element`: each a list of points relative to its centre.
    fn draw(&self, element: &str, strokes: &[&[(i64, i64)]]) {
        let mut actions = Vec::new();
        for stroke in strokes {
            let (x, y) = stroke[0];
            actions.push(json!({"type": "pointerMove", "duration": 0,
                "origin": {ELEMENT: element}, "x": x, "y": y}));
            actions.push(json!({"type": "pointerDown", "button": 0}));
            for &(x, y) in &stroke[1..] {
                actions.push(json!({"type": "pointerMove", "duration": 60,
                    "origin": {ELEMENT: element}, "x": x, "y": y}));
            }
            actions.push(json!({"type": "pointerUp", "button": 0}));
        }
        call(
            "POST",
            &self.url("/actions"),
            Some(json!({"actions": [{"type": "pointer", "id": "pen",
                "parameters": {"pointerType": "mouse"}, "actions": actions}]})),
        );
    }

    /// The text of `element` once it has stayed the same for half a second (the page predicts
    /// while strokes arrive).
    fn settled_text(&self, element: &str) -> String {
        let started = Instant::now();
        let mut last = self.text(element);
        let mut since = Instant::now();
        while since.elapsed() < Duration::from_millis(500) {
            assert!(started.elapsed() < Duration::from_secs(20), "never settled");
            std::thread::sleep(Duration::from_millis(100));
            let now = self.text(element);
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
        last
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(value(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Chromium and ChromeDriver are here (Debian's `chromium` and `chromium-driver`).
fn browser_available() -> bool {
    const INSTALL: &str = "install Debian's chromium and chromium-driver to run this test";
    common::tool_available("chromium", Command::new(CHROMIUM).arg("--version"), INSTALL)
        && common::tool_available(
            "chromedriver",
            Command::new("chromedriver").arg("--version"),
            INSTALL,
        )
}

#[test]
fn drawing_on_the_page_shows_the_models_reading() {
    if !browser_available() {
        return;
    }
    let server = Served::start();
    let driver = Driver::start();
    call(
        "POST",
        &driver.url("/url"),
        Some(json!({"url": format!("{}/", server.base)})),
    );
    let pad = driver.element("#pad");
    let digit = driver.element("#digit");
    assert_eq!(driver.text(&digit), "–");

    // A 7: the top bar, then the slanted stem.
    driver.draw(
        &pad,
        &[&[(-70, -85), (0, -85), (70, -85), (30, 0), (-5, 95)]],
    );
    assert_eq!(
        driver.settled_text(&digit),
        "7",
        "the page's reading of a drawn 7"
    );
    let screenshot = decode_base64(
        call("GET", &driver.url("/screenshot"), None)
            .as_str()
            .unwrap(),
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png");
    std::fs::write(&shot, &screenshot).unwrap();
    let img = image::load_from_memory(&screenshot).unwrap();
    assert!(
        img.width() >= 600,
        "screenshot {}x{}",
        img.width(),
        img.height()
    );
    eprintln!("screenshot: {}", shot.display());

    // Clear resets the reading; a 1 is then read as a 1.
    let clear = driver.element("#clear");
    call(
        "POST",
        &driver.url(&format!("/element/{clear}/click")),
        None,
    );
    assert_eq!(driver.text(&digit), "–");
    driver.draw(&pad, &[&[(5, -95), (0, 0), (-5, 95)]]);
    assert_eq!(
        driver.settled_text(&digit),
        "1",
        "the page's reading of a drawn 1"
    );
}
