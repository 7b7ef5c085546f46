//! The models a deployment knows: the built-ins plus the users' own.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DefinitionError, MAX_DEFINITION_BYTES, ModelDef, validate};

/// Models by name, shared as `Arc`s so every live twin can hold its model
/// cheaply. Names are unique: a model is never silently replaced, because
/// that would change how existing twins' data is checked.
#[derive(Clone, Debug, Default)]
pub struct ModelRegistry {
    models: BTreeMap<String, Arc<ModelDef>>,
}

impl ModelRegistry {
    /// A registry with no models, for tests and embedders that bring their own.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A registry holding the built-in models (`person`).
    pub fn with_builtins() -> Self {
        let person = super::person_arc();
        Self { models: BTreeMap::from([(person.name.clone(), person)]) }
    }

    /// Reads, parses and registers one `.toml` or `.json` definition file.
    pub fn load_file(&mut self, path: &Path) -> Result<(), DefinitionError> {
        let def = read_definition(path)?;
        self.insert(def).map_err(|source| in_file(path, source))
    }

    /// Registers every `.toml` and `.json` file directly in `dir` (other
    /// files and subdirectories are skipped), in file-name order. All or
    /// nothing: if one file fails, none is registered. Returns how many
    /// models were added.
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, DefinitionError> {
        let read_error = |source| DefinitionError::Read { path: dir.to_owned(), source };
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.is_file() && format_of(&path).is_some() {
                paths.push(path);
            }
        }
        paths.sort();

        let mut staged = self.clone();
        for path in &paths {
            let def = read_definition(path)?;
            staged.insert(def).map_err(|source| in_file(path, source))?;
        }
        *self = staged;
        Ok(paths.len())
    }

    /// Checks `def` and registers it under its name.
    pub fn insert(&mut self, def: ModelDef) -> Result<(), DefinitionError> {
        validate::validate(&def).map_err(|invalid| invalid.into_error(&def, None))?;
        if self.models.contains_key(&def.name) {
            return Err(DefinitionError::DuplicateModel { name: def.name });
        }
        self.models.insert(def.name.clone(), Arc::new(def));
        Ok(())
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<ModelDef>> {
        self.models.get(name).cloned()
    }

    /// Every registered model's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }
}

#[derive(Clone, Copy)]
enum FileFormat {
    Toml,
    Json,
}

fn format_of(path: &Path) -> Option<FileFormat> {
    let extension = path.extension()?.to_str()?;
    if extension.eq_ignore_ascii_case("toml") {
        Some(FileFormat::Toml)
    } else if extension.eq_ignore_ascii_case("json") {
        Some(FileFormat::Json)
    } else {
        None
    }
}

fn read_definition(path: &Path) -> Result<ModelDef, DefinitionError> {
    let format = format_of(path).ok_or_else(|| DefinitionError::UnsupportedFile { path: path.to_owned() })?;
    let read_error = |source| DefinitionError::Read { path: path.to_owned(), source };
    let file = fs::File::open(path).map_err(read_error)?;
    // Read one byte past the limit, so an oversized file is noticed without
    // reading all of it.
    let limit = MAX_DEFINITION_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() > MAX_DEFINITION_BYTES {
        let size = fs::metadata(path).map_or(bytes.len() as u64, |metadata| metadata.len());
        let error = DefinitionError::TooLarge { bytes: size, limit_bytes: MAX_DEFINITION_BYTES };
        return Err(in_file(path, error));
    }
    let text = String::from_utf8(bytes).map_err(|error| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (invalid byte at offset {})", error.utf8_error().valid_up_to()),
        ))
    })?;
    match format {
        FileFormat::Toml => ModelDef::from_toml(&text),
        FileFormat::Json => ModelDef::from_json(&text),
    }
    .map_err(|source| in_file(path, source))
}

fn in_file(path: &Path, source: DefinitionError) -> DefinitionError {
    DefinitionError::InFile { path: PathBuf::from(path), source: Box::new(source) }
}
