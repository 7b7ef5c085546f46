//! Why a model definition could not be loaded, and where in its text.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// A line and column (both from 1, the column counted in characters) in a
/// definition's text, so an editor can jump to the mistake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Location {
    /// The location of a byte offset in `text`; offsets past the end or
    /// inside a character are clamped to the nearest earlier character.
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Self { line: before.matches('\n').count() + 1, column: before[line_start..].chars().count() + 1 }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One step of a [`FieldPath`]: a table key or an array index.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PathSegment {
    /// A key of a table or object (`signals`, `heart_rate`, `range`).
    Key(String),
    /// A position in an array (`windows[1]`, `relations[0]`).
    Index(usize),
}

/// Where in a definition a field sits, such as
/// `signals."blood_pressure.systolic".range` or `relations[2].name`. Keys
/// that hold a dot are quoted, the way TOML writes them.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct FieldPath(Vec<PathSegment>);

impl FieldPath {
    /// The path of the whole definition.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        Self(segments)
    }

    /// The steps from the root.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// Converts the path serde_path_to_error tracked while deserializing.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        Self(
            path.iter()
                .filter_map(|segment| match segment {
                    Segment::Seq { index } => Some(PathSegment::Index(*index)),
                    Segment::Map { key } | Segment::Enum { variant: key } => {
                        Some(PathSegment::Key(key.clone()))
                    }
                    Segment::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Index(index) => write!(f, "[{index}]")?,
                PathSegment::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    if key.contains('.') || key.is_empty() {
                        write!(f, "{key:?}")?;
                    } else {
                        f.write_str(key)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The text format a definition was written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// TOML, the format people write by hand.
    Toml,
    /// JSON, the format the HTTP API takes.
    Json,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Toml => "TOML",
            Self::Json => "JSON",
        })
    }
}

/// Why a model definition could not be loaded. Every variant names the
/// field and, where the text format allows, the line and column.
#[derive(Debug, Error)]
pub enum DefinitionError {
    /// The text is not well-formed TOML or JSON, or a field has the wrong
    /// type, an unknown name or a value its type refuses (`cadence = "0s"`).
    #[error("{format} model definition: {field}{}: {message}", at(.location))]
    Syntax {
        /// TOML or JSON.
        format: Format,
        /// The field the parser was reading (the top level for syntax errors).
        field: FieldPath,
        /// Where in the text, when the parser says.
        location: Option<Location>,
        /// The parser's own description of the problem.
        message: String,
    },
    /// The definition parses but breaks a rule of the model format (range
    /// with min above max, a category signal without categories, ...).
    #[error("model {model:?}: {field}{}: {reason}", at(.location))]
    Invalid {
        /// The model's name as written.
        model: String,
        /// The offending field.
        field: FieldPath,
        /// Where in the text, when known (TOML only).
        location: Option<Location>,
        /// What rule it breaks, in words the author can act on.
        reason: String,
    },
    /// The definition is larger than [`MAX_DEFINITION_BYTES`](crate::MAX_DEFINITION_BYTES).
    #[error("model definition is {bytes} bytes, more than the limit of {limit_bytes} bytes")]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit_bytes: usize,
    },
    /// A definition file could not be read.
    #[error("cannot read model definition {}: {source}", .path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file's name ends in neither `.toml` nor `.json`.
    #[error("{}: model definitions must be .toml or .json files", .path.display())]
    UnsupportedFile {
        /// The file.
        path: PathBuf,
    },
    /// A definition file that failed; wraps the reason with the file's path.
    #[error("{}: {source}", .path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: Box<DefinitionError>,
    },
    /// A model of this name is already registered (built-ins included):
    /// silently replacing one would change how existing twins validate.
    #[error("a model named {name:?} is already registered; give the new one another name")]
    DuplicateModel {
        /// The name both share.
        name: String,
    },
}

/// `" (line 3, column 9)"` or nothing, for the messages above.
fn at(location: &Option<Location>) -> String {
    location.map(|location| format!(" ({location})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Location::of_offset(text, 0), Location { line: 1, column: 1 });
        assert_eq!(Location::of_offset(text, 6), Location { line: 2, column: 1 });
        // "é" is two bytes but one column.
        assert_eq!(Location::of_offset(text, 9), Location { line: 2, column: 3 });
        // Inside a character and past the end are clamped, never a panic.
        assert_eq!(Location::of_offset(text, 8), Location { line: 2, column: 2 });
        assert_eq!(Location::of_offset(text, 999), Location { line: 3, column: 1 });
    }

    #[test]
    fn paths_quote_dotted_keys_and_index_arrays() {
        let path = FieldPath::root().key("signals").key("blood_pressure.systolic").key("range");
        assert_eq!(path.to_string(), "signals.\"blood_pressure.systolic\".range");
        assert_eq!(FieldPath::root().key("relations").index(2).key("name").to_string(), "relations[2].name");
        assert_eq!(FieldPath::root().to_string(), "(top level)");
    }
}
