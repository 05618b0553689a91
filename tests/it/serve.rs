//! `digitnet serve` for real: the server is started as a process on 127.0.0.1 and exercised over
//! HTTP: the page, health, model, predictions from PNG, JPEG and JSON, every bad request (4xx
//! with a JSON error, never a 5xx), and concurrent clients.

#![cfg(all(feature = "serve", feature = "flex"))]

use crate::common;

use common::served::Served;
use digitnet::data::IMAGE_PIXELS;
use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` with `content_type`; returns the status and the JSON body.
fn post(base: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut res = agent()
        .post(&format!("{base}/api/predict"))
        .header("Content-Type", content_type)
        .send(body)
        .unwrap();
    let status = res.status().as_u16();
    let json = common::read_json(&mut res).unwrap_or_else(|e| {
        panic!("status {status}: body is not JSON ({e})");
    });
    (status, json)
}

fn get(base: &str, path: &str) -> (u16, Value) {
    let mut res = agent().get(&format!("{base}{path}")).call().unwrap();
    let status = res.status().as_u16();
    (status, common::read_json(&mut res).unwrap())
}

/// Test image `index` of the sample as 28x28 bytes, and its label.
fn sample_digit(index: usize) -> (Vec<u8>, u64) {
    let images = common::sample_raw("t10k-images-idx3-ubyte");
    let labels = common::sample_raw("t10k-labels-idx1-ubyte");
    let pixels = images[16 + index * IMAGE_PIXELS..16 + (index + 1) * IMAGE_PIXELS].to_vec();
    (pixels, u64::from(labels[8 + index]))
}

fn encode(pixels: &[u8], format: image::ImageFormat) -> Vec<u8> {
    let img = image::GrayImage::from_raw(28, 28, pixels.to_vec()).unwrap();
    let big = image::imageops::resize(&img, 140, 140, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(big)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

fn assert_prediction(json: &Value, label: u64) {
    assert_eq!(json["digit"].as_u64(), Some(label), "{json}");
    let p: Vec<f64> = json["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(p.len(), 10);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-3, "{p:?}");
    assert_eq!(json["model"], "cnn-bn");
    assert_eq!(json["input"].as_array().unwrap().len(), IMAGE_PIXELS);
}

#[test]
fn page_health_model_and_predictions() {
    let server = Served::start();
    let base = &server.base;
    let page = agent()
        .get(&format!("{base}/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(page.contains("<canvas id=\"pad\"") && page.contains("/api/predict"));
    assert_eq!(
        get(base, "/api/health"),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, model) = get(base, "/api/model");
    assert_eq!(status, 200);
    assert_eq!(model["name"], "cnn-bn");
    assert_eq!(model["parameters"], 242_218);
    assert!(
        model["validation_accuracy"].as_f64().unwrap() > 0.99,
        "{model}"
    );
    assert!(model["config"]["model"]["Cnn"].is_object(), "{model}");

    for index in 0..5 {
        let (pixels, label) = sample_digit(index);
        let (status, json) = post(base, "image/png", &encode(&pixels, image::ImageFormat::Png));
        assert_eq!(status, 200, "{json}");
        assert_prediction(&json, label);
        let (status, json) = post(
            base,
            "image/jpeg",
            &encode(&pixels, image::ImageFormat::Jpeg),
        );
        assert_eq!(status, 200, "{json}");
        assert_prediction(&json, label);
        let values: Vec<f64> = pixels.iter().map(|&v| f64::from(v) / 255.0).collect();
        let (status, json) = post(
            base,
            "application/json; charset=utf-8",
            serde_json::to_string(&values).unwrap().as_bytes(),
        );
        assert_eq!(status, 200, "{json}");
        assert_prediction(&json, label);
        // The JSON path passes the image through unchanged.
        let input: Vec<u64> = json["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            input,
            pixels.iter().map(|&v| u64::from(v)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn bad_requests_get_a_4xx_json_error_and_the_server_keeps_answering() {
    let server = Served::start();
    let base = &server.base;
    let (digit, _) = sample_digit(0);
    let huge = vec![0u8; 5 * 1024 * 1024];
    let values = |n: usize, v: f64| serde_json::to_vec(&vec![v; n]).unwrap();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("text/plain", b"a seven".to_vec(), 415, "not supported"),
        ("", digit.clone(), 415, "not supported"),
        ("image/png", b"not a png".to_vec(), 400, "not a PNG or JPEG"),
        ("image/png", Vec::new(), 400, "empty file"),
        (
            "image/jpeg",
            encode(&digit, image::ImageFormat::Png)[..200].to_vec(),
            400,
            "decode",
        ),
        (
            "image/png",
            encode(&vec![0; IMAGE_PIXELS], image::ImageFormat::Png),
            400,
            "blank",
        ),
        // Over-limit bodies: the client writes all of it before reading, and must still get
        // the JSON answer rather than a broken pipe (the server drains what it refuses).
        ("image/png", huge.clone(), 413, "over 4 MiB"),
        (
            "image/png",
            vec![0u8; 4 * 1024 * 1024 + 1],
            413,
            "over 4 MiB",
        ),
        ("image/jpeg", vec![0u8; 20 * 1024 * 1024], 413, "over 4 MiB"),
        ("text/plain", huge.clone(), 415, "not supported"),
        ("image/png", huge, 413, "over 4 MiB"),
        (
            "application/json",
            b"{\"pixels\": 1}".to_vec(),
            400,
            "JSON array",
        ),
        ("application/json", b"[1, 2,".to_vec(), 400, "JSON array"),
        ("application/json", values(783, 0.5), 400, "got 783"),
        ("application/json", values(785, 0.5), 400, "got 785"),
        ("application/json", values(784, 2.0), 400, "from 0 to 1"),
        ("application/json", values(784, -0.1), 400, "from 0 to 1"),
    ];
    for (content_type, body, expected, needle) in cases {
        let mut req = agent().post(&format!("{base}/api/predict"));
        if !content_type.is_empty() {
            req = req.header("Content-Type", content_type);
        }
        let mut res = req.send(&body[..]).unwrap();
        let status = res.status().as_u16();
        let json: Value = common::read_json(&mut res).unwrap();
        assert_eq!(status, expected, "{content_type}: {json}");
        let message = json["error"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{content_type}: {json}");
    }
    let (status, json) = get(base, "/no/such/route");
    assert_eq!(status, 404);
    assert!(json["error"].is_string());
    // Still serving.
    assert_eq!(get(base, "/api/health").0, 200);
}

#[test]
fn concurrent_clients_are_all_answered() {
    let server = Served::start();
    let base = server.base.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let base = base.clone();
            std::thread::spawn(move || {
                let mut correct = 0;
                for i in 0..10 {
                    let (pixels, label) = sample_digit((t * 10 + i) % 50);
                    let (status, json) = post(
                        &base,
                        "image/png",
                        &encode(&pixels, image::ImageFormat::Png),
                    );
                    assert_eq!(status, 200, "{json}");
                    correct += usize::from(json["digit"].as_u64() == Some(label));
                }
                correct
            })
        })
        .collect();
    let correct: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(
        correct >= 76,
        "{correct} of 80 concurrent predictions right"
    );
}

/// Good and bad requests at once, from 8 clients that start together: every bad one gets its 4xx
/// and its own error, every good one 200 with the answer it gets when sent alone (the inference
/// thread batches waiting requests, so a mix-up would show here).
#[test]
fn bad_and_good_requests_at_once_each_get_their_own_answer() {
    let server = Served::start();
    let base = server.base.clone();
    let good: Vec<Vec<u8>> = (0..10)
        .map(|i| encode(&sample_digit(i).0, image::ImageFormat::Png))
        .collect();
    let alone: Vec<Value> = good
        .iter()
        .map(|png| {
            let (status, json) = post(&base, "image/png", png);
            assert_eq!(status, 200, "{json}");
            json
        })
        .collect();
    let bad: Vec<(&'static str, Vec<u8>, u16, &'static str)> = vec![
        ("image/png", b"not a png".to_vec(), 400, "not a PNG or JPEG"),
        (
            "image/png",
            encode(&vec![0; IMAGE_PIXELS], image::ImageFormat::Png),
            400,
            "blank",
        ),
        ("text/plain", b"a seven".to_vec(), 415, "not supported"),
        (
            "application/json",
            serde_json::to_vec(&vec![0.5; 783]).unwrap(),
            400,
            "got 783",
        ),
        ("image/png", vec![0u8; 5 * 1024 * 1024], 413, "over 4 MiB"),
    ];
    let start = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (base, good, alone, bad, start) = (
                base.clone(),
                good.clone(),
                alone.clone(),
                bad.clone(),
                start.clone(),
            );
            std::thread::spawn(move || {
                start.wait();
                for round in 0..10 {
                    if (t + round) % 2 == 0 {
                        let i = (t + round) % good.len();
                        let (status, json) = post(&base, "image/png", &good[i]);
                        assert_eq!(status, 200, "{json}");
                        assert_eq!(json["digit"], alone[i]["digit"], "image {i}");
                        // Another batch, another summation order: equal to float rounding.
                        let probabilities = |json: &Value| -> Vec<f64> {
                            let values = json["probabilities"].as_array().unwrap();
                            values.iter().map(|v| v.as_f64().unwrap()).collect()
                        };
                        let differences = probabilities(&json)
                            .into_iter()
                            .zip(probabilities(&alone[i]))
                            .map(|(a, b)| (a - b).abs());
                        assert!(differences.fold(0.0, f64::max) < 1e-5, "image {i}: {json}");
                    } else {
                        let (content_type, body, expected, needle) = &bad[(t + round) % bad.len()];
                        let (status, json) = post(&base, content_type, body);
                        assert_eq!(status, *expected, "{content_type}: {json}");
                        let message = json["error"].as_str().unwrap_or_default();
                        assert!(message.contains(needle), "{content_type}: {json}");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(get(&base, "/api/health").0, 200);
}

#[test]
fn serves_a_model_trained_with_digitnet_train() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("mlp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args([
            "train",
            "--preset",
            "mlp-a",
            "--epochs",
            "1",
            "--limit-train",
            "1000",
        ])
        .args([
            "--progress",
            "quiet",
            "--offline",
            "--no-verify",
            "--data-dir",
        ])
        .arg(common::sample_dir())
        .arg("--artifacts")
        .arg(&artifacts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Served::start_with(&["--artifacts", artifacts.to_str().unwrap()]);
    let (status, model) = get(&server.base, "/api/model");
    assert_eq!(status, 200);
    assert_eq!(model["name"], "mlp-a");
    assert_eq!(model["parameters"], 109_386);
    assert_eq!(model["epochs_trained"], 1);
    let (pixels, _) = sample_digit(0);
    let (status, json) = post(
        &server.base,
        "image/png",
        &encode(&pixels, image::ImageFormat::Png),
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["model"], "mlp-a");

    // A directory that holds no model: one clear line, exit 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .args(["serve", "--addr", "127.0.0.1:0", "--artifacts"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("config.json") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
