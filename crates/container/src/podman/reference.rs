//! Fully qualified image references.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A fully qualified image reference: `REGISTRY/PATH:TAG` or `REGISTRY/PATH@sha256:…`, for example
/// `localhost/containerpub/python:3`.
///
/// A short name (`python:3`) is refused: Podman would try to resolve it against registries, and a
/// missing local image would turn into a pull attempt. `localhost/…` never leaves the machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef(String);

impl ImageRef {
    /// Parses and checks a reference.
    ///
    /// # Errors
    /// [`Error::InvalidImageRef`] saying what is wrong.
    pub fn parse(reference: &str) -> Result<Self> {
        let invalid = |reason| {
            Err(Error::InvalidImageRef {
                reference: reference.to_owned(),
                reason,
            })
        };
        if reference.is_empty() || reference.len() > 255 {
            return invalid("must be 1 to 255 characters");
        }
        if !reference.bytes().all(|b| b.is_ascii_graphic()) {
            return invalid("must be printable ASCII without spaces");
        }
        let Some((registry, rest)) = reference.split_once('/') else {
            return invalid("needs a registry part (localhost/NAME:TAG)");
        };
        if !(registry == "localhost" || registry.contains('.') || registry.contains(':')) {
            return invalid("needs a registry part (localhost/NAME:TAG), not a short name");
        }
        let (path, has_version) = match rest.split_once('@') {
            Some((path, digest)) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return invalid("digest must be sha256: followed by 64 hex digits");
                }
                (path, true)
            }
            None => match rest.rsplit_once(':') {
                Some((path, tag)) => {
                    let tag_ok = !tag.is_empty()
                        && tag.len() <= 128
                        && tag
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                        && !tag.starts_with(['.', '-']);
                    if !tag_ok {
                        return invalid(
                            "tag must be 1 to 128 of [A-Za-z0-9_.-], not starting with . or -",
                        );
                    }
                    (path, true)
                }
                None => (rest, false),
            },
        };
        if !has_version {
            return invalid("needs a tag or a digest (NAME:TAG)");
        }
        let path_ok = !path.is_empty()
            && path.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
                    && part
                        .as_bytes()
                        .first()
                        .is_some_and(u8::is_ascii_alphanumeric)
            });
        if !path_ok {
            return invalid(
                "repository path must be lowercase [a-z0-9._-] components separated by /",
            );
        }
        Ok(Self(reference.to_owned()))
    }

    /// The reference as Podman takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The reference without its tag or digest (`localhost/containerpub/python`).
    pub fn repository(&self) -> &str {
        let without_digest = self
            .0
            .split_once('@')
            .map_or(self.0.as_str(), |(repo, _)| repo);
        match without_digest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => without_digest,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl AsRef<str> for ImageRef {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_fully_qualified_references() {
        for ok in [
            "localhost/containerpub/python:3",
            "localhost/fn-1234/v2:latest",
            "registry.example.com/team/img:1.2.3",
            "registry.example.com:5000/img:tag",
            "localhost/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(
                ImageRef::parse(ok).map(|r| r.to_string()).ok().as_deref(),
                Some(ok),
                "{ok}"
            );
        }
    }

    #[test]
    fn refuses_short_names_missing_tags_and_bad_characters() {
        for bad in [
            "",
            "python:3",
            "python",
            "docker.io/library/python",
            "localhost/Upper:1",
            "localhost/a b:1",
            "localhost/a:",
            "localhost/a:-x",
            "localhost//a:1",
            "localhost/a@sha256:abc",
        ] {
            assert!(
                matches!(ImageRef::parse(bad), Err(Error::InvalidImageRef { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn repository_drops_the_tag_but_not_a_registry_port() {
        let r = ImageRef::parse("registry.example.com:5000/img:tag").ok();
        assert_eq!(
            r.as_ref().map(ImageRef::repository),
            Some("registry.example.com:5000/img")
        );
        let r = ImageRef::parse("localhost/containerpub/python:3").ok();
        assert_eq!(
            r.as_ref().map(ImageRef::repository),
            Some("localhost/containerpub/python")
        );
    }
}
