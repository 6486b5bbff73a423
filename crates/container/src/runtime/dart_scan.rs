//! A small scanner for Dart source: enough to find the classes annotated `@cloudFunction` (or
//! `@CloudFunction()`), what they extend, whether they are abstract, whether their `handle`
//! takes a `logger`, and a file's `part of` directive.
//!
//! It is a lexer (comments, nested block comments, all string forms — raw, triple-quoted,
//! with nested `${…}` interpolation — are understood, so nothing inside them is mistaken for
//! code) followed by a scan of top-level declarations. It does not parse Dart: code it does not
//! understand is skipped, never an error. The compiler has the last word at build time.

/// A class declaration annotated `@cloudFunction` or `@CloudFunction(…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnnotatedClass {
    pub(crate) name: String,
    /// The last identifier of the `extends` clause (`fn.CloudDartFunction` → `CloudDartFunction`).
    pub(crate) extends: Option<String>,
    /// Declared `abstract` or `sealed`: it cannot be instantiated.
    pub(crate) is_abstract: bool,
    /// Its `handle` method declares a `logger` parameter (the current `CloudDartFunction`
    /// interface) — else it is the older one, without.
    pub(crate) handle_takes_logger: bool,
}

/// A `part of` directive: the file is part of another library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartOf {
    /// `part of 'main.dart';`
    Uri(String),
    /// `part of my.library;` (the old form, by library name).
    Name(String),
}

/// What [`scan`] found in one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DartFile {
    pub(crate) part_of: Option<PartOf>,
    pub(crate) classes: Vec<AnnotatedClass>,
}

const ANNOTATIONS: [&str; 2] = ["cloudFunction", "CloudFunction"];
const CLASS_MODIFIERS: [&str; 7] = [
    "abstract",
    "base",
    "final",
    "interface",
    "sealed",
    "mixin",
    "augment",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'s> {
    Ident(&'s str),
    /// A string literal, with its text when it has no escape or interpolation.
    Str(Option<&'s str>),
    Punct(u8),
    Number,
}

struct Lexer<'s> {
    text: &'s str,
    src: &'s [u8],
    pos: usize,
}

impl<'s> Lexer<'s> {
    fn new(text: &'s str) -> Self {
        Self {
            text,
            src: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_ascii_whitespace() => self.pos += 1,
                (Some(b'/'), Some(b'/')) => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    self.pos += 2;
                    let mut depth = 1usize;
                    while depth > 0 {
                        match (self.peek(0), self.peek(1)) {
                            (None, _) => return,
                            (Some(b'/'), Some(b'*')) => {
                                depth += 1;
                                self.pos += 2;
                            }
                            (Some(b'*'), Some(b'/')) => {
                                depth -= 1;
                                self.pos += 2;
                            }
                            _ => self.pos += 1,
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn next_token(&mut self) -> Option<Tok<'s>> {
        self.skip_trivia();
        let c = self.peek(0)?;
        if c == b'r' && matches!(self.peek(1), Some(b'\'' | b'"')) {
            self.pos += 1;
            return Some(self.string(true));
        }
        if c == b'\'' || c == b'"' {
            return Some(self.string(false));
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let start = self.pos;
            while self
                .peek(0)
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
            {
                self.pos += 1;
            }
            return Some(Tok::Ident(&self.text[start..self.pos]));
        }
        if c.is_ascii_digit() {
            while self
                .peek(0)
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                self.pos += 1;
            }
            return Some(Tok::Number);
        }
        self.pos += 1;
        Some(Tok::Punct(c))
    }

    /// A string literal starting at the quote under the cursor.
    fn string(&mut self, raw: bool) -> Tok<'s> {
        let quote = self.src[self.pos];
        let triple = self.src[self.pos..].starts_with(&[quote; 3]);
        self.pos += if triple { 3 } else { 1 };
        let start = self.pos;
        let mut clean = true;
        let end = loop {
            let Some(c) = self.peek(0) else {
                break self.pos; // unterminated: the rest of the file
            };
            if triple {
                if self.src[self.pos..].starts_with(&[quote; 3]) {
                    let end = self.pos;
                    self.pos += 3;
                    break end;
                }
            } else if c == quote {
                let end = self.pos;
                self.pos += 1;
                break end;
            } else if c == b'\n' {
                break self.pos; // unterminated single-line string
            }
            match c {
                b'\\' if !raw => {
                    clean = false;
                    self.pos = (self.pos + 2).min(self.src.len());
                }
                b'$' if !raw => {
                    clean = false;
                    self.pos += 1;
                    if self.peek(0) == Some(b'{') {
                        self.pos += 1;
                        self.skip_interpolation();
                    }
                }
                _ => self.pos += 1,
            }
        };
        Tok::Str(clean.then(|| &self.text[start..end]))
    }

    /// Skips the code of a `${…}` up to its closing brace.
    fn skip_interpolation(&mut self) {
        let mut depth = 0usize;
        while let Some(token) = self.next_token() {
            match token {
                Tok::Punct(b'{') => depth += 1,
                Tok::Punct(b'}') if depth == 0 => return,
                Tok::Punct(b'}') => depth -= 1,
                _ => {}
            }
        }
    }
}

fn tokens(source: &str) -> Vec<Tok<'_>> {
    let mut lexer = Lexer::new(source);
    std::iter::from_fn(|| lexer.next_token()).collect()
}

/// The index just past the bracket that closes the one at `open` (or the end).
fn skip_balanced(toks: &[Tok<'_>], open: usize, left: u8, right: u8) -> usize {
    let mut depth = 0usize;
    for (i, tok) in toks.iter().enumerate().skip(open) {
        match tok {
            Tok::Punct(c) if *c == left => depth += 1,
            Tok::Punct(c) if *c == right => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// A dotted name starting at `at` (`a.b.C`): its last identifier and the index after it.
fn dotted_name<'s>(toks: &[Tok<'s>], at: usize) -> Option<(&'s str, usize)> {
    let Some(&Tok::Ident(mut last)) = toks.get(at) else {
        return None;
    };
    let mut i = at + 1;
    while let (Some(Tok::Punct(b'.')), Some(Tok::Ident(next))) = (toks.get(i), toks.get(i + 1)) {
        last = next;
        i += 2;
    }
    Some((last, i))
}

/// Scans one Dart file.
pub(crate) fn scan(source: &str) -> DartFile {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let toks = tokens(source);
    let mut out = DartFile::default();
    let mut annotations: Vec<&str> = Vec::new();
    let mut modifiers: Vec<&str> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let tok = &toks[i];
        match tok {
            Tok::Punct(b'{' | b'(' | b'[') => {
                depth += 1;
                i += 1;
                continue;
            }
            Tok::Punct(b'}' | b')' | b']') => {
                depth = depth.saturating_sub(1);
                annotations.clear();
                modifiers.clear();
                i += 1;
                continue;
            }
            _ if depth > 0 => {
                i += 1;
                continue;
            }
            Tok::Punct(b'@') => {
                if let Some((name, next)) = dotted_name(&toks, i + 1) {
                    annotations.push(name);
                    i = next;
                    if toks.get(i) == Some(&Tok::Punct(b'(')) {
                        i = skip_balanced(&toks, i, b'(', b')');
                    }
                } else {
                    i += 1;
                }
                continue;
            }
            Tok::Ident("part") if toks.get(i + 1) == Some(&Tok::Ident("of")) => {
                out.part_of = match toks.get(i + 2) {
                    Some(Tok::Str(uri)) => Some(PartOf::Uri(uri.unwrap_or_default().to_owned())),
                    Some(Tok::Ident(_)) => {
                        let mut name = Vec::new();
                        let mut j = i + 2;
                        while let Some(Tok::Ident(part)) = toks.get(j) {
                            name.push(*part);
                            j += 1;
                            if toks.get(j) != Some(&Tok::Punct(b'.')) {
                                break;
                            }
                            j += 1;
                        }
                        Some(PartOf::Name(name.join(".")))
                    }
                    _ => None,
                };
                i += 2;
            }
            Tok::Ident(word) if CLASS_MODIFIERS.contains(word) => {
                modifiers.push(word);
                i += 1;
                continue;
            }
            Tok::Ident("class") => {
                let (class, next) = class_declaration(&toks, i);
                if let Some(mut class) = class
                    && annotations.iter().any(|a| ANNOTATIONS.contains(a))
                {
                    class.is_abstract = modifiers
                        .iter()
                        .any(|m| matches!(*m, "abstract" | "sealed"));
                    out.classes.push(class);
                }
                i = next;
            }
            _ => i += 1,
        }
        annotations.clear();
        modifiers.clear();
    }
    out
}

/// The class declaration whose `class` keyword is at `at`, and the index after its body.
fn class_declaration(toks: &[Tok<'_>], at: usize) -> (Option<AnnotatedClass>, usize) {
    let Some(Tok::Ident(name)) = toks.get(at + 1) else {
        return (None, at + 1);
    };
    let mut i = at + 2;
    let mut extends = None;
    loop {
        match toks.get(i) {
            None => return (None, i),
            Some(Tok::Punct(b'<')) => i = skip_balanced(toks, i, b'<', b'>'),
            Some(Tok::Ident("extends")) => match dotted_name(toks, i + 1) {
                Some((parent, next)) => {
                    extends = Some(parent.to_owned());
                    i = next;
                }
                None => i += 1,
            },
            // `class A = B with C;`: an alias, no body.
            Some(Tok::Punct(b';')) => return (None, i + 1),
            Some(Tok::Punct(b'{')) => break,
            Some(_) => i += 1,
        }
    }
    let end = skip_balanced(toks, i, b'{', b'}');
    let body = &toks[i + 1..end.saturating_sub(1).max(i + 1)];
    let class = AnnotatedClass {
        name: (*name).to_owned(),
        extends,
        is_abstract: false,
        handle_takes_logger: handle_takes_logger(body),
    };
    (Some(class), end)
}

/// Whether a member `handle(…)` of the class body declares a parameter named `logger`.
fn handle_takes_logger(body: &[Tok<'_>]) -> bool {
    let mut depth = 0usize;
    for (i, tok) in body.iter().enumerate() {
        match tok {
            Tok::Punct(b'{' | b'(' | b'[') => depth += 1,
            Tok::Punct(b'}' | b')' | b']') => depth = depth.saturating_sub(1),
            Tok::Ident("handle") if depth == 0 && body.get(i + 1) == Some(&Tok::Punct(b'(')) => {
                let end = skip_balanced(body, i + 1, b'(', b')');
                return body[i + 1..end].contains(&Tok::Ident("logger"));
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, logger: bool) -> AnnotatedClass {
        AnnotatedClass {
            name: name.to_owned(),
            extends: Some("CloudDartFunction".to_owned()),
            is_abstract: false,
            handle_takes_logger: logger,
        }
    }

    #[test]
    fn finds_the_annotated_class() {
        let file = scan(
            r#"
import 'package:dart_cloud_function/dart_cloud_function.dart';

@cloudFunction
class Echo extends CloudDartFunction {
  @override
  Future<CloudResponse> handle({
    required CloudRequest request,
    required CloudDartFunctionLogger logger,
    Map<String, String>? env,
  }) async {
    logger.info('handling ${request.path} {');
    return CloudResponse.json({'ok': true});
  }
}

class NotAFunction extends CloudDartFunction {}
"#,
        );
        assert_eq!(file.classes, [class("Echo", true)]);
        assert_eq!(file.part_of, None);
    }

    #[test]
    fn ignores_comments_and_strings() {
        let file = scan(
            r#"
// @cloudFunction class A extends CloudDartFunction {}
/* nested /* @cloudFunction */ class B extends CloudDartFunction {} */
const s = '@cloudFunction class C extends CloudDartFunction {}';
const t = """
@cloudFunction
class D extends CloudDartFunction {}
""";
const u = r'\';
const v = "${ {'a': '}'}['a'] } @cloudFunction class E extends X {}";
@CloudFunction()
final class Real<T> extends fn.CloudDartFunction<T> with M implements I {
  Future<CloudResponse> handle({required CloudRequest request, Map<String, String>? env}) async =>
      CloudResponse.text('}');
}
"#,
        );
        assert_eq!(file.classes, [class("Real", false)]);
    }

    #[test]
    fn reports_abstract_classes_and_parts() {
        let file = scan(
            "part of 'main.dart';\n@cloudFunction abstract class A extends CloudDartFunction {}",
        );
        assert_eq!(file.part_of, Some(PartOf::Uri("main.dart".to_owned())));
        assert!(file.classes[0].is_abstract);
        let file = scan("part of my.lib;");
        assert_eq!(file.part_of, Some(PartOf::Name("my.lib".to_owned())));
    }

    #[test]
    fn an_annotation_applies_to_the_next_declaration_only() {
        let file = scan("@cloudFunction\nfinal x = 1;\nclass A extends CloudDartFunction {}");
        assert!(file.classes.is_empty());
        let file = scan("@cloudFunction\nvoid f() {}\nclass A extends CloudDartFunction {}");
        assert!(file.classes.is_empty());
    }
}
