//! The register's operations, shared by the public and the internal gRPC services: each reads
//! through the store, applies the rules of [`crate::domain`], and writes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lrs_fields::date::Clock;
use lrs_fields::learner::MatchKeys;
use lrs_fields::name::normalise_name;
use lrs_fields::uln::Uln;
use lrs_store::{GroupCommitOptions, GroupCommitter};

use crate::config::LearnerConfig;
use crate::domain::matching::{CandidateIndex, Decision, MatchPolicy, decide};
use crate::domain::merge::{MergePlan, check_unmerge, plan_merge};
use crate::domain::registration::{
    RecentSearch, SearchRefusal, check_recent_search, keys_hash, search_window_start,
};
use crate::domain::update::{AbilityToShareChange, BatchDetails, apply_batch_details};
use crate::domain::verification::{Claimed, Verdict, verify};
use crate::domain::{BlockingKeys, LearnerDetails, LearnerRecord, LearnerStatus, MatchProfile};
use crate::error::LearnerError;
use crate::store::{
    AuditAction, AuditEntry, InsertOutcome, LearnerChange, LearnerStore, LinkOutcome, MergeWrite,
    NewLearner, StoreError, WriteOutcome,
};

/// How many times a registration draws a new ULN after a clash on the ULN index.
const ULN_ATTEMPTS: usize = 8;

/// How many times a batch update re-reads learners that changed under it.
const BATCH_UPDATE_ATTEMPTS: usize = 3;

/// A learner with the ULNs linked to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The learner.
    pub record: LearnerRecord,
    /// The ULNs linked to it (when it is a master), ascending.
    pub linked_ulns: Vec<Uln>,
}

/// The answer to a search, with the learners it names when they were asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchAnswer {
    /// The outcome and matches.
    pub decision: Decision,
    /// The learners of the matches, by ULN; empty when not asked for.
    pub learners: HashMap<Uln, Found>,
}

/// The answer to a lookup by ULN and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The ULN is unknown or the names do not agree.
    NoMatch,
    /// The learner (the master, when `master_substituted`).
    Found {
        /// The learner.
        learner: Found,
        /// Whether the ULN asked for is linked and its master answers.
        master_substituted: bool,
    },
}

/// Who asks for a change, for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The organisation acted for.
    pub organisation_id: Option<String>,
    /// The user, client or service.
    pub subject: String,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The learner as stored now.
    pub learner: Found,
    /// Whether anything changed.
    pub changed: bool,
}

/// A learner to register in bulk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The idempotency key.
    pub request_id: String,
    /// The details.
    pub details: LearnerDetails,
}

/// What registering one learner in bulk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Registered with this new ULN (or by the first call with the same request id).
    New(Uln),
    /// A learner with the same five keys exists; its ULN (its master's, when linked).
    Existing(Uln),
}

/// The verification of one ULN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// No learner has the ULN.
    UlnNotFound,
    /// The verdict on the learner, with the learner answered (the master when linked).
    Checked {
        /// The verdict.
        verdict: Verdict,
        /// Whether the ULN is linked and its master answers.
        linked: bool,
        /// The learner answered, with its linked ULNs.
        learner: Found,
    },
}

/// The result of a batch update of one learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchUpdated {
    /// No learner has the ULN.
    NotFound,
    /// The learner (the master, when the ULN was linked), and whether anything changed.
    Done {
        /// The ULN updated.
        uln: Uln,
        /// Whether anything changed.
        changed: bool,
    },
}

/// The register: its store, clock, policies and the writer of recent searches.
#[derive(Debug)]
pub struct Register {
    store: Arc<dyn LearnerStore>,
    clock: Arc<dyn Clock>,
    policy: MatchPolicy,
    blocking_cap: u32,
    search_validity: Duration,
    searches: GroupCommitter<RecentSearch, StoreError>,
}

impl Register {
    /// The register over `store`. Starts the writer of recent searches, so it must be called
    /// inside a Tokio runtime.
    pub fn new(
        store: Arc<dyn LearnerStore>,
        clock: Arc<dyn Clock>,
        config: &LearnerConfig,
    ) -> Self {
        let writer = Arc::clone(&store);
        let searches = GroupCommitter::spawn(
            "recent-searches",
            GroupCommitOptions::default(),
            move |batch: Vec<RecentSearch>| {
                let store = Arc::clone(&writer);
                async move { store.record_searches(&batch).await }
            },
        );
        Self {
            store,
            clock,
            policy: config.match_policy(),
            blocking_cap: config.blocking_cap,
            search_validity: config.search_validity,
            searches,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn LearnerStore> {
        &self.store
    }

    /// Now, by the register's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Today in Europe/London, by the register's clock.
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock.today()
    }

    /// Searches once, records the search durably (sharing the commit with concurrent
    /// searches) and answers, with the learners found when `load`.
    pub async fn find(
        &self,
        organisation_id: &str,
        search: &MatchProfile,
        load: bool,
    ) -> Result<SearchAnswer, LearnerError> {
        let blocking = BlockingKeys::of(search);
        let candidates = self
            .store
            .candidates(&[blocking], self.blocking_cap)
            .await?;
        let decision = decide(search, &candidates, self.policy);

        let record = RecentSearch {
            organisation_id: organisation_id.to_owned(),
            keys_hash: keys_hash(&search.match_keys()),
            searched_at: self.clock.now(),
            exact_match_found: decision.outcome.is_exact(),
        };
        // The record must be durable before the answer goes out; the matches are read
        // while it commits.
        let recorded = async {
            self.searches
                .submit(record)
                .await
                .map_err(LearnerError::from)
        };
        let loaded = async {
            if load {
                self.load_matches(&[&decision]).await
            } else {
                Ok(HashMap::new())
            }
        };
        let ((), learners) = tokio::try_join!(recorded, loaded)?;
        Ok(SearchAnswer { decision, learners })
    }

    /// Searches many at once: one candidate query for the whole set, each search scored on
    /// the candidates that share one of its blocking keys, and every search recorded in one
    /// transaction. Answers in order.
    pub async fn find_many(
        &self,
        organisation_id: &str,
        searches: &[MatchProfile],
        load: bool,
    ) -> Result<Vec<SearchAnswer>, LearnerError> {
        let blocking: Vec<BlockingKeys> = searches.iter().map(BlockingKeys::of).collect();
        let candidates = self.store.candidates(&blocking, self.blocking_cap).await?;
        let index = CandidateIndex::new(&candidates);
        let decisions: Vec<Decision> = searches
            .iter()
            .zip(&blocking)
            .map(|(search, keys)| decide(search, index.admitted(keys), self.policy))
            .collect();

        let now = self.clock.now();
        let records: Vec<RecentSearch> = searches
            .iter()
            .zip(&decisions)
            .map(|(search, decision)| RecentSearch {
                organisation_id: organisation_id.to_owned(),
                keys_hash: keys_hash(&search.match_keys()),
                searched_at: now,
                exact_match_found: decision.outcome.is_exact(),
            })
            .collect();
        // As in `find`: the matches are read while the records commit.
        let recorded = async {
            if !records.is_empty() {
                self.store.record_searches(&records).await?;
            }
            Ok::<_, LearnerError>(())
        };
        let loaded = async {
            if load {
                let all: Vec<&Decision> = decisions.iter().collect();
                self.load_matches(&all).await
            } else {
                Ok(HashMap::new())
            }
        };
        let ((), learners) = tokio::try_join!(recorded, loaded)?;
        Ok(decisions
            .into_iter()
            .map(|decision| {
                let own = decision
                    .matches
                    .iter()
                    .filter_map(|m| learners.get(&m.uln).map(|f| (m.uln, f.clone())))
                    .collect();
                SearchAnswer {
                    decision,
                    learners: own,
                }
            })
            .collect())
    }

    /// Registers one learner for `organisation_id` under the find-before-register rule.
    pub async fn register(
        &self,
        organisation_id: &str,
        details: LearnerDetails,
        request_id: Option<String>,
    ) -> Result<Found, LearnerError> {
        if let Some(request_id) = &request_id
            && let Some(first) = self
                .store
                .learner_by_request(organisation_id, request_id)
                .await?
        {
            tracing::debug!(uln = %first.uln, "answered a repeated registration");
            return self.with_links(first).await;
        }

        let keys = details.match_keys();
        let now = self.clock.now();
        let since = search_window_start(now, self.search_validity);
        let latest = self
            .store
            .latest_search(organisation_id, &keys_hash(&keys), since)
            .await?;
        check_recent_search(latest.as_ref(), now, self.search_validity).map_err(|refusal| {
            match refusal {
                SearchRefusal::NoRecentSearch => LearnerError::SearchRequired {
                    minutes: self.search_validity.as_secs().div_ceil(60),
                },
                SearchRefusal::ExactMatchFound => LearnerError::SearchFoundLearner,
            }
        })?;
        if let Some(existing) = self.store.learners_with_keys(&[keys]).await?.first() {
            return Err(LearnerError::AlreadyRegistered {
                uln: existing.resolved_uln().to_string(),
            });
        }

        for _ in 0..ULN_ATTEMPTS {
            let learner = NewLearner {
                uln: Uln::allocate(&mut rand::rng()),
                details: details.clone(),
                registered_by: Some(organisation_id.to_owned()),
                request_id: request_id.clone(),
                at: now,
            };
            let outcome = self.store.insert_learners(&[learner]).await?.pop();
            match outcome {
                Some(InsertOutcome::Inserted(record)) => {
                    tracing::info!(uln = %record.uln, id = record.id, "registered learner");
                    return self.with_links(record).await;
                }
                Some(InsertOutcome::RequestSeen(first)) => return self.with_links(first).await,
                Some(InsertOutcome::KeysTaken(existing)) => {
                    return Err(LearnerError::AlreadyRegistered {
                        uln: existing.resolved_uln().to_string(),
                    });
                }
                Some(InsertOutcome::UlnTaken) | None => continue,
            }
        }
        Err(LearnerError::UlnAllocation)
    }

    /// Registers many learners for `organisation_id` without the recent-search rule (the
    /// caller matched them), in one transaction per attempt. A learner whose five keys exist
    /// is answered with that learner; a repeated request id with the learner it registered.
    pub async fn register_many(
        &self,
        organisation_id: &str,
        registrations: &[Registration],
    ) -> Result<Vec<Registered>, LearnerError> {
        let keys: Vec<MatchKeys> = registrations
            .iter()
            .map(|r| r.details.match_keys())
            .collect();
        let existing = self.store.learners_with_keys(&keys).await?;
        let mut by_keys: HashMap<MatchKeys, &LearnerRecord> = HashMap::new();
        for record in &existing {
            // An active learner outranks a linked one with the same keys.
            let keys = record.details.match_keys();
            match by_keys.get(&keys) {
                Some(kept) if kept.status == LearnerStatus::Active => {}
                _ => {
                    by_keys.insert(keys, record);
                }
            }
        }

        let mut results: Vec<Option<Registered>> = vec![None; registrations.len()];
        let mut pending = Vec::new();
        for (index, (registration, keys)) in registrations.iter().zip(&keys).enumerate() {
            match by_keys.get(keys) {
                Some(record)
                    if record.registered_by.as_deref() == Some(organisation_id)
                        && record.request_id.as_deref() == Some(&registration.request_id) =>
                {
                    results[index] = Some(Registered::New(record.uln));
                }
                Some(record) => results[index] = Some(Registered::Existing(record.resolved_uln())),
                None => pending.push(index),
            }
        }

        let now = self.clock.now();
        for _ in 0..ULN_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let learners: Vec<NewLearner> = pending
                .iter()
                .map(|&index| NewLearner {
                    uln: Uln::allocate(&mut rand::rng()),
                    details: registrations[index].details.clone(),
                    registered_by: Some(organisation_id.to_owned()),
                    request_id: Some(registrations[index].request_id.clone()),
                    at: now,
                })
                .collect();
            let outcomes = self.store.insert_learners(&learners).await?;
            let mut retry = Vec::new();
            for (index, outcome) in pending.iter().zip(outcomes) {
                results[*index] = match outcome {
                    InsertOutcome::Inserted(record) | InsertOutcome::RequestSeen(record) => {
                        Some(Registered::New(record.uln))
                    }
                    InsertOutcome::KeysTaken(record) => {
                        Some(Registered::Existing(record.resolved_uln()))
                    }
                    InsertOutcome::UlnTaken => {
                        retry.push(*index);
                        None
                    }
                };
            }
            pending = retry;
        }
        let registered = results
            .iter()
            .filter(|r| matches!(r, Some(Registered::New(_))))
            .count();
        tracing::info!(
            registered,
            records = registrations.len(),
            "registered learners in bulk"
        );
        results
            .into_iter()
            .map(|result| result.ok_or(LearnerError::UlnAllocation))
            .collect()
    }

    /// Looks a learner up by ULN, answering only when the names agree after normalisation.
    pub async fn get(
        &self,
        uln: Uln,
        given_name: &str,
        family_name: &str,
    ) -> Result<Lookup, LearnerError> {
        let Some((record, linked_ulns)) = self.store.learners_with_links(&[uln]).await?.pop()
        else {
            return Ok(Lookup::NoMatch);
        };
        let agrees = normalise_name(given_name) == normalise_name(&record.details.given_name)
            && normalise_name(family_name) == normalise_name(&record.details.family_name);
        if !agrees {
            return Ok(Lookup::NoMatch);
        }
        let resolved = record.resolved_uln();
        let master_substituted = resolved != record.uln;
        let learner = if master_substituted {
            match self.store.learner_by_uln(resolved).await? {
                Some(master) => self.with_links(master).await?,
                None => return Ok(Lookup::NoMatch),
            }
        } else {
            Found {
                linked_ulns: active_links(&record, linked_ulns),
                record,
            }
        };
        Ok(Lookup::Found {
            learner,
            master_substituted,
        })
    }

    /// The learners with these ULNs, by ULN; unknown ones are left out.
    pub async fn learners(
        &self,
        ulns: &[Uln],
    ) -> Result<HashMap<Uln, LearnerRecord>, LearnerError> {
        let records = self.store.learners_by_ulns(ulns).await?;
        Ok(records.into_iter().map(|r| (r.uln, r)).collect())
    }

    /// Changes a learner's details. `change` turns the stored details into the new ones (or
    /// refuses); the write happens only if `version` is current and something changed.
    pub async fn update(
        &self,
        actor: &Actor,
        uln: Uln,
        version: i64,
        change: impl FnOnce(
            &LearnerDetails,
        ) -> Result<(LearnerDetails, AbilityToShareChange), LearnerError>,
    ) -> Result<Updated, LearnerError> {
        let Some(record) = self.store.learner_by_uln(uln).await? else {
            return Err(LearnerError::NotFound {
                uln: uln.to_string(),
            });
        };
        if let (LearnerStatus::Linked, Some(master)) = (record.status, record.master_uln) {
            return Err(LearnerError::Linked {
                uln: uln.to_string(),
                master: master.to_string(),
            });
        }
        if record.version != version {
            return Err(LearnerError::VersionConflict);
        }
        let (details, ability) = change(&record.details)?;
        if details == record.details {
            return Ok(Updated {
                learner: self.with_links(record).await?,
                changed: false,
            });
        }

        let now = self.clock.now();
        let audit = (ability == AbilityToShareChange::OptOutEnded)
            .then(|| self.opt_out_ended(actor, uln, now));
        let write = LearnerChange {
            id: record.id,
            expected_version: version,
            details,
            at: now,
            audit,
        };
        let outcome = self
            .store
            .update_learners(std::slice::from_ref(&write))
            .await?
            .pop();
        match outcome {
            Some(WriteOutcome::Written(updated)) => {
                tracing::info!(uln = %updated.uln, version = updated.version, "updated learner");
                Ok(Updated {
                    learner: self.with_links(updated).await?,
                    changed: true,
                })
            }
            Some(WriteOutcome::KeysTaken) => {
                let existing = self
                    .store
                    .learners_with_keys(&[write.details.match_keys()])
                    .await?;
                let other = existing.iter().find(|r| r.id != record.id);
                Err(LearnerError::AlreadyRegistered {
                    uln: other
                        .map(|r| r.resolved_uln().to_string())
                        .unwrap_or_default(),
                })
            }
            Some(WriteOutcome::VersionConflict) | None => Err(LearnerError::VersionConflict),
        }
    }

    fn opt_out_ended(&self, actor: &Actor, uln: Uln, at: DateTime<Utc>) -> AuditEntry {
        AuditEntry {
            at,
            action: AuditAction::OptOutEnded,
            uln,
            other_uln: None,
            organisation_id: actor.organisation_id.clone(),
            actor: actor.subject.clone(),
            reason: Some(
                "the registration body gave the learner the current privacy notice".into(),
            ),
        }
    }

    /// Adds a batch record's optional details to the learners it found (linked ULNs update
    /// their masters), in one transaction per attempt; no version check applies.
    pub async fn update_from_batch(
        &self,
        actor: &Actor,
        updates: &[(Uln, BatchDetails)],
    ) -> Result<Vec<BatchUpdated>, LearnerError> {
        let mut results = vec![BatchUpdated::NotFound; updates.len()];
        let mut pending: Vec<usize> = (0..updates.len()).collect();
        for _ in 0..BATCH_UPDATE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let asked: Vec<Uln> = pending.iter().map(|&i| updates[i].0).collect();
            let mut records = self.learners(&asked).await?;
            let masters: Vec<Uln> = records
                .values()
                .filter(|r| r.resolved_uln() != r.uln)
                .map(LearnerRecord::resolved_uln)
                .collect();
            records.extend(self.learners(&masters).await?);

            let now = self.clock.now();
            let mut changes = Vec::new();
            let mut changed_indexes = Vec::new();
            // Several rows of one chunk may name one learner: each applies on the last.
            let mut current: HashMap<Uln, LearnerDetails> = HashMap::new();
            for &index in &pending {
                let (uln, batch) = &updates[index];
                let Some(target) = records
                    .get(uln)
                    .and_then(|r| records.get(&r.resolved_uln()))
                else {
                    results[index] = BatchUpdated::NotFound;
                    continue;
                };
                let stored = current.get(&target.uln).unwrap_or(&target.details);
                let (details, opt_out_ended) = apply_batch_details(stored, batch);
                let changed = &details != stored;
                results[index] = BatchUpdated::Done {
                    uln: target.uln,
                    changed,
                };
                if changed {
                    current.insert(target.uln, details.clone());
                    changes.push(LearnerChange {
                        id: target.id,
                        expected_version: target.version,
                        details,
                        at: now,
                        audit: opt_out_ended.then(|| self.opt_out_ended(actor, target.uln, now)),
                    });
                    changed_indexes.push(index);
                }
            }

            // Only the last change per learner is written; the earlier ones are in it.
            let mut last: HashMap<i64, usize> = HashMap::new();
            for (position, change) in changes.iter().enumerate() {
                last.insert(change.id, position);
            }
            let (writes, write_indexes): (Vec<LearnerChange>, Vec<usize>) = changes
                .into_iter()
                .zip(changed_indexes)
                .enumerate()
                .filter(|(position, (change, _))| last.get(&change.id) == Some(position))
                .map(|(_, pair)| pair)
                .unzip();
            let outcomes = self.store.update_learners(&writes).await?;
            let mut retry = BTreeSet::new();
            for (outcome, (index, write)) in outcomes.iter().zip(write_indexes.iter().zip(&writes))
            {
                if !matches!(outcome, WriteOutcome::Written(_)) {
                    // Retry every row of the chunk that names this learner.
                    for &other in &pending {
                        let named = records
                            .get(&updates[other].0)
                            .map(LearnerRecord::resolved_uln);
                        if named.and_then(|u| records.get(&u)).map(|r| r.id) == Some(write.id) {
                            retry.insert(other);
                        }
                    }
                    retry.insert(*index);
                }
            }
            pending = retry.into_iter().collect();
        }
        if !pending.is_empty() {
            return Err(LearnerError::VersionConflict);
        }
        Ok(results)
    }

    /// Verifies many ULNs against the details claimed, in two reads.
    pub async fn verify_many(
        &self,
        claims: &[(Uln, Claimed)],
    ) -> Result<Vec<Verified>, LearnerError> {
        let ulns: Vec<Uln> = claims.iter().map(|(uln, _)| *uln).collect();
        let mut records = self.learners(&ulns).await?;
        let masters: Vec<Uln> = records
            .values()
            .filter(|r| r.resolved_uln() != r.uln)
            .map(LearnerRecord::resolved_uln)
            .filter(|m| !records.contains_key(m))
            .collect();
        records.extend(self.learners(&masters).await?);
        let answered: Vec<Uln> = records.values().map(LearnerRecord::resolved_uln).collect();
        let links = self.links(&answered).await?;

        Ok(claims
            .iter()
            .map(|(uln, claimed)| {
                let Some(record) = records.get(uln) else {
                    return Verified::UlnNotFound;
                };
                let resolved = record.resolved_uln();
                let Some(answer) = records.get(&resolved) else {
                    return Verified::UlnNotFound;
                };
                Verified::Checked {
                    verdict: verify(&record.details, claimed),
                    linked: resolved != record.uln,
                    learner: Found {
                        record: answer.clone(),
                        linked_ulns: links.get(&resolved).cloned().unwrap_or_default(),
                    },
                }
            })
            .collect())
    }

    /// Links `duplicate` to `master` (service desk).
    pub async fn merge(
        &self,
        actor: &Actor,
        master: Uln,
        duplicate: Uln,
        reason: &str,
    ) -> Result<(Found, Found), LearnerError> {
        let records = self.learners(&[master, duplicate]).await?;
        let find = |uln: Uln| {
            records
                .get(&uln)
                .cloned()
                .ok_or_else(|| LearnerError::NotFound {
                    uln: uln.to_string(),
                })
        };
        let (master_record, duplicate_record) = (find(master)?, find(duplicate)?);
        match plan_merge(&master_record, &duplicate_record).map_err(LearnerError::Merge)? {
            MergePlan::AlreadyLinked => {
                return Ok((
                    self.with_links(master_record).await?,
                    self.with_links(duplicate_record).await?,
                ));
            }
            MergePlan::Link => {}
        }

        let now = self.clock.now();
        let write = MergeWrite {
            master: (master_record.id, master_record.version),
            duplicate: (duplicate_record.id, duplicate_record.version),
            at: now,
            audit: AuditEntry {
                at: now,
                action: AuditAction::Merged,
                uln: duplicate,
                other_uln: Some(master),
                organisation_id: actor.organisation_id.clone(),
                actor: actor.subject.clone(),
                reason: Some(reason.to_owned()),
            },
        };
        match self.store.merge(&write).await? {
            LinkOutcome::Written { master, learner } => {
                tracing::info!(master = %master.uln, duplicate = %learner.uln, "merged learners");
                Ok((
                    self.with_links(master).await?,
                    self.with_links(learner).await?,
                ))
            }
            LinkOutcome::VersionConflict | LinkOutcome::KeysTaken => {
                Err(LearnerError::VersionConflict)
            }
        }
    }

    /// Restores a linked learner as active (service desk).
    pub async fn unmerge(
        &self,
        actor: &Actor,
        linked: Uln,
        reason: &str,
    ) -> Result<(Found, Found), LearnerError> {
        let Some(record) = self.store.learner_by_uln(linked).await? else {
            return Err(LearnerError::NotFound {
                uln: linked.to_string(),
            });
        };
        check_unmerge(&record).map_err(LearnerError::Merge)?;
        let master_uln = record.resolved_uln();
        let Some(master) = self.store.learner_by_uln(master_uln).await? else {
            return Err(LearnerError::NotFound {
                uln: master_uln.to_string(),
            });
        };

        let now = self.clock.now();
        let audit = AuditEntry {
            at: now,
            action: AuditAction::Unmerged,
            uln: linked,
            other_uln: Some(master_uln),
            organisation_id: actor.organisation_id.clone(),
            actor: actor.subject.clone(),
            reason: Some(reason.to_owned()),
        };
        let outcome = self
            .store
            .unmerge(
                (record.id, record.version),
                (master.id, master.version),
                now,
                &audit,
            )
            .await?;
        match outcome {
            LinkOutcome::Written { master, learner } => {
                tracing::info!(master = %master.uln, restored = %learner.uln, "unmerged learner");
                Ok((
                    self.with_links(learner).await?,
                    self.with_links(master).await?,
                ))
            }
            LinkOutcome::KeysTaken => Err(LearnerError::AlreadyRegistered {
                uln: master_uln.to_string(),
            }),
            LinkOutcome::VersionConflict => Err(LearnerError::VersionConflict),
        }
    }

    /// Stops taking searches and waits for those queued to be written.
    pub async fn close(self) {
        self.searches.close().await;
    }

    /// Removes recent searches too old to permit a registration.
    pub async fn prune_searches(&self) -> Result<u64, LearnerError> {
        let before = search_window_start(self.clock.now(), self.search_validity);
        Ok(self.store.prune_searches(before).await?)
    }

    async fn with_links(&self, record: LearnerRecord) -> Result<Found, LearnerError> {
        let linked_ulns = if record.status == LearnerStatus::Active {
            self.links(&[record.uln])
                .await?
                .remove(&record.uln)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Found {
            record,
            linked_ulns,
        })
    }

    async fn links(&self, masters: &[Uln]) -> Result<HashMap<Uln, Vec<Uln>>, LearnerError> {
        let mut links: HashMap<Uln, Vec<Uln>> = HashMap::new();
        if masters.is_empty() {
            return Ok(links);
        }
        for (master, linked) in self.store.linked_ulns(masters).await? {
            links.entry(master).or_default().push(linked);
        }
        Ok(links)
    }

    async fn load_matches(
        &self,
        decisions: &[&Decision],
    ) -> Result<HashMap<Uln, Found>, LearnerError> {
        let ulns: Vec<Uln> = decisions
            .iter()
            .flat_map(|d| d.matches.iter().map(|m| m.uln))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ulns.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .store
            .learners_with_links(&ulns)
            .await?
            .into_iter()
            .map(|(record, linked)| {
                let found = Found {
                    linked_ulns: active_links(&record, linked),
                    record,
                };
                (found.record.uln, found)
            })
            .collect())
    }
}

/// The ULNs linked to `record` as a master shows them: only an active learner has any.
fn active_links(record: &LearnerRecord, linked: Vec<Uln>) -> Vec<Uln> {
    if record.status == LearnerStatus::Active {
        linked
    } else {
        Vec::new()
    }
}
