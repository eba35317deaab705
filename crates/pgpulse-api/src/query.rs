//! [`ApiQuery`], the query-string extractor: every parameter is checked by
//! name, an unknown or repeated parameter is a 400, and each typed getter
//! names the field it rejects. Also the list envelope [`Listing`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use pgpulse_store::{Page, Timestamp, Window};
use serde::Serialize;

use crate::error::ApiError;

/// Most rows one page may hold.
pub const MAX_LIMIT: u32 = 1_000;
/// Rows per page when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;

/// The parsed query string of a request.
#[derive(Debug, Default)]
pub struct ApiQuery {
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(ApiError::bad_field(&k, "parameter given more than once"));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(ApiQuery { pairs })
    }
}

impl ApiQuery {
    /// A query made in code (handlers reused by the dashboard).
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> ApiQuery {
        ApiQuery {
            pairs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Rejects any parameter not in `allowed`.
    pub fn allow(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(ApiError::bad_field(
                k,
                format!("unknown parameter; allowed: {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// The raw value of a parameter (an empty value counts as absent).
    pub fn str(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A short free-text parameter (names of databases, users, rules).
    pub fn name(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.str(name) {
            Some(v) if v.len() > 256 => Err(ApiError::bad_field(name, "longer than 256 bytes")),
            v => Ok(v.map(str::to_owned)),
        }
    }

    /// An RFC 3339 time.
    pub fn time(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        self.str(name)
            .map(|v| {
                // An unencoded `+01:00` offset arrives as ` 01:00`.
                chrono::DateTime::parse_from_rfc3339(v)
                    .or_else(|e| match v.rsplit_once(' ') {
                        Some((head, tail)) => {
                            chrono::DateTime::parse_from_rfc3339(&format!("{head}+{tail}"))
                        }
                        None => Err(e),
                    })
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| {
                        ApiError::bad_field(
                            name,
                            "expected an RFC 3339 time (2026-01-31T12:00:00Z)",
                        )
                    })
            })
            .transpose()
    }

    /// `from` and `to` as a window (`from` must precede `to`).
    pub fn window(&self) -> Result<Window, ApiError> {
        let w = Window {
            from: self.time("from")?,
            to: self.time("to")?,
        };
        if let (Some(f), Some(t)) = (w.from, w.to)
            && f >= t
        {
            return Err(ApiError::bad_field("to", "must be after from"));
        }
        Ok(w)
    }

    /// A fingerprint: 16 hex digits (returned lower case).
    pub fn fingerprint(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some(v) if v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Some(v.to_ascii_lowercase()))
            }
            Some(_) => Err(ApiError::bad_field(name, "expected 16 hexadecimal digits")),
        }
    }

    /// An unsigned integer within `min..=max`.
    pub fn u64_in(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
        self.str(name)
            .map(|v| match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_field(
                    name,
                    format!("expected an integer from {min} to {max}"),
                )),
            })
            .transpose()
    }

    /// A non-negative finite number.
    pub fn non_negative(&self, name: &str) -> Result<Option<f64>, ApiError> {
        self.str(name)
            .map(|v| match v.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
                _ => Err(ApiError::bad_field(name, "expected a number >= 0")),
            })
            .transpose()
    }

    /// `true` / `false` (also `1` / `0`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.str(name)
            .map(|v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ApiError::bad_field(name, "expected true or false")),
            })
            .transpose()
    }

    /// One of a fixed set of words, mapped to a value.
    pub fn choice<T: Copy>(
        &self,
        name: &str,
        options: &[(&str, T)],
    ) -> Result<Option<T>, ApiError> {
        self.str(name)
            .map(|v| {
                options
                    .iter()
                    .find(|(k, _)| *k == v)
                    .map(|(_, t)| *t)
                    .ok_or_else(|| {
                        let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
                        ApiError::bad_field(name, format!("expected one of {}", names.join(", ")))
                    })
            })
            .transpose()
    }

    /// `limit` (1..=1000, default 100) and `offset`.
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page {
            limit: self
                .u64_in("limit", 1, u64::from(MAX_LIMIT))?
                .map_or(DEFAULT_LIMIT, |n| n as u32),
            offset: self.u64_in("offset", 0, i64::MAX as u64)?.unwrap_or(0),
        })
    }
}

/// The names of the paging parameters, to add to an endpoint's allowed set.
pub const PAGING: [&str; 2] = ["limit", "offset"];

/// The envelope of every list: `{"items", "total", "limit", "offset"}`
/// (plus `source` where rows may come from the store or the live view).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Listing<T> {
    /// `store` or `live`, where it matters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ListingSource>)]
    pub source: Option<&'static str>,
    /// This page's rows.
    pub items: Vec<T>,
    /// Rows matching the filter.
    pub total: u64,
    /// Page size asked for.
    pub limit: u32,
    /// Rows skipped.
    pub offset: u64,
}

/// Where a list's rows come from, for the OpenAPI document only (the
/// envelope carries the word).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum ListingSource {
    /// The performance store.
    Store,
    /// The live view (insight's statistics or slow-query ring).
    Live,
}

impl<T> Listing<T> {
    /// A page of stored rows.
    pub fn stored(p: pgpulse_store::Paged<T>, page: Page) -> Listing<T> {
        Listing {
            source: None,
            items: p.items,
            total: p.total,
            limit: page.limit,
            offset: page.offset,
        }
    }

    /// Pages an in-memory list.
    pub fn slice(all: Vec<T>, page: Page) -> Listing<T> {
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(page.limit as usize)
            .collect();
        Listing {
            source: None,
            items,
            total,
            limit: page.limit,
            offset: page.offset,
        }
    }

    /// Sets `source`.
    pub fn from_source(mut self, source: &'static str) -> Listing<T> {
        self.source = Some(source);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> ApiQuery {
        ApiQuery {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    #[test]
    fn times_accept_offsets_encoded_or_not() {
        let want = chrono::DateTime::parse_from_rfc3339("2026-01-01T11:00:00Z").unwrap();
        for raw in [
            "from=2026-01-01T12:00:00%2B01:00",
            "from=2026-01-01T12:00:00+01:00",
            "from=2026-01-01T11:00:00Z",
        ] {
            assert_eq!(
                q(raw).time("from").unwrap(),
                Some(want.with_timezone(&chrono::Utc))
            );
        }
        assert!(q("from=2026-01-01 12:00").time("from").is_err());
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(
            q("").page().unwrap(),
            Page {
                limit: 100,
                offset: 0
            }
        );
        assert_eq!(
            q("limit=1000&offset=5").page().unwrap(),
            Page {
                limit: 1000,
                offset: 5
            }
        );
        assert!(q("limit=1001").page().is_err());
        assert!(q("a=1").allow(&["b"]).is_err());
        assert!(q("b=1").allow(&["b"]).is_ok());
    }
}
