//! Transfer progress on stderr: `sent 30.0 MiB / 100.0 MiB  30%  85.2 MiB/s  ETA 0:01`.
//!
//! On a terminal one line is redrawn in place (at most ten times a second); with `--progress`
//! and no terminal a plain line is written at most once a second, for logs. Otherwise nothing:
//! a piped `mftctl` is quiet. Data never goes to stderr, so this cannot corrupt output.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Terminal,
    Lines,
}

pub struct Progress {
    mode: Mode,
    verb: &'static str,
    total: Option<u64>,
    start: Instant,
    /// Bytes already done before this run (a resumed upload), left out of the rate.
    base: u64,
    done: u64,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// What the shared transfer pipelines report (`mftplus_transfer::ProgressEvent`).
    pub fn event(&mut self, event: mftplus_transfer::ProgressEvent) {
        match event {
            mftplus_transfer::ProgressEvent::Add(n) => self.add(n),
            mftplus_transfer::ProgressEvent::At(at) => self.set(at),
            mftplus_transfer::ProgressEvent::SkipTo(at) => self.skip_to(at),
        }
    }

    /// `forced` is `--progress`; `quiet` turns it off whatever the terminal (`--json`,
    /// several transfers at once).
    pub fn new(verb: &'static str, total: Option<u64>, forced: bool, quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Off
        } else if io::stderr().is_terminal() {
            Mode::Terminal
        } else if forced {
            Mode::Lines
        } else {
            Mode::Off
        };
        Progress {
            mode,
            verb,
            total,
            start: Instant::now(),
            base: 0,
            done: 0,
            last_draw: None,
            drawn: false,
        }
    }

    /// Like [`Progress::set`], but the bytes were not moved now (already on the server, on
    /// resume), so they do not count towards the rate.
    pub fn skip_to(&mut self, done: u64) {
        if done > self.done {
            self.base += done - self.done;
            self.done = done;
        }
        self.draw(false);
    }

    /// Records that `done` bytes in total are finished.
    pub fn set(&mut self, done: u64) {
        self.done = self.done.max(done);
        self.draw(false);
    }

    pub fn add(&mut self, bytes: u64) {
        self.set(self.done + bytes);
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self) {
        if self.mode == Mode::Off {
            return;
        }
        if self.done > 0 || self.drawn {
            self.draw(true);
        }
        if self.drawn && self.mode == Mode::Terminal {
            let _ = writeln!(io::stderr().lock());
        }
        self.drawn = false;
        self.mode = Mode::Off;
    }

    fn draw(&mut self, force: bool) {
        let every = match self.mode {
            Mode::Off => return,
            Mode::Terminal => Duration::from_millis(100),
            Mode::Lines => Duration::from_secs(1),
        };
        let now = Instant::now();
        if !force
            && self
                .last_draw
                .is_some_and(|t| now.duration_since(t) < every)
        {
            return;
        }
        self.last_draw = Some(now);
        let elapsed = now.duration_since(self.start);
        let line = render(
            self.verb,
            self.done,
            self.total,
            self.done - self.base,
            elapsed,
        );
        let mut err = io::stderr().lock();
        let _ = match self.mode {
            Mode::Terminal => write!(err, "\r{line}\x1b[K"),
            _ => writeln!(err, "{line}"),
        };
        let _ = err.flush();
        self.drawn = true;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error message must start on a fresh line, not after a half-drawn bar.
        if self.drawn && self.mode == Mode::Terminal {
            let _ = writeln!(io::stderr().lock());
        }
    }
}

fn mib(n: u64) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

/// One progress line. `moved` bytes in `elapsed` give the rate; ETA needs a known total.
pub fn render(verb: &str, done: u64, total: Option<u64>, moved: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { moved as f64 / secs } else { 0.0 };
    let mut line = match total {
        Some(total) => {
            let percent = (done.min(total) * 100).checked_div(total).unwrap_or(100);
            format!(
                "{verb} {:.1} MiB / {:.1} MiB  {percent:>3}%",
                mib(done),
                mib(total)
            )
        }
        None => format!("{verb} {:.1} MiB", mib(done)),
    };
    line.push_str(&format!("  {:.1} MiB/s", mib(rate as u64)));
    if let Some(total) = total {
        if rate >= 1.0 && done < total {
            let left = ((total - done) as f64 / rate).ceil() as u64;
            line.push_str(&format!("  ETA {}:{:02}", left / 60, left % 60));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_percent_rate_and_eta() {
        let line = render(
            "sent",
            30 << 20,
            Some(100 << 20),
            30 << 20,
            Duration::from_secs(3),
        );
        assert_eq!(
            line,
            "sent 30.0 MiB / 100.0 MiB   30%  10.0 MiB/s  ETA 0:07"
        );
        let line = render("received", 5 << 20, None, 5 << 20, Duration::from_secs(1));
        assert_eq!(line, "received 5.0 MiB  5.0 MiB/s");
        let done = render("sent", 1, Some(1), 1, Duration::ZERO);
        assert_eq!(done, "sent 0.0 MiB / 0.0 MiB  100%  0.0 MiB/s");
        let empty = render("sent", 0, Some(0), 0, Duration::from_secs(1));
        assert!(empty.contains("100%"), "{empty}");
    }

    #[test]
    fn resumed_bytes_do_not_inflate_the_rate() {
        let line = render(
            "sent",
            90 << 20,
            Some(100 << 20),
            10 << 20,
            Duration::from_secs(10),
        );
        assert!(line.contains("1.0 MiB/s"), "{line}");
        assert!(line.contains("ETA 0:10"), "{line}");
    }
}
