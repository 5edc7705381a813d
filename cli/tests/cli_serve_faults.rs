//! `seam serve` under faults: 1,000 requests from 8 concurrent clients,
//! mixing well-formed completions (whole and streamed), clients that drop
//! the connection after the first streamed token, malformed JSON, unknown
//! fields, oversize prompts, `max_tokens` past the context, ids outside the
//! vocabulary and wrong routes. Every well-formed request gets exactly the
//! text the same prompt gets alone (greedy; the engine is batch invariant),
//! every bad one a 4xx; the server does not crash; afterwards no sequence
//! is queued or running, no KV position is held, and the server's resident
//! memory is back within a stated bound of where it started.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/serve.rs"]
mod serve;
use cli::scratch;
use serve::{chat_bundle, Server};

/// Requests in the storm.
const REQUESTS: usize = 1000;
/// Concurrent clients.
const CLIENTS: usize = 8;
/// Distinct well-formed prompts (token ids).
const PROMPTS: usize = 6;
/// Resident memory may end at most this far above where it started.
const RSS_SLACK_KB: u64 = 64 * 1024;

/// A raw HTTP/1.1 exchange on a fresh connection: the status and the body
/// (read to the end, or only up to the first streamed chunk when
/// `hang_up_early`, then the connection is dropped).
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    hang_up_early: bool,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    if hang_up_early {
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("data: ") {
                break;
            }
            line.clear();
        }
        return (status, String::new());
    }
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let body = rest.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, dechunk(body))
}

/// The payload of a chunked transfer encoding (or the body as it is).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    if out.is_empty() {
        body.to_string()
    } else {
        out
    }
}

/// The text of a completion answer, whole or streamed.
fn completion_text(body: &str, streamed: bool) -> String {
    if !streamed {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        return v["choices"][0]["text"].as_str().unwrap().to_string();
    }
    assert!(body.contains("data: [DONE]"), "{body}");
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| {
            let v: Value = serde_json::from_str(d).unwrap();
            v["choices"][0]["text"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

fn prompt(k: usize) -> Vec<i32> {
    (0..3 + 4 * k)
        .map(|i| ((i * 7 + k * 13 + 5) % 120) as i32)
        .collect()
}

fn max_tokens(k: usize) -> usize {
    2 + k % 5
}

fn good(k: usize, stream: bool) -> String {
    json!({"prompt": prompt(k), "max_tokens": max_tokens(k), "temperature": 0, "stream": stream})
        .to_string()
}

/// A gauge of the `/metrics` page.
fn gauge(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{page}"))
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_thousand_faulty_and_good_requests_leave_the_server_as_it_was() {
    let d = scratch("serve_faults");
    let bundle = chat_bundle(&d);
    let server = Server::start(&bundle, &["--queue", "256"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    // Each prompt alone, once: the texts every later answer must carry.
    let reference: Vec<String> = (0..PROMPTS)
        .map(|k| {
            let (status, body) = exchange(&addr, "POST", "/v1/completions", &good(k, false), false);
            assert_eq!(status, 200, "{body}");
            completion_text(&body, false)
        })
        .collect();
    let rss_before = rss_kb(server.child.id());
    let tally = Arc::new(Mutex::new([0usize; 9]));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, reference, tally) = (addr.clone(), reference.clone(), Arc::clone(&tally));
            std::thread::spawn(move || {
                let mut x = 0x9e37_79b9_u64 ^ c as u64;
                for n in (c..REQUESTS).step_by(CLIENTS) {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let kind = ((x >> 33) % 9) as usize;
                    let k = ((x >> 17) as usize + n) % PROMPTS;
                    let post =
                        |body: &str, early| exchange(&addr, "POST", "/v1/completions", body, early);
                    match kind {
                        0 | 1 => {
                            let streamed = kind == 1;
                            let (status, body) = post(&good(k, streamed), false);
                            assert_eq!(status, 200, "request {n}: {body}");
                            assert_eq!(
                                completion_text(&body, streamed),
                                reference[k],
                                "request {n}"
                            );
                        }
                        2 => {
                            let (status, _) = post(&good(k, true), true);
                            assert_eq!(status, 200, "request {n}");
                        }
                        _ => {
                            let (method, path, body) = match kind {
                                3 => ("POST", "/v1/completions", "{\"prompt\": [1, 2".to_string()),
                                4 => (
                                    "POST",
                                    "/v1/completions",
                                    json!({"prompt": [1], "max_tokens": 2, "bogus": 1}).to_string(),
                                ),
                                5 => (
                                    "POST",
                                    "/v1/completions",
                                    json!({"prompt": vec![7; 5000], "max_tokens": 2}).to_string(),
                                ),
                                6 => (
                                    "POST",
                                    "/v1/completions",
                                    json!({"prompt": [1, 2], "max_tokens": 1_000_000_000u64})
                                        .to_string(),
                                ),
                                7 => (
                                    "POST",
                                    "/v1/completions",
                                    json!({"prompt": [1, -3], "max_tokens": 2}).to_string(),
                                ),
                                _ => ("GET", "/v1/nowhere", String::new()),
                            };
                            let (status, body) = exchange(&addr, method, path, &body, false);
                            assert!(
                                (400..500).contains(&status),
                                "request {n} (kind {kind}): {status} {body}"
                            );
                        }
                    }
                    tally.lock().unwrap()[kind] += 1;
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client saw a wrong answer");
    }
    let elapsed = started.elapsed();
    // The dropped streams are cancelled at the next step: wait for the engine
    // to empty (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let (status, page) = exchange(&addr, "GET", "/metrics", "", false);
        assert_eq!(status, 200);
        let busy = gauge(&page, "seam_active_sequences")
            + gauge(&page, "seam_waiting_sequences")
            + gauge(&page, "seam_queue_depth");
        if busy == 0.0 || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for name in [
        "seam_active_sequences",
        "seam_waiting_sequences",
        "seam_queue_depth",
        "seam_kv_positions_used",
    ] {
        assert_eq!(gauge(&page, name), 0.0, "{name} after the storm:\n{page}");
    }
    let rss_after = rss_kb(server.child.id());
    let tally = *tally.lock().unwrap();
    println!(
        "{REQUESTS} requests in {:.1} s by {CLIENTS} clients; by kind (good, good streamed, \
         dropped stream, malformed, unknown field, oversize prompt, max_tokens too large, \
         bad id, wrong route): {tally:?}; RSS {rss_before} kB before, {rss_after} kB after",
        elapsed.as_secs_f64()
    );
    assert_eq!(tally.iter().sum::<usize>(), REQUESTS);
    assert!(
        tally.iter().all(|&n| n > 0),
        "every kind was sent: {tally:?}"
    );
    assert!(
        rss_after <= rss_before + RSS_SLACK_KB,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
    // Still serving, the same text.
    let (status, body) = exchange(&addr, "POST", "/v1/completions", &good(0, false), false);
    assert_eq!(
        (status, completion_text(&body, false)),
        (200, reference[0].clone())
    );
    server.stop();
}
