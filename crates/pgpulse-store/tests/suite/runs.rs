//! Job runs (newest first, by job, limit) and the audit log (newest first,
//! paged with a total).

use pgpulse_store::{AuditRecord, JobOutcome, JobRun, Store, Timestamp};
use serde_json::json;

use super::{page, sec};

const DAY: i64 = 9;

/// A job run.
pub fn job_run(job: &str, started_at: Timestamp, outcome: JobOutcome, n: i64) -> JobRun {
    JobRun {
        id: 0,
        job: job.to_string(),
        started_at,
        finished_at: started_at + chrono::TimeDelta::microseconds(1_500_001),
        outcome,
        rows_affected: n,
        message: match outcome {
            JobOutcome::Ok => format!("deleted {n} rows"),
            JobOutcome::Failed => "store unavailable: connection refused".to_string(),
            JobOutcome::Skipped => "previous run still going".to_string(),
        },
    }
}

/// An audit record.
pub fn audit_record(at: Timestamp, actor: &str, n: i64) -> AuditRecord {
    AuditRecord {
        id: 0,
        at,
        actor: actor.to_string(),
        action: "alert.acknowledge".to_string(),
        target: format!("alert:{n}"),
        details: json!({"request_id": format!("req-{n}"), "dry_run": n % 2 == 0}),
    }
}

/// The area.
pub async fn run(store: &dyn Store) {
    job_runs(store).await;
    claims(store).await;
    audit(store).await;
}

/// Claims of job occurrences: the first claim wins, per job and due time;
/// claims a week older than a newer one of the same job are forgotten.
async fn claims(store: &dyn Store) {
    let t = sec(DAY, 50);
    let claim = async |job: &str, at, who: &str| {
        store
            .claim_job_occurrence(job, at, who)
            .await
            .expect("claim")
    };
    assert!(claim("suite-claim", t, "instance-a").await);
    assert!(
        !claim("suite-claim", t, "instance-b").await,
        "already claimed"
    );
    assert!(
        !claim("suite-claim", t, "instance-a").await,
        "even by itself"
    );
    assert!(
        claim("suite-claim-other", t, "instance-b").await,
        "another job"
    );
    let next = t + chrono::TimeDelta::minutes(5);
    assert!(
        claim("suite-claim", next, "instance-b").await,
        "next occurrence"
    );
    let week_later = t + chrono::TimeDelta::days(pgpulse_store::CLAIMS_KEPT_DAYS + 1);
    assert!(claim("suite-claim", week_later, "instance-a").await);
    assert!(
        claim("suite-claim", t, "instance-c").await,
        "forgotten after a week"
    );
    assert!(
        !claim("suite-claim-other", t, "instance-c").await,
        "other jobs' claims are kept"
    );
}

async fn job_runs(store: &dyn Store) {
    let (job_a, job_b) = ("suite-retention", "suite-report");
    let runs = [
        job_run(job_a, sec(DAY, 10), JobOutcome::Ok, 120),
        job_run(job_b, sec(DAY, 20), JobOutcome::Failed, 0),
        job_run(job_a, sec(DAY, 30), JobOutcome::Skipped, 0),
        job_run(job_a, sec(DAY, 40), JobOutcome::Ok, 7),
    ];
    let mut ids = Vec::new();
    for r in &runs {
        let id = store.record_job_run(r).await.expect("record");
        assert!(id > 0);
        ids.push(id);
    }
    let stored = |i: usize| JobRun {
        id: ids[i],
        ..runs[i].clone()
    };
    let a = store.job_runs(Some(job_a), 10).await.expect("runs");
    assert_eq!(
        a,
        vec![stored(3), stored(2), stored(0)],
        "newest first, round trip"
    );
    let a2 = store.job_runs(Some(job_a), 2).await.expect("runs");
    assert_eq!(a2, vec![stored(3), stored(2)], "limit");
    assert_eq!(
        store.job_runs(Some(job_b), 10).await.expect("runs"),
        vec![stored(1)]
    );
    assert!(
        store
            .job_runs(Some("suite-none"), 10)
            .await
            .expect("runs")
            .is_empty()
    );
    let all = store.job_runs(None, 1000).await.expect("runs");
    let mine: Vec<JobRun> = all
        .into_iter()
        .filter(|r| r.job == job_a || r.job == job_b)
        .collect();
    assert_eq!(mine, vec![stored(3), stored(2), stored(1), stored(0)]);
}

async fn audit(store: &dyn Store) {
    let before = store.audit_log(page(1, 0)).await.expect("audit").total;
    let records: Vec<AuditRecord> = (0..5)
        .map(|n| {
            audit_record(
                sec(DAY, 100 + n),
                if n % 2 == 0 { "admin-key" } else { "jwt:alice" },
                n,
            )
        })
        .collect();
    let mut ids = Vec::new();
    for r in &records {
        ids.push(store.audit(r).await.expect("audit"));
    }
    let stored = |i: usize| AuditRecord {
        id: ids[i],
        ..records[i].clone()
    };
    let p = store.audit_log(page(2, 1)).await.expect("audit page");
    assert_eq!(p.total, before + 5);
    assert_eq!(
        p.items,
        vec![stored(3), stored(2)],
        "newest first, round trip"
    );
    let first = store.audit_log(page(5, 0)).await.expect("audit");
    assert_eq!(first.items, (0..5).rev().map(stored).collect::<Vec<_>>());
}
