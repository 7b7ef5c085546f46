//! Finding a field of a TOML definition in its text, so rule violations
//! found after parsing can still name a line and column.

use toml::de::{DeTable, DeValue};

use super::{FieldPath, Location, PathSegment};

/// Where `field` is written in `text`: its key when present, else the
/// nearest enclosing table or array that is (a missing `categories`
/// points at its signal's table). `None` when the text does not parse,
/// which cannot happen for a definition that got as far as validation.
pub(crate) fn toml_field(text: &str, field: &FieldPath) -> Option<Location> {
    let root = DeTable::parse(text).ok()?;
    let mut table = Some(root.get_ref());
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    let mut found = None;
    for segment in field.segments() {
        let value = match (segment, table, array) {
            (PathSegment::Key(key), Some(current), _) => match current.get_key_value(key.as_str()) {
                // Point at the key: that is what the author wrote and will look for.
                Some((key, value)) => {
                    found = Some(key.span().start);
                    value
                }
                None => break,
            },
            (PathSegment::Index(index), _, Some(items)) => match items.get(*index) {
                Some(item) => {
                    found = Some(item.span().start);
                    item
                }
                None => break,
            },
            _ => break,
        };
        (table, array) = match value.get_ref() {
            DeValue::Table(inner) => (Some(inner), None),
            DeValue::Array(items) => (None, Some(&**items)),
            _ => (None, None),
        };
    }
    found.map(|offset| Location::of_offset(text, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"m\"\nwindows = [\"1h\", \"2h\"]\n\n[signals.\"a.b\"]\nkind = \"gauge\"\nrange = [1, 2]\n\n[[relations]]\nname = \"r\"\n";

    #[test]
    fn finds_keys_in_nested_and_dotted_tables() {
        let path = FieldPath::root().key("signals").key("a.b").key("range");
        assert_eq!(toml_field(TEXT, &path), Some(Location { line: 6, column: 1 }));
    }

    #[test]
    fn finds_array_items_and_arrays_of_tables() {
        let window = FieldPath::root().key("windows").index(1);
        assert_eq!(toml_field(TEXT, &window), Some(Location { line: 2, column: 18 }));
        let relation = FieldPath::root().key("relations").index(0).key("name");
        assert_eq!(toml_field(TEXT, &relation), Some(Location { line: 9, column: 1 }));
    }

    #[test]
    fn a_missing_field_points_at_its_nearest_written_parent() {
        let path = FieldPath::root().key("signals").key("a.b").key("categories");
        let location = toml_field(TEXT, &path).unwrap();
        assert_eq!(location.line, 4, "{location}");
    }
}
