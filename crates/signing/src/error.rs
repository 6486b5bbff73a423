/// Errors of key handling and sealing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key is not base64 of the right length.
    #[error("the key `{name}` must be base64 of {expected} bytes")]
    BadKey {
        /// Which key (as configured).
        name: &'static str,
        /// Bytes expected.
        expected: usize,
    },
    /// Production mode and no key configured.
    #[error(
        "`{name}` must be configured in production mode (base64 of 32 random bytes, or a key file)"
    )]
    MissingKey {
        /// The configuration key.
        name: &'static str,
    },
    /// Sealed data did not open: wrong key, or tampered with.
    #[error("sealed data could not be opened (wrong key or tampered)")]
    Unseal,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A key file could not be read or written.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
