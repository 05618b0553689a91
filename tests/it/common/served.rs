//! A `digitnet serve` process on a free port of 127.0.0.1, for the server's tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `digitnet serve`; killed when dropped.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Served {
    /// Starts the server on a free port with the shipped weights and waits until it listens.
    pub fn start() -> Served {
        Served::start_with(&[])
    }

    /// Like [`Served::start`] with extra arguments (e.g. `--artifacts DIR`).
    pub fn start_with(extra: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_digitnet"))
            .args(["serve", "--backend", "flex", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Served {
            child,
            base: format!("http://{base}"),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
