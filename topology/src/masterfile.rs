//! Reading a zone's BIND-format master file (`dns.zones[].file`, RFC 1035
//! §5): stage one for zone files.
//!
//! Like [`crate::raw`] for the YAML, this stage only takes the text apart —
//! directives (`$ORIGIN`, `$TTL`, `$INCLUDE`), parentheses, comments,
//! quoted strings, omitted owners, TTLs and classes — and keeps each
//! record's owner, TTL, type and data as text. Stage two
//! ([`crate::validate`]) checks them by the same rules as the YAML
//! `records:`, so a record means the same whichever way it is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::name::DomainName;

/// How deep `$INCLUDE`s may nest: enough for any real layout, small enough
/// that a mistake ends quickly.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// A zone file as read: its records, the problems found while reading,
/// and every file read (the zone file and what it includes).
#[derive(Debug, Default)]
pub struct MasterFile {
    /// The records, in file order (an included file's where it is included).
    pub records: Vec<RawFileRecord>,
    /// Syntax problems, each at its file and line.
    pub errors: Vec<FileError>,
    /// Every file read, the zone file first.
    pub files: Vec<PathBuf>,
}

/// One resource record as written in a zone file.
#[derive(Debug, Clone)]
pub struct RawFileRecord {
    /// The file it was read from (shared by its records).
    pub file: Arc<Path>,
    /// The line it starts on (1-based).
    pub line: usize,
    /// The owner name, absolute (`@`, relative and omitted owners resolved).
    pub owner: String,
    /// The `$ORIGIN` in effect, against which names in the data are read.
    pub origin: DomainName,
    /// The TTL written on the record, else the `$TTL` in effect, in the
    /// topology's duration form (`3600` becomes `3600s`); `None`: the
    /// zone's `default_ttl`.
    pub ttl: Option<String>,
    /// The type mnemonic as written.
    pub rtype: String,
    /// The data fields as written (quotes and escapes kept), one space
    /// apart: what a YAML `value:` would hold.
    pub rdata: String,
    /// For a TXT record, the data fields with quotes removed and escapes
    /// resolved: its character strings (empty for other types).
    pub strings: Vec<Vec<u8>>,
}

/// A problem found while reading a zone file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub file: PathBuf,
    /// The line, when the problem has one (not for a missing file).
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Reads the zone file at `path` for the zone `origin`, following its
/// `$INCLUDE`s. Never fails as a whole: problems are collected with the
/// records that could be read, so that every problem is reported at once.
pub fn read(path: &Path, origin: &DomainName) -> MasterFile {
    let mut out = MasterFile::default();
    let mut reader = Reader {
        out: &mut out,
        stack: Vec::new(),
    };
    reader.file(path, origin.clone(), None);
    out
}

struct Reader<'a> {
    out: &'a mut MasterFile,
    /// The files being read, outermost first, to refuse include loops.
    stack: Vec<PathBuf>,
}

/// One field of a logical line.
pub(crate) struct Token {
    /// As written, quotes and escapes included.
    pub(crate) text: String,
    /// Quotes removed, escapes resolved.
    pub(crate) bytes: Vec<u8>,
}

impl Token {
    /// Whether the field was written in double quotes.
    pub(crate) fn is_quoted(&self) -> bool {
        self.text.starts_with('"')
    }
}

/// The fields of one record's data — a YAML `value:`, or a zone file's as
/// [`RawFileRecord::rdata`] keeps it — split by the zone-file rules.
pub(crate) fn data_fields(text: &str) -> Result<Vec<Token>, String> {
    let (lines, errors) = collect_lines(text.as_bytes());
    match errors.into_iter().next() {
        Some((_, message)) => Err(message),
        None => Ok(lines.into_iter().flat_map(|line| line.tokens).collect()),
    }
}

/// What the lines read so far of one file set for the next: the
/// `$ORIGIN` and `$TTL` in effect and the previous record's owner.
struct Position {
    file: Arc<Path>,
    origin: DomainName,
    ttl: Option<String>,
    owner: Option<String>,
}

/// One logical line: the tokens between newlines outside parentheses.
struct Line {
    number: usize,
    /// The line began with a blank: its owner is the previous record's.
    indented: bool,
    tokens: Vec<Token>,
}

impl Reader<'_> {
    fn error(&mut self, file: &Path, line: Option<usize>, message: impl Into<String>) {
        self.out.errors.push(FileError {
            file: file.to_owned(),
            line,
            message: message.into(),
        });
    }

    /// Reads one file; `included_at` is the `$INCLUDE` line naming it.
    fn file(&mut self, path: &Path, origin: DomainName, included_at: Option<(&Path, usize)>) {
        let here = |reader: &mut Self, message: String| match included_at {
            Some((file, line)) => reader.error(file, Some(line), message),
            None => reader.error(path, None, message),
        };
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if self.stack.contains(&canonical) {
            let chain: Vec<String> = self
                .stack
                .iter()
                .chain([&canonical])
                .map(|p| p.display().to_string())
                .collect();
            return here(
                self,
                format!(
                    "include loop: {}; remove the $INCLUDE that leads back",
                    chain.join(" includes ")
                ),
            );
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return here(
                self,
                format!(
                    "$INCLUDE nests deeper than {MAX_INCLUDE_DEPTH} files; include the records from fewer levels"
                ),
            );
        }
        // Only a regular file: `/dev/zero` or a FIFO would never end.
        let bytes = match std::fs::metadata(path).and_then(|meta| {
            if meta.is_file() {
                std::fs::read(path)
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        }) {
            Ok(bytes) => bytes,
            Err(e) => {
                return here(
                    self,
                    format!(
                        "cannot read zone file {}: {e}; write the path of a BIND-format zone file, relative to the file that names it",
                        path.display()
                    ),
                );
            }
        };
        self.out.files.push(path.to_owned());
        self.stack.push(canonical);
        let mut at = Position {
            file: path.into(),
            origin,
            ttl: None,
            owner: None,
        };
        logical_lines(&bytes, |piece| match piece {
            Ok(line) => self.line(path, line, &mut at),
            Err((line, message)) => self.error(path, Some(line), message),
        });
        self.stack.pop();
    }

    /// Reads one logical line of `path`: a directive or a record.
    fn line(&mut self, path: &Path, line: Line, at: &mut Position) {
        let number = line.number;
        let first = &line.tokens[0].text;
        if !line.indented && first.starts_with('$') {
            let args: Vec<&str> = line.tokens[1..].iter().map(|t| t.text.as_str()).collect();
            match (first.to_ascii_uppercase().as_str(), args.as_slice()) {
                ("$ORIGIN", [name]) => match DomainName::parse_in_zone(name, &at.origin) {
                    Ok(name) => at.origin = name,
                    Err(e) => self.error(path, Some(number), format!("$ORIGIN: {e}")),
                },
                ("$TTL", [value]) => {
                    let value = duration_text(value);
                    match crate::duration::parse_ttl(&value) {
                        Ok(_) => at.ttl = Some(value),
                        Err(e) => self.error(path, Some(number), format!("$TTL {e}")),
                    }
                }
                ("$INCLUDE", [file, rest @ ..]) if rest.len() <= 1 => {
                    let include_origin = match rest.first() {
                        None => Ok(at.origin.clone()),
                        Some(name) => DomainName::parse_in_zone(name, &at.origin),
                    };
                    match include_origin {
                        Ok(include_origin) => {
                            let target = match path.parent() {
                                Some(dir) => dir.join(file),
                                None => PathBuf::from(file),
                            };
                            self.file(&target, include_origin, Some((path, number)));
                        }
                        Err(e) => self.error(path, Some(number), format!("$INCLUDE: {e}")),
                    }
                }
                ("$ORIGIN" | "$TTL" | "$INCLUDE", _) => self.error(
                    path,
                    Some(number),
                    format!(
                        "{first} takes {}",
                        match first.to_ascii_uppercase().as_str() {
                            "$ORIGIN" => "one name: `$ORIGIN example.com.`",
                            "$TTL" => "one TTL: `$TTL 3600` or `$TTL 1h`",
                            _ => "a file and optionally an origin: `$INCLUDE hosts.zone`",
                        }
                    ),
                ),
                _ => self.error(
                    path,
                    Some(number),
                    format!(
                        "unknown directive {first}; zone files may use $ORIGIN, $TTL and $INCLUDE (write $GENERATE ranges out as records)"
                    ),
                ),
            }
            return;
        }
        let mut tokens = line.tokens.into_iter().peekable();
        if !line.indented {
            let name = tokens.next().map(|t| t.text).unwrap_or_default();
            at.owner = Some(absolute(&name, &at.origin));
        }
        let Some(owner) = at.owner.clone() else {
            self.error(
                path,
                Some(number),
                "the record has no owner name and no record comes before it; write its name at the start of the line",
            );
            return;
        };
        // TTL and class, each optional, in either order (RFC 1035 §5.1).
        let mut record_ttl = None;
        let mut class_error = None;
        while let Some(token) = tokens.peek() {
            let text = &token.text;
            if text.starts_with(|c: char| c.is_ascii_digit()) && record_ttl.is_none() {
                record_ttl = Some(duration_text(text));
            } else if text.eq_ignore_ascii_case("IN") {
            } else if ["CH", "HS", "CS", "ANY"]
                .iter()
                .any(|c| text.eq_ignore_ascii_case(c))
            {
                class_error = Some(format!(
                    "class {text} is not served; only class IN records may be in a zone file"
                ));
            } else {
                break;
            }
            tokens.next();
        }
        if let Some(message) = class_error {
            self.error(path, Some(number), message);
            return;
        }
        let Some(rtype) = tokens.next() else {
            self.error(
                path,
                Some(number),
                "the record has no type; write it as `NAME [TTL] [IN] TYPE DATA`, e.g. `www 300 IN A 192.0.2.1`",
            );
            return;
        };
        let data: Vec<Token> = tokens.collect();
        let strings = if rtype.text.eq_ignore_ascii_case("TXT") {
            data.iter().map(|t| t.bytes.clone()).collect()
        } else {
            Vec::new()
        };
        self.out.records.push(RawFileRecord {
            file: at.file.clone(),
            line: number,
            owner,
            origin: at.origin.clone(),
            ttl: record_ttl.or_else(|| at.ttl.clone()),
            rtype: rtype.text,
            rdata: data
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            strings,
        });
    }
}

/// A name as written in a zone file, made absolute: `@` is the origin, a
/// name ending in `.` is already absolute, others are relative to it.
/// Stage two checks what the text holds.
fn absolute(name: &str, origin: &DomainName) -> String {
    if name == "@" {
        origin.to_string()
    } else if name.ends_with('.') {
        name.to_owned()
    } else if *origin == DomainName::root() {
        format!("{name}.")
    } else {
        format!("{name}.{origin}")
    }
}

/// A zone-file TTL in the topology's duration form: bare seconds get their
/// unit, BIND's upper-case units (`1H30M`) are lowered.
pub(crate) fn duration_text(text: &str) -> String {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{text}s")
    } else {
        text.to_ascii_lowercase()
    }
}

/// [`logical_lines`], collected: the lines and the syntax errors.
fn collect_lines(bytes: &[u8]) -> (Vec<Line>, Vec<(usize, String)>) {
    let (mut lines, mut errors) = (Vec::new(), Vec::new());
    logical_lines(bytes, |piece| match piece {
        Ok(line) => lines.push(line),
        Err(error) => errors.push(error),
    });
    (lines, errors)
}

/// Splits a file into logical lines: parentheses join physical lines, `;`
/// starts a comment outside quotes, `"..."` is one field, `\X` and `\DDD`
/// escape a character. Hands each line with its tokens, and each syntax
/// error with its line number, to `each` as it comes: a zone file of a
/// million records is never held as a million token lists.
fn logical_lines(bytes: &[u8], mut each: impl FnMut(Result<Line, (usize, String)>)) {
    let mut number = 1;
    let mut at = 0;
    // The logical line being built, and where its open parenthesis is.
    let mut current: Option<Line> = None;
    let mut open: Option<usize> = None;
    let mut start_of_line = true;
    while at < bytes.len() {
        let byte = bytes[at];
        if start_of_line && open.is_none() {
            if let Some(line) = current.take().filter(|l| !l.tokens.is_empty()) {
                each(Ok(line));
            }
            current = Some(Line {
                number,
                indented: byte == b' ' || byte == b'\t',
                tokens: Vec::new(),
            });
        }
        start_of_line = false;
        let line = current.get_or_insert_with(|| Line {
            number,
            indented: false,
            tokens: Vec::new(),
        });
        match byte {
            b'\n' => {
                number += 1;
                start_of_line = true;
                at += 1;
            }
            b' ' | b'\t' | b'\r' => at += 1,
            b';' => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            b'(' => {
                if open.is_some() {
                    each(Err((
                        number,
                        "a parenthesis opens inside another; close the first before opening again"
                            .into(),
                    )));
                }
                open = Some(number);
                at += 1;
            }
            b')' => {
                if open.take().is_none() {
                    each(Err((number, "`)` closes no parenthesis; remove it".into())));
                }
                at += 1;
            }
            b'"' => {
                let start = at;
                at += 1;
                let mut decoded = Vec::new();
                loop {
                    match bytes.get(at) {
                        None | Some(b'\n') => {
                            each(Err((
                                number,
                                "a quoted string is not closed on its line; add the closing `\"`"
                                    .into(),
                            )));
                            break;
                        }
                        Some(b'"') => {
                            at += 1;
                            break;
                        }
                        Some(b'\\') => at = escape(bytes, at, &mut decoded),
                        Some(&other) => {
                            decoded.push(other);
                            at += 1;
                        }
                    }
                }
                line.tokens.push(Token {
                    text: String::from_utf8_lossy(&bytes[start..at]).into_owned(),
                    bytes: decoded,
                });
            }
            _ => {
                let start = at;
                let mut decoded = Vec::new();
                while let Some(&b) = bytes.get(at) {
                    match b {
                        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                        b'\\' => at = escape(bytes, at, &mut decoded),
                        _ => {
                            decoded.push(b);
                            at += 1;
                        }
                    }
                }
                line.tokens.push(Token {
                    text: String::from_utf8_lossy(&bytes[start..at]).into_owned(),
                    bytes: decoded,
                });
            }
        }
    }
    if let Some(line) = open {
        each(Err((
            line,
            "this parenthesis is never closed; add the `)` that ends the record".into(),
        )));
    }
    if let Some(line) = current.filter(|l| !l.tokens.is_empty()) {
        each(Ok(line));
    }
}

/// Resolves the escape at `bytes[at]` (a `\`): `\DDD` is the byte with
/// that decimal value, `\X` is X. Returns the index after it.
fn escape(bytes: &[u8], at: usize, decoded: &mut Vec<u8>) -> usize {
    let digits = &bytes[at + 1..bytes.len().min(at + 4)];
    if digits.len() == 3 && digits.iter().all(u8::is_ascii_digit) {
        let value = digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        decoded.push(u8::try_from(value).unwrap_or(u8::MAX));
        at + 4
    } else if let Some(&next) = bytes.get(at + 1) {
        decoded.push(next);
        at + 2
    } else {
        at + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, bool, Vec<String>)> {
        let (lines, errors) = collect_lines(text.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        lines
            .into_iter()
            .map(|l| {
                (
                    l.number,
                    l.indented,
                    l.tokens.into_iter().map(|t| t.text).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn parentheses_join_lines_and_comments_end_them() {
        let text = "@ IN SOA ns1 host ( 1 ; serial\n  2 3\n 4 5 )\n\twww A 192.0.2.1 ; web\n";
        let got = lines(text);
        assert_eq!(got[0].0, 1);
        assert_eq!(got[0].2.len(), 10);
        assert_eq!(
            got[1],
            (4, true, vec!["www".into(), "A".into(), "192.0.2.1".into()])
        );
    }

    #[test]
    fn quoted_strings_keep_semicolons_and_resolve_escapes() {
        let (lines, errors) = collect_lines(b"t TXT \"a; b\" \"q\\\"\\065\" ; c\n");
        assert!(errors.is_empty());
        let strings: Vec<Vec<u8>> = lines[0].tokens[2..]
            .iter()
            .map(|t| t.bytes.clone())
            .collect();
        assert_eq!(strings, [b"a; b".to_vec(), b"q\"A".to_vec()]);
    }

    #[test]
    fn unbalanced_parentheses_and_quotes_are_reported_with_their_line() {
        let (_, errors) = collect_lines(b"a A 1\nb TXT ( \"x\n");
        let found: Vec<usize> = errors.iter().map(|(line, _)| *line).collect();
        assert_eq!(found, [2, 2], "{errors:?}");
        let (_, errors) = collect_lines(b"a A 1 )\n");
        assert!(errors[0].1.contains("closes no parenthesis"));
    }

    #[test]
    fn ttl_and_class_in_either_order_and_omitted_owner() {
        let dir = std::env::temp_dir().join(format!("masterfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z");
        std::fs::write(
            &path,
            "$TTL 1H\nwww IN 300 A 192.0.2.1\n  600 IN AAAA 2001:db8::1\nmail A 192.0.2.2\n",
        )
        .unwrap();
        let origin = DomainName::parse_absolute("example.com.").unwrap();
        let file = read(&path, &origin);
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        let got: Vec<(&str, Option<&str>, &str)> = file
            .records
            .iter()
            .map(|r| (r.owner.as_str(), r.ttl.as_deref(), r.rtype.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("www.example.com.", Some("300s"), "A"),
                ("www.example.com.", Some("600s"), "AAAA"),
                ("mail.example.com.", Some("1h"), "A"),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
