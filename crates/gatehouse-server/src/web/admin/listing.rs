//! What every searched, sorted and paged list of the administration pages shares: reading the page, size,
//! sort and direction from the query string (a value that makes no sense falls back to the default, it never
//! fails the page), the sortable column headings, and the pager under the table. The search itself runs in the
//! database ([`gatehouse_store::Page`]).

use std::collections::HashMap;

use gatehouse_store::{Page, Window};

/// The page sizes offered.
const SIZES: [u64; 4] = [25, 50, 100, 200];
/// The page size when none is asked for.
const DEFAULT_SIZE: u64 = 50;

/// A list's query string: its filters (kept in every link the page makes) and where in the list it is.
pub(super) struct ListQuery {
    /// The path of the list (`/admin/mailboxes`).
    path: String,
    /// The filters, in the order the page gave them (empty ones left out).
    filters: Vec<(&'static str, String)>,
    /// The sort key, one of those the page accepts.
    pub sort: &'static str,
    /// Descending order.
    pub descending: bool,
    /// The order when the query names none (logs: newest first).
    default_descending: bool,
    /// The 1-based page number.
    page: u64,
    /// Rows per page.
    size: u64,
}

impl ListQuery {
    /// Reads the place in the list from `query`; `sorts` are the keys the page accepts, the first the default
    /// (ascending).
    pub fn new(path: String, query: &HashMap<String, String>, sorts: &[&'static str]) -> Self {
        Self::with_default_order(path, query, sorts, false)
    }

    /// [`ListQuery::new`] for a list shown in descending order unless the query asks otherwise.
    pub fn descending(path: String, query: &HashMap<String, String>, sorts: &[&'static str]) -> Self {
        Self::with_default_order(path, query, sorts, true)
    }

    fn with_default_order(
        path: String,
        query: &HashMap<String, String>,
        sorts: &[&'static str],
        default_descending: bool,
    ) -> Self {
        let number = |name: &str| query.get(name).and_then(|v| v.trim().parse::<u64>().ok());
        let sort = query.get("sort").and_then(|wanted| sorts.iter().find(|s| **s == wanted.as_str())).copied();
        ListQuery {
            path,
            filters: Vec::new(),
            sort: sort.unwrap_or(sorts[0]),
            descending: match query.get("dir").map(String::as_str) {
                Some("desc") => true,
                Some("asc") => false,
                _ => default_descending,
            },
            default_descending,
            page: number("page").filter(|p| *p > 0).unwrap_or(1),
            size: number("size").filter(|s| SIZES.contains(s)).unwrap_or(DEFAULT_SIZE),
        }
    }

    /// Adds a filter kept in the links (an empty value is left out).
    pub fn keep(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.filters.push((name, value));
        }
    }

    /// The rows the store is asked for.
    pub fn window(&self) -> Window {
        Window::new((self.page - 1).saturating_mul(self.size), self.size)
    }

    /// The link to this list with the filters, `sort`, `descending` and `page`.
    fn link(&self, sort: &str, descending: bool, page: u64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.filters {
            query.append_pair(name, value);
        }
        query.append_pair("sort", sort);
        if descending != self.default_descending {
            query.append_pair("dir", if descending { "desc" } else { "asc" });
        }
        if self.size != DEFAULT_SIZE {
            query.append_pair("size", &self.size.to_string());
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        format!("{}?{}", self.path, query.finish())
    }

    /// A sortable column heading: a click sorts by it, a second click reverses the order.
    pub fn column(&self, key: &'static str, label: &'static str) -> Column {
        let current = self.sort == key;
        let descending = if current { !self.descending } else { self.default_descending };
        Column {
            label,
            href: Some(self.link(key, descending, 1)),
            aria_sort: match (current, self.descending) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            },
            arrow: match (current, self.descending) {
                (false, _) => "",
                (true, false) => " ▲",
                (true, true) => " ▼",
            },
        }
    }

    /// The pager for `page`.
    pub fn pager<T>(&self, page: &Page<T>) -> Pager {
        let pages = page.total.div_ceil(self.size).max(1);
        // Past a counting cap the last page is unknown: no "Last" link, and "Next" as long as pages are full.
        let at = if page.more { self.page } else { self.page.min(pages) };
        let href = |n: u64| self.link(self.sort, self.descending, n);
        Pager {
            total: page.total,
            first_row: if page.items.is_empty() { 0 } else { page.offset + 1 },
            last_row: page.offset + page.items.len() as u64,
            page: at,
            pages,
            first: (at > 1).then(|| href(1)),
            previous: (at > 1).then(|| href(at - 1)),
            next: (at < pages || (page.more && page.items.len() as u64 == self.size)).then(|| href(at + 1)),
            last: (at < pages && !page.more).then(|| href(pages)),
            more: page.more,
            sizes: SIZES.iter().map(|size| (*size, *size == self.size)).collect(),
            path: self.path.clone(),
            hidden: self
                .filters
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .chain([("sort".to_string(), self.sort.to_string())])
                .chain(
                    (self.descending != self.default_descending)
                        .then(|| ("dir".to_string(), if self.descending { "desc" } else { "asc" }.to_string())),
                )
                .collect(),
        }
    }
}

/// A column heading, sortable when it has a link.
pub(super) struct Column {
    pub label: &'static str,
    /// The link that sorts by this column.
    pub href: Option<String>,
    /// The heading's `aria-sort`.
    pub aria_sort: &'static str,
    /// ▲ or ▼ on the column the list is sorted by.
    pub arrow: &'static str,
}

impl Column {
    /// A heading the list cannot be sorted by.
    pub fn plain(label: &'static str) -> Self {
        Column { label, href: None, aria_sort: "none", arrow: "" }
    }
}

/// The pager under a list: where this page is, the links to the others, and the page-size form.
pub(super) struct Pager {
    pub total: u64,
    /// More entries match than were counted (`total` is a lower bound).
    pub more: bool,
    pub first_row: u64,
    pub last_row: u64,
    pub page: u64,
    pub pages: u64,
    pub first: Option<String>,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub last: Option<String>,
    /// The sizes offered, and which is in use.
    pub sizes: Vec<(u64, bool)>,
    /// The list's path (the page-size form's action).
    pub path: String,
    /// The filters and order, kept by the page-size form.
    pub hidden: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn nonsense_falls_back_to_the_defaults() {
        let list = ListQuery::new(
            "/admin/mailboxes".into(),
            &query(&[("sort", "password_hash"), ("page", "-3"), ("size", "100000")]),
            &["address", "quota"],
        );
        assert_eq!((list.sort, list.descending, list.window()), ("address", false, Window::new(0, 50)));
    }

    #[test]
    fn links_keep_the_filters_and_order() {
        let mut list = ListQuery::new(
            "/admin/mailboxes".into(),
            &query(&[("sort", "quota"), ("dir", "desc"), ("page", "3"), ("size", "25")]),
            &["address", "quota"],
        );
        list.keep("q", "a&b");
        list.keep("domain", "");
        assert_eq!(list.window(), Window::new(50, 25));
        let page = Page { items: vec![(); 25], total: 80, more: false, offset: 50, limit: 25 };
        let pager = list.pager(&page);
        assert_eq!((pager.first_row, pager.last_row, pager.page, pager.pages), (51, 75, 3, 4));
        assert_eq!(pager.next.as_deref(), Some("/admin/mailboxes?q=a%26b&sort=quota&dir=desc&size=25&page=4"));
        assert_eq!(pager.first.as_deref(), Some("/admin/mailboxes?q=a%26b&sort=quota&dir=desc&size=25"));
        let quota = list.column("quota", "Quota");
        assert_eq!(
            (quota.aria_sort, quota.href.as_deref()),
            ("descending", Some("/admin/mailboxes?q=a%26b&sort=quota&size=25"))
        );
        let logs = ListQuery::descending("/admin/logs/auth".into(), &query(&[]), &["time"]);
        assert!(logs.descending);
        assert_eq!(logs.column("time", "Time").href.as_deref(), Some("/admin/logs/auth?sort=time&dir=asc"));
        let capped = Page { items: vec![(); 50], total: 10_000, more: true, offset: 0, limit: 50 };
        let pager = logs.pager(&capped);
        assert!(pager.more && pager.next.is_some() && pager.last.is_none());
        let address = list.column("address", "Address");
        assert_eq!(address.aria_sort, "none");
        assert!(address.href.unwrap().ends_with("sort=address&size=25"));
    }
}
