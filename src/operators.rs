//! Several operators at once (issue 20): one SMPP link per operator, each
//! MO tagged with the operator it came through (its reply goes back that
//! way and its phone's route is learned), and every message that starts
//! with us sent through its route — pinned (a reply: its MO's operator),
//! learned (the operator the phone last texted us through), the numbering
//! plan, else the default operator ([`checkin_core::routing::route`]). A
//! refusal that means "not ours" (`ESME_RINVDSTADR`) moves the message once
//! to the next operator, and a copy taken there teaches the route.
//!
//! Each operator holds only its own traffic: with several, a send whose
//! operator has no bind is handed back at once (`SendOutcome::Deferred`: its
//! row waits `pending` for `retry_delay_min`, not counted as an attempt,
//! within its max age) instead of holding one of the notifier's slots for
//! the others.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use checkin_core::routing::{self, NumberPlan, OperatorName, RouteSource};
use checkin_core::{Clock, Msisdn, Store};
use chrono::{DateTime, Utc};
use notifier::{SendOptions, SendOutcome, SmsSender};
use smpp_text::range::NumberRange;
use smsc_link::{CommandStatus, Link};
use tokio_util::sync::CancellationToken;

use crate::sender::LinkSender;

/// How often the numbering plan's import time is read from storage, so a
/// `checkin routes import` by another process reaches a running gateway.
pub const PLAN_POLL_MS: u64 = 10_000;
/// Counter: messages routed, labels `operator` and `source` = pinned |
/// learned | plan | default | fallback.
pub const ROUTED: &str = "checkin_routed_total";

/// One operator's link and sender.
#[derive(Debug)]
pub(crate) struct OperatorLink {
    pub name: OperatorName,
    pub link: Link,
    pub sender: LinkSender,
    /// How this operator's SMSC ids are written on the outbox rows (and
    /// keyed in `outbox_smsc_ids`): as the SMSC wrote them for the first
    /// operator (as a gateway of one operator always has), `name:id` for
    /// the others, since two SMSCs may hand out the same id.
    pub id_prefix: Option<String>,
}

impl OperatorLink {
    fn stored_ids(&self, outcome: SendOutcome) -> SendOutcome {
        match (outcome, &self.id_prefix) {
            (SendOutcome::Accepted { message_ids }, Some(prefix)) => SendOutcome::Accepted {
                message_ids: message_ids
                    .into_iter()
                    .map(|id| format!("{prefix}{id}"))
                    .collect(),
            },
            (outcome, _) => outcome,
        }
    }
}

/// The key prefix of the operator at `position` in configuration order.
pub(crate) fn id_prefix(position: usize, name: &OperatorName) -> Option<String> {
    (position > 0).then(|| format!("{name}:"))
}

/// The numbering plan in use: imported ranges (`checkin routes import`)
/// with the configured operators' `ranges` over them, swapped whole when
/// storage says a new one was imported.
#[derive(Debug)]
pub(crate) struct Plan {
    configured: Vec<(NumberRange, OperatorName)>,
    current: RwLock<Arc<NumberPlan>>,
    imported_at: Mutex<Option<DateTime<Utc>>>,
}

impl Plan {
    pub(crate) fn new(configured: Vec<(NumberRange, OperatorName)>) -> Plan {
        let current = NumberPlan::default().merged_with(&configured);
        Plan {
            configured,
            current: RwLock::new(Arc::new(current)),
            imported_at: Mutex::new(None),
        }
    }

    pub(crate) fn current(&self) -> Arc<NumberPlan> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the imported plan again when storage has a newer one.
    pub(crate) async fn refresh(&self, store: &Store) -> Result<bool, checkin_core::StoreError> {
        let imported_at = store.routes().plan_imported_at().await?;
        {
            let seen = self.imported_at.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == imported_at {
                return Ok(false);
            }
        }
        let plan = store.routes().plan().await?.merged_with(&self.configured);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
        *self.imported_at.lock().unwrap_or_else(|e| e.into_inner()) = imported_at;
        Ok(true)
    }

    /// Re-reads the plan every `every` ([`PLAN_POLL_MS`] in `serve`) until `stop`.
    pub(crate) async fn keep_fresh(
        self: Arc<Self>,
        store: Store,
        every: Duration,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            match self.refresh(&store).await {
                Ok(true) => tracing::info!("numbering plan reloaded"),
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "numbering plan not read; the next tick retries")
                }
            }
        }
    }
}

/// The notifier's sender over every operator.
#[derive(Debug)]
pub(crate) struct RoutedSender {
    operators: Vec<OperatorLink>,
    names: Vec<OperatorName>,
    default: usize,
    plan: Arc<Plan>,
    store: Store,
    clock: Arc<dyn Clock>,
    /// Per operator, [`routed_counters`].
    routed: Vec<Vec<metrics::Counter>>,
}

impl RoutedSender {
    /// `operators` in configuration order (at least one); `default` names
    /// one of them (else the first is the default).
    pub(crate) fn new(
        operators: Vec<OperatorLink>,
        default: Option<&OperatorName>,
        plan: Arc<Plan>,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> RoutedSender {
        let names: Vec<OperatorName> = operators.iter().map(|o| o.name.clone()).collect();
        let default = default
            .and_then(|d| names.iter().position(|n| n == d))
            .unwrap_or(0);
        let routed = names.iter().map(routed_counters).collect();
        RoutedSender {
            operators,
            names,
            default,
            plan,
            store,
            clock,
            routed,
        }
    }

    fn count_routed(&self, at: usize, slot: usize) {
        if let Some(counter) = self.routed.get(at).and_then(|c| c.get(slot)) {
            counter.increment(1);
        }
    }

    fn position(&self, name: &OperatorName) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Sends through operator `at`: the outcome with its ids as stored, and
    /// whether the SMSC said the number is not its own.
    async fn send_via(
        &self,
        at: usize,
        to: &Msisdn,
        text: &str,
        options: &SendOptions,
    ) -> (SendOutcome, bool) {
        let operator = &self.operators[at];
        // With several operators, one without a bind holds nothing: its
        // messages are handed back at once (a slot held even a second each
        // would leave the others none once enough of them queue up).
        if self.operators.len() > 1 && operator.link.state().borrow().bound() == 0 {
            let reason = format!("operator {}: no bind up", operator.name);
            let outcome = if options.send_within == Some(Duration::ZERO) {
                SendOutcome::Expired { reason }
            } else {
                SendOutcome::Deferred { reason }
            };
            return (outcome, false);
        }
        let (outcome, status) = operator.sender.send_with_status(to, text, options).await;
        let not_ours = status == Some(CommandStatus::EsmeRinvdstadr);
        (operator.stored_ids(outcome), not_ours)
    }
}

/// The `source` labels of [`ROUTED`], in [`route_slot`]'s order.
const ROUTE_SOURCES: [RouteSource; 4] = [
    RouteSource::Pinned,
    RouteSource::Learned,
    RouteSource::Plan,
    RouteSource::Default,
];
/// The slot of a "not ours" move to the next operator.
const FALLBACK_SLOT: usize = ROUTE_SOURCES.len();

fn route_slot(source: RouteSource) -> usize {
    ROUTE_SOURCES.iter().position(|s| *s == source).unwrap_or(0)
}

/// [`ROUTED`]'s counters of one operator, registered once (a send then
/// builds no label set): one per source, then the fallback's.
fn routed_counters(operator: &OperatorName) -> Vec<metrics::Counter> {
    let name = operator.to_string();
    ROUTE_SOURCES
        .iter()
        .map(|s| s.as_str())
        .chain(["fallback"])
        .map(|source| metrics::counter!(ROUTED, "operator" => name.clone(), "source" => source))
        .collect()
}

impl SmsSender for RoutedSender {
    fn segments(&self, text: &str) -> u32 {
        self.operators[self.default].sender.segments(text)
    }

    fn throttled_total(&self) -> u64 {
        self.operators
            .iter()
            .map(|o| o.sender.throttled_total())
            .sum()
    }

    async fn send(&self, to: &Msisdn, text: &str, options: &SendOptions) -> SendOutcome {
        // A route to an operator no longer configured counts as none.
        let given = options
            .route
            .as_ref()
            .filter(|r| self.position(r).is_some());
        let plan = self.plan.current();
        let route = routing::route(given, None, &plan, to, &self.names[self.default]);
        let at = self.position(&route.operator).unwrap_or(self.default);
        self.count_routed(at, route_slot(route.source));
        let (outcome, not_ours) = self.send_via(at, to, text, options).await;
        if !not_ours {
            return outcome;
        }
        let Some(next) =
            routing::next_operator(&self.names[at], &self.names).and_then(|n| self.position(n))
        else {
            return outcome;
        };
        self.count_routed(next, FALLBACK_SLOT);
        tracing::info!(from = %self.names[at], to = %self.names[next], outbox_id = options.outbox_id, "not this operator's number: trying the next once");
        let (second, _) = self.send_via(next, to, text, options).await;
        if matches!(second, SendOutcome::Accepted { .. }) {
            if let Some(hash) = &options.recipient_hash {
                let learned = [(*hash, self.names[next].clone())];
                if let Err(e) = self.store.routes().learn(&learned, self.clock.now()).await {
                    tracing::warn!(error = %e, "a route learned from a refusal was not stored");
                }
            }
        }
        second
    }
}

/// `/readyz`'s SMPP half over every operator: ready while at least one
/// operator has a bind up; the others are named as notes. One operator
/// reads as before: its binds' errors.
pub(crate) fn readiness(operators: &[(OperatorName, Link)]) -> web::ReadinessProbe {
    let states: Vec<_> = operators
        .iter()
        .map(|(name, link)| (name.clone(), link.state()))
        .collect();
    Arc::new(move || {
        let mut down = Vec::new();
        let mut up = 0;
        for (name, state) in &states {
            let state = state.borrow();
            if state.bound() > 0 {
                up += 1;
                continue;
            }
            let errors: Vec<&str> = state
                .last_errors
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let mut line = format!("no SMPP bind up (0 of {})", state.binds.len());
            if !errors.is_empty() {
                line.push_str(": ");
                line.push_str(&errors.join("; "));
            }
            if states.len() > 1 {
                line = format!("operator {name}: {line}");
            }
            down.push(line);
        }
        if up > 0 {
            Ok(down)
        } else {
            Err(down.join("; "))
        }
    })
}
