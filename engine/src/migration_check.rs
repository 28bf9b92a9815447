//! "Migrations are additive-only": while blue and green run side by side they
//! share one database, so the release's SQL may only add (what blue-green
//! runbooks allow: tables, columns with defaults, indexes, enum values). The SQL is parsed
//! with a real parser, not pattern-matched: a statement the parser cannot read
//! is reported as not verified, never as additive.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, AlterTypeOperation, ColumnOption, FromTable,
    Statement,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// What the checker concluded about a migration script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to check: the release has no SQL.
    NoMigrations,
    /// Every statement only adds.
    Additive { statements: usize },
    /// Statements that old and new code cannot both live with, each with why.
    Breaking(Vec<Finding>),
    /// The parser could not read the script; its message says where.
    Unreadable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub statement: String,
    pub why: String,
}

pub fn check(sql: &str) -> Verdict {
    if sql.trim().is_empty() {
        return Verdict::NoMigrations;
    }
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return Verdict::Unreadable(e.to_string()),
    };
    if statements.is_empty() {
        return Verdict::NoMigrations;
    }
    let findings: Vec<Finding> = statements
        .iter()
        .flat_map(|s| {
            breaking_reasons(s).into_iter().map(|why| Finding {
                statement: s.to_string(),
                why,
            })
        })
        .collect();
    if findings.is_empty() {
        Verdict::Additive {
            statements: statements.len(),
        }
    } else {
        Verdict::Breaking(findings)
    }
}

/// Why `stmt` would break the version still serving, if it would.
fn breaking_reasons(stmt: &Statement) -> Vec<String> {
    match stmt {
        Statement::AlterTable(alter) => alter
            .operations
            .iter()
            .filter_map(|op| breaking_alter(op).map(str::to_string))
            .collect(),
        Statement::AlterType(alter) => match &alter.operation {
            AlterTypeOperation::AddValue(_) => vec![],
            AlterTypeOperation::Rename(_) => vec!["renames a type the live version uses".into()],
            AlterTypeOperation::RenameValue(_) => {
                vec!["renames an enum value: the live version still writes the old one".into()]
            }
        },
        Statement::RenameTable(_) => vec!["renames a table the live version uses".into()],
        Statement::Truncate(_) => vec!["deletes every row of a table".into()],
        Statement::Delete(delete) if is_enum_catalog(&delete.from) => {
            vec!["removes enum values: the live version may still write them".into()]
        }
        Statement::Delete(delete) if delete.selection.is_none() => {
            vec!["deletes every row of a table (DELETE without WHERE)".into()]
        }
        // Every DROP (table, column, index, type, function, schema, view…)
        // removes something the live version may use. Matching the printed
        // statement covers the dozen Drop* variants without listing them.
        other if other.to_string().to_ascii_uppercase().starts_with("DROP ") => {
            vec!["drops something the live version may use".into()]
        }
        _ => vec![],
    }
}

fn breaking_alter(op: &AlterTableOperation) -> Option<&'static str> {
    match op {
        AlterTableOperation::DropColumn { .. } => Some("drops a column the live version reads"),
        AlterTableOperation::DropConstraint { .. }
        | AlterTableOperation::DropPrimaryKey { .. }
        | AlterTableOperation::DropForeignKey { .. }
        | AlterTableOperation::DropIndex { .. } => {
            Some("drops a constraint or index the live version relies on")
        }
        AlterTableOperation::DropPartitions { .. } => Some("drops partitions holding live data"),
        AlterTableOperation::DropClusteringKey => {
            Some("drops a clustering key the live version's queries rely on")
        }
        AlterTableOperation::RenameColumn { .. } => Some("renames a column the live version uses"),
        AlterTableOperation::RenameTable { .. } => Some("renames a table the live version uses"),
        AlterTableOperation::ChangeColumn { .. } | AlterTableOperation::ModifyColumn { .. } => {
            Some("changes a column's type or name")
        }
        AlterTableOperation::AlterColumn { op, .. } => match op {
            AlterColumnOperation::SetDataType { .. } => Some("changes a column's type"),
            AlterColumnOperation::SetNotNull => {
                Some("makes a column NOT NULL: the live version may still write NULL")
            }
            AlterColumnOperation::DropDefault => {
                Some("drops a default the live version's inserts may rely on")
            }
            // Not harmful to the live version, but the new one may write NULLs
            // that the old one, after a rollback, does not expect.
            AlterColumnOperation::DropNotNull => {
                Some("drops NOT NULL: after a rollback the old version may read NULLs")
            }
            _ => None,
        },
        AlterTableOperation::AddColumn { column_def, .. } => {
            let not_null = column_def
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull));
            let has_default = column_def.options.iter().any(|o| {
                matches!(
                    o.option,
                    ColumnOption::Default(_) | ColumnOption::Generated { .. }
                )
            });
            (not_null && !has_default).then_some(
                "adds a NOT NULL column without a default: the live version's inserts fail",
            )
        }
        _ => None,
    }
}

/// PostgreSQL has no `DROP VALUE`; removing an enum value means deleting
/// from its catalog.
fn is_enum_catalog(from: &FromTable) -> bool {
    let tables = match from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    tables.iter().any(|t| {
        t.relation
            .to_string()
            .to_ascii_lowercase()
            .trim_start_matches("pg_catalog.")
            == "pg_enum"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whys(sql: &str) -> Vec<String> {
        match check(sql) {
            Verdict::Breaking(f) => f.into_iter().map(|f| f.why).collect(),
            other => panic!("expected breaking, got {other:?}"),
        }
    }

    #[test]
    fn additive_changes_pass() {
        // A migration of the kind a team's runbook runs before a blue-green deploy.
        let sql = "BEGIN;
            ALTER TYPE queue_status_enum ADD VALUE IF NOT EXISTS 'processing';
            ALTER TABLE customers ADD COLUMN IF NOT EXISTS processing_started_at TIMESTAMP DEFAULT NULL;
            CREATE INDEX IF NOT EXISTS idx_customers_processing_status ON customers(queue_status) WHERE queue_status = 'processing';
            CREATE TABLE audit_trail (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL);
            ALTER TABLE customers ADD COLUMN tier TEXT NOT NULL DEFAULT 'basic';
            COMMIT;";
        assert_eq!(check(sql), Verdict::Additive { statements: 7 });
    }

    #[test]
    fn empty_sql_is_no_migration() {
        assert_eq!(check("  \n"), Verdict::NoMigrations);
    }

    #[test]
    fn each_breaking_kind_is_flagged_with_its_statement() {
        let cases = [
            ("ALTER TABLE customers DROP COLUMN phone", "drops a column"),
            ("DROP TABLE customers", "drops something"),
            ("DROP INDEX idx_customers_phone", "drops something"),
            ("DROP TYPE queue_status_enum", "drops something"),
            (
                "ALTER TABLE customers RENAME COLUMN phone TO phone_number",
                "renames a column",
            ),
            ("ALTER TABLE customers RENAME TO clients", "renames a table"),
            (
                "ALTER TABLE customers ALTER COLUMN phone TYPE BIGINT",
                "changes a column's type",
            ),
            (
                "ALTER TABLE customers ALTER COLUMN phone SET NOT NULL",
                "NOT NULL",
            ),
            (
                "ALTER TABLE customers ADD COLUMN region TEXT NOT NULL",
                "without a default",
            ),
            (
                "ALTER TYPE queue_status_enum RENAME VALUE 'serving' TO 'active'",
                "renames an enum value",
            ),
            (
                "DELETE FROM pg_enum WHERE enumlabel = 'serving'",
                "removes enum values",
            ),
            ("TRUNCATE customers", "every row"),
        ];
        for (sql, expected) in cases {
            let found = whys(sql);
            assert_eq!(found.len(), 1, "{sql}: {found:?}");
            assert!(found[0].contains(expected), "{sql}: {found:?}");
        }
    }

    #[test]
    fn findings_name_the_offending_statements_only() {
        let sql = "CREATE TABLE t (id INT); ALTER TABLE c DROP COLUMN x; CREATE INDEX i ON t (id)";
        let Verdict::Breaking(f) = check(sql) else {
            panic!("expected breaking")
        };
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].statement, "ALTER TABLE c DROP COLUMN x");
    }

    #[test]
    fn unreadable_sql_is_never_additive() {
        match check("ALTER TABLE customers FROB phone") {
            Verdict::Unreadable(msg) => assert!(!msg.is_empty()),
            other => panic!("expected unreadable, got {other:?}"),
        }
    }
}
