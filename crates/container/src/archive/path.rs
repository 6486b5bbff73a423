//! Entry names: what an archive may call its members, and how a name becomes a relative path.

use super::ArchiveError;

/// Longest entry name or link target accepted, in bytes.
const MAX_NAME_BYTES: usize = 4096;
/// Longest path component accepted, in bytes (the Linux `NAME_MAX`).
const MAX_COMPONENT_BYTES: usize = 255;

/// The entry's name as shown in error messages: its bytes, with anything that is not UTF-8
/// replaced.
pub(crate) fn display_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Turns an entry name into a normalised relative path: components joined by `/`, with empty
/// and `.` components dropped. `None` is the root of the tree itself (`./`, which tar writes
/// for `tar -C dir .`).
///
/// Refused: an empty name, a NUL byte, a control character, a name that is not UTF-8, an
/// absolute path, a backslash (Windows separators are not guessed at), any `..` component
/// (even `a/../b`, which stays inside), and names or components longer than Linux allows.
pub(crate) fn normalize(raw: &[u8]) -> Result<Option<String>, ArchiveError> {
    let bad = |reason| ArchiveError::BadName {
        entry: display_name(raw),
        reason,
    };
    if raw.is_empty() {
        return Err(bad("the name is empty"));
    }
    if raw.contains(&0) {
        return Err(bad("the name contains a NUL byte"));
    }
    let name = std::str::from_utf8(raw).map_err(|_| bad("the name is not valid UTF-8"))?;
    if name.starts_with('/') {
        return Err(ArchiveError::AbsolutePath {
            entry: name.to_owned(),
        });
    }
    if name.contains('\\') {
        return Err(bad(
            "the name contains a backslash (archives must use `/` as the separator)",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("the name contains a control character"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(bad("the name is longer than 4096 bytes"));
    }
    let mut components = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                return Err(ArchiveError::ParentComponent {
                    entry: name.to_owned(),
                });
            }
            _ if component.len() > MAX_COMPONENT_BYTES => {
                return Err(bad("a path component is longer than 255 bytes"));
            }
            _ => components.push(component),
        }
    }
    Ok((!components.is_empty()).then(|| components.join("/")))
}

/// The target of a link, as text: UTF-8, not empty, no NUL, not absolute.
pub(crate) fn link_target<'a>(entry: &str, raw: &'a [u8]) -> Result<&'a str, ArchiveError> {
    let shown = display_name(raw);
    let bad = |reason| ArchiveError::BadLink {
        entry: entry.to_owned(),
        target: shown.clone(),
        reason,
    };
    if raw.is_empty() {
        return Err(bad("the target is empty"));
    }
    if raw.contains(&0) {
        return Err(bad("the target contains a NUL byte"));
    }
    if raw.len() > MAX_NAME_BYTES {
        return Err(bad("the target is longer than 4096 bytes"));
    }
    let target = std::str::from_utf8(raw).map_err(|_| bad("the target is not valid UTF-8"))?;
    if target.starts_with('/') {
        return Err(ArchiveError::LinkOutOfTree {
            entry: entry.to_owned(),
            target: shown,
        });
    }
    Ok(target)
}

/// The parent of a normalised path (`""` for a top-level entry).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// The proper ancestors of a normalised path, outermost first: `a/b/c` → `a`, `a/b`.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Option<String> {
        normalize(raw.as_bytes()).unwrap()
    }

    #[test]
    fn normalises_dots_and_slashes() {
        assert_eq!(ok("a/b.txt"), Some("a/b.txt".into()));
        assert_eq!(ok("./a//b/./c/"), Some("a/b/c".into()));
        assert_eq!(ok("./"), None);
        assert_eq!(ok("."), None);
    }

    #[test]
    fn refuses_unsafe_names() {
        assert!(matches!(
            normalize(b"/etc/passwd"),
            Err(ArchiveError::AbsolutePath { entry }) if entry == "/etc/passwd"
        ));
        for name in ["../x", "a/../../x", "a/../b", ".."] {
            assert!(
                matches!(
                    normalize(name.as_bytes()),
                    Err(ArchiveError::ParentComponent { .. })
                ),
                "{name}"
            );
        }
        for name in [&b""[..], b"a\0b", b"a\\b", b"a\nb", b"\xff\xfe"] {
            assert!(
                matches!(normalize(name), Err(ArchiveError::BadName { .. })),
                "{name:?}"
            );
        }
        assert!(normalize("x".repeat(256).as_bytes()).is_err());
    }

    #[test]
    fn ancestors_and_parent() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
    }
}
