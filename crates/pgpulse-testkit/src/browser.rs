//! Headless Chromium for tests that must see a page as a person would:
//! a screenshot of a URL or file, checked to be more than a blank page, and
//! the folder where tests leave their artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where tests leave screenshots and pages: `$CARGO_TARGET_DIR/test-artifacts`,
/// else `target/test-artifacts` above the running test binary.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            // <target>/debug/deps/<test>-<hash>
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("test-artifacts")
}

/// A screenshot's size and how many distinct colours it has (capped at
/// 1,000: enough to tell a drawn page from a blank or error page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screenshot {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Distinct colours, at most 1,000.
    pub colours: usize,
}

/// Opens `url` (`file://...` or `http://...`) in headless Chromium at
/// `width` x `height` and writes a PNG screenshot to `png`. Fails with a
/// message naming `make deps` when Chromium is not installed.
pub fn screenshot(url: &str, png: &Path, width: u32, height: u32) -> Result<Screenshot, String> {
    let found = Command::new("chromium").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        return Err(
            "chromium is not installed: run `make deps` (scripts/install-deps.sh installs it)"
                .into(),
        );
    }
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = Command::new("timeout")
        .args(["120", "chromium", "--headless=new", "--no-sandbox"])
        .args(["--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .env("HOME", home.path())
        .output()
        .map_err(|e| format!("cannot run chromium: {e}"))?;
    if !out.status.success() || !png.exists() {
        return Err(format!(
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bytes = std::fs::read(png).map_err(|e| e.to_string())?;
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .map_err(|e| format!("screenshot is not a PNG: {e}"))?;
    let size = reader.output_buffer_size().ok_or("screenshot too large")?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("screenshot is not a PNG: {e}"))?;
    let samples = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    for p in buf[..info.buffer_size()].chunks(samples) {
        if colours.insert(p.to_vec()) && colours.len() >= 1000 {
            break;
        }
    }
    Ok(Screenshot {
        width: info.width,
        height: info.height,
        colours: colours.len(),
    })
}
