#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use TokenKind::*;

fn lex(src: &str) -> Result<Vec<TokenKind>, AnalysisError> {
    let mut lexer = Lexer::new(src, None);
    let mut out = Vec::new();
    loop {
        let token = lexer.next_token()?;
        if token.kind == Eof {
            return Ok(out);
        }
        out.push(token.kind);
    }
}

fn accepts(src: &str) -> bool {
    lex(src).is_ok()
}

#[test]
fn lexes_every_punctuator() {
    assert_eq!(
        lex("! $ & ( ) ... : = @ [ ] { } |").unwrap(),
        [
            Bang, Dollar, Amp, ParenL, ParenR, Spread, Colon, Equals, At, BracketL, BracketR,
            BraceL, BraceR, Pipe
        ]
    );
}

#[test]
fn ignores_whitespace_commas_line_terminators_and_bom() {
    assert_eq!(
        lex("\u{feff}a,\tb\r\nc\rd\n,,,\u{feff}e").unwrap(),
        [Name, Name, Name, Name, Name]
    );
}

#[test]
fn counts_comments_as_tokens_but_does_not_return_them() {
    let mut lexer = Lexer::new("# one\r# two\na # three", None);
    assert_eq!(lexer.next_token().unwrap().kind, Name);
    assert_eq!(lexer.next_token().unwrap().kind, Eof);
    assert_eq!(lexer.tokens(), 4);
}

#[test]
fn stops_at_the_token_limit() {
    let mut lexer = Lexer::new("a b c d", Some(2));
    assert!(lexer.next_token().is_ok());
    assert!(lexer.next_token().is_ok());
    assert_eq!(
        lexer.next_token(),
        Err(AnalysisError::TokenLimit {
            limit: 2,
            at_least: 3
        })
    );
}

#[test]
fn lexes_names_and_numbers() {
    assert_eq!(
        lex("_a1 B 0 -0 12 -12 1.5 1e5 1E+5 1.5e-5 -0.0").unwrap(),
        [
            Name, Name, Int, Int, Int, Int, Float, Float, Float, Float, Float
        ]
    );
}

#[test]
fn rejects_numbers_the_spec_forbids() {
    for bad in [
        "00", "01", "1.", "1.e5", "1e", "1e+", ".5", "-", "1a", "1.5a", "1_", "1.2.3", "1..", "0x1",
    ] {
        assert!(!accepts(bad), "{bad} must be rejected");
    }
}

#[test]
fn rejects_a_lone_dot_and_two_dots() {
    assert!(!accepts("."));
    assert!(!accepts(".."));
    assert!(accepts("..."));
}

#[test]
fn lexes_strings_with_every_simple_escape() {
    assert_eq!(lex(r#""a\"\\\/\b\f\n\r\t" """#).unwrap(), [String, String]);
}

#[test]
fn accepts_fixed_and_braced_unicode_escapes() {
    assert!(accepts(r#""\u0041 \u00e9 \u{1F600} \u{0} \u{10FFFF}""#));
}

#[test]
fn accepts_a_valid_surrogate_pair() {
    assert!(accepts(r#""\uD83D\uDE00""#));
}

#[test]
fn rejects_unpaired_or_reversed_surrogates() {
    for bad in [
        r#""\uD83D""#,
        r#""\uDE00""#,
        r#""\uDE00\uD83D""#,
        r#""\uD83Dx""#,
        r#""\uD83D\u0041""#,
        r#""\u{D800}""#,
    ] {
        assert!(!accepts(bad), "{bad} must be rejected");
    }
}

#[test]
fn rejects_invalid_escapes() {
    for bad in [
        r#""\x""#,
        r#""\u12""#,
        r#""\u{}""#,
        r#""\u{110000}""#,
        r#""\u{FFFFFFFFFFFFFFFFFFFF}""#,
        r#""\u{12""#,
        r#""\uZZZZ""#,
        "\"\\",
    ] {
        assert!(!accepts(bad), "{bad} must be rejected");
    }
}

#[test]
fn rejects_unterminated_strings_and_line_breaks_in_strings() {
    for bad in ["\"abc", "\"a\nb\"", "\"a\rb\"", "\"", "\"\\\""] {
        assert!(!accepts(bad), "{bad:?} must be rejected");
    }
}

#[test]
fn accepts_unicode_and_nul_inside_strings_and_comments() {
    assert!(accepts("\"héllo 😀 \u{0}\" # ünïcode \u{0}"));
}

#[test]
fn rejects_nul_and_unicode_outside_strings() {
    assert!(!accepts("a \u{0} b"));
    assert!(!accepts("é"));
}

#[test]
fn lexes_block_strings_with_escaped_triple_quotes_and_any_line_terminator() {
    assert_eq!(
        lex("\"\"\"a \\\"\"\" b \r\n \" \"\" \\n\"\"\"").unwrap(),
        [BlockString]
    );
    assert_eq!(lex("\"\"\"\"\"\"").unwrap(), [BlockString]);
}

#[test]
fn rejects_unterminated_block_strings() {
    for bad in ["\"\"\"abc", "\"\"\"abc\\\"\"\"", "\"\"\"abc\"\""] {
        assert!(!accepts(bad), "{bad:?} must be rejected");
    }
}

#[test]
fn reports_line_and_column_in_characters() {
    match lex("a\r\nb\n  é ?").unwrap_err() {
        AnalysisError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 3)),
        other => panic!("unexpected {other:?}"),
    }
    match lex("\"é\" ?").unwrap_err() {
        AnalysisError::Syntax { line, column, .. } => assert_eq!((line, column), (1, 5)),
        other => panic!("unexpected {other:?}"),
    }
}
