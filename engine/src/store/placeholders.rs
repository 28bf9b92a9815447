//! The engine writes its SQL with SQLite's placeholders (`?`, `?N`);
//! PostgreSQL numbers its own (`$N`). [`numbered`] rewrites one into the
//! other each time a statement runs there (microseconds, against a round
//! trip to the server).

use std::borrow::Cow;

/// `sql` with every `?` outside quotes, identifiers and comments as `$N`:
/// a bare `?` takes the number after the largest so far, `?N` keeps its
/// number (SQLite's own rule, so both stores bind the same values).
pub(crate) fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut largest = 0u32;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                // Up to the closing quote; a doubled quote is part of it.
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek().map(|&(_, d)| d) == Some('-') => {
                out.push(c);
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    digits.push(d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    largest + 1
                } else {
                    digits.parse().unwrap_or(largest + 1)
                };
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn question_marks_become_numbers_outside_quotes_and_comments() {
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
        assert_eq!(
            numbered("UPDATE t SET a = ?, b = ? WHERE id = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE id = $3"
        );
        assert_eq!(
            numbered("SELECT '?', \"a?b\", ? -- what?\n, ?"),
            "SELECT '?', \"a?b\", $1 -- what?\n, $2"
        );
        assert_eq!(numbered("SELECT 'it''s ?', ?"), "SELECT 'it''s ?', $1");
    }

    #[test]
    fn numbered_placeholders_keep_their_numbers() {
        assert_eq!(
            numbered("SET a = ?1 WHERE b = ?2 AND c = ?1"),
            "SET a = $1 WHERE b = $2 AND c = $1"
        );
        // SQLite: a bare `?` after `?3` is number 4.
        assert_eq!(numbered("?3, ?"), "$3, $4");
    }
}
