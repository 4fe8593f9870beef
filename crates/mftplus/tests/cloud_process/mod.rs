//! `mftplus cloud` as a child process: started with JSON logs, its API address read from the
//! "listening" event, its log drained afterwards so it never blocks on a full pipe.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `command` (an `mftplus cloud` with `MFTPLUS_LOG_FORMAT=json`) and returns it with its
/// API's base URL.
pub fn start(mut command: Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if event["fields"]["message"] == "mftplus cloud listening" {
            let api = event["fields"]["api"].as_str().unwrap().to_string();
            std::thread::spawn(move || {
                let mut sink = String::new();
                while stderr.read_line(&mut sink).is_ok_and(|n| n > 0) {
                    sink.clear();
                }
            });
            return (child, format!("http://{api}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the cloud did not announce its address");
}
