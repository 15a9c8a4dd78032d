//! A short-lived memory of the premises (and organization name) a venue code
//! names, for the code entry `POST /v/{code}/otp`: every visitor of a venue
//! posts to the same path, and two reader queries per entry (premises, then
//! organization) cost more than the rest of the request. Safe to be a little
//! stale there: the confirmation's own transaction reads the premises again
//! and refuses a closed one (`OtpCheck::InactivePremises`); what may be up to
//! [`PLACE_LIFE`] old is only the address and name on a page that says the
//! code was wrong. Other routes read the store every time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use checkin_core::{Premises, VenueCode};

/// How long a remembered premises is used before it is read again.
pub(crate) const PLACE_LIFE: Duration = Duration::from_secs(2);
/// Most venue codes remembered at once (each a premises row and a name, a few
/// hundred bytes); past it the expired ones go, or all of them.
pub(crate) const PLACES_MAX: usize = 4096;

/// An open premises and its organization's name, as last read.
#[derive(Debug)]
pub(crate) struct Place {
    pub(crate) premises: Premises,
    pub(crate) organization: Option<String>,
}

/// The memory: venue code → the place and when it was read.
#[derive(Debug, Default)]
pub(crate) struct Places {
    known: Mutex<HashMap<VenueCode, (Instant, Arc<Place>)>>,
}

impl Places {
    /// The place of `code` if it was read less than [`PLACE_LIFE`] ago.
    pub(crate) fn get(&self, code: &VenueCode, now: Instant) -> Option<Arc<Place>> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known
            .get(code)
            .filter(|(read, _)| now.saturating_duration_since(*read) < PLACE_LIFE)
            .map(|(_, place)| place.clone())
    }

    /// Remembers `place`, read at `read`.
    pub(crate) fn put(&self, place: Arc<Place>, read: Instant) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= PLACES_MAX {
            known.retain(|_, (at, _)| read.saturating_duration_since(*at) < PLACE_LIFE);
            if known.len() >= PLACES_MAX {
                known.clear();
            }
        }
        known.insert(place.premises.code, (read, place));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Arc<Place> {
        Arc::new(Place {
            premises: Premises {
                id: 1,
                org_id: 1,
                code: VenueCode::generate(&mut rand::thread_rng()),
                address: "Тверская ул., 1".into(),
                sms_label: None,
                kind: String::new(),
                stay_minutes: 60,
                active: true,
                created_at: chrono::Utc::now(),
            },
            organization: None,
        })
    }

    #[test]
    fn a_place_is_used_for_its_life_only_and_the_memory_stays_bounded() {
        let places = Places::default();
        let first = place();
        let code = first.premises.code;
        let t = Instant::now();
        assert!(places.get(&code, t).is_none());
        places.put(first, t);
        assert!(places.get(&code, t + PLACE_LIFE / 2).is_some());
        assert!(places.get(&code, t + PLACE_LIFE).is_none());
        for _ in 0..PLACES_MAX + 10 {
            places.put(place(), t);
        }
        assert!(places.known.lock().unwrap().len() <= PLACES_MAX);
    }
}
