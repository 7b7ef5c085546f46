//! Encryption at rest for `serve`, `demo` and `compact`: where the master
//! key comes from, where the keyring lives, and opening both.
//!
//! The keyring lives outside the data directory (by default beside it, as
//! `<data>.keys`), so a copy of the data directory alone holds nothing
//! readable, and a twin deleted after the copy was taken stays unreadable
//! in it. When no master key is configured, one is generated on the first
//! start into `<keyring>/master.key` (readable by its owner only) with a
//! warning: that keeps a fresh install private by default, while a
//! production setup names a key file elsewhere, an environment variable or
//! a secrets manager's command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use doppel_crypto::{DataKey, Keyring, MasterKey, MasterKeySource};
use serde::Deserialize;

use crate::cli::EncryptionArgs;

/// The environment variable read for a base64 master key when no other
/// source is configured.
pub const MASTER_KEY_VARIABLE: &str = "DOPPEL_MASTER_KEY";
/// The generated master key's file name inside the keyring directory.
const GENERATED_KEY_FILE: &str = "master.key";

/// `[encryption]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct EncryptionFileConfig {
    /// Whether data is sealed at rest (default true).
    pub enabled: Option<bool>,
    /// Directory of the keyring [default: `<data>.keys`].
    pub keyring: Option<PathBuf>,
    /// File holding the master key (base64 text or 32 raw bytes).
    pub master_key_file: Option<PathBuf>,
    /// Environment variable holding the master key as base64.
    pub master_key_env: Option<String>,
    /// Shell command printing the master key as base64.
    pub master_key_command: Option<String>,
    /// Files of earlier master keys, to finish a rotation that was
    /// interrupted.
    #[serde(default)]
    pub previous_master_key_files: Vec<PathBuf>,
}

/// Encryption settings, resolved: `None` in [`crate::config::Settings`]
/// means data is written in plain files.
#[derive(Debug, Clone)]
pub struct EncryptionSettings {
    /// The keyring directory.
    pub keyring: PathBuf,
    /// Where the master key comes from; `None` for the generated key file.
    pub master: Option<MasterKeySource>,
    /// Earlier master keys.
    pub previous: Vec<MasterKeySource>,
}

impl EncryptionSettings {
    /// Resolves `[encryption]` with the flags: `--master-key-file` wins
    /// over the file's sources, which win over [`MASTER_KEY_VARIABLE`];
    /// `--no-encryption` turns it off.
    pub fn resolve(
        file: EncryptionFileConfig,
        data: &Path,
        args: EncryptionArgs,
    ) -> anyhow::Result<Option<Self>> {
        let EncryptionArgs { keyring, master_key_file, no_encryption } = args;
        if no_encryption || file.enabled == Some(false) {
            return Ok(None);
        }
        let sources = [
            file.master_key_file.clone().map(MasterKeySource::File),
            file.master_key_env.clone().map(MasterKeySource::Env),
            file.master_key_command.clone().map(MasterKeySource::Command),
        ];
        let configured: Vec<MasterKeySource> = sources.into_iter().flatten().collect();
        if configured.len() > 1 {
            anyhow::bail!(
                "[encryption] names {} master key sources; set one of master_key_file, master_key_env, master_key_command",
                configured.len()
            );
        }
        let master = master_key_file
            .map(MasterKeySource::File)
            .or_else(|| configured.into_iter().next())
            .or_else(|| {
                std::env::var_os(MASTER_KEY_VARIABLE)
                    .map(|_| MasterKeySource::Env(MASTER_KEY_VARIABLE.into()))
            });
        Ok(Some(Self {
            keyring: keyring.or(file.keyring).unwrap_or_else(|| default_keyring(data)),
            master,
            previous: file.previous_master_key_files.into_iter().map(MasterKeySource::File).collect(),
        }))
    }

    /// The source the master key is read from now.
    pub fn master_source(&self) -> MasterKeySource {
        self.master.clone().unwrap_or_else(|| MasterKeySource::File(self.keyring.join(GENERATED_KEY_FILE)))
    }

    /// Opens the keyring under the master key, generating the key file
    /// first when no source is configured and it does not exist yet.
    pub fn open(&self) -> anyhow::Result<Arc<Keyring>> {
        if self.master.is_none() {
            self.generate_key_file()?;
        }
        let source = self.master_source();
        let master =
            source.load().with_context(|| format!("cannot read the master key ({})", describe(&source)))?;
        let previous = self
            .previous
            .iter()
            .map(|s| s.load().with_context(|| format!("cannot read an earlier master key ({})", describe(s))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let keyring = Keyring::open(&self.keyring, master, previous)
            .with_context(|| format!("cannot open the keyring {}", self.keyring.display()))?;
        if let Some(offset) = keyring.torn_log_at() {
            tracing::warn!(
                keyring = %self.keyring.display(),
                offset,
                "the key log ended in a torn record (a crash while keys were created, never acknowledged); it was cut off"
            );
        }
        Ok(Arc::new(keyring))
    }

    fn generate_key_file(&self) -> anyhow::Result<()> {
        let path = self.keyring.join(GENERATED_KEY_FILE);
        if path.exists() {
            return Ok(());
        }
        write_new_master_key(&path)?;
        tracing::warn!(
            file = %path.display(),
            "generated a master key for encryption at rest beside the keyring; for production keep it elsewhere \
             ([encryption] master_key_file, master_key_env or master_key_command)"
        );
        Ok(())
    }
}

/// Writes a fresh master key as base64 text to a new file readable by its
/// owner only, creating its directory (mode 0700) first.
pub fn write_new_master_key(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the directory of {}", path.display()))?;
    }
    let key = MasterKey::generate()?;
    write_private(path, key.to_base64().as_bytes())
}

/// `<data>.keys`, beside the data directory.
pub fn default_keyring(data: &Path) -> PathBuf {
    let name = data.file_name().map_or_else(|| "doppel-data".into(), |n| n.to_string_lossy().into_owned());
    data.with_file_name(format!("{name}.keys"))
}

fn describe(source: &MasterKeySource) -> String {
    match source {
        MasterKeySource::File(path) => format!("file {}", path.display()),
        MasterKeySource::Env(var) => format!("environment variable {var}"),
        MasterKeySource::Command(command) => format!("command `{command}`"),
    }
}

/// Writes `bytes` to a new file readable by its owner only, durably.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The key a reserved purpose seals under (auth state, audit log),
/// created on first use.
pub fn reserved_key(keyring: &Keyring, number: u64) -> anyhow::Result<DataKey> {
    keyring.get_or_create(number).context("cannot create a key in the keyring")
}

/// Re-reads the master key from its source and, when it changed, reseals
/// the keyring under it while everything stays in use: rotation without
/// downtime, triggered by SIGHUP.
pub fn rotate_if_changed(settings: &EncryptionSettings, keyring: &Keyring) -> anyhow::Result<bool> {
    let source = settings.master_source();
    let master =
        source.load().with_context(|| format!("cannot read the master key ({})", describe(&source)))?;
    if master.id() == keyring.master_id() {
        return Ok(false);
    }
    let (old, new) = (keyring.master_id(), master.id());
    keyring.rotate(master).context("cannot reseal the keyring under the new master key")?;
    tracing::info!(%old, %new, "keyring resealed under a new master key");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyring_defaults_to_beside_the_data_directory() {
        assert_eq!(default_keyring(Path::new("/srv/doppel-data")), PathBuf::from("/srv/doppel-data.keys"));
        assert_eq!(default_keyring(Path::new("data")), PathBuf::from("data.keys"));
    }

    #[test]
    fn a_generated_master_key_opens_the_keyring_again_and_rotation_reseals_it() {
        let dir = tempfile::tempdir().unwrap();
        let args = EncryptionArgs { keyring: Some(dir.path().join("keys")), ..EncryptionArgs::default() };
        let settings =
            EncryptionSettings::resolve(EncryptionFileConfig::default(), &dir.path().join("data"), args)
                .unwrap()
                .unwrap();
        if std::env::var_os(MASTER_KEY_VARIABLE).is_some() {
            return;
        }
        let keyring = settings.open().unwrap();
        keyring.create(20).unwrap();
        let generated = dir.path().join("keys").join(GENERATED_KEY_FILE);
        assert!(generated.exists());
        assert!(!rotate_if_changed(&settings, &keyring).unwrap());
        drop(keyring);
        assert!(settings.open().unwrap().get(20).is_some());

        let new_key = dir.path().join("new.key");
        write_private(&new_key, MasterKey::generate().unwrap().to_base64().as_bytes()).unwrap();
        let rotated = EncryptionSettings { master: Some(MasterKeySource::File(new_key)), ..settings.clone() };
        let keyring = settings.open().unwrap();
        assert!(rotate_if_changed(&rotated, &keyring).unwrap());
        drop(keyring);
        assert!(rotated.open().unwrap().get(20).is_some(), "the keys survive the rotation");
        assert!(settings.open().is_err(), "the old master key no longer opens the keyring");
    }

    #[test]
    fn two_master_key_sources_in_the_file_are_refused() {
        let file = EncryptionFileConfig {
            master_key_file: Some("k".into()),
            master_key_command: Some("pass show doppel".into()),
            ..EncryptionFileConfig::default()
        };
        let error = EncryptionSettings::resolve(file, Path::new("d"), EncryptionArgs::default()).unwrap_err();
        assert!(error.to_string().contains("master key sources"), "{error}");
    }

    #[test]
    fn encryption_can_be_turned_off() {
        let off = EncryptionFileConfig { enabled: Some(false), ..EncryptionFileConfig::default() };
        assert!(
            EncryptionSettings::resolve(off, Path::new("d"), EncryptionArgs::default()).unwrap().is_none()
        );
        let args = EncryptionArgs { no_encryption: true, ..EncryptionArgs::default() };
        let flag = EncryptionSettings::resolve(EncryptionFileConfig::default(), Path::new("d"), args);
        assert!(flag.unwrap().is_none());
    }
}
