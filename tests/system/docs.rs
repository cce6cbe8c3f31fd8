//! The project's Markdown stays readable: every code fence closes (an
//! unclosed one turns the rest of a page into code, as README's quickstart
//! once did) and every relative link points at a file that exists.

use std::path::{Path, PathBuf};

/// Folders that hold no documentation of ours: build output, fuzz corpora,
/// version control.
const SKIPPED: &[&str] = &["target", ".git", "corpus", "artifacts", "node_modules"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !SKIPPED.contains(&name) {
                markdown_files(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The problems of one Markdown text: fences left open and relative links
/// whose target `exists` says is missing.
fn problems(text: &str, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut open_fence: Option<(usize, &str)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (open_fence, marker) {
            (None, Some(marker)) => open_fence = Some((number, marker)),
            // A closing fence is the bare marker; one with an info string
            // (```sh) is text inside the open fence, which is always a
            // fence someone forgot to close.
            (Some((_, open)), Some(marker)) if open == marker && trimmed.trim_end() == marker => {
                open_fence = None
            }
            (Some((opened, _)), Some(_)) => found.push(format!(
                "line {number}: {trimmed:?} inside the code fence opened at line {opened}; close that fence first"
            )),
            (None, None) => found.extend(
                broken_links(line, &exists)
                    .into_iter()
                    .map(|link| format!("line {number}: link to {link:?}, which does not exist")),
            ),
            _ => {}
        }
    }
    if let Some((line, _)) = open_fence {
        found.push(format!(
            "line {line}: code fence never closed; the rest of the page renders as code"
        ));
    }
    found
}

/// Relative link targets on `line` (`[text](target)`) that do not exist.
fn broken_links(line: &str, exists: &impl Fn(&str) -> bool) -> Vec<String> {
    let mut broken = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("").trim();
        let external = target.contains("://") || target.starts_with("mailto:");
        if !target.is_empty() && !external && !exists(target) {
            broken.push(target.to_string());
        }
        rest = &rest[end..];
    }
    broken
}

#[test]
fn every_markdown_file_closes_its_fences_and_links_to_files_that_exist() {
    let root = workspace_root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md found under {}",
        root.display()
    );
    let mut report = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable Markdown");
        let dir = file.parent().expect("a file has a folder");
        for problem in problems(&text, |target| dir.join(target).exists()) {
            report.push(format!(
                "{}: {problem}",
                file.strip_prefix(&root).unwrap_or(file).display()
            ));
        }
    }
    assert!(
        report.is_empty(),
        "Markdown problems:\n{}",
        report.join("\n")
    );
}

#[test]
fn an_unclosed_fence_and_a_missing_file_are_reported() {
    let text = "see [the map](ARCHITECTURE.md) and [gone](nowhere.md#top)\n\
                ```sh\n[not a link](inside-code.md)\n```\n\
                [site](https://example.com) [here](#anchor)\n\
                ```sh\ndig www\n```sh\n";
    let found = problems(text, |target| target == "ARCHITECTURE.md");
    assert_eq!(
        found,
        [
            "line 1: link to \"nowhere.md\", which does not exist",
            "line 8: \"```sh\" inside the code fence opened at line 6; close that fence first",
            "line 6: code fence never closed; the rest of the page renders as code",
        ]
    );
}
