//! The advisor endpoints' request bodies and documented responses. The
//! responses mirror `pgpulse_insight::advisor`'s `ImplementOutcome` and
//! `Impact` field for field, so the wire shape is owned (and documented)
//! here rather than by the insight crate.

use pgpulse_insight::advisor::{Impact, ImpactSide, ImplementOutcome};
use pgpulse_store::{Recommendation, RecommendationStatus, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where `POST /optimize-indexes` reads the workload from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WorkloadSource {
    /// The live statistics since pgpulse started.
    Live,
    /// The stored pattern rows of the last 24 hours.
    Store,
}

/// Body of `POST /optimize-indexes`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptimizeBody {
    /// The database to analyse (default: the one of the configured server
    /// URL).
    #[schema(min_length = 1, max_length = 63)]
    pub database: Option<String>,
    /// The workload judged (default: `live` when this instance records
    /// statistics, else `store`).
    pub source: Option<WorkloadSource>,
}

/// What one advisor run found and stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OptimizeResponse {
    /// The database analysed.
    pub database: String,
    /// The workload judged.
    pub source: WorkloadSource,
    /// Statements of that workload considered (all databases; the advisor
    /// keeps this one's).
    pub statements: usize,
    /// Whether HypoPG validated the index candidates (else a heuristic,
    /// with lower confidence).
    pub hypopg: bool,
    /// The recommendations stored by this run (new or refreshed; a
    /// dismissed one stays dismissed). Nothing is implemented: see `POST
    /// /recommendations/{id}/implement`.
    pub recommendations: Vec<Recommendation>,
    /// What could not be judged, and why.
    pub notes: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Body of `POST /recommendations/{id}/implement`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImplementBody {
    /// Only say what would run (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub dry_run: bool,
}

impl Default for ImplementBody {
    fn default() -> Self {
        ImplementBody { dry_run: true }
    }
}

/// What an implementation did (or, for a dry run, would do).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImplementResponse {
    /// The recommendation.
    pub recommendation_id: i64,
    /// Its kind.
    pub kind: String,
    /// The SQL that runs (or would run), if it is SQL.
    #[schema(required = true)]
    pub statement: Option<String>,
    /// The callback's input (`{"cache_rule": …}` or `{"pool_resize": …}`)
    /// for a recommendation that is not SQL.
    #[schema(required = true)]
    pub action: Option<Value>,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// Whether the statement or callback ran and succeeded.
    pub executed: bool,
    /// The recommendation's status afterwards (`applied` or `failed`; a
    /// dry run leaves it as it was).
    pub status: RecommendationStatus,
    /// SQLSTATE of a failed statement.
    #[schema(required = true)]
    pub sqlstate: Option<String>,
    /// Why it failed.
    #[schema(required = true)]
    pub error: Option<String>,
}

impl From<ImplementOutcome> for ImplementResponse {
    fn from(o: ImplementOutcome) -> Self {
        ImplementResponse {
            recommendation_id: o.recommendation_id,
            kind: o.kind,
            statement: o.statement,
            action: o.action,
            dry_run: o.dry_run,
            executed: o.executed,
            status: o.status,
            sqlstate: o.sqlstate,
            error: o.error,
        }
    }
}

fn fifteen() -> u32 {
    15
}

/// Body of `POST /recommendations/{id}/measure`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MeasureBody {
    /// Minutes compared on each side of `applied_at` (default 15, at most
    /// 10,080: a week).
    #[serde(default = "fifteen")]
    #[schema(default = 15, minimum = 1, maximum = 10080)]
    pub window_minutes: u32,
}

impl Default for MeasureBody {
    fn default() -> Self {
        MeasureBody { window_minutes: 15 }
    }
}

/// One side (before or after `applied_at`) of an impact measurement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImpactSideResponse {
    /// Start of the window measured.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Its end (exclusive; the after side is cut at now).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Executions of the affected statements.
    pub calls: i64,
    /// Mean duration, ms.
    pub mean_ms: f64,
    /// 95th percentile, ms (from the merged period histograms).
    pub p95_ms: f64,
    /// The p95 is the worst period's, not a merged one (some rows had no
    /// histogram).
    pub approximate: bool,
}

impl From<ImpactSide> for ImpactSideResponse {
    fn from(s: ImpactSide) -> Self {
        ImpactSideResponse {
            from: s.from,
            to: s.to,
            calls: s.calls,
            mean_ms: s.mean_ms,
            p95_ms: s.p95_ms,
            approximate: s.approximate,
        }
    }
}

/// The measured effect of an applied recommendation (also stored in its
/// `impact`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImpactResponse {
    /// `measured`, `not enough calls yet` (fewer than 10 calls on a side)
    /// or `no affected statements`.
    pub status: String,
    /// The fingerprints compared.
    pub fingerprints: Vec<String>,
    /// Before `applied_at`.
    pub before: ImpactSideResponse,
    /// After `applied_at`.
    pub after: ImpactSideResponse,
    /// Change of the p95, % (negative is faster); null unless measured.
    #[schema(required = true)]
    pub p95_change_pct: Option<f64>,
    /// Change of the mean, %; null unless measured.
    #[schema(required = true)]
    pub mean_change_pct: Option<f64>,
    /// When it was measured.
    #[schema(value_type = String, format = DateTime)]
    pub measured_at: Timestamp,
}

impl From<Impact> for ImpactResponse {
    fn from(i: Impact) -> Self {
        ImpactResponse {
            status: i.status,
            fingerprints: i.fingerprints,
            before: i.before.into(),
            after: i.after.into(),
            p95_change_pct: i.p95_change_pct,
            mean_change_pct: i.mean_change_pct,
            measured_at: i.measured_at,
        }
    }
}
