//! Searching, sorting and paging lists in the database: one page of rows and the count of all that match, so a
//! page never loads a whole table whatever its size.

use gatehouse_core::Result;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QuerySelect, Select};

use crate::db_err;

/// The most rows one page holds.
pub const MAX_PAGE_SIZE: u64 = 500;

/// One page of a list and the number of entries matching its search.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The entries of this page, in the order asked for.
    pub items: Vec<T>,
    /// How many entries match the search in all (with `more`: at least this many).
    pub total: u64,
    /// More entries match than were counted (logs count up to a cap).
    pub more: bool,
    /// How many matching entries come before this page.
    pub offset: u64,
    /// The page size asked for.
    pub limit: u64,
}

impl<T> Page<T> {
    /// An empty result (nothing can match).
    pub fn empty(offset: u64, limit: u64) -> Self {
        Page { items: Vec::new(), total: 0, more: false, offset, limit }
    }

    /// The same page with each entry converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            more: self.more,
            offset: self.offset,
            limit: self.limit,
        }
    }
}

/// Which part of a list is wanted: `offset` entries skipped, at most `limit` (1 to [`MAX_PAGE_SIZE`]) returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Entries skipped.
    pub offset: u64,
    /// Entries returned at most.
    pub limit: u64,
}

impl Window {
    /// The window, with the size kept between 1 and [`MAX_PAGE_SIZE`].
    pub fn new(offset: u64, limit: u64) -> Self {
        Window { offset, limit: limit.clamp(1, MAX_PAGE_SIZE) }
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::new(0, 50)
    }
}

/// One window of `query` (filtered and ordered by the caller) and how many rows the whole query selects.
pub(crate) async fn window_of<E: EntityTrait>(
    db: &DatabaseConnection,
    query: Select<E>,
    window: Window,
) -> Result<(Vec<E::Model>, u64)>
where
    E::Model: Sync,
{
    let total = query.clone().count(db).await.map_err(db_err)?;
    let rows = query.offset(window.offset).limit(window.limit).all(db).await.map_err(db_err)?;
    Ok((rows, total))
}

/// `text` as a `LIKE` pattern matching any value that contains it, lower-cased, with `%`, `_` and the escape
/// character itself taken literally.
fn contains_pattern(text: &str) -> LikeExpr {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    LikeExpr::new(pattern).escape('!')
}

/// A condition matching rows where any of `columns` contains `text`, ignoring case (the column is lower-cased
/// in the query, so it behaves alike on SQLite, PostgreSQL and MariaDB).
pub(crate) fn any_contains<C: ColumnTrait>(columns: &[C], text: &str) -> Condition {
    columns.iter().fold(Condition::any(), |condition, column| {
        let lowered: SimpleExpr = Func::lower(Expr::col(column.as_column_ref())).into();
        condition.add(lowered.like(contains_pattern(text)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_stay_within_bounds() {
        assert_eq!(Window::new(10, 0).limit, 1);
        assert_eq!(Window::new(10, 100_000).limit, MAX_PAGE_SIZE);
        assert_eq!(Window::default(), Window { offset: 0, limit: 50 });
    }

    #[test]
    fn patterns_take_wildcards_literally() {
        let rendered = format!("{:?}", contains_pattern("A_b%c!"));
        assert!(rendered.contains("%a!_b!%c!!%"), "{rendered}");
    }
}
