//! Property tests of the migration-SQL checker (`engine::migration_check`):
//! it must never panic, and never call a script additive when one of its
//! statements drops something — whatever the case, spacing, comments,
//! quoting, extra semicolons or Unicode around it.
//!
//! Three sources of input, about 2,000 cases in all:
//! - scripts generated from a small grammar whose every statement is known
//!   to be additive or destructive (the ground truth), rendered with random
//!   keyword case and random whitespace and comments (with "DROP" in them)
//!   between tokens;
//! - soups of SQL-looking tokens (ALTER, CREATE, DROP, RENAME, quotes,
//!   dollar quotes, comments, semicolons, Unicode) in random order;
//! - arbitrary strings.
//!
//! And a committed corpus (`tests/corpus/migration_sql/`), each file's
//! expected verdict in its name: `additive-*`, `destructive-*` (flagged),
//! `unreadable-*` (not verified).

use engine::migration_check::{check, Verdict};
use proptest::prelude::*;
use proptest::test_runner::Config;
use sqlparser::ast::{AlterTableOperation, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::path::PathBuf;

fn parse(sql: &str) -> Option<Vec<Statement>> {
    Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()
}

/// Whether a parsed statement removes something: a DROP statement, or an
/// ALTER TABLE with a DROP operation (DROP COLUMN, DROP CONSTRAINT, ALTER
/// COLUMN … DROP DEFAULT, …). Read from the syntax tree, independently of
/// the checker's own list: "DROP" in a string, a comment or a quoted name
/// does not count, an unquoted one in any operation does.
fn drops(stmt: &Statement) -> bool {
    if stmt.to_string().to_ascii_uppercase().starts_with("DROP ") {
        return true;
    }
    let Statement::AlterTable(alter) = stmt else {
        return false;
    };
    alter.operations.iter().any(|op| {
        op.to_string().to_ascii_uppercase().starts_with("DROP ")
            || matches!(op, AlterTableOperation::AlterColumn { op, .. }
                if op.to_string().to_ascii_uppercase().starts_with("DROP "))
    })
}

/// What must hold of any verdict on any input (beyond not panicking).
fn verdict_is_consistent(sql: &str) -> std::result::Result<Verdict, TestCaseError> {
    let verdict = check(sql);
    let parsed = parse(sql);
    match &verdict {
        Verdict::NoMigrations => {
            prop_assert!(
                sql.trim().is_empty() || parsed.as_ref().is_some_and(Vec::is_empty),
                "no migrations in {sql:?}"
            );
        }
        Verdict::Unreadable(msg) => {
            prop_assert!(!msg.is_empty());
            prop_assert!(parsed.is_none(), "{sql:?} parses, yet is unreadable");
        }
        Verdict::Additive { statements } => {
            let stmts = parsed.expect("an additive script parses");
            prop_assert_eq!(*statements, stmts.len());
            prop_assert!(*statements > 0);
            for s in &stmts {
                prop_assert!(!drops(s), "additive, yet drops: {s} (from {sql:?})");
            }
            // The verdict does not hang on the formatting: the parser's own
            // rendering of the same statements is not flagged either.
            let rendered = stmts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(";\n");
            prop_assert!(
                !matches!(check(&rendered), Verdict::Breaking(_)),
                "{sql:?} is additive but its rendering {rendered:?} is not"
            );
        }
        Verdict::Breaking(findings) => {
            prop_assert!(!findings.is_empty());
            let stmts = parsed.expect("a flagged script parses");
            let shown: Vec<String> = stmts.iter().map(ToString::to_string).collect();
            for f in findings {
                prop_assert!(!f.why.is_empty());
                prop_assert!(
                    shown.contains(&f.statement),
                    "finding {:?} names no statement of {sql:?}",
                    f.statement
                );
            }
        }
    }
    Ok(verdict)
}

// ---------------------------------------------------------------------------
// A grammar of migration statements, each known additive or destructive.

#[derive(Clone, Debug)]
enum Part {
    /// Keywords: rendered in a random case.
    Kw(&'static str),
    /// Names and literals, as they are.
    Word(String),
    Punct(&'static str),
}

#[derive(Clone, Debug)]
struct Stmt {
    destructive: bool,
    parts: Vec<Part>,
}

#[derive(Default)]
struct S(Vec<Part>);

impl S {
    fn kw(mut self, k: &'static str) -> Self {
        self.0.push(Part::Kw(k));
        self
    }
    fn word(mut self, w: impl Into<String>) -> Self {
        self.0.push(Part::Word(w.into()));
        self
    }
    fn punct(mut self, p: &'static str) -> Self {
        self.0.push(Part::Punct(p));
        self
    }
    fn parts(mut self, p: Vec<Part>) -> Self {
        self.0.extend(p);
        self
    }
    fn kw_if(self, yes: bool, k: &'static str) -> Self {
        if yes {
            self.kw(k)
        } else {
            self
        }
    }
    fn additive(self) -> Stmt {
        Stmt {
            destructive: false,
            parts: self.0,
        }
    }
    fn destructive(self) -> Stmt {
        Stmt {
            destructive: true,
            parts: self.0,
        }
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Table, column, type and index names: plain (some not ASCII) or quoted,
/// with quotes, semicolons, comment markers and "DROP TABLE" inside.
fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["customers", "orders", "t1", "queue_status", "表", "données", "x_y"])
            .prop_map(String::from),
        2 => prop::sample::select(vec![
            "Ünïcødé 表", "we;ird", "has\"quote", "-- not a comment", "DROP TABLE x",
            "/* x */", "🙂", "it's", "$$",
        ])
        .prop_map(quote_ident),
        1 => "[a-zA-Z0-9 _;'()é表🙂-]{1,12}".prop_map(|s| quote_ident(&s)),
    ]
}

/// String literals (no backslashes: PostgreSQL's standard strings).
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "DROP TABLE customers;",
            "-- x",
            "/* y */",
            "it's",
            "$$",
            "",
            "ALTER TABLE t DROP COLUMN c",
        ])
        .prop_map(String::from),
        "[ -\\[\\]-~é表🙂\n]{0,16}",
    ]
    .prop_map(|s| format!("'{}'", s.replace('\'', "''")))
}

fn ty() -> impl Strategy<Value = Vec<Part>> {
    prop_oneof![
        prop::sample::select(vec![
            "TEXT",
            "INT",
            "BIGINT",
            "BOOLEAN",
            "TIMESTAMP",
            "DOUBLE PRECISION"
        ])
        .prop_map(|t| vec![Part::Kw(t)]),
        (1u32..300).prop_map(|n| vec![
            Part::Kw("VARCHAR"),
            Part::Punct("("),
            Part::Word(n.to_string()),
            Part::Punct(")"),
        ]),
    ]
}

/// What may follow an added column without breaking the live version:
/// nothing (nullable), a default, or NOT NULL with a default.
fn safe_column_tail() -> impl Strategy<Value = Vec<Part>> {
    prop_oneof![
        Just(vec![]),
        literal().prop_map(|l| vec![Part::Kw("DEFAULT"), Part::Word(l)]),
        literal().prop_map(|l| vec![Part::Kw("NOT NULL DEFAULT"), Part::Word(l)]),
        literal().prop_map(|l| vec![Part::Kw("DEFAULT"), Part::Word(l), Part::Kw("NOT NULL")]),
    ]
}

fn additive_stmt() -> impl Strategy<Value = Stmt> {
    prop_oneof![
        // CREATE TABLE
        (
            any::<bool>(),
            ident(),
            prop::collection::vec((ident(), ty(), safe_column_tail()), 1..4)
        )
            .prop_map(|(ine, t, cols)| {
                let mut s = S::default()
                    .kw("CREATE TABLE")
                    .kw_if(ine, "IF NOT EXISTS")
                    .word(t)
                    .punct("(");
                for (i, (c, ty, tail)) in cols.into_iter().enumerate() {
                    if i > 0 {
                        s = s.punct(",");
                    }
                    s = s.word(c).parts(ty).parts(tail);
                }
                s.punct(")").additive()
            }),
        // CREATE INDEX
        (any::<bool>(), any::<bool>(), ident(), ident(), ident()).prop_map(
            |(unique, ine, i, t, c)| {
                S::default()
                    .kw("CREATE")
                    .kw_if(unique, "UNIQUE")
                    .kw("INDEX")
                    .kw_if(ine, "IF NOT EXISTS")
                    .word(i)
                    .kw("ON")
                    .word(t)
                    .punct("(")
                    .word(c)
                    .punct(")")
                    .additive()
            }
        ),
        // ADD COLUMN, nullable or with a default
        (ident(), any::<bool>(), ident(), ty(), safe_column_tail()).prop_map(
            |(t, ine, c, ty, tail)| {
                S::default()
                    .kw("ALTER TABLE")
                    .word(t)
                    .kw("ADD COLUMN")
                    .kw_if(ine, "IF NOT EXISTS")
                    .word(c)
                    .parts(ty)
                    .parts(tail)
                    .additive()
            }
        ),
        // A new enum value
        (ident(), any::<bool>(), literal()).prop_map(|(e, ine, v)| {
            S::default()
                .kw("ALTER TYPE")
                .word(e)
                .kw("ADD VALUE")
                .kw_if(ine, "IF NOT EXISTS")
                .word(v)
                .additive()
        }),
        (ident(), literal(), literal()).prop_map(|(e, a, b)| {
            S::default()
                .kw("CREATE TYPE")
                .word(e)
                .kw("AS ENUM")
                .punct("(")
                .word(a)
                .punct(",")
                .word(b)
                .punct(")")
                .additive()
        }),
        (ident(), ident(), literal()).prop_map(|(t, c, v)| {
            S::default()
                .kw("ALTER TABLE")
                .word(t)
                .kw("ALTER COLUMN")
                .word(c)
                .kw("SET DEFAULT")
                .word(v)
                .additive()
        }),
        // Data: a backfill and an insert
        (ident(), ident(), literal()).prop_map(|(t, c, v)| {
            S::default()
                .kw("UPDATE")
                .word(t)
                .kw("SET")
                .word(c.clone())
                .punct("=")
                .word(v)
                .kw("WHERE")
                .word(c)
                .kw("IS NULL")
                .additive()
        }),
        (ident(), ident(), literal()).prop_map(|(t, c, v)| {
            S::default()
                .kw("INSERT INTO")
                .word(t)
                .punct("(")
                .word(c)
                .punct(")")
                .kw("VALUES")
                .punct("(")
                .word(v)
                .punct(")")
                .additive()
        }),
        prop::sample::select(vec!["BEGIN", "COMMIT", "START TRANSACTION"])
            .prop_map(|k| S::default().kw(k).additive()),
    ]
}

fn destructive_stmt() -> impl Strategy<Value = Stmt> {
    prop_oneof![
        // DROP <object>
        (
            prop::sample::select(vec![
                "TABLE",
                "INDEX",
                "VIEW",
                "TYPE",
                "SCHEMA",
                "SEQUENCE",
                "MATERIALIZED VIEW",
                "FUNCTION",
                "DOMAIN",
                "EXTENSION",
            ]),
            any::<bool>(),
            ident(),
            prop::option::of(prop::sample::select(vec!["CASCADE", "RESTRICT"])),
        )
            .prop_map(|(what, ie, name, tail)| {
                let s = S::default()
                    .kw("DROP")
                    .kw(what)
                    .kw_if(ie, "IF EXISTS")
                    .word(name);
                match tail {
                    Some(t) => s.kw(t),
                    None => s,
                }
                .destructive()
            }),
        // DROP COLUMN (COLUMN is optional)
        (
            ident(),
            any::<bool>(),
            any::<bool>(),
            ident(),
            any::<bool>()
        )
            .prop_map(|(t, column, ie, c, cascade)| {
                S::default()
                    .kw("ALTER TABLE")
                    .word(t)
                    .kw("DROP")
                    .kw_if(column, "COLUMN")
                    .kw_if(ie, "IF EXISTS")
                    .word(c)
                    .kw_if(cascade, "CASCADE")
                    .destructive()
            }),
        (ident(), any::<bool>(), ident()).prop_map(|(t, ie, c)| {
            S::default()
                .kw("ALTER TABLE")
                .word(t)
                .kw("DROP CONSTRAINT")
                .kw_if(ie, "IF EXISTS")
                .word(c)
                .destructive()
        }),
        // A drop hidden behind an addition in one ALTER TABLE
        (ident(), ident(), ty(), ident()).prop_map(|(t, a, ty, d)| {
            S::default()
                .kw("ALTER TABLE")
                .word(t)
                .kw("ADD COLUMN")
                .word(a)
                .parts(ty)
                .punct(",")
                .kw("DROP COLUMN")
                .word(d)
                .destructive()
        }),
        // Renames
        (ident(), any::<bool>(), ident(), ident()).prop_map(|(t, column, a, b)| {
            S::default()
                .kw("ALTER TABLE")
                .word(t)
                .kw("RENAME")
                .kw_if(column, "COLUMN")
                .word(a)
                .kw("TO")
                .word(b)
                .destructive()
        }),
        (ident(), ident()).prop_map(|(a, b)| {
            S::default()
                .kw("ALTER TABLE")
                .word(a)
                .kw("RENAME TO")
                .word(b)
                .destructive()
        }),
        (ident(), literal(), literal()).prop_map(|(e, a, b)| {
            S::default()
                .kw("ALTER TYPE")
                .word(e)
                .kw("RENAME VALUE")
                .word(a)
                .kw("TO")
                .word(b)
                .destructive()
        }),
        (ident(), ident()).prop_map(|(a, b)| {
            S::default()
                .kw("ALTER TYPE")
                .word(a)
                .kw("RENAME TO")
                .word(b)
                .destructive()
        }),
        // Type changes and tightening
        (ident(), ident(), any::<bool>(), ty()).prop_map(|(t, c, set_data, ty)| {
            S::default()
                .kw("ALTER TABLE")
                .word(t)
                .kw("ALTER COLUMN")
                .word(c)
                .kw(if set_data { "SET DATA TYPE" } else { "TYPE" })
                .parts(ty)
                .destructive()
        }),
        (ident(), ident()).prop_map(|(t, c)| {
            S::default()
                .kw("ALTER TABLE")
                .word(t)
                .kw("ALTER COLUMN")
                .word(c)
                .kw("SET NOT NULL")
                .destructive()
        }),
        (ident(), ident(), ty()).prop_map(|(t, c, ty)| {
            S::default()
                .kw("ALTER TABLE")
                .word(t)
                .kw("ADD COLUMN")
                .word(c)
                .parts(ty)
                .kw("NOT NULL")
                .destructive()
        }),
        // Deleting data
        (any::<bool>(), ident()).prop_map(|(table, t)| {
            S::default()
                .kw("TRUNCATE")
                .kw_if(table, "TABLE")
                .word(t)
                .destructive()
        }),
        ident().prop_map(|t| S::default().kw("DELETE FROM").word(t).destructive()),
        (any::<bool>(), literal()).prop_map(|(qualified, v)| {
            S::default()
                .kw("DELETE FROM")
                .word(if qualified {
                    "pg_catalog.pg_enum"
                } else {
                    "pg_enum"
                })
                .kw("WHERE")
                .word("enumlabel")
                .punct("=")
                .word(v)
                .destructive()
        }),
    ]
}

fn any_stmt() -> impl Strategy<Value = Stmt> {
    prop_oneof![3 => additive_stmt(), 1 => destructive_stmt()]
}

/// What goes between two tokens: always at least a separator, often a
/// comment that says DROP.
const GAPS: &[&str] = &[
    " ",
    "\n",
    "\t",
    "   ",
    "\r\n",
    " -- DROP TABLE customers; 'unclosed\n",
    " /* DROP ; ' \" */ ",
    " /* nested /* DROP TABLE x */ still a comment */ ",
    "\n--\n",
];

/// Renders statements with keyword case, spacing, comments and extra
/// semicolons taken from `tape` (all zeros: upper case, single spaces).
fn render(stmts: &[Stmt], tape: &[u8]) -> String {
    let mut tape = tape.iter().copied().chain(std::iter::repeat(0));
    let mut next = move || tape.next().unwrap_or(0) as usize;
    let gap = |n: usize| GAPS[n % GAPS.len()];
    let mut out = String::new();
    if next() % 4 == 1 {
        out.push_str(gap(next()));
    }
    for (i, s) in stmts.iter().enumerate() {
        if i > 0 {
            out.push(';');
            for _ in 0..next() % 3 {
                out.push_str(gap(next()));
                out.push(';');
            }
            out.push_str(gap(next()));
        }
        for (j, part) in s.parts.iter().enumerate() {
            if j > 0 {
                out.push_str(gap(next()));
            }
            match part {
                Part::Kw(k) => match next() % 3 {
                    0 => out.push_str(k),
                    1 => out.push_str(&k.to_ascii_lowercase()),
                    _ => out.extend(k.chars().enumerate().map(|(n, c)| {
                        if n % 2 == 0 {
                            c.to_ascii_lowercase()
                        } else {
                            c
                        }
                    })),
                },
                Part::Word(w) => out.push_str(w),
                Part::Punct(p) => out.push_str(p),
            }
        }
    }
    if next() % 2 == 1 {
        out.push(';');
    }
    if next() % 3 == 1 {
        out.push_str(gap(next()));
    }
    out
}

// ---------------------------------------------------------------------------
// Token soup: SQL-looking tokens in any order.

const SOUP: &[&str] = &[
    "ALTER",
    "CREATE",
    "DROP",
    "RENAME",
    "TABLE",
    "COLUMN",
    "INDEX",
    "TYPE",
    "VALUE",
    "ADD",
    "TO",
    "ON",
    "IF",
    "NOT",
    "EXISTS",
    "NULL",
    "DEFAULT",
    "CASCADE",
    "CONSTRAINT",
    "SET",
    "DATA",
    "TRUNCATE",
    "DELETE",
    "FROM",
    "WHERE",
    "UNIQUE",
    "PARTITION",
    "VIEW",
    "SCHEMA",
    "BEGIN",
    "COMMIT",
    "INSERT",
    "INTO",
    "VALUES",
    "SELECT",
    "INT",
    "TEXT",
    "drop",
    "Drop",
    "customers",
    "orders",
    "t",
    "c",
    "pg_enum",
    "enumlabel",
    "表",
    "Ünïcødé",
    "🙂",
    "\"DROP TABLE x\"",
    "\"we;ird\"",
    "\"has\"\"quote\"",
    "'DROP TABLE t;'",
    "'it''s'",
    "''",
    "$$ DROP TABLE t; $$",
    "$tag$ ; $tag$",
    "E'\\n'",
    "-- DROP TABLE t\n",
    "/* DROP */",
    "/* unclosed",
    "'unclosed",
    "\"unclosed",
    ";",
    ";;",
    "(",
    ")",
    ",",
    "=",
    "::",
    "$1",
    "1",
    "0.5",
    "*",
    ".",
    "ＤＲＯＰ",
    "\u{a0}",
    "\u{feff}",
    "\u{0}",
];

fn soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(SOUP), 0..40),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(tokens, gaps)| {
            let mut out = String::new();
            for (i, t) in tokens.iter().enumerate() {
                if i > 0 {
                    out.push_str(match gaps.get(i).copied().unwrap_or(0) % 4 {
                        0 | 1 => " ",
                        2 => "\n",
                        _ => "",
                    });
                }
                out.push_str(t);
            }
            out
        })
}

proptest! {
    #![proptest_config(Config { cases: 800, ..Config::default() })]

    /// Generated scripts: flagged exactly when one of their statements is
    /// destructive (so never additive with a DROP in it), additive with the
    /// right count otherwise; each statement alone gets its own label.
    #[test]
    fn generated_scripts_get_the_verdict_of_their_statements(
        stmts in prop::collection::vec(any_stmt(), 1..6),
        tape in prop::collection::vec(any::<u8>(), 0..96),
    ) {
        let sql = render(&stmts, &tape);
        let verdict = verdict_is_consistent(&sql)?;
        let destructive = stmts.iter().filter(|s| s.destructive).count();
        if destructive > 0 {
            match &verdict {
                Verdict::Breaking(findings) => prop_assert!(
                    findings.len() >= destructive,
                    "{destructive} destructive statements, {} findings: {sql:?}",
                    findings.len()
                ),
                other => prop_assert!(false, "{sql:?} has {destructive} destructive statements: {other:?}"),
            }
        } else {
            prop_assert_eq!(&verdict, &Verdict::Additive { statements: stmts.len() }, "{:?}", sql);
        }
        for s in &stmts {
            let one = render(std::slice::from_ref(s), &tape);
            let verdict = check(&one);
            if s.destructive {
                prop_assert!(matches!(verdict, Verdict::Breaking(_)), "{one:?}: {verdict:?}");
            } else {
                prop_assert_eq!(&verdict, &Verdict::Additive { statements: 1 }, "{:?}", one);
            }
        }
    }
}

/// What DROP is followed by, in the places it appears in the dialects the
/// parser knows, plus now and then a stray word: many combinations do not
/// parse; every one that does must be flagged.
const ALTER_DROP_HEADS: &[&str] = &[
    "",
    "COLUMN",
    "CONSTRAINT",
    "INDEX",
    "PARTITION",
    "PRIMARY KEY",
    "FOREIGN KEY",
    "CLUSTERING KEY",
    "PROJECTION",
    "UNIQUE",
    "TRIGGER",
    "RULE",
    "ROW LEVEL SECURITY",
    "POLICY",
    "ATTRIBUTE",
    "VALUE",
    "DEFAULT",
    "NOT NULL",
];
const ALTER_COLUMN_DROP_HEADS: &[&str] = &[
    "DEFAULT",
    "NOT NULL",
    "EXPRESSION",
    "IDENTITY",
    "CONSTRAINT",
    "GENERATED",
];
const OBJECT_DROP_HEADS: &[&str] = &[
    "TABLE",
    "VIEW",
    "TYPE",
    "SCHEMA",
    "FUNCTION",
    "SEQUENCE",
    "MATERIALIZED VIEW",
    "INDEX",
    "OWNED BY",
    "ROLE",
    "STATISTICS",
    "TRIGGER",
    "POLICY",
    "EXTENSION",
    "DOMAIN",
    "PROCEDURE",
    "DATABASE",
    "USER",
    "SECRET",
    "STAGE",
    "COLLATION",
    "OPERATOR",
    "CONNECTOR",
    "WAREHOUSE",
];
const DROP_TARGETS: &[&str] = &[
    "c",
    "\"c\"",
    "(a)",
    "(a = 1)",
    "(a, b)",
    "d, e",
    "\"we;ird\"",
    "c ON t",
    "f()",
];
const DROP_NOISE: &[&str] = &[
    "IF", "EXISTS", "NOT", "NULL", "KEY", "CASCADE", "(a)", ",", "c", "DROP", "ALL", "ON", "t",
];

#[derive(Clone, Copy, Debug)]
enum DropPlace {
    AlterTable,
    AlterColumn,
    Statement,
}

fn drop_clause(place: DropPlace) -> impl Strategy<Value = String> {
    let heads = match place {
        DropPlace::AlterTable => ALTER_DROP_HEADS,
        DropPlace::AlterColumn => ALTER_COLUMN_DROP_HEADS,
        DropPlace::Statement => OBJECT_DROP_HEADS,
    };
    (
        ident(),
        (any::<bool>(), prop::sample::select(heads), any::<bool>()),
        prop::option::of(prop::sample::select(DROP_TARGETS)),
        prop::option::of(prop::sample::select(vec!["CASCADE", "RESTRICT"])),
        prop_oneof![
            4 => Just(vec![]),
            1 => prop::collection::vec(prop::sample::select(DROP_NOISE), 1..3),
        ],
    )
        .prop_map(
            move |(column, (if_exists, head, exists_first), target, tail, noise)| {
                let mut words: Vec<String> = vec![match place {
                    DropPlace::AlterColumn => format!("ALTER COLUMN {column} DROP"),
                    _ => "DROP".to_string(),
                }];
                if if_exists && exists_first {
                    words.push("IF EXISTS".into());
                }
                words.push(head.to_string());
                if if_exists && !exists_first {
                    words.push("IF EXISTS".into());
                }
                words.extend(target.map(String::from));
                words.extend(tail.map(String::from));
                words.extend(noise.iter().map(|w| w.to_string()));
                words.retain(|w| !w.is_empty());
                words.join(" ")
            },
        )
}

/// An `ALTER TABLE t <op>, <op>…` with at least one DROP operation, or a
/// `DROP …` statement, among additive statements.
fn drop_soup() -> impl Strategy<Value = String> {
    let operation = prop_oneof![
        3 => drop_clause(DropPlace::AlterTable),
        2 => drop_clause(DropPlace::AlterColumn),
    ];
    let drop = prop_oneof![
        (ident(), prop::collection::vec(operation, 1..3))
            .prop_map(|(table, ops)| format!("ALTER TABLE {table} {}", ops.join(", "))),
        drop_clause(DropPlace::Statement),
    ];
    (drop, prop::collection::vec(additive_stmt(), 0..3)).prop_map(|(drop, around)| {
        let mut parts: Vec<String> = around
            .iter()
            .map(|s| render(std::slice::from_ref(s), &[]))
            .collect();
        parts.insert(parts.len() / 2, drop);
        parts.join(";\n")
    })
}

proptest! {
    #![proptest_config(Config { cases: 300, ..Config::default() })]

    #[test]
    fn token_soup_never_panics_and_never_passes_a_drop(sql in soup()) {
        verdict_is_consistent(&sql)?;
    }
}

proptest! {
    #![proptest_config(Config { cases: 600, ..Config::default() })]

    /// Whatever parses with a DROP in it is flagged (the known gaps apart).
    #[test]
    fn drop_operations_are_never_additive(sql in drop_soup()) {
        verdict_is_consistent(&sql)?;
    }
}

proptest! {
    #![proptest_config(Config { cases: 150, ..Config::default() })]

    #[test]
    fn arbitrary_strings_never_panic(sql in any::<String>()) {
        verdict_is_consistent(&sql)?;
    }

    #[test]
    fn arbitrary_ascii_never_panics(sql in "[ -~\n\t]{0,160}") {
        verdict_is_consistent(&sql)?;
    }
}

/// The parser's recursion limit turns absurd nesting into "not verified",
/// not a stack overflow.
#[test]
fn deep_nesting_is_unreadable_not_a_crash() {
    for depth in [60, 1_000, 100_000] {
        let sql = format!(
            "ALTER TABLE t ADD COLUMN c INT DEFAULT {}1{}",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        assert!(
            matches!(check(&sql), Verdict::Unreadable(_)),
            "depth {depth}"
        );
    }
}

// ---------------------------------------------------------------------------
// The corpus.

fn corpus() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/migration_sql");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&path).unwrap();
            (name, sql)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_gets_the_verdict_its_name_says() {
    let files = corpus();
    for prefix in ["additive-", "destructive-", "unreadable-"] {
        assert!(
            files.iter().filter(|(n, _)| n.starts_with(prefix)).count() >= 3,
            "at least three {prefix}* files"
        );
    }
    for (name, sql) in &files {
        assert!(name.ends_with(".sql"), "{name}: not a .sql file");
        let verdict = check(sql);
        let ok = if name.starts_with("additive-") {
            matches!(verdict, Verdict::Additive { .. })
        } else if name.starts_with("destructive-") {
            matches!(&verdict, Verdict::Breaking(f) if !f.is_empty())
        } else if name.starts_with("unreadable-") {
            matches!(verdict, Verdict::Unreadable(_))
        } else {
            panic!("{name}: the name must start with additive-, destructive- or unreadable-");
        };
        assert!(ok, "{name}: got {verdict:?}");
        // Whatever the file, the general properties hold.
        verdict_is_consistent(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
