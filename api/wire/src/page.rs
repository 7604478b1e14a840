//! Lists come a page at a time: `{"items": [...], "next_cursor": "..."}`. Pass `next_cursor` back as
//! `?cursor=` for the next page; it is null on the last one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
#[schemars(rename = "{T}List")]
pub struct Page<T> {
    /// This page's items, in the list's order.
    #[serde(default = "Vec::<T>::new")]
    pub items: Vec<T>,
    /// The cursor of the next page; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items`, followed by the page after `next_cursor` (none: the last page).
    pub fn new(items: Vec<T>, next_cursor: Option<String>) -> Self {
        Page { items, next_cursor }
    }
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page { items: Vec::new(), next_cursor: None }
    }
}
