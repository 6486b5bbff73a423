//! Page requests and paginated results of list queries (`?page=1&page_size=20`, at most 100).

/// Which page of a list to read: 1-based `page`, `page_size` between 1 and [`Page::MAX_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    page: u32,
    page_size: u32,
}

impl Page {
    /// The largest page size.
    pub const MAX_SIZE: u32 = 100;
    /// The page size when none is asked for.
    pub const DEFAULT_SIZE: u32 = 20;

    /// A page request, clamped into range: `page` at least 1, `page_size` in `1..=MAX_SIZE`.
    /// (The HTTP layer validates and answers 422 first; this only keeps queries sane.)
    pub fn new(page: u32, page_size: u32) -> Self {
        Self {
            page: page.max(1),
            page_size: page_size.clamp(1, Self::MAX_SIZE),
        }
    }

    /// The 1-based page number.
    pub const fn page(&self) -> u32 {
        self.page
    }

    /// The number of items per page.
    pub const fn page_size(&self) -> u32 {
        self.page_size
    }

    /// SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        i64::from(self.page_size)
    }

    /// SQL `OFFSET`.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.page_size)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new(1, Self::DEFAULT_SIZE)
    }
}

/// One page of a list, with the total number of items across all pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paginated<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The page that was read.
    pub page: Page,
    /// The number of items across all pages.
    pub total: i64,
}
