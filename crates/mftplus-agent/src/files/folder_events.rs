//! Wakes the outbox when a file lands in one of its folders (decision 0038), so a dropped
//! file leaves at once instead of at the next check. Only two kinds of change are asked for:
//! a file closed after writing and a file moved in — what "a file is ready, or its marker is"
//! looks like. Creations and modifications are not: a file still being written would wake the
//! agent for every write, and its completion is the close or the settle time anyway.
//!
//! The periodic check stays: it is what finds files when the watch is lost (the folder
//! replaced, the kernel's watch limit reached, an event queue overflow), and what runs the
//! settle rule for files that are never closed. A kernel that cannot watch leaves the agent
//! polling, with one warning.

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// What wakes an outbox: a closed or moved-in file, in any of the watched folders.
const WAKE_ON: WatchFlags = WatchFlags::CLOSE_WRITE.union(WatchFlags::MOVED_TO);

pub(super) struct FolderEvents {
    fd: AsyncFd<OwnedFd>,
    folders: Vec<PathBuf>,
}

impl FolderEvents {
    /// `None` when the kernel cannot give a watch (logged): the agent then only polls.
    pub(super) fn watch(folders: Vec<PathBuf>) -> Option<FolderEvents> {
        if folders.is_empty() {
            return None;
        }
        let opened = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(std::io::Error::from)
            .and_then(|fd| {
                // SAFETY: `register` needs the descriptor open and the same for as long as the
                // `AsyncFd` lives. The `OwnedFd` is moved into it and only ever borrowed
                // (`get_ref`), never closed, replaced or taken back out, so it stays open and
                // the same until the `AsyncFd` drops it — after deregistering it.
                unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                    .map_err(|err| err.into_parts().1)
            });
        match opened {
            Ok(fd) => {
                let events = FolderEvents { fd, folders };
                events.renew();
                Some(events)
            }
            Err(err) => {
                tracing::warn!(
                    "cannot watch the outbox folders, checking them periodically only: {err}"
                );
                None
            }
        }
    }

    /// Watches every folder again. A watch ends with its folder (deleted, renamed away); asking
    /// again for a folder already watched only returns its existing watch, so this is cheap
    /// enough to do before every wait.
    pub(super) fn renew(&self) {
        for folder in &self.folders {
            if let Err(err) = inotify::add_watch(self.fd.get_ref(), folder, WAKE_ON) {
                tracing::debug!(folder = %folder.display(), "cannot watch the outbox folder: {err}");
            }
        }
    }

    /// Returns once something happened in a watched folder since the last call; what happened
    /// is not kept (the next pass reads the folders themselves).
    pub(super) async fn changed(&self) {
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                // The reactor is gone (runtime shutting down): never wake for it again.
                return std::future::pending::<()>().await;
            };
            let any = self.drain();
            // Read to the end: nothing is queued now. An event that came after the read sets
            // readiness again (tokio keeps it across this clear), so none is missed.
            ready.clear_ready();
            if any {
                return;
            }
        }
    }

    /// Reads every queued event; true when there was at least one.
    fn drain(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            match rustix::io::read(self.fd.get_ref(), &mut buf) {
                Ok(0) => return any,
                Ok(_) => any = true,
                Err(Errno::INTR) => continue,
                // Nothing more now (`WOULDBLOCK`), or a broken descriptor: either way the
                // readiness is cleared, so it cannot spin the agent.
                Err(_) => return any,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn wakes(events: &FolderEvents) -> bool {
        tokio::time::timeout(Duration::from_secs(5), events.changed())
            .await
            .is_ok()
    }

    async fn quiet(events: &FolderEvents) -> bool {
        tokio::time::timeout(Duration::from_millis(200), events.changed())
            .await
            .is_err()
    }

    /// A temporary folder with an `outbox` in it, and the watch on that outbox.
    fn watched_outbox() -> (tempfile::TempDir, std::path::PathBuf, FolderEvents) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        std::fs::create_dir(&outbox).unwrap();
        let events = FolderEvents::watch(vec![outbox.clone()]).expect("inotify on Linux");
        (dir, outbox, events)
    }

    #[tokio::test]
    async fn a_written_or_moved_in_file_wakes_it_and_nothing_else_does() {
        let (dir, outbox, events) = watched_outbox();
        assert!(quiet(&events).await, "no event before anything happened");

        std::fs::write(outbox.join("a.txt"), b"a").unwrap();
        assert!(wakes(&events).await, "a file written and closed");
        assert!(
            quiet(&events).await,
            "one wake per batch of events, then quiet"
        );

        let staged = dir.path().join("b.txt");
        std::fs::write(&staged, b"b").unwrap();
        let _ = events.drain();
        std::fs::rename(&staged, outbox.join("b.txt")).unwrap();
        assert!(wakes(&events).await, "a file moved in");

        // The agent's own moves out of the folder (to sent/) and a subfolder's creation do not.
        std::fs::create_dir(outbox.join("sent")).unwrap();
        std::fs::rename(outbox.join("a.txt"), outbox.join("sent").join("a.txt")).unwrap();
        assert!(quiet(&events).await, "moves out and mkdir are not news");
    }

    #[tokio::test]
    async fn a_replaced_folder_is_watched_again_once_renewed() {
        let (_dir, outbox, events) = watched_outbox();
        std::fs::remove_dir(&outbox).unwrap();
        // The removal ends the watch (the kernel queues IN_IGNORED, which wakes once).
        let _ = quiet(&events).await;
        std::fs::create_dir(&outbox).unwrap();
        events.renew();
        std::fs::write(outbox.join("c.txt"), b"c").unwrap();
        assert!(wakes(&events).await, "the new folder is watched");
    }
}
