//! A ustar archive in memory: how files reach a host (`tar -x` on the far
//! side of an ssh pipe), so nothing is staged on the operator's disk and
//! each file's mode travels with it.

use std::path::PathBuf;

/// One regular file to archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the directory it is extracted into.
    pub path: PathBuf,
    /// Its bytes.
    pub contents: Vec<u8>,
    /// Its permission bits (e.g. `0o644`).
    pub mode: u32,
}

const BLOCK: usize = 512;

/// The archive of `entries` (regular files, parents created by `tar -x`).
/// A path longer than ustar allows (100 bytes, or a 155-byte prefix plus
/// a 100-byte name) is an error naming it.
pub fn archive(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(&header(entry)?);
        out.extend_from_slice(&entry.contents);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    // The end of an archive: two zero blocks.
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

fn header(entry: &Entry) -> Result<[u8; BLOCK], String> {
    let path = entry
        .path
        .to_str()
        .filter(|p| !p.is_empty() && !entry.path.is_absolute())
        .ok_or_else(|| format!("{}: not a relative UTF-8 path", entry.path.display()))?;
    let (prefix, name) =
        split_path(path).ok_or_else(|| format!("{path}: too long for a tar archive (ustar)"))?;
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(entry.mode & 0o7777));
    octal(&mut h[108..116], 0); // uid: the extracting user owns it
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], entry.contents.len() as u64);
    octal(&mut h[136..148], 0); // mtime
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is computed with its own field as spaces.
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// `(prefix, name)` fitting ustar's 155 + 100 bytes, split at a `/`.
fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    path.match_indices('/')
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && name.len() <= 100 && !name.is_empty())
}

/// Writes `value` as zero-padded octal with a NUL terminator.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn entry(path: impl AsRef<Path>, contents: Vec<u8>, mode: u32) -> Entry {
        Entry {
            path: path.as_ref().to_path_buf(),
            contents,
            mode,
        }
    }

    #[test]
    fn the_system_tar_extracts_what_we_archive() {
        let dir = std::env::temp_dir().join(format!("gtm-tar-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let bytes = archive(&[
            entry("topology.yaml", b"hosts: {}\n".to_vec(), 0o644),
            entry("bin/gslb", vec![7; 1000], 0o755),
            entry("certs/peer.key", b"secret".to_vec(), 0o600),
            entry(&long, Vec::new(), 0o644),
        ])
        .unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        let mut tar = std::process::Command::new("tar")
            .args(["-x", "-C"])
            .arg(&dir)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        tar.stdin.take().unwrap().write_all(&bytes).unwrap();
        assert!(tar.wait().unwrap().success());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(std::fs::read(dir.join("bin/gslb")).unwrap(), vec![7; 1000]);
        assert_eq!(mode("bin/gslb"), 0o755);
        assert_eq!(mode("certs/peer.key"), 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.join("topology.yaml")).unwrap(),
            "hosts: {}\n"
        );
        assert!(dir.join(&long).is_file());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_path_too_long_for_ustar_is_named() {
        let path = "x".repeat(101);
        let error = archive(&[entry(&path, Vec::new(), 0o644)]).unwrap_err();
        assert!(error.contains("too long"), "{error}");
        assert!(archive(&[entry("/etc/passwd", Vec::new(), 0o644)]).is_err());
    }
}
