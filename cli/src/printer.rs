//! Every byte `gtm` prints goes through the [`Printer`]: results on stdout
//! (text, or JSON with `--json`), progress and warnings on stderr, colour
//! only on a terminal (and never with `NO_COLOR`).

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::cli::ColorChoice;

/// A colour or weight for a piece of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Healthy, done.
    Good,
    /// Down, failed.
    Bad,
    /// Degraded, unknown, overridden.
    Warn,
    /// Headings and names.
    Bold,
    /// Secondary detail.
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Good => "32",
            Style::Bad => "31",
            Style::Warn => "33",
            Style::Bold => "1",
            Style::Dim => "2",
        }
    }
}

/// The one output channel of the program.
pub struct Printer {
    json: bool,
    color_out: bool,
    color_err: bool,
    tty_out: bool,
}

impl Printer {
    /// A printer for `--json` and `--color`.
    pub fn new(json: bool, color: ColorChoice) -> Printer {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let decide = |tty: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let tty_out = std::io::stdout().is_terminal();
        Printer {
            json,
            color_out: decide(tty_out) && !json,
            color_err: decide(std::io::stderr().is_terminal()),
            tty_out,
        }
    }

    /// Whether results are printed as JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// `text` styled for stdout.
    pub fn paint(&self, style: Style, text: impl Display) -> String {
        paint(self.color_out, style, text)
    }

    /// `text` styled for stderr.
    pub fn paint_err(&self, style: Style, text: impl Display) -> String {
        paint(self.color_err, style, text)
    }

    /// A line of the human-readable result (nothing with `--json`).
    pub fn line(&self, text: impl Display) {
        if !self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
    }

    /// The result: `value` as JSON with `--json`, else whatever `human`
    /// prints through [`Printer::line`].
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce(&Printer)) {
        if self.json {
            self.json_value(value, true);
        } else {
            human(self);
        }
    }

    /// One JSON document on one line (for `--watch` and `logs -f`).
    pub fn json_line<T: Serialize>(&self, value: &T) {
        self.json_value(value, false);
    }

    fn json_value<T: Serialize>(&self, value: &T, pretty: bool) {
        let text = if pretty {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        };
        let mut out = std::io::stdout().lock();
        match text {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(error) => {
                let _ = writeln!(out, "{{\"error\": \"cannot encode the result: {error}\"}}");
            }
        }
        let _ = out.flush();
    }

    /// Raw bytes on stdout (completion scripts, log contents).
    pub fn raw(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    /// Progress on stderr, in text and JSON mode alike.
    pub fn progress(&self, text: impl Display) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// A warning on stderr.
    pub fn warn(&self, text: impl Display) {
        let label = self.paint_err(Style::Warn, "warning:");
        self.progress(format_args!("{label} {text}"));
    }

    /// The error that ends the program, with its chain.
    pub fn error(&self, error: &anyhow::Error) {
        let label = self.paint_err(Style::Bad, "gtm: error:");
        self.progress(format_args!("{label} {error:#}"));
    }

    /// Clears the terminal before a `--watch` refresh (only on a terminal).
    pub fn clear_screen(&self) {
        if self.tty_out && !self.json {
            self.raw(b"\x1b[2J\x1b[H");
        }
    }
}

fn paint(enabled: bool, style: Style, text: impl Display) -> String {
    if enabled {
        format!("\x1b[{}m{text}\x1b[0m", style.code())
    } else {
        text.to_string()
    }
}

/// A text table: columns padded to their widest cell. Cells are measured
/// before they are styled, so colour never breaks the alignment.
#[derive(Default)]
pub struct Table {
    rows: Vec<Vec<(String, Option<Style>)>>,
}

impl Table {
    /// A table with this header row (printed bold).
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![
                header
                    .iter()
                    .map(|h| (h.to_string(), Some(Style::Bold)))
                    .collect(),
            ],
        }
    }

    /// Adds a row whose cells carry their own style.
    pub fn styled_row(&mut self, cells: Vec<(String, Option<Style>)>) {
        self.rows.push(cells);
    }

    /// The lines of the table, styled through `printer`.
    pub fn lines(&self, printer: &Printer) -> Vec<String> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (index, (cell, _)) in row.iter().enumerate() {
                widths[index] = widths[index].max(cell.chars().count());
            }
        }
        self.rows
            .iter()
            .map(|row| {
                let mut line = String::new();
                for (index, (cell, style)) in row.iter().enumerate() {
                    let last = index + 1 == row.len();
                    let pad = if last {
                        0
                    } else {
                        widths[index] - cell.chars().count() + 2
                    };
                    match style {
                        Some(style) => line.push_str(&printer.paint(*style, cell)),
                        None => line.push_str(cell),
                    }
                    line.push_str(&" ".repeat(pad));
                }
                line.trim_end().to_owned()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_the_unstyled_width() {
        let printer = Printer {
            json: false,
            color_out: true,
            color_err: false,
            tty_out: false,
        };
        let mut table = Table::new(&["REGION", "STATE"]);
        table.styled_row(vec![
            ("us-east".into(), None),
            ("up".into(), Some(Style::Good)),
        ]);
        table.styled_row(vec![("ap-south-long".into(), None), ("down".into(), None)]);
        let lines = table.lines(&printer);
        assert_eq!(lines[1], "us-east        \x1b[32mup\x1b[0m");
        assert_eq!(lines[2], "ap-south-long  down");
    }
}
