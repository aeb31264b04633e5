//! fio's arithmetic, as its parser evaluates it (`exp/expression-parser.{l,y}`): a numeric
//! value in parentheses, `(2*4k+512)`, with `+ - * / % ^`, unary minus, and unit suffixes.
//! Whole numbers stay whole (`7/2` is 3) until a decimal enters; `%` binds tighter than `^`,
//! which binds tighter than `*` and `/`; a suffix applies to all that precedes it at `*`
//! level (`2*4k` is `(2*4)k`, `1+2k` is `1+2048`). Inside an expression `k` is always 1024
//! and `KiB` 1000, whatever `kb_base`; `m` is minutes in a time and MiB in a size.
//!
//! fio computes a value that uses `$ncpus`, `$pagesize` or `$mb_memory` with `bc` instead,
//! whole numbers only: [`Grammar::Bc`] is that.

/// Whose rules an expression follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// fio's own evaluator, for values in parentheses; `time` says whether `m` is minutes.
    Fio { time: bool },
    /// `bc` as fio calls it: whole numbers, `^` above unary minus above `* / %` above `+ -`.
    Bc,
}

/// An evaluated expression: its value, and whether a unit suffix was given (fio scales a
/// value without one by the option's own unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub int: i64,
    pub units: bool,
}

/// Evaluates `text` (without its outer parentheses being required) under `grammar`.
pub fn evaluate(text: &str, grammar: Grammar) -> Result<Value, String> {
    let tokens = lex(text, grammar)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        grammar,
        units: false,
    };
    let v = parser.expression(0)?;
    if parser.at != parser.tokens.len() {
        return Err("does not read as arithmetic".into());
    }
    Ok(Value {
        int: v.int,
        units: parser.units,
    })
}

/// A number as fio's evaluator keeps it: a whole number, and a float once one is involved.
#[derive(Debug, Clone, Copy)]
struct Num {
    int: i64,
    float: f64,
    /// A decimal took part: `int` follows `float`.
    is_float: bool,
}

impl Num {
    fn whole(int: i64) -> Num {
        Num {
            int,
            float: int as f64,
            is_float: false,
        }
    }

    fn decimal(float: f64) -> Num {
        Num {
            int: float as i64,
            float,
            is_float: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Number(NumToken),
    /// A unit: its factor, and whether fio counts it as a decimal (`ms`, `us`).
    Suffix(i64, bool),
    Op(char),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NumToken {
    Int(i64),
    Float(f64),
}

const KI: i64 = 1024;

/// fio's unit suffixes inside an expression, longest first (as the lexer matches them).
fn suffixes(time: bool) -> [(&'static str, i64, bool); 19] {
    let minute = if time { 60_000_000 } else { KI * KI };
    [
        ("kib", 1000, false),
        ("mib", 1_000_000, false),
        ("gib", 1_000_000_000, false),
        ("pib", 1_000_000_000_000, false),
        ("kb", KI, false),
        ("mb", KI * KI, false),
        ("gb", KI * KI * KI, false),
        ("tb", KI * KI * KI * KI, false),
        ("pb", KI * KI * KI * KI * KI, false),
        ("ms", 1000, true),
        ("us", 1, true),
        ("k", KI, false),
        ("g", KI * KI * KI, false),
        ("t", KI * KI * KI * KI, false),
        ("p", KI * KI * KI * KI * KI, false),
        ("s", 1_000_000, false),
        ("m", minute, false),
        ("d", 86_400_000_000, false),
        ("h", 3_600_000_000, false),
    ]
}

fn lex(text: &str, grammar: Grammar) -> Result<Vec<Token>, String> {
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut tokens = Vec::new();
    while let Some(c) = rest.chars().next() {
        if c == ' ' || c == '\t' {
            rest = &rest[1..];
        } else if grammar != Grammar::Bc && matches!(c, '#' | ':' | ',') {
            // fio's lexer drops everything after these.
            break;
        } else if "+-*/%^()".contains(c) {
            tokens.push(Token::Op(c));
            rest = &rest[1..];
        } else if c.is_ascii_digit() || c == '.' {
            let (number, len) = lex_number(rest, grammar)?;
            tokens.push(Token::Number(number));
            rest = &rest[len..];
        } else if let Grammar::Fio { time } = grammar {
            let (name, factor, decimal) = suffixes(time)
                .into_iter()
                .find(|(name, ..)| rest.starts_with(name))
                .ok_or_else(|| format!("'{c}' is not a number, an operator or a unit"))?;
            tokens.push(Token::Suffix(factor, decimal));
            rest = &rest[name.len()..];
        } else {
            return Err(format!("'{c}' is not a number or an operator"));
        }
    }
    Ok(tokens)
}

/// A number at the start of `text`: hexadecimal `0x...`, a decimal with `.` or an
/// exponent, or a whole number; and its length.
fn lex_number(text: &str, grammar: Grammar) -> Result<(NumToken, usize), String> {
    if let Some(hex) = text.strip_prefix("0x").filter(|_| grammar != Grammar::Bc) {
        let len = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        let v = i64::from_str_radix(&hex[..len], 16).map_err(|_| bad_number(text))?;
        return Ok((NumToken::Int(v), 2 + len));
    }
    let digits = |t: &str| t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let mut len = digits(text);
    let mut float = false;
    if text[len..].starts_with('.') && grammar != Grammar::Bc {
        len += 1 + digits(&text[len + 1..]);
        float = true;
    }
    let exponent = text[len..]
        .strip_prefix('e')
        .filter(|_| grammar != Grammar::Bc);
    if let Some(exp) = exponent {
        let sign = usize::from(exp.starts_with(['+', '-']));
        let n = digits(&exp[sign..]);
        if n > 0 {
            len += 1 + sign + n;
            float = true;
        }
    }
    let number = &text[..len];
    if float {
        let v: f64 = number.parse().map_err(|_| bad_number(number))?;
        Ok((NumToken::Float(v), len))
    } else {
        let v: i64 = number.parse().map_err(|_| bad_number(number))?;
        Ok((NumToken::Int(v), len))
    }
}

fn bad_number(text: &str) -> String {
    format!("'{text}' is not a number it can compute with")
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    grammar: Grammar,
    /// A unit suffix was given somewhere.
    units: bool,
}

/// How tightly an operator binds: (to its left, to its right). Higher binds tighter.
fn binding(op: char, grammar: Grammar) -> Option<(u8, u8)> {
    match (grammar, op) {
        (_, '+' | '-') => Some((1, 2)),
        (Grammar::Fio { .. }, '*' | '/') => Some((5, 6)),
        (Grammar::Fio { .. }, '^') => Some((8, 7)),
        (Grammar::Fio { .. }, '%') => Some((9, 10)),
        (Grammar::Bc, '*' | '/' | '%') => Some((5, 6)),
        (Grammar::Bc, '^') => Some((12, 11)),
        _ => None,
    }
}

/// A suffix binds below `*` and above `+` (fio's grammar).
const SUFFIX_BINDING: u8 = 3;

/// Unary minus: above everything in fio's grammar, below `^` in bc's.
fn minus_binding(grammar: Grammar) -> u8 {
    match grammar {
        Grammar::Fio { .. } => 11,
        Grammar::Bc => 10,
    }
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).copied();
        self.at += usize::from(t.is_some());
        t
    }

    /// An expression whose operators bind at least as tightly as `min` (precedence
    /// climbing).
    fn expression(&mut self, min: u8) -> Result<Num, String> {
        let mut lhs = self.operand()?;
        while let Some(&token) = self.tokens.get(self.at) {
            match token {
                Token::Suffix(factor, decimal) if SUFFIX_BINDING >= min => {
                    self.at += 1;
                    self.units = true;
                    lhs = suffixed(lhs, factor, decimal);
                }
                Token::Op(op) => match binding(op, self.grammar) {
                    Some((left, right)) if left >= min => {
                        self.at += 1;
                        let rhs = self.expression(right)?;
                        lhs = apply(op, lhs, rhs, self.grammar)?;
                    }
                    _ => break,
                },
                _ => break,
            }
        }
        Ok(lhs)
    }

    fn operand(&mut self) -> Result<Num, String> {
        match self.next() {
            Some(Token::Number(NumToken::Int(v))) => Ok(Num::whole(v)),
            Some(Token::Number(NumToken::Float(v))) => Ok(Num::decimal(v)),
            Some(Token::Op('-')) => {
                let v = self.expression(minus_binding(self.grammar))?;
                Ok(Num {
                    int: v.int.wrapping_neg(),
                    float: -v.float,
                    is_float: v.is_float,
                })
            }
            Some(Token::Op('(')) => {
                let v = self.expression(0)?;
                match self.next() {
                    Some(Token::Op(')')) => Ok(v),
                    _ => Err("a '(' is not closed".into()),
                }
            }
            _ => Err("an operator lacks a number".into()),
        }
    }
}

/// `lhs` with a unit: fio truncates a decimal before scaling it (`(1.5k)` is 1024).
fn suffixed(lhs: Num, factor: i64, decimal: bool) -> Num {
    if lhs.is_float || decimal {
        Num::decimal(lhs.float.trunc() * factor as f64)
    } else {
        Num::whole(lhs.int.saturating_mul(factor))
    }
}

fn apply(op: char, a: Num, b: Num, grammar: Grammar) -> Result<Num, String> {
    let float = a.is_float || b.is_float;
    let both = |int: Option<i64>, f: f64| match (float, int) {
        (false, Some(i)) => Ok(Num::whole(i)),
        (false, None) => Err("a value too large to compute".to_string()),
        (true, _) => Ok(Num::decimal(f)),
    };
    match op {
        '+' => both(a.int.checked_add(b.int), a.float + b.float),
        '-' => both(a.int.checked_sub(b.int), a.float - b.float),
        '*' => both(a.int.checked_mul(b.int), a.float * b.float),
        '/' if b.float.abs() < 1e-20 && b.int == 0 => Err("a division by zero".into()),
        '/' => both(a.int.checked_div(b.int), a.float / b.float),
        '%' if float => Err("% of a decimal".into()),
        '%' if b.int == 0 => Err("a division by zero".into()),
        '%' => both(a.int.checked_rem(b.int), 0.0),
        '^' => power(a, b, grammar),
        _ => unreachable!("lexed operators only"),
    }
}

fn power(a: Num, b: Num, grammar: Grammar) -> Result<Num, String> {
    if a.is_float || b.is_float {
        return Ok(Num::decimal(a.float.powf(b.float)));
    }
    match u32::try_from(b.int) {
        Ok(exp) => a
            .int
            .checked_pow(exp)
            .map(Num::whole)
            .ok_or_else(|| "a value too large to compute".into()),
        // bc's negative powers of whole numbers are 0 (or 1 / a of 1); fio's are floats.
        Err(_) if grammar == Grammar::Bc => Ok(Num::whole(i64::from(a.int.abs() == 1))),
        Err(_) => Ok(Num::decimal((a.int as f64).powf(b.int as f64))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: Grammar = Grammar::Fio { time: false };
    const TIME: Grammar = Grammar::Fio { time: true };

    fn size(text: &str) -> i64 {
        evaluate(text, SIZE)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .int
    }

    #[test]
    fn fios_precedence_and_whole_numbers() {
        assert_eq!(size("(2*4096)"), 8192);
        assert_eq!(size("7/2"), 3, "whole numbers stay whole");
        assert_eq!(size("7.0/2"), 3, "a decimal, truncated at the end");
        assert_eq!(size("1+2*3"), 7);
        assert_eq!(size("2^3^2"), 512, "^ is right-associative");
        assert_eq!(size("2*3^2"), 18);
        assert_eq!(size("2^5%3"), 4, "% binds tighter than ^: 2^(5%3)");
        assert_eq!(
            size("-2^2"),
            4,
            "unary minus binds tightest in fio's grammar"
        );
        assert_eq!(size("(1+2)*3"), 9);
        assert_eq!(size("10-2-3"), 5);
        assert_eq!(size("0x10+1"), 17);
        assert_eq!(size("1e3"), 1000);
        assert_eq!(
            size("8 , ignored"),
            8,
            "fio's lexer drops what follows a comma"
        );
    }

    #[test]
    fn suffixes_apply_to_what_precedes_them() {
        assert_eq!(size("2*4k"), 8192);
        assert_eq!(size("1+2k"), 2049);
        assert_eq!(size("2k*3"), 6144);
        assert_eq!(size("4KiB"), 4000, "KiB is 1000 inside an expression");
        assert_eq!(size("1mb"), 1 << 20);
        assert_eq!(
            size("1.5k"),
            1024,
            "fio truncates a decimal before scaling it"
        );
        assert!(evaluate("4k", SIZE).unwrap().units);
        assert!(!evaluate("4096", SIZE).unwrap().units);
        assert_eq!(
            evaluate("2m", TIME).unwrap().int,
            120_000_000,
            "minutes, in us"
        );
        assert_eq!(evaluate("2m", SIZE).unwrap().int, 2 << 20);
        assert_eq!(evaluate("500ms", TIME).unwrap().int, 500_000);
    }

    #[test]
    fn bc_computes_whole_numbers_with_its_own_precedence() {
        let bc = |t: &str| evaluate(t, Grammar::Bc).unwrap().int;
        assert_eq!(bc("8*23000"), 184_000);
        assert_eq!(bc("7/2"), 3);
        assert_eq!(bc("-2^2"), -4, "in bc ^ binds tighter than unary minus");
        assert_eq!(bc("2*3%4"), 2, "* and % share a level, left to right");
        assert_eq!(bc("2^-1"), 0);
        assert!(evaluate("8*1024m", Grammar::Bc).is_err(), "no units in bc");
        assert!(evaluate("1.5*2", Grammar::Bc).is_err());
    }

    #[test]
    fn malformed_expressions_say_so() {
        for bad in [
            "", "1+", "(1", "1)", "1/0", "5%0", "1.5%2", "4x", "*2", "2 3",
        ] {
            assert!(evaluate(bad, SIZE).is_err(), "{bad}");
        }
        assert!(evaluate("99999999999999999999", SIZE).is_err());
        assert!(evaluate("4611686018427387904*4", SIZE).is_err());
    }
}
