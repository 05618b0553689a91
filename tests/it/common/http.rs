//! A minimal HTTP/1.1 server on 127.0.0.1 for download tests: one request per connection,
//! canned responses, including deliberately broken ones.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the server answers for a path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body.
    Ok(Vec<u8>),
    /// This status code with a short text body.
    Status(u16),
    /// 200 announcing the full length but sending only the first `sent` bytes, then closing.
    Truncated { body: Vec<u8>, sent: usize },
    /// 200 with this body, sent in 16 pieces with `pause_ms` between them (to overlap clients).
    Slow { body: Vec<u8>, pause_ms: u64 },
}

/// A running server; it stops accepting when dropped... or at process exit (its thread only
/// blocks on `accept`).
pub struct Server {
    base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, h) = (Arc::clone(&routes), Arc::clone(&hits));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, h) = (Arc::clone(&r), Arc::clone(&h));
                thread::spawn(move || serve(stream, &r, &h));
            }
        });
        Server { base, routes, hits }
    }

    /// Base URL of a mirror rooted at `prefix` (e.g. `/good/`).
    pub fn mirror(&self, prefix: &str) -> String {
        format!("{}{}", self.base, prefix)
    }

    /// Sets the reply for `path`.
    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    /// Paths requested so far.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

/// A base URL where nothing listens (connection refused).
pub fn dead_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

fn serve(stream: TcpStream, routes: &Mutex<HashMap<String, Reply>>, hits: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    hits.lock().unwrap().push(path.clone());
    let reply = routes
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or(Reply::Status(404));
    let mut stream = stream;
    let _ = match reply {
        Reply::Ok(body) => respond(&mut stream, 200, &body, body.len()),
        Reply::Status(code) => respond(&mut stream, code, b"no such file", 12),
        Reply::Truncated { body, sent } => respond(&mut stream, 200, &body[..sent], body.len()),
        Reply::Slow { body, pause_ms } => respond_slowly(&mut stream, &body, pause_ms),
    };
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    body: &[u8],
    announced: usize,
) -> std::io::Result<()> {
    let reason = if code == 200 { "OK" } else { "Error" };
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {announced}\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(body)?;
    stream.flush()
}

fn respond_slowly(stream: &mut TcpStream, body: &[u8], pause_ms: u64) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    for piece in body.chunks(body.len().div_ceil(16).max(1)) {
        stream.write_all(piece)?;
        stream.flush()?;
        thread::sleep(std::time::Duration::from_millis(pause_ms));
    }
    Ok(())
}
