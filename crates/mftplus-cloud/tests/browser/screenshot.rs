//! Screenshots of the viewport ([`WINDOW`](super::WINDOW)), as PNG files.

use super::{Browser, BrowserError};
use base64::Engine;
use reqwest::Method;
use std::path::{Path, PathBuf};

/// Where tests save screenshots: `MFTPLUS_SCREENSHOT_DIR`, or `mftplus-screenshots` in the
/// system's temporary folder. Created when missing.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("MFTPLUS_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mftplus-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

impl Browser {
    /// The viewport as PNG, written to `path` (folders created); returns the bytes.
    pub async fn screenshot(&self, path: &Path) -> Result<Vec<u8>, BrowserError> {
        let value = self
            .command("screenshot", Method::GET, "/screenshot", None)
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .map_err(|err| BrowserError::Protocol {
                command: "screenshot".into(),
                detail: format!("not base64: {err}"),
            })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, &png)?;
        Ok(png)
    }

    /// A screenshot as `<name>.png` in [`screenshot_dir`]; returns its path.
    pub async fn save_screenshot(&self, name: &str) -> Result<PathBuf, BrowserError> {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.screenshot(&path).await?;
        Ok(path)
    }
}
